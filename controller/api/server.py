"""The operator gRPC API (``edgeslice.operator.v1.OperatorService``): a thin translation layer.

Every call is checked for a bearer token before it reaches the servicer (an interceptor, so no
method can forget it); the health service and reflection stay open for probes and tools. The
servicer turns requests into calls of :class:`controller.api.ports.OperatorPort` (what the
controller's service implements) and the
results into messages; our exceptions become status codes (InvalidSpec → INVALID_ARGUMENT with
the message naming the field, NotFound → NOT_FOUND, ...) plus trailing metadata
``edgeslice-error`` naming the exception, so :mod:`controller.api.client` can raise the same kind.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import timestamp_pb2

from controller.api import auth as auth_mod
from controller.api import grpc_services, paging, ports
from controller.core.placement_model import Placement
from controller.core.topology import LinkKey, link_key
from controller.runtime import service as service_mod
from controller.runtime.agent_view import AgentDirectory, AgentInfo, SessionState
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from protos.edgeslice.operator.v1 import operator_pb2_grpc as pb_grpc
from slices import errors, intent
from slices.status import Condition

log = logging.getLogger(__name__)

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["OperatorService"].full_name
MAX_RECEIVE_BYTES = 4 * 1024 * 1024  # a request bigger than this is refused (RESOURCE_EXHAUSTED)
ERROR_KIND_KEY = "edgeslice-error"
VERSION_KEY = "edgeslice-version"  # initial metadata of every unary answer: the server's version
# Probes and discovery work without a token; everything else needs one.
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
EVENT_PAGE = 1000
MAX_EVENT_LIMIT = 10_000
# Page sizes (AIP-158), as documented in operator.proto; every page also ends at paging.PAGE_BYTES.
SLICE_PAGES = paging.Limits(default=100, maximum=1000)
EVENT_PAGES = paging.Limits(default=EVENT_PAGE, maximum=MAX_EVENT_LIMIT)
AGENT_PAGES = paging.Limits(default=1000, maximum=10_000)
TOPOLOGY_PAGES = paging.Limits(default=1000, maximum=10_000)
REQUEST_IDS = 10_000  # answered write requests remembered for retries (by request_id)
REQUEST_LOG_BYTES = 64 * 1024 * 1024  # and at most this much of their requests and answers
MAX_REQUEST_ID = 128
NO_AGENTS = "this controller runs no agent server (it was started with --no-agents)"
AGENT_STATES = tuple(s.value for s in SessionState)

_CODES: tuple[tuple[type[errors.EdgesliceError], grpc.StatusCode], ...] = (
    (errors.InvalidSpec, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.TopologyError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AdmissionRejected, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.RealisationError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.StoreError, grpc.StatusCode.INTERNAL),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
)


def status_code(exc: errors.EdgesliceError) -> grpc.StatusCode:
    """The gRPC status an error is sent as.

    >>> status_code(errors.NotFound("slice 'x' does not exist")).name
    'NOT_FOUND'
    """
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.UNKNOWN


# ---- authentication -------------------------------------------------------------------------


class BearerAuthInterceptor(grpc.ServerInterceptor):
    """Refuses every call without a known bearer token with UNAUTHENTICATED."""

    def __init__(self, authenticator: auth_mod.Authenticator) -> None:
        self._auth = authenticator

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_METHOD_PREFIXES):
            return handler
        token = auth_mod.bearer_token(handler_call_details.invocation_metadata)
        if not token:
            why = "no bearer token: send metadata 'authorization: Bearer <token>'"
        elif self._auth.identify(token) is None:
            why = "the bearer token is not known to this controller"
        else:
            return handler
        return _refusing(handler, why)


def _refusing(handler: grpc.RpcMethodHandler[Any, Any], why: str) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as ``handler`` that fails with UNAUTHENTICATED."""

    def deny(_request: object, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, why)

    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            deny,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        deny,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


# ---- errors → status ------------------------------------------------------------------------

_S = TypeVar("_S", bound="OperatorServicer")
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


