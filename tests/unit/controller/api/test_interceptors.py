"""controller.api.interceptors: every handler shape, sync and asyncio, over a real loopback server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

from controller.api.interceptors import CallInterceptor, Refusal

SHAPES = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class Recorder(CallInterceptor[str]):
    """Records (method, code) of every call it sees end."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []
        self.begun: list[str] = []

    def begin(self, details: grpc.HandlerCallDetails) -> str:
        self.begun.append(details.method)
        return details.method

    def end(self, details: grpc.HandlerCallDetails, begun: str, code: str) -> None:
        assert begun == details.method
        self.ended.append((begun, code))


class AioRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.cancelled = asyncio.Event()

    def end(self, details: grpc.HandlerCallDetails, begun: str, code: str) -> None:
        super().end(details, begun, code)
        if code == "CANCELLED":
            self.cancelled.set()


class Gate(CallInterceptor[None]):
    """Refuses the methods named Secret*."""

    def refusal(self, details: grpc.HandlerCallDetails) -> Refusal | None:
        if details.method.rsplit("/", 1)[-1].startswith("Secret"):
            return grpc.StatusCode.PERMISSION_DENIED, "not for you"
        return None


def _sync_handlers() -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    def uu(request: bytes, context: grpc.ServicerContext) -> bytes:
        if request == b"missing":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        if request == b"boom":
            raise RuntimeError("boom")
        return request + b"!"

    def us(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield request
        yield request

    def su(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return b"+".join(requests)

    def ss(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for r in requests:
            yield r + b"."

    made: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "unary_unary": grpc.unary_unary_rpc_method_handler(uu),
        "unary_stream": grpc.unary_stream_rpc_method_handler(us),
        "stream_unary": grpc.stream_unary_rpc_method_handler(su),
        "stream_stream": grpc.stream_stream_rpc_method_handler(ss),
    }
    return {**made, **{f"Secret{k}": v for k, v in made.items()}}


def _aio_handlers() -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    async def uu(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        if request == b"missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        if request == b"boom":
            raise RuntimeError("boom")
        return request + b"!"

    async def us(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
        yield request
        if request == b"forever":
            await asyncio.Event().wait()
        yield request

    async def su(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        return b"+".join([r async for r in requests])

    async def ss(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        async for r in requests:
            yield r + b"."

    async def ss_written(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        # The read/write style of stream the agent API uses: a coroutine, not an async generator.
        while True:
            r = await context.read()
            if r is grpc.aio.EOF:
                return
            await context.write(r + b".")

    made: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "unary_unary": grpc.unary_unary_rpc_method_handler(uu),
        "unary_stream": grpc.unary_stream_rpc_method_handler(us),
        "stream_unary": grpc.stream_unary_rpc_method_handler(su),
        "stream_stream": grpc.stream_stream_rpc_method_handler(ss),
        "written_stream": grpc.stream_stream_rpc_method_handler(ss_written),
    }
    return {**made, **{f"Secret{k}": v for k, v in made.items()}}


def _call(channel: grpc.Channel, name: str, shape: str) -> list[bytes]:
    path = f"/test.Echo/{name}"
    # No serializers: requests and responses are the bytes on the wire.
    if shape == "unary_unary":
        uu: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
        return [uu(b"a", timeout=10)]
    if shape == "unary_stream":
        us: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
        return list(us(b"a", timeout=10))
    if shape == "stream_unary":
        su: grpc.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(path)
        return [su(iter([b"a", b"b"]), timeout=10)]
    ss: grpc.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(path)
    return list(ss(iter([b"a", b"b"]), timeout=10))


EXPECTED = {
    "unary_unary": [b"a!"],
    "unary_stream": [b"a", b"a"],
    "stream_unary": [b"a+b"],
    "stream_stream": [b"a.", b"b."],
    "written_stream": [b"a.", b"b."],
}


def test_sync_server_every_shape() -> None:
    recorder, gate = Recorder(), Gate()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[recorder, gate])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", _sync_handlers()),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            for shape in SHAPES:
                assert _call(channel, shape, shape) == EXPECTED[shape]
                with pytest.raises(grpc.RpcError) as err:
                    _call(channel, f"Secret{shape}", shape)
                assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
                assert err.value.details() == "not for you"
            unary: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/test.Echo/unary_unary")
            for request, code in (
                (b"missing", grpc.StatusCode.NOT_FOUND),
                (b"boom", grpc.StatusCode.UNKNOWN),
            ):
                with pytest.raises(grpc.RpcError) as err:
                    unary(request, timeout=10)
                assert err.value.code() == code
            nothing: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/test.Echo/Nothing")
            with pytest.raises(grpc.RpcError) as err:
                nothing(b"", timeout=10)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(None)
    calls = [(f"/test.Echo/{s}", "OK") for s in SHAPES]
    refused = [(f"/test.Echo/Secret{s}", "PERMISSION_DENIED") for s in SHAPES]
    assert sorted(recorder.ended) == sorted(
        [*calls, *refused, ("/test.Echo/unary_unary", "NOT_FOUND"), ("/test.Echo/unary_unary", "UNKNOWN")]
    )
    assert "/test.Echo/Nothing" not in recorder.begun


def test_a_refusing_only_interceptor_returns_other_handlers_as_they_are() -> None:
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
        lambda request, context: request
    )
    details: Any = type("Details", (), {"method": "/test.Echo/unary_unary", "invocation_metadata": ()})()
    assert Gate().intercept_service(lambda _d: handler, details) is handler
    assert Gate().intercept_service(lambda _d: None, details) is None


async def _aio_round(port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        for shape in (*SHAPES, "written_stream"):
            for name in (shape, f"Secret{shape}"):
                path = f"/test.Echo/{name}"
                uu: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
                us: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
                su: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(path)
                ss: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(path)
                if name.startswith("Secret") and not shape.startswith("unary"):
                    # A refused client-streaming call is checked without sending requests:
                    # grpc.aio reports INTERNAL instead of the server's status when a write
                    # loses the race with it (grpc/grpc#36066).
                    refused: grpc.aio.Call = (su if shape == "stream_unary" else ss)(timeout=10)
                    assert await refused.code() == grpc.StatusCode.PERMISSION_DENIED
                    assert await refused.details() == "not for you"
                    continue
                try:
                    if shape == "unary_unary":
                        got = [await uu(b"a", timeout=10)]
                    elif shape == "unary_stream":
                        got = [r async for r in us(b"a", timeout=10)]
                    elif shape == "stream_unary":
                        got = [await su(iter([b"a", b"b"]), timeout=10)]
                    else:
                        got = [r async for r in ss(iter([b"a", b"b"]), timeout=10)]
                except grpc.aio.AioRpcError as exc:
                    assert name.startswith("Secret"), exc
                    assert exc.code() == grpc.StatusCode.PERMISSION_DENIED
                    assert exc.details() == "not for you"
                else:
                    assert not name.startswith("Secret")
                    assert got == EXPECTED[shape]
        unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/test.Echo/unary_unary")
        for request, code in ((b"missing", grpc.StatusCode.NOT_FOUND), (b"boom", grpc.StatusCode.UNKNOWN)):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await unary(request, timeout=10)
            assert err.value.code() == code
        # A stream the client walks away from ends CANCELLED.
        stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
            "/test.Echo/unary_stream"
        )
        call = stream(b"forever", timeout=10)
        await call.read()
        call.cancel()


def test_aio_server_every_shape() -> None:
    recorder, gate = AioRecorder(), Gate()

    async def main() -> None:
        server = grpc.aio.server(interceptors=[recorder.aio(), gate.aio()])
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", _aio_handlers()),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            await _aio_round(port)
            # The cancelled stream's end reaches the server a moment after the client let go.
            await asyncio.wait_for(recorder.cancelled.wait(), 10)
        finally:
            await server.stop(None)

    asyncio.run(main())
    shapes = (*SHAPES, "written_stream")
    ok = [(f"/test.Echo/{s}", "OK") for s in shapes]
    refused = [(f"/test.Echo/Secret{s}", "PERMISSION_DENIED") for s in shapes]
    errors = [("/test.Echo/unary_unary", "NOT_FOUND"), ("/test.Echo/unary_unary", "UNKNOWN")]
    assert sorted(recorder.ended) == sorted(
        [*ok, *refused, *errors, ("/test.Echo/unary_stream", "CANCELLED")]
    )
