"""The KPI-ratio family, built column-wise, against its one-slice-at-a-time definition."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from telemetry.metrics import kpi_ratios
from tests.support import kpi_oracle
from tests.support.metrics_city import build_city_state, kpi_columns

NAME = "edgeslice_slice_kpi_target_ratio"


def test_the_family_is_kpi_ratios_of_every_placed_slice_with_kpis() -> None:
    state = build_city_state(cells=200, slices=40, seed=3)
    records = list(state.records)
    kpis = dict(state.kpis)
    names = [r.name for r in records]
    # The edge cases of the definition: nothing demanded (owed 0), a zero loss target (perfect
    # reliability asked) with and without loss, a ratio large enough for the Go number format.
    kpis[names[0]] = dataclasses.replace(kpis[names[0]], demand_kbps_per_cell=0.0)
    for i, loss in ((1, 0.01), (2, 0.0)):
        intent = dataclasses.replace(records[i].intent, reliability=1.0)
        records[i] = dataclasses.replace(records[i], intent=intent)
        kpis[names[i]] = dataclasses.replace(kpis[names[i]], loss_ratio=loss)
    kpis[names[3]] = dataclasses.replace(kpis[names[3]], devices=10**12)
    records[4] = dataclasses.replace(records[4], placement=None)  # not placed: not listed
    del kpis[names[5]]  # no KPIs yet: not listed
    kpis["ghost"] = kpis[names[6]]  # KPIs of a slice the controller does not have: not listed

    family = GaugeMetricFamily(NAME, "help", labels=["slice", "kind", "kpi"])
    kpi_ratios.fill(family, kpi_ratios.KpiTargets.of(records), kpi_columns(kpis))

    expected = [
        (r.name, r.intent.kind.value, kpi, value)
        for r in records
        if r.placement is not None and r.name in kpis
        for kpi, value in kpi_oracle.kpi_ratios(r.intent, kpis[r.name]).items()
    ]
    assert len(expected) == 4 * (40 - 2)
    got = [(s.labels["slice"], s.labels["kind"], s.labels["kpi"], s.value) for s in family.samples]
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    assert [g[3] for g in got] == pytest.approx([e[3] for e in expected])
    assert {v for *_, v in expected if v == float("inf") or v > 1e6}  # the Go format is exercised
    assert _text(family).splitlines()[2:] == [  # after HELP and TYPE
        f'{NAME}{{kind="{kind}",kpi="{kpi}",slice="{name}"}} {_go_float(value)}'
        for name, kind, kpi, value in expected
    ]


def _go_float(value: float) -> str:
    """How the text format writes a float (Go's formatting: +Inf, 1e+06, ...)."""
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]  # prometheus_client.utils is not annotated


def _text(family: Metric) -> str:
    """The family as /metrics serves it (prometheus-client's text format)."""

    class One:
        def collect(self) -> list[Metric]:
            return [family]

    return generate_latest(One()).decode()


def test_no_slice_with_kpis_is_an_empty_family() -> None:
    state = build_city_state(cells=200, slices=3, seed=1)
    family = GaugeMetricFamily(NAME, "help", labels=["slice", "kind", "kpi"])
    kpi_ratios.fill(family, kpi_ratios.KpiTargets.of(state.records), kpi_columns({}))
    assert family.samples == []
    assert _text(family).splitlines()[2:] == []


def test_targets_reuse_the_series_of_slices_a_change_left_alone() -> None:
    state = build_city_state(cells=200, slices=6, seed=2)
    series: dict[tuple[str, str], list[dict[str, str]]] = {}
    first = kpi_ratios.KpiTargets.of(state.records, series)
    renamed = [dataclasses.replace(state.records[0], name="renamed"), *state.records[1:]]
    second = kpi_ratios.KpiTargets.of(renamed, series)
    fresh = kpi_ratios.KpiTargets.of(renamed)
    assert second.labels == fresh.labels
    assert second.labels[4] is first.labels[4]  # an untouched slice's series: built once
    assert second.labels[0]["slice"] == "renamed" and len(series) == 7
