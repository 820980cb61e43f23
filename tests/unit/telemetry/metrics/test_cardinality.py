"""The cardinality budget (docs/observability.md): at most 10,000 series for a 20,000-cell city
with 2,000 slices, every site's agent reporting, in the worst case for every bounded list."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from telemetry.metrics.observer import build_metrics
from telemetry.metrics.state import MAX_LISTED_AGENTS, MAX_LISTED_VIOLATIONS, MAX_REASONS, TOP_LINKS
from tests.support import metrics_city

BUDGET = 10_000


def test_city_scale_scrape_stays_within_the_series_budget() -> None:
    state = metrics_city.build_city_state()
    registry = metrics_city.city_registry(state)
    series = metrics_city.count_series(registry)
    total = sum(series.values())
    per_slice = series["edgeslice_slice_kpi_target_ratio"]
    assert per_slice == 4 * metrics_city.SLICES  # every slice reports, four KPIs each
    # The bounded lists hit their caps: this is the worst case, not a lucky one.
    assert series["edgeslice_slice_sla_violated"] == MAX_LISTED_VIOLATIONS
    assert series["edgeslice_link_reserved_bits_per_second"] == TOP_LINKS
    edge_and_core = sum(1 for s in state.topo.sites.values() if s.kind.value in ("edge", "core"))
    assert series["edgeslice_agent_up"] == edge_and_core + MAX_LISTED_AGENTS
    reasons = metrics_city.label_values(registry, "edgeslice_admission_decisions", "reason")
    assert len(reasons) == MAX_REASONS + 1
    assert not any(
        name.endswith("_created") for f in registry.collect() for name in {s.name for s in f.samples}
    )
    assert total <= BUDGET, f"{total} series > {BUDGET}: {sorted(series.items(), key=lambda kv: -kv[1])[:8]}"


def test_nothing_is_labelled_by_cell() -> None:
    state = metrics_city.build_city_state(cells=300, slices=30)
    registry = metrics_city.city_registry(state)
    cells = set(state.topo.cells)
    listed_down = {a.site for a in state.snapshots if not a.connected or a.generation_lag > 0}
    for family in registry.collect():
        for sample in family.samples:
            site = sample.labels.get("site")
            if site in cells:
                # Only agents that are down or behind are ever named, and only in the agent families.
                assert family.name.startswith("edgeslice_agent_") and site in listed_down, (family.name, site)


def test_budget_holds_without_agents_too() -> None:
    registry = CollectorRegistry()
    state = metrics_city.build_city_state(cells=300, slices=30)
    build_metrics(state, None, registry)
    assert sum(metrics_city.count_series(registry).values()) < 1_000