class _Refused(Exception):
    """A status of the API's own (not a domain error), e.g. too many watches."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    if isinstance(exc, _Refused):
        context.abort(exc.code, exc.details)
    if isinstance(exc, errors.EdgesliceError):
        context.set_trailing_metadata(((ERROR_KIND_KEY, type(exc).__name__),))
        context.abort(status_code(exc), str(exc))
    log.error("operator API: unexpected error", exc_info=exc)
    context.abort(
        grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the controller's log"
    )


def _unary(
    method: Callable[[_S, _Req, grpc.ServicerContext], _Resp],
) -> Callable[[_S, _Req, grpc.ServicerContext], _Resp]:
    @functools.wraps(method)
    def wrapper(self: _S, request: _Req, context: grpc.ServicerContext) -> _Resp:
        context.send_initial_metadata(((VERSION_KEY, server_version()),))
        try:
            with self.in_flight:
                return method(self, request, context)
        except Exception as exc:
            _abort(context, exc)

    return wrapper


@functools.cache
def server_version() -> str:
    """The installed edgeslice distribution's version (``unknown`` when run from a bare tree)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("edgeslice")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _streaming(
    method: Callable[[_S, _Req, grpc.ServicerContext], Iterator[_Resp]],
) -> Callable[[_S, _Req, grpc.ServicerContext], Iterator[_Resp]]:
    @functools.wraps(method)
    def wrapper(self: _S, request: _Req, context: grpc.ServicerContext) -> Iterator[_Resp]:
        try:
            with self.in_flight:
                yield from method(self, request, context)
        except Exception as exc:
            _abort(context, exc)

    return wrapper


def _required(value: str, field: str) -> str:
    if not value:
        raise errors.InvalidSpec(f"{field}: required")
    return value


def _slice_name(value: str) -> str:
    if not intent.is_dns_label(_required(value, "name")):
        raise errors.InvalidSpec(f"name: {value[:80]!r} is not a slice name (lowercase DNS label)")
    return value


# ---- domain → messages ----------------------------------------------------------------------


def timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(at)
    return out


def condition_message(c: Condition) -> pb.Condition:
    return pb.Condition(
        type=c.type.value,
        status=c.status.value,
        reason=c.reason,
        message=c.message,
        observed_generation=c.observed_generation,
        last_transition_time=timestamp(c.last_transition_time),
    )


def placement_message(p: Placement) -> pb.PlacementSummary:
    return pb.PlacementSummary(
        edges=[
            pb.EdgeShare(site=e.site, cells=e.cells, cpu_millicores=e.cpu_millicores, memory_mib=e.memory_mib)
            for e in p.edges
        ],
        cells_served=len(p.assignments),
        unserved_cells=list(p.unserved),
        worst_latency_ms=p.worst_latency_ms,
        kbps_per_cell=p.kbps_per_cell,
    )


def slice_message(record: service_mod.SliceRecord) -> pb.Slice:
    out = pb.Slice(
        name=record.name,
        generation=record.generation,
        kind=record.intent.kind.value,
        snssai=record.intent.snssai,
        priority=record.intent.priority,
        state=record.state.value,
        reason=record.reason,
        message=record.message,
        conditions=[condition_message(c) for c in record.conditions],
        document_json=json.dumps(record.document.to_wire(), separators=(",", ":")),
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
    )
    if record.placement is not None:
        out.placement.CopyFrom(placement_message(record.placement))
    return out


def event_message(e: service_mod.Event) -> pb.Event:
    return pb.Event(
        seq=e.seq,
        at=timestamp(e.at),
        actor=e.actor,
        action=e.action,
        slice=e.slice or "",
        site=e.site or "",
        message=e.message,
    )


def apply_result_message(r: service_mod.ApplyResult) -> pb.ApplyResult:
    return pb.ApplyResult(
        name=r.name,
        generation=r.generation,
        changed=r.changed,
        state=r.state.value,
        reason=r.reason,
        message=r.message,
    )


def link_message(key: LinkKey) -> pb.Link:
    return pb.Link(a=key[0], b=key[1])


