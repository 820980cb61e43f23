"""The real controller service (SQLite store, placement, healing) with simulated agents over
loopback gRPC: config push and ack, reconnect and resume, lease expiry → healing, link cut,
SLA violation → condition and re-placement attempt in the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.cli import sim_city
from controller.core import citygen
from controller.core.topology import Topology
from controller.runtime.clock import RealClock
from controller.runtime.service import ControllerService, SliceState
from controller.runtime.store import Store
from slices.intent import load_slices
from slices.status import ConditionStatus, ConditionType, get_condition
from telemetry import agentlink as agent_service
from telemetry.site import simulator
from tests.support.waiting import eventually

SETTINGS = agent_service.AgentSettings(
    lease_s=1.0,
    heartbeat_interval_s=0.2,
    telemetry_interval_s=0.2,
    resend_after_s=0.5,
    sla_window_s=0.5,
    sla_sustain_windows=3,
)


@dataclass
class Rig:
    service: ControllerService
    server: agent_service.AgentServer
    sim: simulator.SimulatorThread
    topology: Topology

    def edge_of(self, name: str) -> tuple[str, ...]:
        p = self.service.get(name).placement
        assert p is not None
        return p.edge_sites

    def actions(self) -> list[tuple[str, str | None, str | None, str]]:
        return [(e.action, e.slice, e.site, e.message) for e in self.service.events()]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    topology = Topology.from_file(citygen.generate_city(60, seed=1))
    service = ControllerService(topology, Store.open(tmp_path / "state.db"), [], RealClock())
    docs = load_slices(
        """
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: cars}
spec: {kind: vehicle, coverage: {zones: [corridor-1]}}
---
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: meters}
spec: {kind: iot, coverage: {zones: [downtown]}}
"""
    )
    assert [r.state for r in service.apply(docs, "test")] == [SliceState.READY, SliceState.READY]
    server = agent_service.serve_agents(service, "127.0.0.1:0", dev=True, settings=SETTINGS)
    sim = simulator.SimulatorThread(
        simulator.Simulator(
            f"127.0.0.1:{server.port}",
            sim_city.from_topology(topology),
            sorted(topology.sites),
            streams_per_channel=40,
        )
    )
    try:
        sim.start()
        yield Rig(service, server, sim, topology)
    finally:
        sim.stop()
        server.stop()


def test_every_site_gets_its_config_and_acks_it(rig: Rig) -> None:
    reg = rig.server.registry
    eventually(
        "every site acks its config",
        lambda: all(s.acked_generation == s.desired_generation >= 1 for s in reg.statuses()),
    )
    cars = rig.service.get("cars").placement
    assert cars is not None
    cell = cars.assignments[0].cell
    applied = rig.sim.simulator.model.applied[cell]
    assert "cars" in [s.name for s in applied.slices] and applied.site_kind == "cell"
    assert all(s.connected and s.up and s.config_lag_s == 0.0 for s in reg.statuses())


def test_reconnecting_agent_with_the_current_generation_is_not_sent_it_again(rig: Rig) -> None:
    reg = rig.server.registry
    cars = rig.service.get("cars").placement
    assert cars is not None
    cell = cars.assignments[0].cell
    eventually(
        f"{cell} acks its config",
        lambda: reg.status(cell).acked_generation == reg.status(cell).desired_generation >= 1,
    )
    generation = reg.status(cell).acked_generation
    a = rig.sim.simulator.agents[cell]
    applied_before = a.stats.configs_applied
    rig.sim.do(a.drop)
    eventually(f"{cell} reconnects", lambda: a.stats.connects == 2 and reg.status(cell).connected)
    # Its Hello said it has the current generation of this epoch: nothing is resent. The config
    # would follow the Welcome at once, before any heartbeat of the new stream is answered.
    messages = reg.status(cell).messages
    eventually(f"two more messages from {cell}", lambda: reg.status(cell).messages >= messages + 2)
    assert a.stats.configs_applied == applied_before and a.applied_generation == generation
    assert reg.status(cell).acked_generation == generation and reg.status(cell).up
    assert not any(act == "site-down" for act, *_ in rig.actions())  # a short drop is no outage


def test_missed_lease_heals_and_the_site_is_used_again(rig: Rig) -> None:
    edge = rig.edge_of("cars")[0]
    affected = [r.name for r in rig.service.list_slices() if r.placement and edge in r.placement.edge_sites]
    rig.sim.do(lambda: rig.sim.simulator.kill(edge))
    eventually(f"the slices healed off {edge}", lambda: all(edge not in rig.edge_of(n) for n in affected))
    downs = [a for a in rig.actions() if a[0] == "site-down"]
    assert len(downs) == 1 and downs[0][2] == edge and "LeaseExpired" in downs[0][3]
    assert all(rig.service.get(n).placement is not None for n in affected)  # no slice lost
    assert not rig.server.registry.status(edge).up
    # The new serving sites got their config.
    reg = rig.server.registry
    eventually(
        "the other sites ack the healed configs",
        lambda: all(s.acked_generation == s.desired_generation for s in reg.statuses() if s.site != edge),
    )
    rig.sim.do(lambda: rig.sim.simulator.revive(edge))
    eventually(f"{edge} marked up", lambda: any(a[0] == "site-up" and a[2] == edge for a in rig.actions()))
    assert rig.service.topology().is_up(edge)


def test_link_reported_down_is_routed_around(rig: Rig) -> None:
    cars = rig.service.get("cars").placement
    assert cars is not None
    a = cars.assignments[0]
    cell, home = a.nodes[0], a.nodes[1]
    rig.sim.do(lambda: rig.sim.simulator.cut_link(cell, home))
    eventually("a link-down action", lambda: any(x[0] == "link-down" for x in rig.actions()))
    down = next(x for x in rig.actions() if x[0] == "link-down")
    assert f"{min(cell, home)}:{max(cell, home)}" in down[3] and "ReportedDown" in down[3]

    def rerouted() -> bool:
        p = rig.service.get("cars").placement
        return p is not None and all(x.nodes[:2] != (cell, home) for x in p.assignments if x.cell == cell)

    eventually("cars rerouted around the link", rerouted)
    rig.sim.do(lambda: rig.sim.simulator.restore_link(cell, home))
    eventually("a link-up action", lambda: any(x[0] == "link-up" for x in rig.actions()))


def test_sla_violation_sets_condition_and_sustained_one_tries_replacement(rig: Rig) -> None:
    eventually("cars meets its SLA", lambda: _sla(rig, "cars") == ("True", "SLAMet"))
    cars = rig.service.get("cars").placement
    assert cars is not None
    hop = cars.assignments[0].nodes[1]
    rig.sim.do(lambda: rig.sim.simulator.degrade(hop, 25.0))
    eventually("cars's SLA condition False", lambda: _sla(rig, "cars")[0] == "False")
    cond = get_condition(rig.service.get("cars").conditions, ConditionType.SLA_MET)
    assert cond is not None and cond.reason == "LatencyExceeded"
    assert "latency p99 at site cell-" in cond.message and "above the 5 ms bound" in cond.message
    eventually(
        "a heal of cars for a sustained violation",
        lambda: any(x[0] == "heal" and x[1] == "cars" and "sustained" in x[3] for x in rig.actions()),
    )
    assert any(x[0] == "sla-violation" and x[1] == "cars" for x in rig.actions())
    rig.sim.do(lambda: rig.sim.simulator.degrade(hop, 0))
    eventually("cars meets its SLA", lambda: _sla(rig, "cars") == ("True", "SLAMet"))


def _sla(rig: Rig, name: str) -> tuple[str, str]:
    c = get_condition(rig.service.get(name).conditions, ConditionType.SLA_MET)
    return (c.status.value, c.reason) if c is not None else (ConditionStatus.UNKNOWN.value, "")
