"""Running the agent link: :class:`AgentServer` (the gRPC server on its own asyncio loop in a
background thread) and :func:`serve_agents`, which wires the registry, the servicer, the lease
monitor and the SLA evaluator and starts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
import grpc.aio

from controller.api import grpc_services
from protos.edgeslice.agent.v1 import agent_pb2
from slices import errors
from telemetry.agentlink.lease import LeaseMonitor
from telemetry.agentlink.ports import Clock, ControllerPort
from telemetry.agentlink.registry import AgentRegistry
from telemetry.agentlink.servicer import AgentServicer
from telemetry.agentlink.settings import AgentSettings
from telemetry.agentlink.sla import SlaEvaluator, SlaMonitor


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for mutual TLS: the controller's certificate and key, and the CA that signs agents."""

    cert: str
    key: str
    ca: str

    def server_credentials(self) -> grpc.ServerCredentials:
        def read(path: str) -> bytes:
            with open(path, "rb") as fh:
                return fh.read()

        return grpc.ssl_server_credentials(
            [(read(self.key), read(self.cert))], root_certificates=read(self.ca), require_client_auth=True
        )


def server_options(settings: AgentSettings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", 16 * 1024 * 1024),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.server.max_pending_requests", settings.max_pending_streams),
        ("grpc.server.max_pending_requests_hard_limit", settings.max_pending_streams),
        ("grpc.server_max_unrequested_time_in_server", settings.max_unrequested_s),
        ("grpc.so_reuseport", 0),  # a second server on a port in use fails instead of sharing it
    ]


class AgentServer:
    """The agent gRPC server running on its own asyncio loop in a background thread."""

    def __init__(
        self,
        registry: AgentRegistry,
        listen: str,
        tls: TlsFiles | None,
        dev: bool,
        background: Iterable[_Stoppable] = (),
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        if tls is None and not dev:
            raise errors.InvalidSpec(
                "agents need mutual TLS; insecure listening is for explicit dev mode only"
            )
        if tls is None and not _is_loopback(listen):
            raise errors.InvalidSpec(f"dev mode listens on loopback only, not {listen!r}")
        self.registry = registry
        self.servicer = AgentServicer(registry, require_identity=tls is not None)
        self._listen = listen
        self._tls = tls
        self._background = list(background)
        self._interceptors = list(interceptors)
        self._loop = asyncio.new_event_loop()
        self._server: grpc.aio.Server | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.port = 0
        self.lease_monitor: LeaseMonitor | None = None
        self.sla_monitor: SlaMonitor | None = None
        self._thread = threading.Thread(target=self._run, name="agent-grpc", daemon=True)

    def start(self) -> AgentServer:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error
        for b in self._background:
            b.start()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        server = grpc.aio.server(
            options=server_options(self.registry.settings), interceptors=self._interceptors or None
        )
        server.add_generic_rpc_handlers((self.servicer.handler(),))
        # health (Check, Watch, List) and reflection v1 + v1alpha
        await grpc_services.add_health_and_reflection_aio(
            server, (agent_pb2.DESCRIPTOR.services_by_name["SiteAgent"].full_name,)
        )
        if self._tls is not None:
            self.port = server.add_secure_port(self._listen, self._tls.server_credentials())
        else:
            self.port = server.add_insecure_port(self._listen)
        await server.start()
        self._server = server

    def stop(self, grace: float = 0.5) -> None:
        for b in self._background:
            b.stop()
        if self._server is not None and self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._server.stop(grace), self._loop)
            with contextlib.suppress(Exception):
                fut.result(grace + 5)
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread.is_alive():
            self._thread.join(5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    @property
    def address(self) -> str:
        host = self._listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"


class _Stoppable(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def _is_loopback(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def serve_agents(
    service: ControllerPort,
    listen: str = "127.0.0.1:0",
    tls: TlsFiles | None = None,
    dev: bool = False,
    clock: Clock = time.monotonic,
    settings: AgentSettings | None = None,
    sla: bool = True,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> AgentServer:
    """Start the agent-facing server with its lease monitor (and SLA evaluator); returns the
    running handle (``.port``, ``.registry``, ``.stop()``). ``interceptors`` wrap every call
    (metrics, for instance)."""
    registry = AgentRegistry(service, settings, clock)
    # From now on a slice is Realised only when the agents the policy requires have acked it.
    service.require_agents(registry.settings.agent_policy)
    registry.refresh(force=True)
    monitor = LeaseMonitor(registry, service)
    background: list[_Stoppable] = [monitor]
    sla_monitor = None
    if sla:
        s = registry.settings
        evaluator = SlaEvaluator(
            registry, service, s.sla_window_s, s.sla_sustain_windows, hold_down_s=s.sla_hold_down_s
        )
        sla_monitor = SlaMonitor(evaluator)
        background.append(sla_monitor)
    server = AgentServer(registry, listen, tls, dev, background, interceptors)
    server.lease_monitor, server.sla_monitor = monitor, sla_monitor
    return server.start()
