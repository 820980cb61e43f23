"""Properties of placement and planning on random small ring cities and random slice mixes."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core import planner, whatif
from controller.core.admission import Outcome
from controller.core.ledger import Ledger
from controller.core.planner import PlanState
from controller.core.topology import Topology, link_key
from slices.profiles import SliceIntent
from tests.support import cityfixtures as cf

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cities(draw: st.DrawFn) -> dict[str, Any]:
    aggs = draw(st.integers(3, 6))
    edges = draw(st.sets(st.integers(0, aggs - 1), min_size=1, max_size=3))
    return {
        "aggs": aggs,
        "cells_per_agg": draw(st.integers(1, 3)),
        "edges_at": tuple(sorted(edges)),
        "radio_mbps": draw(st.sampled_from([100, 300, 1000])),
        "access_mbps": draw(st.sampled_from([200, 1000])),
        "ring_mbps": draw(st.sampled_from([150, 400, 2000])),
        "edge_mbps": draw(st.sampled_from([300, 1000, 5000])),
        "ring_ms": draw(st.sampled_from([0.5, 1.0, 2.0])),
        "cpu": draw(st.sampled_from([1000, 3000, 8000])),
        "memory": draw(st.sampled_from([2048, 8192])),
    }


@st.composite
def slice_mixes(draw: st.DrawFn, aggs: int) -> list[SliceIntent]:
    out = []
    for n in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["iot", "vehicle", "wifi"]))
        zones = draw(
            st.sets(st.sampled_from([f"z{i}" for i in range(aggs)] + ["city"]), min_size=1, max_size=2)
        )
        out.append(
            cf.intent(
                f"s{n}",
                kind,
                zones=sorted(zones),
                sd=f"{n:06x}",
                latency_ms=draw(st.sampled_from([1.0, 2.5, 5.0, 20.0])),
                dl_mbps=draw(st.sampled_from([5, 40, 90])),
                ul_mbps=draw(st.sampled_from([0, 10])),
                priority=draw(st.integers(0, 100)),
                preemptible=draw(st.booleans()),
                cpu=draw(st.sampled_from([100, 500, 1500])),
                replicas=draw(st.integers(1, 3)),
            )
        )
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], list[SliceIntent]]:
    params = draw(cities())
    return params, draw(slice_mixes(params["aggs"]))


def check_state(state: PlanState) -> None:
    topo = state.topology
    assert state.ledger.over_capacity() == []
    rebuilt = Ledger.from_placements(topo, (p for _, p in state.admitted.values()))
    assert state.ledger.snapshot() == rebuilt.snapshot()
    for name, (intent, p) in state.admitted.items():
        assert p.slice_name == name
        covered = set(topo.cells_in(intent.coverage))
        assert {a.cell for a in p.assignments} | set(p.unserved) == covered
        shares = {e.site: e.cells for e in p.edges}
        for a in p.assignments:
            assert a.latency_ms <= intent.latency_ms + 1e-9
            assert a.nodes[0] == a.cell and a.nodes[-1] == a.edge and a.edge in shares
            hops = sum(topo.link(link_key(u, v)).latency_ms for u, v in itertools.pairwise(a.nodes))
            assert abs(hops - a.latency_ms) < 1e-9
        assert sum(shares.values()) == len(p.assignments)
        for e in p.edges:
            assert (e.cpu_millicores, e.memory_mib) == intent.compute_at(e.cells, len(p.assignments))


@SETTINGS
@given(scenarios())
def test_online_plan_never_overbooks_and_keeps_routes_within_bounds(
    scenario: tuple[dict[str, Any], list[SliceIntent]],
) -> None:
    params, intents = scenario
    city = cf.ring_city(**params)
    result = planner.plan(intents, city)
    check_state(result.state)
    # Each decision's slice ended where the decisions say.
    final = result.final()
    for name in result.state.admitted:
        assert final[name].outcome == Outcome.ADMITTED
    for name in result.state.preempted:
        assert final[name].outcome == Outcome.PREEMPTED


@SETTINGS
@given(scenarios())
def test_batch_plan_never_overbooks(scenario: tuple[dict[str, Any], list[SliceIntent]]) -> None:
    params, intents = scenario
    city = cf.ring_city(**params)
    check_state(planner.plan_batch(intents, city).state)
    check_state(planner.plan_batch(intents, city, order="revenue").state)


@SETTINGS
@given(scenarios())
def test_same_inputs_same_decisions(scenario: tuple[dict[str, Any], list[SliceIntent]]) -> None:
    params, intents = scenario
    first = planner.plan(intents, cf.ring_city(**params)).decisions
    again = planner.plan(list(intents), Topology.from_file(cf.ring_file(**params))).decisions
    assert first == again


@SETTINGS
@given(scenarios())
def test_release_restores_the_ledger_exactly(scenario: tuple[dict[str, Any], list[SliceIntent]]) -> None:
    params, intents = scenario
    city = cf.ring_city(**params)
    state = planner.plan(intents, city).state
    empty = Ledger(city).snapshot()
    ledger = state.ledger.copy()
    for name in list(ledger.held):
        before = ledger.snapshot()
        res = ledger.release(name)
        assert res is not None
        ledger.reserve(name, res)
        assert ledger.snapshot() == before
    for name in list(ledger.held):
        ledger.release(name)
    assert ledger.snapshot() == empty
    # Through the planner: whatever is re-admitted, the ledger stays the sum of placements.
    for name in sorted(state.admitted):
        if name in state.admitted:
            planner.release(state, name)
            check_state(state)


@SETTINGS
@given(scenarios())
def test_preemption_takes_only_victims_that_would_not_fit_back(
    scenario: tuple[dict[str, Any], list[SliceIntent]],
) -> None:
    params, intents = scenario
    city = cf.ring_city(**params)
    state = PlanState.empty(city)
    for intent in intents:
        held_before = dict(state.ledger.held)
        decisions = planner.submit(state, intent)
        for victim in decisions[0].preempts:
            victim_intent = state.preempted[victim][0]
            assert victim_intent.preemptible and victim_intent.priority < intent.priority
            assert state.ledger.shortfall(held_before[victim]) is not None
    check_state(state)


@SETTINGS
@given(scenarios(), st.data())
def test_what_if_changes_nothing_and_avoids_failed_elements(
    scenario: tuple[dict[str, Any], list[SliceIntent]], data: st.DataObject
) -> None:
    params, intents = scenario
    city = cf.ring_city(**params)
    state = planner.plan(intents, city).state
    fail = data.draw(
        st.sampled_from([f"e{i}" for i in params["edges_at"]] + [f"r{i}" for i in range(params["aggs"])])
    )
    before = copy.deepcopy(state.admitted)
    snapshot = state.ledger.snapshot()
    report = whatif.what_if(city, state.admitted, fail_sites=[fail])
    assert state.admitted == before and state.ledger.snapshot() == snapshot
    assert {i.slice_name for i in report.affected} | set(report.unaffected) == set(state.admitted)
    for impact in report.affected:
        p = impact.decision.placement
        if p is not None:
            assert all(fail not in a.nodes for a in p.assignments)
    for name in report.unaffected:
        assert not state.admitted[name][1].uses_site(fail)
