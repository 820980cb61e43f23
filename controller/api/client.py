"""A small typed client of the operator API, used by ``slicectl``, the demo and the tests.

It sends the bearer token with every call and turns gRPC failures back into our exceptions:
UNAUTHENTICATED → :class:`NotAuthenticated`, UNAVAILABLE → :class:`errors.Unavailable` naming
the server, INVALID_ARGUMENT → :class:`errors.InvalidSpec` with the server's message,
NOT_FOUND → :class:`errors.NotFound`. The server also names the exact exception in trailing
metadata, which wins when present (a TopologyError stays a TopologyError).

Lists come in pages (AIP-158, see operator.proto); the list methods here read every page, so
callers get whole lists and no answer needs more than gRPC's default 4 MiB receive limit.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controller.core.topology import LinkKey
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from protos.edgeslice.operator.v1 import operator_pb2_grpc as pb_grpc
from slices import errors

DEFAULT_SERVER = "127.0.0.1:50051"
ERROR_KIND_KEY = "edgeslice-error"  # same key as controller.api.servicing.ERROR_KIND_KEY
VERSION_KEY = "edgeslice-version"  # same key as controller.api.servicing.VERSION_KEY

_Resp = TypeVar("_Resp")
PAGE_SIZE = 10_000  # asked for; the server serves at most its maximum and 2 MiB per page
SLICE_PAGE_SIZE = 1000  # ListSlices' maximum
STATUS_ATTEMPTS = 5  # reads of a topology status the controller's changes cut short, at most
WRITE_ATTEMPTS = 4  # sends of one write (same request id) whose answer was lost, at most
RETRY_PAUSE_S = 0.2  # before the first re-send; doubles each time
MAX_TOPOLOGY_BYTES = 512 * 1024 * 1024  # a GetTopology answer unpacks to at most this much


class NotAuthenticated(errors.EdgesliceError):
    """The server refused the call's token (missing, unknown or expired)."""

    exit_code = 8


_KINDS: dict[str, type[errors.EdgesliceError]] = {
    cls.__name__: cls
    for cls in (
        errors.InvalidSpec,
        errors.TopologyError,
        errors.NotFound,
        errors.RealisationError,
        errors.StoreError,
        errors.Unavailable,
    )
}


