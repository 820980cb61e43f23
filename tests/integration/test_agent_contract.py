"""The agent contract end to end, over real loopback gRPC with the real controller service and a
real SQLite store: Realised follows the agents' acks, refusals are visible, generations survive
restarts, two agents for one site do not flap, and SLAMet follows the evidence."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import grpc
import pytest

from controller.runtime.clock import RealClock
from controller.runtime.plan_recorder import PlanRecorder
from controller.runtime.service import ControllerService
from controller.runtime.store import Store
from protos.edgeslice.agent.v1 import agent_pb2
from slices.status import ConditionStatus, ConditionType, get_condition
from telemetry import agentlink as agent_service
from telemetry.agentlink import lease, sla
from telemetry.site import agent
from tests.support.cityfixtures import small_city
from tests.support.runtime_helpers import doc
from tests.support.waiting import eventually

SETTINGS = agent_service.AgentSettings(
    lease_s=1.0, heartbeat_interval_s=0.2, telemetry_interval_s=0.2, resend_after_s=0.3, sla_window_s=60.0
)


class Agents:
    """Reference agents on an event loop of their own, dialling ``target()`` (read at each dial,
    so a test can restart the controller on another port)."""

    def __init__(self, target: Callable[[], str]) -> None:
        self.target = target
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.agents: list[agent.SiteAgent] = []
        self.runs: list[Future[Any]] = []

    def start(
        self, site: str, backend: agent.MemoryBackend | None = None, kpis: agent.KpiSource | None = None
    ) -> agent.SiteAgent:
        async def make() -> agent.SiteAgent:
            a = agent.SiteAgent(
                site,
                lambda: agent.open_channel(self.target(), None),
                backend or agent.MemoryBackend(),
                kpis or agent.IdleKpiSource(),
                backoff_initial_s=0.05,
                backoff_max_s=0.3,
            )
            return a

        a = asyncio.run_coroutine_threadsafe(make(), self.loop).result(5)
        self.agents.append(a)
        self.runs.append(asyncio.run_coroutine_threadsafe(a.run(), self.loop))
        return a

    def call(self, fn: Callable[[], None]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def close(self) -> None:
        for a in self.agents:
            self.loop.call_soon_threadsafe(a.stop)
        for run in self.runs:
            # A refused agent ends with its refusal: not this helper's business.
            with contextlib.suppress(Exception):
                run.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def real_service(folder: Path) -> tuple[ControllerService, Store]:
    """The real service on a real clock (agent progress is stored on the monotonic clock's time)."""
    store = Store.open(folder / "state.db")
    return ControllerService(
        small_city(), store, [PlanRecorder(folder / "plans", small_city())], RealClock()
    ), store


@contextlib.contextmanager
def serving(
    service: ControllerService, sla: bool = True
) -> Iterator[tuple[agent_service.AgentServer, Agents]]:
    """The service's agent server on a loopback port, and reference agents dialling it."""
    server = agent_service.serve_agents(service, "127.0.0.1:0", dev=True, settings=SETTINGS, sla=sla)
    agents = Agents(lambda: f"127.0.0.1:{server.port}")
    try:
        yield server, agents
    finally:
        agents.close()
        server.stop()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ControllerService]:
    svc, store = real_service(tmp_path)
    svc.apply([doc("cars", "vehicle", ["c1"])], "test")
    yield svc
    store.close()


def _sites_of(service: ControllerService, name: str) -> list[str]:
    p = service.get(name).placement
    assert p is not None
    return sorted({n for a in p.assignments for n in a.nodes} | set(p.edge_sites))


def _realised(service: ControllerService, name: str) -> tuple[str, str, str]:
    c = get_condition(service.get(name).conditions, ConditionType.REALISED)
    assert c is not None
    return c.status.value, c.reason, c.message


def _ready(service: ControllerService, name: str) -> str:
    c = get_condition(service.get(name).conditions, ConditionType.READY)
    assert c is not None
    return c.status.value