def site_status_message(x: service_mod.SiteStatus) -> pb.SiteStatus:
    return pb.SiteStatus(
        site=x.site,
        kind=x.kind,
        up=x.up,
        drained=x.drained,
        reason=x.reason,
        cpu_reserved_millicores=x.cpu_reserved,
        cpu_capacity_millicores=x.cpu_capacity,
        memory_reserved_mib=x.memory_reserved,
        memory_capacity_mib=x.memory_capacity,
        radio_reserved_kbps=x.radio_reserved_kbps,
        radio_capacity_kbps=x.radio_capacity_kbps,
        slices=x.slices,
        cordoned=x.cordoned,
    )


def link_utilisation_message(entry: tuple[LinkKey, int, int]) -> pb.LinkUtilisation:
    key, used, cap = entry
    return pb.LinkUtilisation(link=link_message(key), reserved_kbps=used, capacity_kbps=cap)


def topology_status_message(s: service_mod.TopologyStatus) -> pb.TopologyStatus:
    """The whole status in one message (unpaged; the API serves it page by page)."""
    return pb.TopologyStatus(
        name=s.name,
        sites=[site_status_message(x) for x in s.sites],
        down_links=[link_message(k) for k in s.down_links],
        link_utilisation=[link_utilisation_message(u) for u in s.link_utilisation],
    )


def agent_message(a: AgentInfo) -> pb.Agent:
    out = pb.Agent(
        site=a.site,
        kind=a.kind,
        state=a.state.value,
        software_version=a.software_version,
        instance_id=a.instance_id,
        desired_generation=a.desired_generation,
        acked_generation=a.acked_generation,
        messages_per_s=a.messages_per_s,
        rejections=a.rejections,
        epoch=a.epoch,
    )
    if a.lease_expires_in_s is not None:
        out.lease_expires_in_s = a.lease_expires_in_s
    if a.last_seen_s_ago is not None:
        out.last_seen_s_ago = a.last_seen_s_ago
    if a.last_refusal is not None:
        r = a.last_refusal
        out.last_refusal.CopyFrom(
            pb.AgentRefusal(
                generation=r.generation,
                reason=r.reason,
                message=r.message,
                at=timestamp(r.at),
            )
        )
    return out


_Msg = TypeVar("_Msg", pb.Slice, pb.Event, pb.Agent)


def _byte_size(message: _Msg) -> int:
    return message.ByteSize()


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if is_dataclass(value) and not isinstance(value, type):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")}
    to_dict = getattr(value, "to_dict", None) or getattr(value, "to_wire", None)
    if callable(to_dict):
        return to_dict()
    return str(value)


def json_text(data: dict[str, object]) -> str:
    """A report as JSON text (dates, enums and dataclasses made JSON first), keys kept in order.

    >>> from datetime import UTC
    >>> json_text({"at": datetime(2026, 1, 1, tzinfo=UTC), "n": 3, "route": ("a", "b")})
    '{"at":"2026-01-01T00:00:00+00:00","n":3,"route":["a","b"]}'
    """
    return json.dumps(data, default=_jsonable, separators=(",", ":"))


# ---- the servicer ---------------------------------------------------------------------------


