"""SLA evaluation over a rolling window, and what the evaluator tells the controller."""

from __future__ import annotations

from dataclasses import dataclass, field

from slices.profiles import SliceIntent
from telemetry import sla
from tests.telemetry_fakes import FakeClock, FakeService, intent

CARS = intent("cars", "vehicle")  # 5 ms, 50/25 Mbps per cell, 0.99999, 5000 devices
CELLS = frozenset({"c1", "c2"})


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


def test_only_cells_are_judged_when_cells_are_given() -> None:
    assert sla.evaluate(CARS, {"a1": [kpi(p99=50.0)]}, CELLS) == []
    assert [v.site for v in sla.evaluate(CARS, {"a1": [kpi(p99=50.0)]})] == ["a1"]


@dataclass
class _Source:
    clock: FakeClock
    intents_: dict[str, SliceIntent]
    samples: dict[tuple[str, str], list[sla.KpiSample]] = field(default_factory=dict)

    def kpis(self, since: float = float("-inf")) -> dict[tuple[str, str], list[sla.KpiSample]]:
        return {k: [s for s in v if s.at > since] for k, v in self.samples.items()}

    def intents(self) -> dict[str, SliceIntent]:
        return self.intents_

    def site_kinds(self) -> dict[str, str]:
        return {"c1": "cell", "c2": "cell", "a1": "aggregation"}


def test_evaluator_sets_condition_on_change_and_replaces_when_sustained() -> None:
    clock = FakeClock()
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
    [(_, name, why, _)] = service.calls_of("replace_slice")
    assert name == "cars" and str(why).startswith("LatencyExceeded: sustained for 3 windows")

    # Old samples leave the window; a good one brings the SLA back.
    clock.advance(10.0)
    source.samples[("cars", "c1")].append(kpi(at=clock()))
    ev.evaluate_once()
    assert service.calls_of("set_sla")[-1][1:4] == ("cars", True, "SLAMet")


def test_evaluator_ignores_slices_it_has_no_intent_for() -> None:
    clock = FakeClock()
    source = _Source(clock, {})
    source.samples[("gone", "c1")] = [kpi(at=clock(), p99=99.0)]
    service = FakeService()
    assert sla.SlaEvaluator(source, service).evaluate_once() == {}
    assert service.calls == []
