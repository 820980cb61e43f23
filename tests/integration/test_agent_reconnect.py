"""The reference agent survives a controller that ends the stream while the agent is writing: it
reconnects instead of dying (a write to an ended call raises InvalidStateError, not an
AioRpcError; seen when a controller shut down while the agent sent heartbeats)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

from protos.edgeslice.agent.v1 import agent_pb2
from telemetry.site import agent


@pytest.mark.asyncio
async def test_an_agent_whose_stream_ends_mid_answer_reconnects() -> None:
    streams = 0

    async def handler(
        requests: AsyncIterator[agent_pb2.AgentMessage], context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[agent_pb2.ControllerMessage]:
        nonlocal streams
        streams += 1
        await anext(aiter(requests))  # the Hello
        welcome = agent_pb2.ControllerMessage()
        welcome.welcome.site_id = "c1"
        welcome.welcome.heartbeat_interval_ms = 1
        welcome.welcome.telemetry_interval_ms = 1
        yield welcome
        config = agent_pb2.ControllerMessage()
        config.config.site_id = "c1"
        config.config.generation = streams
        yield config
        await asyncio.sleep(0.02)
        # Ends the stream while the agent's heartbeats and acks are being written.

    server = grpc.aio.server()
    method = grpc.stream_stream_rpc_method_handler(
        handler,
        request_deserializer=agent_pb2.AgentMessage.FromString,
        response_serializer=agent_pb2.ControllerMessage.SerializeToString,
    )
    service, name = agent.METHOD.strip("/").split("/")
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {name: method}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    a = agent.SiteAgent(
        "c1",
        lambda: agent.open_channel(f"127.0.0.1:{port}", None),
        agent.MemoryBackend(),
        agent.IdleKpiSource(),
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
    )
    run = asyncio.ensure_future(a.run())
    try:
        for _ in range(1500):
            if a.stats.configs_applied >= 60 or run.done():
                break
            await asyncio.sleep(0.01)
        assert not run.done(), f"the agent stopped: {run.exception()!r}"
        assert a.stats.configs_applied >= 60 and streams >= 60
    finally:
        a.stop()
        await asyncio.wait_for(run, 5)
        await server.stop(None)