class InFlight:
    """Counts calls inside the servicer, so stopping can wait until none touches the service."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def __enter__(self) -> None:
        with self._idle:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout=timeout_s)


class RequestLog:
    """The answers of the last :data:`REQUEST_IDS` write requests that carried a request id
    (and at most :data:`REQUEST_LOG_BYTES` of them and their requests, the oldest forgotten first).

    A retry (same id, same request) gets the first answer back with ``replayed`` set instead of
    doing the write again; one lock serialises requests with an id, so a retry that arrives while
    the first is still running waits for it. Kept in memory: a restarted controller does a
    retried write again (apply and cordon are idempotent by content anyway).
    """

    def __init__(self, size: int = REQUEST_IDS, max_bytes: int = REQUEST_LOG_BYTES) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._answers: OrderedDict[str, tuple[str, bytes, Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def run(self, method: str, request: Any, do: Callable[[], _Resp]) -> _Resp:
        request_id: str = request.request_id
        if not request_id:
            return do()
        if len(request_id) > MAX_REQUEST_ID:
            raise errors.InvalidSpec(f"request_id: longer than {MAX_REQUEST_ID} characters")
        body = request.SerializeToString(deterministic=True)
        with self._lock:
            seen = self._answers.get(request_id)
            if seen is not None:
                if seen[:2] != (method, body):
                    raise errors.InvalidSpec(
                        f"request_id: {request_id[:40]!r} was already used for a different request"
                    )
                self._answers.move_to_end(request_id)
                answer = type(seen[2])()
                answer.CopyFrom(seen[2])
                answer.replayed = True
                return answer  # type: ignore[no-any-return]
            out = do()
            answer_size: int = getattr(out, "ByteSize", lambda: 0)()
            cost = len(body) + answer_size
            self._answers[request_id] = (method, body, out, cost)
            self._bytes += cost
            while len(self._answers) > self._size or (
                self._bytes > self._max_bytes and len(self._answers) > 1
            ):
                self._bytes -= self._answers.popitem(last=False)[1][3]
            return out


class OperatorServicer(pb_grpc.OperatorServiceServicer):
    def __init__(
        self,
        service: ports.OperatorPort,
        authenticator: auth_mod.Authenticator,
        stopping: threading.Event,
        max_watches: int,
        poll_s: float = 1.0,
        slice_writes_refused: str | None = None,
        agents: AgentDirectory | None = None,
    ) -> None:
        self._service = service
        self._agents = agents
        # Set where intents come from elsewhere (NetworkSlice objects): a write here would be
        # overwritten by the next sync, so it is refused rather than silently lost.
        self._slice_writes_refused = slice_writes_refused
        self._auth = authenticator
        self._stopping = stopping
        self._poll_s = poll_s
        self._watch_slots = threading.BoundedSemaphore(max_watches)
        self._max_watches = max_watches
        self.in_flight = InFlight()
        self.requests = RequestLog()

    def _refuse_slice_writes(self) -> None:
        if self._slice_writes_refused is not None:
            raise _Refused(grpc.StatusCode.FAILED_PRECONDITION, self._slice_writes_refused)

    def _actor(self, context: grpc.ServicerContext) -> str:
        # The interceptor already refused unknown tokens; this only names who is calling.
        name = self._auth.identify(auth_mod.bearer_token(context.invocation_metadata()))
        if name is None:  # pragma: no cover - the interceptor guarantees a known token
            raise errors.InvalidSpec("authorization: unknown bearer token")
        return self._auth.actor(name)

    @_unary
    def ApplySlices(
        self, request: pb.ApplySlicesRequest, context: grpc.ServicerContext
    ) -> pb.ApplySlicesResponse:
        if not request.dry_run:
            self._refuse_slice_writes()
        actor = self._actor(context)

        def do() -> pb.ApplySlicesResponse:
            documents = documents_of(request.manifests)
            if request.dry_run:
                results = self._service.apply(documents, actor, dry_run=True)
            else:
                results = self._service.apply(documents, actor)
            return pb.ApplySlicesResponse(
                results=[apply_result_message(r) for r in results], dry_run=request.dry_run
            )

        if request.dry_run:
            return do()  # nothing to repeat or to protect from a repeat
        return self.requests.run("ApplySlices", request, do)

    @_unary
    def GetSlice(self, request: pb.GetSliceRequest, context: grpc.ServicerContext) -> pb.Slice:
        return slice_message(self._service.get(_slice_name(request.name)))

    @_unary
    def ListSlices(
        self, request: pb.ListSlicesRequest, context: grpc.ServicerContext
    ) -> pb.ListSlicesResponse:
        size = SLICE_PAGES.size(request.page_size)
        after = str(paging.decode(request.page_token, "ListSlices", {})) if request.page_token else None
        records = sorted(self._service.list_slices(), key=lambda r: r.name)
        start = 0 if after is None else bisect.bisect_right([r.name for r in records], after)
        page = paging.fill((slice_message(r) for r in records[start:]), size, _byte_size)
        token = paging.encode("ListSlices", {}, page.items[-1].name) if page.more else ""
        return pb.ListSlicesResponse(slices=page.items, next_page_token=token)

    @_unary
    def DeleteSlice(
        self, request: pb.DeleteSliceRequest, context: grpc.ServicerContext
    ) -> pb.DeleteSliceResponse:
        self._refuse_slice_writes()
        actor = self._actor(context)

        def do() -> pb.DeleteSliceResponse:
            self._service.delete(_slice_name(request.name), actor)
            return pb.DeleteSliceResponse()

        return self.requests.run("DeleteSlice", request, do)

    @_unary
    def ExplainSlice(
        self, request: pb.ExplainSliceRequest, context: grpc.ServicerContext
    ) -> pb.ExplainSliceResponse:
        report = self._service.explain(_slice_name(request.name))
        return pb.ExplainSliceResponse(explanation_json=json_text(report))

    @_unary
    def ListEvents(
        self, request: pb.ListEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListEventsResponse:
        if request.page_size:
            size = EVENT_PAGES.size(request.page_size)
        else:  # the older `limit`, with its own range check
            size = request.limit or EVENT_PAGE
            if not 1 <= size <= MAX_EVENT_LIMIT:
                raise errors.InvalidSpec(f"limit: {size} is out of range (1..{MAX_EVENT_LIMIT})")
        if request.after_seq < 0:
            raise errors.InvalidSpec(f"after_seq: {request.after_seq} is negative")
        slice_name = _slice_name(request.slice) if request.slice else None
        filters: dict[str, paging.Scalar] = {"after_seq": request.after_seq, "slice": request.slice}
        after = request.after_seq
        if request.page_token:
            cursor = paging.decode(request.page_token, "ListEvents", filters)
            if not isinstance(cursor, int) or cursor < after:
                raise errors.InvalidSpec("page_token: not a page token of ListEvents for this after_seq")
            after = cursor
        # One more than a page: whether it exists says if there is a next page.
        events = self._service.events(after_seq=after, limit=size + 1, slice_name=slice_name)
        page = paging.fill((event_message(e) for e in events), size, _byte_size)
        token = paging.encode("ListEvents", filters, page.items[-1].seq) if page.more else ""
        return pb.ListEventsResponse(events=page.items, next_page_token=token)

    @_streaming
    def WatchEvents(
        self, request: pb.WatchEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Event]:
        if request.after_seq < 0:
            raise errors.InvalidSpec(f"after_seq: {request.after_seq} is negative")
        slice_name = _slice_name(request.slice) if request.slice else None
        # Each watch holds a worker thread; cap them so watches cannot starve ordinary calls.
        if not self._watch_slots.acquire(blocking=False):
            raise _Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many event watches open (at most {self._max_watches}); try again later",
            )
        try:
            after = request.after_seq
            while True:  # the backlog, page by page
                page = self._service.events(after_seq=after, limit=EVENT_PAGE, slice_name=slice_name)
                for event in page:
                    after = max(after, event.seq)
                    yield event_message(event)
                if len(page) < EVENT_PAGE:
                    break
            while context.is_active() and not self._stopping.is_set():
                for event in self._service.wait_events(after, timeout_s=self._poll_s):
                    after = max(after, event.seq)
                    if slice_name is None or event.slice == slice_name:
                        yield event_message(event)
            if self._stopping.is_set():
                raise _Refused(
                    grpc.StatusCode.UNAVAILABLE, "the controller is shutting down; watch again to resume"
                )
        finally:
            self._watch_slots.release()

    @_unary
    def GetTopologyStatus(
        self, request: pb.GetTopologyStatusRequest, context: grpc.ServicerContext
    ) -> pb.TopologyStatus:
        size = TOPOLOGY_PAGES.size(request.page_size)
        status, revision = self._status_snapshot()
        start = 0
        if request.page_token:
            cursor = paging.decode(request.page_token, "GetTopologyStatus", {})
            if not isinstance(cursor, str) or not cursor.partition(":")[2].isdigit():
                raise errors.InvalidSpec("page_token: not a page token of GetTopologyStatus")
            issued, _, offset = cursor.partition(":")
            if issued != str(revision):
                raise _Refused(
                    grpc.StatusCode.ABORTED,
                    "page_token: the controller's state changed since the first page; "
                    "read the topology status again from the first page",
                )
            start = int(offset)
        return _status_page(status, revision, start, size)

    def _status_snapshot(self) -> tuple[service_mod.TopologyStatus, int]:
        """The status with the revision it belongs to (read again if a commit came between)."""
        for _ in range(5):
            before = self._service.revision
            status = self._service.topology_status()
            if self._service.revision == before:
                return status, before
        raise _Refused(grpc.StatusCode.UNAVAILABLE, "the controller's state keeps changing; try again")

    @_unary
    def DrainSite(self, request: pb.DrainSiteRequest, context: grpc.ServicerContext) -> pb.DrainSiteResponse:
        site, actor = _required(request.site, "site"), self._actor(context)

        def do() -> pb.DrainSiteResponse:
            report = self._service.drain_report(site, actor)
            return pb.DrainSiteResponse(
                moved_slices=report.moved,
                moves=[
                    pb.SliceMove(slice=m.slice, outcome=m.outcome, message=m.message) for m in report.moves
                ],
                already_drained=report.already_drained,
            )

        return self.requests.run("DrainSite", request, do)

    @_unary
    def UndrainSite(
        self, request: pb.UndrainSiteRequest, context: grpc.ServicerContext
    ) -> pb.UndrainSiteResponse:
        site, actor = _required(request.site, "site"), self._actor(context)

        def do() -> pb.UndrainSiteResponse:
            return pb.UndrainSiteResponse(moved_slices=self._service.undrain(site, actor))

        return self.requests.run("UndrainSite", request, do)

    @_unary
    def CordonSite(
        self, request: pb.CordonSiteRequest, context: grpc.ServicerContext
    ) -> pb.CordonSiteResponse:
        site, actor = _required(request.site, "site"), self._actor(context)

        def do() -> pb.CordonSiteResponse:
            changed, on_site = self._service.cordon(site, actor)
            return pb.CordonSiteResponse(changed=changed, slices_on_site=on_site)

        return self.requests.run("CordonSite", request, do)

    @_unary
    def UncordonSite(
        self, request: pb.UncordonSiteRequest, context: grpc.ServicerContext
    ) -> pb.UncordonSiteResponse:
        site, actor = _required(request.site, "site"), self._actor(context)

        def do() -> pb.UncordonSiteResponse:
            return pb.UncordonSiteResponse(changed=self._service.uncordon(site, actor))

        return self.requests.run("UncordonSite", request, do)

    @_unary
    def GetTopology(self, request: pb.GetTopologyRequest, context: grpc.ServicerContext) -> pb.TopologyFile:
        source = self._service.topology_file()
        text = json.dumps(source.to_wire(), separators=(",", ":"))
        return pb.TopologyFile(
            name=source.name,
            fingerprint=self._service.topology().fingerprint,
            content_gzip=gzip.compress(text.encode(), compresslevel=6, mtime=0),
        )

    # -- agents ---------------------------------------------------------------------------------

    def _directory(self) -> AgentDirectory:
        if self._agents is None:
            raise _Refused(grpc.StatusCode.FAILED_PRECONDITION, NO_AGENTS)
        return self._agents

    @_unary
    def ListAgents(
        self, request: pb.ListAgentsRequest, context: grpc.ServicerContext
    ) -> pb.ListAgentsResponse:
        directory = self._directory()
        size = AGENT_PAGES.size(request.page_size)
        if request.state and request.state not in AGENT_STATES:
            raise errors.InvalidSpec(
                f"state: {request.state[:40]!r} is not a session state ({', '.join(AGENT_STATES)}, or empty)"
            )
        filters: dict[str, paging.Scalar] = {"state": request.state}
        after = str(paging.decode(request.page_token, "ListAgents", filters)) if request.page_token else None
        found = sorted(directory.agents(), key=lambda a: a.site)
        if request.state:
            found = [a for a in found if a.state.value == request.state]
        start = 0 if after is None else bisect.bisect_right([a.site for a in found], after)
        page = paging.fill((agent_message(a) for a in found[start:]), size, _byte_size)
        token = paging.encode("ListAgents", filters, page.items[-1].site) if page.more else ""
        return pb.ListAgentsResponse(agents=page.items, next_page_token=token)

    @_unary
    def GetAgent(self, request: pb.GetAgentRequest, context: grpc.ServicerContext) -> pb.Agent:
        directory = self._directory()
        site = _required(request.site, "site")
        found = directory.agent(site)
        if found is None:
            raise errors.NotFound(f"site {site[:80]!r} is not in the topology")
        return agent_message(found)

    @_unary
    def WhatIf(self, request: pb.WhatIfRequest, context: grpc.ServicerContext) -> pb.WhatIfResponse:
        sites = [_required(s, f"fail_sites[{i}]") for i, s in enumerate(request.fail_sites)]
        links: list[LinkKey] = []
        for i, link in enumerate(request.fail_links):
            if not link.a or not link.b:
                raise errors.InvalidSpec(f"fail_links[{i}]: needs both a and b")
            links.append(link_key(link.a, link.b))
        if not sites and not links:
            raise errors.InvalidSpec("fail_sites, fail_links: give at least one site or link to fail")
        return pb.WhatIfResponse(report_json=json_text(self._service.what_if(sites, links)))


def _status_page(
    status: service_mod.TopologyStatus, revision: int, start: int, size: int
) -> pb.TopologyStatus:
    """Entries ``start``.. of the sequence sites, down links, link utilisation (one page)."""
    sites, down, loaded = status.sites, status.down_links, status.link_utilisation
    total = len(sites) + len(down) + len(loaded)
    if start > total:
        raise errors.InvalidSpec("page_token: not a page token of GetTopologyStatus")

    def entries() -> Iterator[pb.SiteStatus | pb.Link | pb.LinkUtilisation]:
        for i in range(start, total):
            if i < len(sites):
                yield site_status_message(sites[i])
            elif i < len(sites) + len(down):
                yield link_message(down[i - len(sites)])
            else:
                yield link_utilisation_message(loaded[i - len(sites) - len(down)])

    page = paging.fill(entries(), size, lambda m: m.ByteSize())
    out = pb.TopologyStatus(name=status.name)
    for m in page.items:
        if isinstance(m, pb.SiteStatus):
            out.sites.append(m)
        elif isinstance(m, pb.Link):
            out.down_links.append(m)
        else:
            out.link_utilisation.append(m)
    if page.more:
        out.next_page_token = paging.encode("GetTopologyStatus", {}, f"{revision}:{start + len(page.items)}")
    return out


def _load_manifest(content: str, where: str) -> list[intent.NetworkSlice]:
    """One JSON object is parsed as JSON (a program's usual form, and far faster than the YAML
    parser); anything else as a YAML stream. Both end in :func:`slices.intent.parse_slice`."""
    if content.lstrip().startswith("{"):
        try:
            data = json.loads(content)
        except json.JSONDecodeError:
            pass  # not JSON after all (YAML flow style): the YAML parser reports it precisely
        else:
            return [intent.parse_slice(data, f"{where}[doc 1]")]
    return intent.load_slices(content, where)


def documents_of(manifests: Sequence[pb.Manifest]) -> list[intent.NetworkSlice]:
    """Validate every manifest (one path: :func:`slices.intent.load_slices`); all or nothing."""
    documents: list[intent.NetworkSlice] = []
    seen: dict[str, str] = {}
    for i, manifest in enumerate(manifests):
        where = manifest.source or f"manifests[{i}]"
        loaded = _load_manifest(manifest.content, where)
        if not loaded:
            raise errors.InvalidSpec(f"{where}: no NetworkSlice documents in it")
        for doc in loaded:
            if doc.name in seen:
                raise errors.InvalidSpec(
                    f"{where}: metadata.name: slice {doc.name!r} is also defined in {seen[doc.name]}"
                )
            seen[doc.name] = where
            documents.append(doc)
    if not documents:
        raise errors.InvalidSpec("manifests: none given")
    return documents


# ---- the server -----------------------------------------------------------------------------


@dataclass
class ApiServer:
    """A started server; ``address`` is the one actually bound (port 0 becomes a real port)."""

    server: grpc.Server
    address: str
    port: int
    health: grpc_services.HealthServicer
    stopping: threading.Event
    in_flight: InFlight

    def stop(self, grace_s: float = 2.0) -> None:
        """Say NOT_SERVING, end event watches, let calls in flight finish for ``grace_s``.

        When it returns no call is still inside the service (a watch notices within its poll
        interval), so the caller may close the store.
        """
        self.stopping.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()
        if not self.in_flight.wait_idle(timeout_s=grace_s + 10):
            log.warning("operator API: calls still running after stop")

    def wait(self, timeout_s: float | None = None) -> bool:
        return self.server.wait_for_termination(timeout_s)


def bind(server: grpc.Server, listen: str, tls: auth_mod.TlsConfig | None) -> int:
    """Add a plaintext or TLS (mTLS with a client CA) port; the port bound, or Unavailable."""
    try:
        if tls is None:
            port = server.add_insecure_port(listen)
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.private_key, tls.cert_chain)],
                root_certificates=tls.client_ca,
                require_client_auth=tls.client_ca is not None,
            )
            port = server.add_secure_port(listen, credentials)
    except RuntimeError as exc:
        raise errors.Unavailable(f"cannot listen on {listen}: {exc}") from exc
    if port == 0:
        raise errors.Unavailable(f"cannot listen on {listen}: the address is in use or not available")
    return port


def serve(
    service: ports.OperatorPort,
    listen: str,
    authenticator: auth_mod.Authenticator,
    tls: auth_mod.TlsConfig | None,
    dev: bool,
    *,
    max_workers: int = 16,
    max_receive_bytes: int = MAX_RECEIVE_BYTES,
    poll_s: float = 1.0,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    slice_writes_refused: str | None = None,
    agents: AgentDirectory | None = None,
) -> ApiServer:
    """Start the operator API on ``listen`` (``HOST:PORT``; port 0 picks a free one).

    Without ``tls`` it serves only in dev mode and only on loopback (see :mod:`controller.api.auth`).
    ``interceptors`` run before authentication (metrics count refused calls too).
    ``slice_writes_refused``: apply and delete answer FAILED_PRECONDITION with this message
    (intents come from NetworkSlice objects).
    ``agents``: what ListAgents and GetAgent serve (the agent server's registry); without it
    they answer FAILED_PRECONDITION.
    """
    auth_mod.check_listen(listen, tls, dev)
    host, _ = auth_mod.split_address(listen)
    stopping = threading.Event()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="operator-api"),
        interceptors=[*interceptors, BearerAuthInterceptor(authenticator)],
        options=[
            ("grpc.max_receive_message_length", max_receive_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    servicer = OperatorServicer(
        service,
        authenticator,
        stopping,
        max_watches=max(1, max_workers // 2),
        poll_s=poll_s,
        slice_writes_refused=slice_writes_refused,
        agents=agents,
    )
    pb_grpc.add_OperatorServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health_servicer = grpc_services.add_health_and_reflection(server, (SERVICE_NAME,))
    port = bind(server, listen, tls)
    server.start()
    bound = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    log.info("operator API on %s (%s)", bound, "TLS" if tls else "plaintext, dev mode")
    return ApiServer(
        server=server,
        address=bound,
        port=port,
        health=health_servicer,
        stopping=stopping,
        in_flight=servicer.in_flight,
    )
