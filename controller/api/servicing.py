"""What every part of the operator API's servicer shares: errors → status codes, the wrappers
that send the server's version and count calls in flight, the request log of retried writes,
and the checks of required fields.

Our exceptions become status codes (InvalidSpec → INVALID_ARGUMENT with the message naming the
field, NotFound → NOT_FOUND, ...) plus trailing metadata ``edgeslice-error`` naming the
exception, so :mod:`controller.api.client` can raise the same kind.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import timestamp_pb2

from controller.api import auth as auth_mod
from slices import errors, intent

log = logging.getLogger(__name__)

ERROR_KIND_KEY = "edgeslice-error"
VERSION_KEY = "edgeslice-version"  # initial metadata of every unary answer: the server's version
REQUEST_IDS = 10_000  # answered write requests remembered for retries (by request_id)
REQUEST_LOG_BYTES = 64 * 1024 * 1024  # and at most this much of their requests and answers
MAX_REQUEST_ID = 128

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


_S = TypeVar("_S", bound="ServicerBase")
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


class Refused(Exception):
    """A status of the API's own (not a domain error), e.g. too many watches."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    if isinstance(exc, Refused):
        context.abort(exc.code, exc.details)
    if isinstance(exc, errors.EdgesliceError):
        context.set_trailing_metadata(((ERROR_KIND_KEY, type(exc).__name__),))
        context.abort(status_code(exc), str(exc))
    log.error("operator API: unexpected error", exc_info=exc)
    context.abort(
        grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the controller's log"
    )


def unary(
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


def streaming(
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


def required(value: str, field: str) -> str:
    if not value:
        raise errors.InvalidSpec(f"{field}: required")
    return value


def slice_name(value: str) -> str:
    if not intent.is_dns_label(required(value, "name")):
        raise errors.InvalidSpec(f"name: {value[:80]!r} is not a slice name (lowercase DNS label)")
    return value


def timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(at)
    return out


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


class ServicerBase:
    """What the wrappers and every part of the servicer use: the calls in flight, the request
    log, and who is calling."""

    in_flight: InFlight
    requests: RequestLog
    _auth: auth_mod.Authenticator

    def _actor(self, context: grpc.ServicerContext) -> str:
        # The interceptor already refused unknown tokens; this only names who is calling.
        name = self._auth.identify(auth_mod.bearer_token(context.invocation_metadata()))
        if name is None:  # pragma: no cover - the interceptor guarantees a known token
            raise errors.InvalidSpec("authorization: unknown bearer token")
        return self._auth.actor(name)