def test_no_agent_means_not_realised_and_every_ack_is_needed(service: ControllerService) -> None:
    # Without an agent server nothing is pushed, and the condition says so.
    status, _, message = _realised(service, "cars")
    assert status == "True" and "no agent server runs" in message
    with serving(service) as (_, agents):
        sites = _sites_of(service, "cars")  # c1, a1, e1
        assert _realised(service, "cars")[:2] == ("False", "AwaitingAcks")
        assert _ready(service, "cars") == "False" and service.get("cars").state == "Admitted"
        for site in sites[:-1]:
            agents.start(site)
        last = sites[-1]
        eventually(
            "all but one acked",
            lambda: f"at least {len(sites) - 1} of {len(sites)} sites acked" in _realised(service, "cars")[2],
        )
        status, reason, message = _realised(service, "cars")
        assert (status, reason) == ("False", "AwaitingAcks") and f"waiting for {last}" in message
        agents.start(last)
        eventually("realised once every site acked", lambda: _realised(service, "cars")[0] == "True")
        assert f"all {len(sites)} sites acked" in _realised(service, "cars")[2]
        assert _ready(service, "cars") == "True" and service.get("cars").state == "Ready"


def test_a_refused_config_is_visible_and_resent_with_backoff(service: ControllerService) -> None:
    with serving(service) as (server, agents):
        sites = _sites_of(service, "cars")
        edge = next(s for s in sites if s.startswith("e"))
        refusing = agent.MemoryBackend()
        refusing.refuse = agent.ApplyResult(False, "Unsupported", "no GPU for workload cars-app")
        for site in sites:
            agents.start(site, refusing if site == edge else None)
        eventually("the refusal shows", lambda: _realised(service, "cars")[1] == "ConfigRefused")
        _, _, message = _realised(service, "cars")
        assert f"site {edge} refused config generation" in message and "Unsupported: no GPU" in message
        info = server.registry.agent(edge)
        assert info is not None and info.last_refusal is not None
        assert (info.last_refusal.reason, info.last_refusal.message) == (
            "Unsupported",
            "no GPU for workload cars-app",
        )
        assert server.registry.refusal_counts()["Unsupported"] >= 1
        eventually(
            "an event names the refusal",
            lambda: any(
                e.action == "config-refused" and e.slice == "cars" and e.site == edge
                for e in service.events()
            ),
        )
        # Resent with a doubling backoff: 0.3, 0.6, 1.2 s ... not every 0.3 s.
        started = time.monotonic()
        eventually("three refusals", lambda: refusing.refuse is not None and _refusals(server, edge) >= 3)
        assert time.monotonic() - started >= 0.3 + 0.6 - 0.2  # a later refusal waited for the doubled step
        assert len([e for e in service.events() if e.action == "config-refused"]) == 1  # one per generation
        # Fixed: the next resend is acked and the slice is realised.
        refusing.refuse = None
        eventually("realised once acked", lambda: _realised(service, "cars")[0] == "True", timeout_s=20)
        info = server.registry.agent(edge)
        assert info is not None and info.last_refusal is None


def _refusals(server: agent_service.AgentServer, site: str) -> int:
    return sum(server.registry.refusal_counts().values())