def translate(exc: grpc.RpcError, address: str) -> errors.EdgesliceError:
    """The exception a failed call stands for, with a one-line message."""
    code: grpc.StatusCode = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details: str = (exc.details() if isinstance(exc, grpc.Call) else "") or ""
    trailing = exc.trailing_metadata() if isinstance(exc, grpc.Call) else None
    pairs: tuple[tuple[str, str | bytes], ...] = tuple(trailing or ())
    kind = next((str(v) for k, v in pairs if k == ERROR_KIND_KEY), "")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return NotAuthenticated(
            f"not authenticated by {address}: {details} (give --token, --token-file or $EDGESLICE_TOKEN)"
        )
    if code == grpc.StatusCode.UNAVAILABLE:
        return errors.Unavailable(f"cannot reach the controller at {address}: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.Unavailable(f"the controller at {address} did not answer in time")
    if kind == "AdmissionRejected":
        reason, _, message = details.partition(": ")
        return errors.AdmissionRejected(reason, message)
    if kind in _KINDS:
        return _KINDS[kind](details)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return errors.InvalidSpec(details)
    if code == grpc.StatusCode.NOT_FOUND:
        return errors.NotFound(details)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return errors.InvalidSpec(f"refused by {address} as too large or too many: {details}")
    if code == grpc.StatusCode.CANCELLED:
        return errors.Unavailable(f"the call to {address} was cancelled: {details}")
    return errors.EdgesliceError(f"{address} answered {code.name}: {details}")


def json_object(text: str, what: str) -> dict[str, Any]:
    """Decode a JSON object the server sent.

    >>> json_object('{"cells": 12, "latencyMs": 1.5}', "report")
    {'cells': 12, 'latencyMs': 1.5}
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.EdgesliceError(f"the server sent a {what} that is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise errors.EdgesliceError(f"the server sent a {what} that is not a JSON object")
    return data


class ApiClient:
    """One channel to one controller. Use as a context manager, or call :meth:`close`.

    ``ca`` (PEM) turns on TLS; ``client_cert``/``client_key`` add a client certificate (mTLS).
    """

    def __init__(
        self,
        address: str,
        token: str,
        *,
        ca: bytes | None = None,
        client_cert: bytes | None = None,
        client_key: bytes | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        if ca is not None:
            creds = grpc.ssl_channel_credentials(
                root_certificates=ca, private_key=client_key, certificate_chain=client_cert
            )
            self._channel = grpc.secure_channel(address, creds)
        else:
            self._channel = grpc.insecure_channel(address)
        self._stub = pb_grpc.OperatorServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _unreachable(self, timeout_s: float) -> str:
        """Why the controller does not answer at all ("" when it does; the health check needs no
        token and changes nothing): a write is sent only after it answers, so "cannot reach"
        means nothing was sent."""
        try:
            self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return f"no answer within {timeout_s:g} s"
            if code == grpc.StatusCode.UNAVAILABLE:
                return (exc.details() if isinstance(exc, grpc.Call) else "") or "unavailable"
        return ""

    def _write(
        self,
        what: str,
        method: Callable[..., _Resp],
        request: Any,
        timeout_s: float | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> _Resp:
        """A write with a request id: a lost answer is asked for again with the same id, which the
        controller answers without doing the write twice. What is said is true when said:
        "cannot reach" only when nothing was sent; "unknown, retrying" when the request went out
        and its answer was lost; the outcome is known again once an answer arrives."""
        if not request.request_id:
            request.request_id = uuid.uuid4().hex
        wait = timeout_s or self.timeout_s
        why = self._unreachable(wait)
        if why:
            raise errors.Unavailable(
                f"cannot reach the controller at {self.address}: {why}; nothing was sent ({what} not done)"
            )
        pause = RETRY_PAUSE_S
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return method(request, timeout=wait, metadata=self._metadata)
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, grpc.Call) else None
                if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise translate(exc, self.address) from exc
                details = (exc.details() if isinstance(exc, grpc.Call) else "") or code.name
                lost = (
                    f"the answer to {what} (request id {request.request_id}) was lost after it was sent "
                    f"to {self.address} ({details})"
                )
                if attempt == WRITE_ATTEMPTS or self._unreachable(wait):
                    raise errors.Unavailable(
                        f"outcome unknown: {lost}; the controller did not answer again; "
                        "see `slicectl slice events` for what was committed"
                    ) from exc
                if on_retry is not None:
                    on_retry(f"unknown, retrying: {lost}")
                time.sleep(pause)
                pause *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, method: Callable[..., _Resp], request: object, timeout_s: float | None = None) -> _Resp:
        try:
            return method(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise translate(exc, self.address) from exc

    # -- slices -----------------------------------------------------------------------------------

    def apply(
        self,
        manifests: Sequence[tuple[str, str]],
        timeout_s: float | None = None,
        *,
        dry_run: bool = False,
        request_id: str = "",
        on_retry: Callable[[str], None] | None = None,
    ) -> list[pb.ApplyResult]:
        """Apply ``(source, YAML text)`` manifests together: all documents or none.

        ``dry_run``: the controller's decision against its live ledger, nothing stored. Otherwise
        a request id makes a re-send after a lost answer safe (``on_retry`` hears of each)."""
        return list(self.apply_response(manifests, timeout_s, dry_run, request_id, on_retry).results)

    def apply_response(
        self,
        manifests: Sequence[tuple[str, str]],
        timeout_s: float | None = None,
        dry_run: bool = False,
        request_id: str = "",
        on_retry: Callable[[str], None] | None = None,
    ) -> pb.ApplySlicesResponse:
        request = pb.ApplySlicesRequest(
            manifests=[pb.Manifest(source=s, content=c) for s, c in manifests],
            dry_run=dry_run,
            request_id=request_id,
        )
        if dry_run:
            result: pb.ApplySlicesResponse = self._call(self._stub.ApplySlices, request, timeout_s)
            return result
        written: pb.ApplySlicesResponse = self._write(
            "the apply", self._stub.ApplySlices, request, timeout_s, on_retry
        )
        return written

    def get(self, name: str) -> pb.Slice:
        result: pb.Slice = self._call(self._stub.GetSlice, pb.GetSliceRequest(name=name))
        return result

    def list_slices(self) -> list[pb.Slice]:
        """Every slice, ordered by name (every page)."""
        out: list[pb.Slice] = []
        token = ""
        while True:
            request = pb.ListSlicesRequest(page_size=SLICE_PAGE_SIZE, page_token=token)
            page: pb.ListSlicesResponse = self._call(self._stub.ListSlices, request)
            out += page.slices
            token = page.next_page_token
            if not token:
                return out

    def delete(self, name: str, on_retry: Callable[[str], None] | None = None) -> None:
        self._write(
            f"the delete of {name!r}",
            self._stub.DeleteSlice,
            pb.DeleteSliceRequest(name=name),
            None,
            on_retry,
        )

    def explain(self, name: str) -> pb.Explanation:
        """Why the slice is where it is (:func:`controller.api.reports.explanation_data` gives it
        as the plain data ``-o json`` prints)."""
        response: pb.ExplainSliceResponse = self._call(
            self._stub.ExplainSlice, pb.ExplainSliceRequest(name=name)
        )
        return response.explanation

    # -- events -----------------------------------------------------------------------------------

    def events(self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None) -> list[pb.Event]:
        """The first ``limit`` events after ``after_seq``, oldest first (as many pages as needed)."""
        if limit < 1:
            raise errors.InvalidSpec(f"limit: {limit} must be at least 1")
        out: list[pb.Event] = []
        token = ""
        while len(out) < limit:
            request = pb.ListEventsRequest(
                after_seq=after_seq,
                slice=slice_name or "",
                page_size=min(limit - len(out), PAGE_SIZE),
                page_token=token,
            )
            page: pb.ListEventsResponse = self._call(self._stub.ListEvents, request)
            out += page.events
            token = page.next_page_token
            if not token:
                break
        return out

    def watch(self, after_seq: int = 0, slice_name: str | None = None) -> Iterator[pb.Event]:
        """Events after ``after_seq``, then each new one as it happens; close the iterator to stop."""
        request = pb.WatchEventsRequest(after_seq=after_seq, slice=slice_name or "")
        try:
            stream = self._stub.WatchEvents(request, metadata=self._metadata)
        except grpc.RpcError as exc:  # pragma: no cover - stream errors surface on iteration
            raise translate(exc, self.address) from exc
        try:
            yield from stream
        except grpc.RpcError as exc:
            raise translate(exc, self.address) from exc
        finally:
            stream.cancel()

    # -- topology ---------------------------------------------------------------------------------

    def topology_status(self) -> pb.TopologyStatus:
        """The whole status, its pages joined; read again from the first page when the
        controller's state changed while it was being read (the pages are one snapshot)."""
        for _ in range(STATUS_ATTEMPTS):
            whole = pb.TopologyStatus()
            token = ""
            try:
                while True:
                    request = pb.GetTopologyStatusRequest(page_size=PAGE_SIZE, page_token=token)
                    page = self._stub.GetTopologyStatus(
                        request, timeout=self.timeout_s, metadata=self._metadata
                    )
                    whole.name = page.name
                    whole.sites.extend(page.sites)
                    whole.down_links.extend(page.down_links)
                    whole.link_utilisation.extend(page.link_utilisation)
                    token = page.next_page_token
                    if not token:
                        return whole
            except grpc.RpcError as exc:
                if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.ABORTED:
                    continue
                raise translate(exc, self.address) from exc
        raise errors.Unavailable(
            f"the topology status at {self.address} changed during each of {STATUS_ATTEMPTS} reads; try again"
        )

    def drain(self, site: str, timeout_s: float | None = None) -> list[str]:
        """The slices re-placed (:meth:`drain_report` says what became of every one)."""
        return list(self.drain_report(site, timeout_s).moved_slices)

    def drain_report(
        self, site: str, timeout_s: float | None = None, on_retry: Callable[[str], None] | None = None
    ) -> pb.DrainSiteResponse:
        response: pb.DrainSiteResponse = self._write(
            f"the drain of {site}", self._stub.DrainSite, pb.DrainSiteRequest(site=site), timeout_s, on_retry
        )
        return response

    def undrain(
        self, site: str, timeout_s: float | None = None, on_retry: Callable[[str], None] | None = None
    ) -> list[str]:
        response: pb.UndrainSiteResponse = self._write(
            f"the undrain of {site}",
            self._stub.UndrainSite,
            pb.UndrainSiteRequest(site=site),
            timeout_s,
            on_retry,
        )
        return list(response.moved_slices)

    def cordon(self, site: str, on_retry: Callable[[str], None] | None = None) -> pb.CordonSiteResponse:
        response: pb.CordonSiteResponse = self._write(
            f"the cordon of {site}", self._stub.CordonSite, pb.CordonSiteRequest(site=site), None, on_retry
        )
        return response

    def uncordon(self, site: str, on_retry: Callable[[str], None] | None = None) -> bool:
        response: pb.UncordonSiteResponse = self._write(
            f"the uncordon of {site}",
            self._stub.UncordonSite,
            pb.UncordonSiteRequest(site=site),
            None,
            on_retry,
        )
        return response.changed

    def topology_file(self) -> tuple[str, dict[str, Any]]:
        """(fingerprint, the topology file as a JSON document) the controller runs on."""
        response: pb.TopologyFile = self._call(self._stub.GetTopology, pb.GetTopologyRequest())
        try:
            text = gzip.decompress(response.content_gzip)
        except (OSError, EOFError) as exc:
            raise errors.EdgesliceError(f"the topology {self.address} sent is not gzip data: {exc}") from exc
        if len(text) > MAX_TOPOLOGY_BYTES:  # pragma: no cover - a city is far smaller
            raise errors.EdgesliceError(f"the topology {self.address} sent is too large")
        return response.fingerprint, json_object(text.decode("utf-8", "replace"), "topology")

    def what_if(self, fail_sites: Sequence[str], fail_links: Sequence[LinkKey]) -> pb.WhatIfReport:
        """What failing these would do (:func:`controller.api.reports.what_if_data` gives it as
        plain data)."""
        request = pb.WhatIfRequest(
            fail_sites=list(fail_sites), fail_links=[pb.Link(a=a, b=b) for a, b in fail_links]
        )
        response: pb.WhatIfResponse = self._call(self._stub.WhatIf, request)
        return response.report

    # -- agents -----------------------------------------------------------------------------------

    def agents(self, state: str | None = None) -> list[pb.Agent]:
        """Every site's agent, ordered by site (every page); ``state`` keeps only Connected,
        Disconnected or Never ones."""
        out: list[pb.Agent] = []
        token = ""
        while True:
            request = pb.ListAgentsRequest(page_size=PAGE_SIZE, page_token=token, state=state or "")
            page: pb.ListAgentsResponse = self._call(self._stub.ListAgents, request)
            out += page.agents
            token = page.next_page_token
            if not token:
                return out

    def agent(self, site: str) -> pb.Agent:
        """One site's agent (NotFound when the site is not in the topology)."""
        result: pb.Agent = self._call(self._stub.GetAgent, pb.GetAgentRequest(site=site))
        return result

    # -- version ----------------------------------------------------------------------------------

    def server_version(self) -> str:
        """The controller's version, from the initial metadata of an answer ("" from a controller
        too old to send it)."""
        request = pb.ListSlicesRequest(page_size=1)
        try:
            _, call = self._stub.ListSlices.with_call(
                request, timeout=self.timeout_s, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise translate(exc, self.address) from exc
        pairs: tuple[tuple[str, str | bytes], ...] = tuple(call.initial_metadata() or ())
        return next((str(v) for k, v in pairs if k == VERSION_KEY), "")

    # -- health -----------------------------------------------------------------------------------

    def health(self, service: str = "") -> str:
        """``SERVING``, ``NOT_SERVING``, ... as the standard health service reports it (no token needed)."""
        response: health_pb2.HealthCheckResponse = self._call(
            self._health.Check, health_pb2.HealthCheckRequest(service=service)
        )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
