"""One gRPC server interceptor base for every handler shape, on sync and asyncio servers.

gRPC hands an interceptor a method handler of one of four shapes (unary or streaming request,
unary or streaming response); wrapping one means building a handler of the same shape around
its behaviour, and on ``grpc.aio`` telling async generators from coroutines. :class:`CallInterceptor`
does that once. A subclass writes only what it does around a call:

* :meth:`~CallInterceptor.refusal`: checked when a call arrives; a ``(code, details)`` answers
  the call with that status instead of running its handler (authentication, a standby).
* :meth:`~CallInterceptor.begin` and :meth:`~CallInterceptor.end`: around the handler's run
  (streams: until the stream ends); ``end`` gets what ``begin`` returned and the status name the
  call ends with (metrics).

The same instance serves a ``grpc.server``; :meth:`~CallInterceptor.aio` gives its twin for
``grpc.aio.server`` (which accepts only ``grpc.aio.ServerInterceptor`` instances).

The ``grpc-interceptor`` package was not used: its ``intercept`` returns a streaming response's
iterator before the stream runs, so each interceptor that acts when a call ends (metrics) would
wrap streams again itself, and its sync and asyncio bases are separate classes, so each
interceptor would be written twice.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

import grpc
import grpc.aio

T = TypeVar("T")
if TYPE_CHECKING:  # generic only in the typing stubs
    Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
Refusal: TypeAlias = tuple[grpc.StatusCode, str]

_SHAPES = (
    ("unary_unary", grpc.unary_unary_rpc_method_handler),
    ("unary_stream", grpc.unary_stream_rpc_method_handler),
    ("stream_unary", grpc.stream_unary_rpc_method_handler),
    ("stream_stream", grpc.stream_stream_rpc_method_handler),
)


class CallInterceptor(grpc.ServerInterceptor, Generic[T]):
    """Base of the server interceptors: override :meth:`refusal`, or :meth:`begin` and :meth:`end`.

    Calls of unknown methods (no handler) pass untouched. When a subclass overrides neither
    :meth:`begin` nor :meth:`end`, handlers it does not refuse are returned as they are.
    """

    def refusal(self, details: grpc.HandlerCallDetails) -> Refusal | None:
        """The status to answer the call with instead of running it; None runs it."""
        return None

    def begin(self, details: grpc.HandlerCallDetails) -> T:
        """Called as the handler starts; the value is passed to :meth:`end`."""
        return None  # type: ignore[return-value]

    def end(self, details: grpc.HandlerCallDetails, begun: T, code: str) -> None:
        """Called once the handler returned, raised or its stream ended; ``code`` is the status
        name the call ends with (``OK``, ``UNAUTHENTICATED``, ``CANCELLED``, ``UNKNOWN`` for an
        exception the handler did not turn into a status, ...)."""

    @property
    def _observes(self) -> bool:
        cls = type(self)
        return cls.begin is not CallInterceptor.begin or cls.end is not CallInterceptor.end

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        return self._intercept(continuation(handler_call_details), handler_call_details, aio=False)

    def aio(self) -> grpc.aio.ServerInterceptor:
        """This interceptor for ``grpc.aio.server(interceptors=[...])``."""
        return _Aio(self)

    def _intercept(
        self, handler: Handler | None, details: grpc.HandlerCallDetails, aio: bool
    ) -> Handler | None:
        if handler is None:
            return None
        refused = self.refusal(details)
        if refused is not None:
            return _rebuild(handler, lambda _behaviour, _streams: _refusing(*refused, aio=aio))
        if not self._observes:
            return handler
        if aio:
            return _rebuild(handler, lambda behaviour, _streams: self._wrap_aio(behaviour, details))
        return _rebuild(handler, lambda behaviour, streams: self._wrap_sync(behaviour, streams, details))

    def _wrap_sync(
        self, behaviour: Callable[..., Any], streams: bool, details: grpc.HandlerCallDetails
    ) -> Callable[..., Any]:
        if streams:

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                begun = self.begin(details)
                failed = True
                try:
                    yield from behaviour(request, context)
                    failed = False
                finally:
                    self.end(details, begun, code_of(context, failed))

            return stream

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            begun = self.begin(details)
            failed = True
            try:
                response = behaviour(request, context)
                failed = False
                return response
            finally:
                self.end(details, begun, code_of(context, failed))

        return unary

    def _wrap_aio(
        self, behaviour: Callable[..., Any], details: grpc.HandlerCallDetails
    ) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behaviour):

            async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                begun = self.begin(details)
                outcome: str | None = ""
                try:
                    async for item in behaviour(request, context):
                        yield item
                    outcome = None
                except asyncio.CancelledError:
                    outcome = "CANCELLED"
                    raise
                finally:
                    self.end(details, begun, _aio_code(context, outcome))

            return stream

        # A coroutine: a unary response, or a stream written with context.write (the agent API).
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            begun = self.begin(details)
            outcome: str | None = ""
            try:
                result = await behaviour(request, context)
                outcome = None
                return result
            except asyncio.CancelledError:
                outcome = "CANCELLED"
                raise
            finally:
                self.end(details, begun, _aio_code(context, outcome))

        return call


class _Aio(grpc.aio.ServerInterceptor):
    """A :class:`CallInterceptor` on a ``grpc.aio`` server."""

    def __init__(self, hooks: CallInterceptor[Any]) -> None:
        self._hooks = hooks

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        return self._hooks._intercept(handler, handler_call_details, aio=True)


def _rebuild(handler: Handler, wrap: Callable[[Callable[..., Any], bool], Callable[..., Any]]) -> Handler:
    """A handler of ``handler``'s shape whose behaviour is ``wrap(behaviour, streams_responses)``."""
    for attr, make in _SHAPES:
        behaviour = getattr(handler, attr)
        if behaviour is not None:
            made: Handler = make(
                wrap(behaviour, attr.endswith("_stream")),
                handler.request_deserializer,
                handler.response_serializer,
            )
            return made
    return handler


def _refusing(code: grpc.StatusCode, why: str, aio: bool) -> Callable[..., Any]:
    if aio:

        async def deny_aio(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            await context.abort(code, why)

        return deny_aio

    def deny(_request: Any, context: grpc.ServicerContext) -> None:
        context.abort(code, why)

    return deny


def code_of(context: grpc.ServicerContext | grpc.aio.ServicerContext[Any, Any], failed: bool) -> str:
    """The status a call ends with: what the handler set, else OK, or UNKNOWN for an exception."""
    code = getattr(context, "code", lambda: None)()  # grpcio >= 1.38; not in the typing stubs
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return "UNKNOWN" if failed else "OK"


def _aio_code(context: grpc.aio.ServicerContext[Any, Any], outcome: str | None) -> str:
    # outcome: None for a normal return, "CANCELLED" when the peer went away, "" for an error.
    return outcome if outcome else code_of(context, outcome == "")