def test_generations_survive_restarts_and_never_go_back(tmp_path: Path) -> None:
    """Controller 1 pushes generation G to c1 (the cell); controller 2 (same state, restarted) keeps G and
    does not resend it; controller 3 (another state: another epoch, generations from 1) numbers
    its config above G because the agent's Hello says it applied G."""
    port: list[int] = [0]
    agents = Agents(lambda: f"127.0.0.1:{port[0]}")

    def serve(state: Path) -> tuple[ControllerService, Store, agent_service.AgentServer]:
        svc, store = real_service(state)
        if not svc.list_slices():
            svc.apply([doc("cars", "vehicle", ["c1"])], "test")
        listen = f"127.0.0.1:{port[0]}" if port[0] else "127.0.0.1:0"
        srv = agent_service.serve_agents(svc, listen, dev=True, settings=SETTINGS, sla=False)
        port[0] = srv.port
        return svc, store, srv

    (tmp_path / "one").mkdir()
    (tmp_path / "other").mkdir()
    svc, store, srv = serve(tmp_path / "one")
    try:
        c1 = agents.start("c1")
        eventually("c1 acked", lambda: srv.registry.status("c1").acked_generation >= 1)
        generation, epoch, applied = c1.applied_generation, srv.registry.epoch, c1.stats.configs_applied
        eventually("generations stored", lambda: store.site_generations().get("c1", (0, ""))[0] == generation)
        srv.stop()
        store.close()
        # The same state, restarted: same epoch, same generation, nothing resent.
        svc, store, srv = serve(tmp_path / "one")
        assert srv.registry.epoch == epoch and srv.registry.desired("c1")[1] == generation  # type: ignore[index]
        eventually("c1 back", lambda: srv.registry.status("c1").connected)
        messages = srv.registry.status("c1").messages
        eventually(
            "a few messages on the new stream", lambda: srv.registry.status("c1").messages >= messages + 2
        )
        assert (
            c1.stats.configs_applied == applied and srv.registry.status("c1").acked_generation == generation
        )
        # A change of content: a higher generation.
        svc.apply([doc("bus", "vehicle", ["c1"])], "test")
        eventually("c1 applied the change", lambda: c1.applied_generation > generation)
        generation = c1.applied_generation
        srv.stop()
        store.close()
        # Another state: another epoch; its first generation for c1 is above what c1 applied.
        svc, store, srv = serve(tmp_path / "other")
        assert srv.registry.epoch != epoch
        try:
            eventually(
                "c1 applied the new controller's config", lambda: c1.applied_epoch == srv.registry.epoch
            )
        except AssertionError as exc:
            run = agents.runs[0]
            ended = run.exception(0) if run.done() else "still running"
            raise AssertionError(
                f"{exc}; agent {c1.stats}, run: {ended!r}, registry: {srv.registry.status('c1')}"
            ) from exc
        assert c1.applied_generation > generation
    finally:
        agents.close()
        srv.stop()
        store.close()


def test_two_agents_for_one_site_do_not_flap(service: ControllerService) -> None:
    with serving(service, sla=False) as (server, agents):
        first = agents.start("e1")
        eventually("the first holds e1", lambda: server.registry.status("e1").connected)
        second = agents.start("e1")
        eventually("the second was refused three times", lambda: second.stats.attempts >= 3, timeout_s=20)
        assert second.stats.connects == 0 and second.stats.last_code == grpc.StatusCode.ALREADY_EXISTS
        assert first.stats.connects == 1 and first.stats.attempts == 1  # never replaced
        info = server.registry.agent("e1")
        assert info is not None and info.instance_id == first.instance_id
        # The incumbent dies: once its lease runs out the other instance takes the site.
        agents.call(first.stop)
        eventually("the second takes over", lambda: second.stats.connects == 1, timeout_s=20)
        info = server.registry.agent("e1")
        assert info is not None and info.instance_id == second.instance_id


def test_a_silent_agent_is_not_connected_and_its_stream_ends(service: ControllerService) -> None:
    with serving(service, sla=False) as (server, agents):
        e1 = agents.start("e1")
        eventually("connected", lambda: server.registry.status("e1").connected)
        e1.paused = True  # frozen: its stream stays open, it sends nothing
        eventually("not connected once the lease ran out", lambda: not server.registry.status("e1").connected)
        columns = server.registry.session_columns()
        assert not columns.connected[columns.sites.index("e1")]
        eventually("the stream was ended", lambda: e1.stats.last_code == grpc.StatusCode.UNAVAILABLE)
        assert "lease expired" in e1.stats.last_error
        assert any(e.action == "site-down" and e.site == "e1" for e in service.events())
        e1.paused = False  # it reconnects with a Hello and the site is up again
        eventually("back", lambda: server.registry.status("e1").connected and server.registry.status("e1").up)


