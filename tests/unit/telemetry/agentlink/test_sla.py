"""SLA evaluation over a rolling window, and what the evaluator tells the controller."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from slices.profiles import SliceIntent
from telemetry.agentlink import sla
from tests.support.clock import FakeClock
from tests.support.telemetry_fakes import FakeService, intent

CARS = intent("cars", "vehicle")  # 5 ms, 50/25 Mbps per cell, 0.99999, 5000 devices
CELLS = {"c1": "cell", "c2": "cell", "a1": "aggregation", "e1": "edge"}


def kpi(
    at: float = 0.0,
    p99: float = 3.0,
    loss: float = 0.0,
    dl: float = 25.0,
    dl_demand: float = 25.0,
    devices: int = 10,
) -> sla.KpiSample:
    return sla.KpiSample(at, dl, 10.0, dl_demand, 10.0, p99 / 2, p99, loss, devices, 0.4)


def test_all_within_bounds_is_no_violation() -> None:
    assert sla.evaluate(CARS, {"c1": [kpi(), kpi()], "c2": [kpi()]}, CELLS) == []


def test_latency_violation_names_kpi_site_and_value() -> None:
    [v] = sla.evaluate(CARS, {"c1": [kpi()], "c2": [kpi(p99=7.0), kpi(p99=9.0)]}, CELLS)
    assert (v.reason, v.kpi, v.site, v.measured, v.bound) == (
        "LatencyExceeded",
        "latency_p99_ms",
        "c2",
        8.0,
        5.0,
    )
    assert "c2" in v.message and "8 ms" in v.message


def test_loss_is_judged_against_one_minus_reliability() -> None:
    [v] = sla.evaluate(CARS, {"c1": [kpi(loss=1e-4)]}, CELLS)
    assert v.reason == "PacketLossExceeded" and v.site == "c1" and v.bound < 1.1e-5
    assert sla.evaluate(CARS, {"c1": [kpi(loss=5e-6)]}, CELLS) == []


def test_throughput_counts_only_when_there_is_demand() -> None:
    # Idle: little delivered, little asked. Not a violation.
    assert sla.evaluate(CARS, {"c1": [kpi(dl=0.5, dl_demand=0.5)]}, CELLS) == []
    assert sla.evaluate(CARS, {"c1": [kpi(dl=0.0, dl_demand=0.0)]}, CELLS) == []
    # Demand above the guarantee: only the guarantee is owed (50 Mbps), 45 delivered is short.
    [v] = sla.evaluate(CARS, {"c1": [kpi(dl=45.0, dl_demand=80.0)]}, CELLS)
    assert (v.reason, v.kpi, v.measured, v.bound) == (
        "ThroughputBelowGuarantee",
        "dl_throughput_mbps",
        45.0,
        50.0,
    )
    assert sla.evaluate(CARS, {"c1": [kpi(dl=49.0, dl_demand=80.0)]}, CELLS) == []


def test_devices_are_summed_over_cells() -> None:
    [v] = sla.evaluate(CARS, {"c1": [kpi(devices=3000)], "c2": [kpi(devices=2500)]}, CELLS)
    assert (v.reason, v.site, v.measured, v.bound) == ("TooManyDevices", "c1", 5500.0, 5000.0)


def test_edge_sites_are_judged_on_latency_and_loss_aggregation_sites_not_at_all() -> None:
    assert sla.evaluate(CARS, {"a1": [kpi(p99=50.0)]}, CELLS) == []
    edge = sla.evaluate(CARS, {"e1": [kpi(p99=900.0, loss=0.5, dl=0.0, dl_demand=80.0, devices=9999)]}, CELLS)
    # Throughput and devices are the cells' business (an edge reports the aggregate, 0 devices).
    assert [(v.reason, v.site) for v in edge] == [("LatencyExceeded", "e1"), ("PacketLossExceeded", "e1")]
    assert "processing latency p99 at site e1 is 900 ms" in edge[0].message


def test_no_evidence_is_unknown_and_missing_sites_are_named() -> None:
    none = sla.verdict(CARS, {}, CELLS, {"c1", "e1"}, 10.0)
    assert (none.met, none.reason) == (None, "NoTelemetry")
    partial = sla.verdict(CARS, {"c1": [kpi()]}, CELLS, {"c1", "e1"}, 10.0)
    assert (partial.met, partial.reason) == (None, "PartialTelemetry") and "e1" in partial.message
    bad = sla.verdict(CARS, {"e1": [kpi(p99=900.0)]}, CELLS, {"c1", "e1"}, 10.0)
    assert (bad.met, bad.reason) == (False, "LatencyExceeded")  # evidence of a violation is enough
    ok = sla.verdict(CARS, {"c1": [kpi()], "e1": [kpi()]}, CELLS, {"c1", "e1"}, 10.0)
    assert (ok.met, ok.reason) == (True, "SLAMet")


@dataclass
class _Source:
    clock: FakeClock
    intents_: dict[str, SliceIntent]
    samples: dict[tuple[str, str], list[sla.KpiSample]] = field(default_factory=dict)

    def sla_windows(
        self, since: float, intents: Mapping[str, SliceIntent]
    ) -> dict[str, dict[str, sla.SiteWindow]]:
        recent = {k: [s for s in v if s.at > since] for k, v in self.samples.items()}
        return sla.windows_of(recent, intents)

    def intents(self) -> dict[str, SliceIntent]:
        return self.intents_

    def site_kinds(self) -> dict[str, str]:
        return {"c1": "cell", "c2": "cell", "a1": "aggregation", "e1": "edge"}

    def reporters(self) -> dict[str, frozenset[str]]:
        return {name: frozenset({"c1"}) for name in self.intents_}


def test_evaluator_sets_condition_on_change_and_replaces_when_sustained(clock: FakeClock) -> None:
    source = _Source(clock, {"cars": CARS})
    service = FakeService()
    ev = sla.SlaEvaluator(source, service, window_s=10.0, sustain_windows=3)

    source.samples[("cars", "c1")] = [kpi(at=clock())]
    ev.evaluate_once()
    assert [c[1:4] for c in service.calls_of("set_sla")] == [("cars", True, "SLAMet")]

    for window in range(1, 4):
        clock.advance(10.0)
        source.samples[("cars", "c1")].append(kpi(at=clock(), p99=12.0))
        ev.evaluate_once()
        sets = service.calls_of("set_sla")
        # The condition is set once when the verdict changes, not every window.
        assert len(sets) == 2
        assert len(service.calls_of("replace_slice")) == (1 if window == 3 else 0)
    _, name, met, reason, message, actor = service.calls_of("set_sla")[1]
    assert (name, met, reason, actor) == ("cars", False, "LatencyExceeded", "controller:sla")
    assert "site c1" in str(message) and "12 ms" in str(message)
    [(_, name, why, _, avoid)] = service.calls_of("replace_slice")
    assert name == "cars" and str(why).startswith("LatencyExceeded: sustained for 3 windows")
    assert avoid == []  # nothing held down yet

    # Old samples leave the window; a good one brings the SLA back.
    clock.advance(10.0)
    source.samples[("cars", "c1")].append(kpi(at=clock()))
    ev.evaluate_once()
    assert service.calls_of("set_sla")[-1][1:4] == ("cars", True, "SLAMet")


def test_no_samples_is_unknown_not_met(clock: FakeClock) -> None:
    source = _Source(clock, {"cars": CARS})
    service = FakeService()
    sla.SlaEvaluator(source, service).evaluate_once()
    [(_, name, met, reason, message, _)] = service.calls_of("set_sla")
    assert (name, met, reason) == ("cars", None, "NoTelemetry") and "no KPIs" in str(message)


def test_too_many_devices_sets_the_condition_but_never_moves_the_slice(clock: FakeClock) -> None:
    source = _Source(clock, {"cars": CARS})
    service = FakeService()
    ev = sla.SlaEvaluator(source, service, window_s=10.0, sustain_windows=2)
    for _ in range(6):
        source.samples[("cars", "c1")] = [kpi(at=clock(), devices=9000)]
        ev.evaluate_once()
        clock.advance(10.0)
    assert [c[1:4] for c in service.calls_of("set_sla")] == [("cars", False, "TooManyDevices")]
    assert service.calls_of("replace_slice") == []


def test_a_slice_moved_for_its_sla_is_not_moved_back_within_the_hold_down(clock: FakeClock) -> None:
    source = _Source(clock, {"cars": CARS})
    source.reporters = lambda: {"cars": frozenset({"c1", "e1"})}  # type: ignore[method-assign]
    service = FakeService()
    service.replace_result = True
    ev = sla.SlaEvaluator(source, service, window_s=10.0, sustain_windows=1, hold_down_s=100.0)
    source.samples[("cars", "c1")] = [kpi(at=clock(), p99=12.0)]
    ev.evaluate_once()  # moved away from e1
    clock.advance(10.0)
    source.samples[("cars", "c1")] = [kpi(at=clock(), p99=12.0)]
    ev.evaluate_once()  # still bad where it is now: e1 is held down
    clock.advance(200.0)
    source.samples[("cars", "c1")] = [kpi(at=clock(), p99=12.0)]
    ev.evaluate_once()  # the hold-down is over
    assert [c[4] for c in service.calls_of("replace_slice")] == [[], ["e1"], []]


def test_evaluator_ignores_slices_it_has_no_intent_for(clock: FakeClock) -> None:
    source = _Source(clock, {})
    source.samples[("gone", "c1")] = [kpi(at=clock(), p99=99.0)]
    service = FakeService()
    assert sla.SlaEvaluator(source, service).evaluate_once() == {}
    assert service.calls == []


def test_a_shortfall_on_a_saturated_share_is_the_tenants_own_load_and_not_movable() -> None:
    full = sla.KpiSample(0.0, 20.0, 10.0, 80.0, 10.0, 1.0, 3.0, 0.0, 10, 1.2)
    [v] = sla.evaluate(CARS, {"c1": [full]}, CELLS)
    assert (v.reason, v.movable) == ("RadioShareSaturated", False) and "120% of its radio share" in v.message
    [v] = sla.evaluate(CARS, {"c1": [kpi(dl=20.0, dl_demand=80.0)]}, CELLS)  # share at 40 %
    assert (v.reason, v.movable) == ("ThroughputBelowGuarantee", True)
