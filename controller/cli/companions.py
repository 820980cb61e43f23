"""What runs beside the controller service: from the telemetry package the agent-facing gRPC
server (leases, config push, SLA monitor) and the Prometheus metrics, and the CAMARA booking
API (controller.booking). Wiring only.

``controller`` may not import ``telemetry`` (the layer contract), so the CLI builds these and
hands them to :class:`controller.process.wiring.Controller` as an observer, operator-API interceptors
and attachments; ``slicectl controller run`` and ``slicectl demo`` share this module.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controller.process import wiring as runtime
from controller.process.endpoints import port_problem
from controller.runtime.agent_view import AgentDirectory
from controller.runtime.service import ControllerService
from slices import addresses, errors

if TYPE_CHECKING:
    from controller.booking.attach import RunningBooking
    from controller.booking.settings import BookingSettings
    from telemetry.agentlink import AgentServer, AgentSettings, TlsFiles
    from telemetry.metrics.exposition import MetricsServer
    from telemetry.metrics.observer import ControllerMetrics

DEFAULT_AGENTS_PORT = 50052


def default_agents_listen(operator_listen: str) -> str:
    """Agents on loopback port 50052, or a free port when the operator API takes one (port 0),
    so test and demo controllers never collide on a fixed port.

    >>> default_agents_listen("127.0.0.1:50051"), default_agents_listen("127.0.0.1:0")
    ('127.0.0.1:50052', '127.0.0.1:0')
    """
    _, port = addresses.split_address(operator_listen)
    return f"127.0.0.1:{DEFAULT_AGENTS_PORT if port else 0}"


@dataclass(frozen=True)
class AgentsOptions:
    listen: str
    tls: TlsFiles | None
    dev: bool  # plaintext agents allowed (on loopback only)
    settings: AgentSettings
    sla: bool = True

    def check(self) -> None:
        """Refuse what the agent server would refuse, naming the flag, before anything starts."""
        host, _ = addresses.split_address(self.listen)
        if self.tls is None and not self.dev:
            raise errors.InvalidSpec(
                "--agents-tls-cert/--agents-tls-key/--agents-client-ca: agents need mutual TLS when "
                "the operator API uses TLS (or give --no-agents)"
            )
        if self.tls is None and not addresses.is_loopback(host):
            raise errors.InvalidSpec(
                f"--agents-listen {self.listen}: without --agents-tls-* agents are served on loopback only"
            )
        s = self.settings
        if not 0 < s.heartbeat_interval_s < s.lease_s:
            raise errors.InvalidSpec(
                f"--agent-heartbeat: {s.heartbeat_interval_s:g} s must be positive and shorter than "
                f"--agent-lease {s.lease_s:g} s"
            )


class _Started:
    """An attachment's running part: closed with the controller, its address announced."""

    def __init__(self, close: Any, endpoints: Mapping[str, str]) -> None:
        self._close = close
        self._endpoints = dict(endpoints)

    @property
    def endpoints(self) -> Mapping[str, str]:
        return self._endpoints

    def close(self) -> None:
        self._close()


class _StartedAgents(_Started):
    """The agent server: also what the operator API's ListAgents and GetAgent serve."""

    def __init__(self, close: Any, endpoints: Mapping[str, str], directory: AgentDirectory) -> None:
        super().__init__(close, endpoints)
        self._directory = directory

    @property
    def agent_directory(self) -> AgentDirectory:
        return self._directory


class Companions:
    """The agent server and metrics of one controller: build it, pass :attr:`observer`,
    :meth:`interceptors` and :meth:`attachments` to the runtime; the running parts appear in
    :attr:`agent_server` and :attr:`metrics_server` once the service exists."""

    def __init__(
        self,
        agents: AgentsOptions | None,
        metrics_port: int | None,
        metrics_host: str = "127.0.0.1",
        booking: BookingSettings | None = None,
    ) -> None:
        self.agents = agents
        self.booking = booking
        self.booking_api: RunningBooking | None = None
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.metrics: ControllerMetrics | None = None
        if metrics_port is not None:
            from prometheus_client import CollectorRegistry

            from telemetry.metrics.observer import ControllerMetrics
            from telemetry.metrics.scrapes import configure_process

            # Process-wide switches (no _created samples, the collector paused during scrapes):
            # set here, where the process is composed, once.
            configure_process()
            self.metrics = ControllerMetrics(CollectorRegistry())
        self.agent_server: AgentServer | None = None
        self.metrics_server: MetricsServer | None = None

    @property
    def observer(self) -> ControllerMetrics | None:
        return self.metrics

    def interceptors(self) -> list[Any]:
        """Operator-API interceptors (the agent server gets its own asyncio one when attached)."""
        return [self.metrics.interceptor("operator")] if self.metrics is not None else []

    def attachments(self) -> list[runtime.Attachment]:
        out: list[runtime.Attachment] = []
        if self.agents is not None:
            out.append(self._attach_agents)
        if self.metrics is not None:
            out.append(self._attach_metrics)  # after the agents: it reads their registry
        if self.booking is not None:
            out.append(self._attach_booking)
        return out

    def _attach_booking(self, service: ControllerService) -> runtime.Closeable:
        from controller.booking.attach import start_booking
        from controller.runtime.clock import RealClock

        settings = self.booking
        assert settings is not None
        running = self.booking_api = start_booking(settings, service, RealClock())

        def close() -> None:
            running.close()
            self.booking_api = None

        return _Started(close, running.endpoints)

    def _attach_agents(self, service: ControllerService) -> runtime.Closeable:
        from telemetry import agentlink as agent_service

        options = self.agents
        assert options is not None
        interceptors = [self.metrics.aio_interceptor("agent")] if self.metrics is not None else []
        try:
            server = agent_service.serve_agents(
                service,
                options.listen,
                options.tls,
                options.dev,
                settings=options.settings,
                sla=options.sla,
                interceptors=interceptors,
            )
        except RuntimeError as exc:  # gRPC's "Failed to bind": taken since the check at start
            why = port_problem(options.listen) or "cannot listen"
            raise errors.Unavailable(f"--agents-listen {options.listen}: {why}") from exc
        self.agent_server = server

        def close() -> None:
            server.stop()
            self.agent_server = None

        return _StartedAgents(close, {"agents": server.address}, server.registry)

    def _attach_metrics(self, service: ControllerService) -> runtime.Closeable:
        from telemetry.metrics.agents import AgentRegistryView
        from telemetry.metrics.exposition import serve_metrics

        observer = self.metrics
        assert observer is not None and self.metrics_port is not None
        agents = AgentRegistryView(self.agent_server.registry) if self.agent_server is not None else None
        state = observer.state if observer.state is not None else observer.watch(service, agents=agents)
        try:
            server = serve_metrics(observer.registry, self.metrics_port, self.metrics_host)
        except OSError as exc:
            why = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise errors.Unavailable(f"--metrics-port {self.metrics_port}: {why}") from exc
        self.metrics_server = server
        stop_following = state.follow_changes()

        def close() -> None:
            stop_following()
            server.close()

        return _Started(close, {"metrics": server.url})