def test_sla_is_judged_on_edge_kpis_and_unknown_without_any(service: ControllerService) -> None:
    registry = agent_service.AgentRegistry(service, SETTINGS)
    service.require_agents("all")
    registry.refresh(force=True)
    monitor = lease.LeaseMonitor(registry, service)
    evaluator = sla.SlaEvaluator(registry, service, window_s=60.0, sustain_windows=99)
    evaluator.evaluate_once()
    c = get_condition(service.get("cars").conditions, ConditionType.SLA_MET)
    assert c is not None and (c.status, c.reason) == (ConditionStatus.UNKNOWN, "NoTelemetry")

    c1 = registry.open("c1", "t", lambda: None, "i1")
    e1 = registry.open("e1", "t", lambda: None, "i2")
    good = agent_pb2.SliceKpi(slice="cars", latency_p99_ms=2.0, dl_demand_mbps=10, dl_throughput_mbps=10)
    registry.record_telemetry(c1, agent_pb2.TelemetryBatch(slices=[good]))
    evaluator.evaluate_once()
    c = get_condition(service.get("cars").conditions, ConditionType.SLA_MET)
    assert c is not None and (c.status, c.reason) == (ConditionStatus.UNKNOWN, "PartialTelemetry")
    assert "e1" in c.message
    bad = agent_pb2.SliceKpi(slice="cars", latency_p99_ms=900.0, packet_loss=0.5)
    registry.record_telemetry(e1, agent_pb2.TelemetryBatch(slices=[bad]))
    evaluator.evaluate_once()
    c = get_condition(service.get("cars").conditions, ConditionType.SLA_MET)
    assert c is not None and (c.status, c.reason) == (ConditionStatus.FALSE, "LatencyExceeded")
    assert "processing latency p99 at site e1 is 900 ms" in c.message and "1 more violations" in c.message
    assert service.get("cars").state == "Degraded"
    monitor.tick()


class CrowdedCells(agent.IdleKpiSource):
    """Idle KPIs, but every cell reports more devices than any vehicle slice allows."""

    def sample(self, site: str, config: agent_pb2.SiteConfig | None) -> agent_pb2.TelemetryBatch:
        batch = super().sample(site, config)
        for k in batch.slices:
            if config is not None and any(s.name == k.slice and s.HasField("radio") for s in config.slices):
                k.active_devices = 9000
        return batch


def test_too_many_devices_over_real_grpc_sets_the_condition_and_moves_nothing(
    service: ControllerService,
) -> None:
    fast_sla = dataclasses.replace(SETTINGS, sla_window_s=0.3, sla_sustain_windows=1)
    server = agent_service.serve_agents(service, "127.0.0.1:0", dev=True, settings=fast_sla)
    agents = Agents(lambda: f"127.0.0.1:{server.port}")
    try:
        placement = service.get("cars").placement
        for site in _sites_of(service, "cars"):
            agents.start(site, kpis=CrowdedCells())
        eventually(
            "SLAMet=False TooManyDevices",
            lambda: (_sla(service, "cars") or ("", ""))[:2] == ("False", "TooManyDevices"),
        )
        passes = server.sla_monitor.passes if server.sla_monitor is not None else 0
        eventually(
            "several more SLA windows judged it",
            lambda: server.sla_monitor is not None and server.sla_monitor.passes >= passes + 5,
        )
        assert service.get("cars").placement == placement  # a move cannot fix a device count
        assert not [e for e in service.events() if e.action == "heal" and e.slice == "cars"]
        assert _sla(service, "cars")[:2] == ("False", "TooManyDevices")  # type: ignore[index]
    finally:
        agents.close()
        server.stop()


def _sla(service: ControllerService, name: str) -> tuple[str, str, str] | None:
    c = get_condition(service.get(name).conditions, ConditionType.SLA_MET)
    return (c.status.value, c.reason, c.message) if c is not None else None
