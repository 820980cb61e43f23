"""The load model's KPIs respond to load and faults; many simulated agents over one channel."""

from __future__ import annotations

import pytest

from controller.cli import sim_city
from protos.edgeslice.agent.v1 import agent_pb2
from slices import errors
from telemetry import agentlink as agent_service
from telemetry.site import simulator
from tests.support.cityfixtures import dual_homed_city
from tests.support.telemetry_fakes import FAST, FakeService, intent
from tests.support.waiting import eventually


def _config(site: str, route: list[str], dl_kbps: int = 50_000) -> agent_pb2.SiteConfig:
    cfg = agent_pb2.SiteConfig(site_id=site, generation=1, site_kind="cell")
    s = cfg.slices.add(name="cars", route=route, serving_edge=route[-1])
    s.qos.guaranteed_dl_kbps = dl_kbps
    s.qos.guaranteed_ul_kbps = dl_kbps // 2
    s.radio.reserved_kbps = dl_kbps * 3 // 2
    s.radio.capacity_kbps = 1_000_000
    s.links.add(peer=route[1], reserved_kbps=dl_kbps * 3 // 2, capacity_kbps=10_000_000)
    return cfg


def _model() -> tuple[simulator.LoadModel, agent_pb2.SiteConfig]:
    model = simulator.LoadModel(sim_city.from_topology(dual_homed_city()), seed=1, background=0.2)
    cfg = _config("c1", ["c1", "a1", "e1"], dl_kbps=500_000)
    model.on_applied(cfg)
    return model, cfg


def _kpi(model: simulator.LoadModel, cfg: agent_pb2.SiteConfig) -> agent_pb2.SliceKpi:
    model._dirty, model._computed_at = True, float("-inf")
    batch = model.sample("c1", cfg)
    # The model reports column-wise: record 0 of every column is the one slice's KPIs.
    c = batch.columns
    assert not batch.slices and len(c.slice) == 1
    return agent_pb2.SliceKpi(**{f.name: getattr(c, f.name)[0] for f in agent_pb2.SliceKpi.DESCRIPTOR.fields})


def test_rows_and_columns_carry_the_same_kpis() -> None:
    model, cfg = _model()
    rows = simulator.LoadModel(
        sim_city.from_topology(dual_homed_city()), seed=1, background=0.2, columnar=False
    )
    rows.on_applied(cfg)
    assert _kpi(model, cfg) == _kpi_row(rows, cfg)


def _kpi_row(model: simulator.LoadModel, cfg: agent_pb2.SiteConfig) -> agent_pb2.SliceKpi:
    model._dirty, model._computed_at = True, float("-inf")
    batch = model.sample("c1", cfg)
    assert not batch.HasField("columns") and len(batch.slices) == 1
    return batch.slices[0]


def test_kpis_are_nominal_at_moderate_load() -> None:
    model, cfg = _model()
    k = _kpi(model, cfg)
    assert k.slice == "cars" and k.packet_loss == 0.0
    assert 0.5 < k.latency_p50_ms < k.latency_p99_ms < 5.0
    assert k.dl_throughput_mbps == pytest.approx(k.dl_demand_mbps) and k.dl_demand_mbps > 0


def test_utilisation_drives_latency_and_loss() -> None:
    model, cfg = _model()
    calm = _kpi(model, cfg)
    model.set_load(5.0)  # users offer far more than the reservation: the cell saturates
    busy = _kpi(model, cfg)
    assert busy.radio_utilisation > calm.radio_utilisation
    assert busy.latency_p99_ms > 2 * calm.latency_p99_ms
    assert busy.packet_loss > calm.packet_loss
    assert busy.dl_throughput_mbps < busy.dl_demand_mbps


def test_faults_kill_cut_and_degrade() -> None:
    model, cfg = _model()
    base = _kpi(model, cfg)
    model.degraded_ms["a1"] = 10.0
    assert _kpi(model, cfg).latency_p50_ms == pytest.approx(base.latency_p50_ms + 10.0)
    model.degraded_ms.clear()
    model.cut.add(("a1", "c1"))
    cut = _kpi(model, cfg)
    assert cut.packet_loss == 1.0 and cut.dl_throughput_mbps == 0.0
    links = {ln.peer: ln.up for ln in model.sample("c1", cfg).health.links}
    assert links == {"a1": False, "a2": True}
    model.cut.clear()
    model.killed.add("e1")
    assert _kpi(model, cfg).packet_loss == 1.0


def test_fault_on_unknown_element_is_not_found() -> None:
    sim = simulator.Simulator("127.0.0.1:1", sim_city.from_topology(dual_homed_city()), ["c1"])
    with pytest.raises(errors.NotFound):
        sim.cut_link("c1", "e2")
    with pytest.raises(errors.NotFound):
        sim.degrade("nowhere", 5.0)


def test_simulated_agents_connect_over_shared_channels_and_report() -> None:
    service = FakeService()
    service.put(intent("cars"), [("c1", "a1", "e1"), ("c2", "a2", "e2")])
    server = agent_service.serve_agents(service, "127.0.0.1:0", dev=True, settings=FAST)
    sites = sorted(service.base.sites)
    sim = simulator.SimulatorThread(
        simulator.Simulator(
            f"127.0.0.1:{server.port}", sim_city.from_topology(service.base), sites, streams_per_channel=4
        )
    )
    try:
        sim.start()
        assert len(sim.simulator._channels) == 2  # six sites, four streams per channel
        reg = server.registry
        eventually(
            "every site acks generation 1", lambda: all(s.acked_generation == 1 for s in reg.statuses())
        )
        eventually(
            "KPIs from c1 and c2",
            lambda: reg.latest_kpi("cars", "c1") is not None and reg.latest_kpi("cars", "c2") is not None,
        )
        sample = reg.latest_kpi("cars", "c1")
        assert sample is not None and sample.dl_demand_mbps > 0 and sample.latency_p99_ms > 0
        sim.do(lambda: sim.simulator.kill("a1"))
        eventually("a site marked down", lambda: bool(service.calls_of("site_down")))
        assert service.calls_of("site_down")[0][1] == "a1"
    finally:
        sim.stop()
        server.stop()


def test_cli_picks_transport_sites_first_and_parses_faults() -> None:
    from controller.cli import agent_cmd

    city = dual_homed_city()
    assert agent_cmd.choose_sites(city, 3) == ["e1", "e2", "a1"]
    assert len(agent_cmd.choose_sites(city, None)) == 6
    faults = agent_cmd._parse_faults(("e1@5",), ("c1:a1@2",), ("a2=20",))
    assert [(f.at_s, f.action, f.args) for f in faults] == [
        (0.0, "degrade", ("a2", "20")),
        (2.0, "cut", ("a1", "c1")),
        (5.0, "kill", ("e1",)),
    ]
    with pytest.raises(errors.InvalidSpec, match="--kill 'e1@soon'"):
        agent_cmd._parse_faults(("e1@soon",), (), ())
    with pytest.raises(errors.InvalidSpec, match="SITE=MS"):
        agent_cmd._parse_faults((), (), ("a2",))
