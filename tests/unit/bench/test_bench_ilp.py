"""The benchmark's yardsticks are right: the ILP finds the true optimum (checked by brute force on
tiny cities), its placements respect every capacity and bound, and the naive greedy is feasible.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT))  # bench/ is not an installed package

from bench import ilp, instances, naive
from controller.core import planner
from controller.core.ledger import Ledger
from controller.core.placement_model import Placement
from controller.core.topology import Route, Topology
from slices.profiles import SliceIntent


def _wifi(name: str, cells: Sequence[str], mbps: float, cpu: int = 1000, replicas: int = 2) -> SliceIntent:
    return instances.slice_intent(
        name,
        "wifi",
        cells,
        snssai={"sst": 1, "sd": name.encode()[:3].hex().ljust(6, "0")},  # unique per name
        sla={"dlMbpsPerCell": mbps, "ulMbpsPerCell": 0},
        workloads=[
            {
                "name": "app",
                "image": "nginx:1.27",
                "cpuMillicores": cpu,
                "memoryMib": 64,
                "replicas": replicas,
            }
        ],
    )


def _feasible(topology: Topology, placements: dict[str, Placement]) -> bool:
    ledger = Ledger(topology)
    for name, p in placements.items():
        res = p.reservation(topology)
        if ledger.shortfall(res) is not None:
            return False
        ledger.reserve(name, res)
    return True


def _brute_force(topology: Topology, intents: Sequence[SliceIntent], revenue: dict[str, float]) -> float:
    """Best revenue over every admit/reject choice and every route of every covered cell."""
    options: list[list[Placement | None]] = []
    for intent in intents:
        per_cell: list[list[Route]] = [
            topology.routes(c, intent.latency_ms) for c in topology.cells_in(intent.coverage)
        ]
        choices: list[Placement | None] = [None]
        choices += [ilp.placement_of(intent, combo) for combo in itertools.product(*per_cell)]
        options.append(choices)
    best = 0.0
    for combo in itertools.product(*options):
        chosen = {p.slice_name: p for p in combo if p is not None}
        value = sum(revenue[n] for n in chosen)
        if value > best and _feasible(topology, chosen):
            best = value
    return best


def _check_placements(
    topology: Topology, intents: Sequence[SliceIntent], placements: dict[str, Placement]
) -> None:
    assert Ledger.from_placements(topology, placements.values()).over_capacity() == []
    by_name = {i.name: i for i in intents}
    for name, p in placements.items():
        intent = by_name[name]
        cells = topology.cells_in(intent.coverage)
        assert sorted(a.cell for a in p.assignments) == sorted(cells)
        assert all(a.latency_ms <= intent.latency_ms for a in p.assignments)
        assert sum(e.cells for e in p.edges) == len(cells)
        for e in p.edges:
            assert (e.cpu_millicores, e.memory_mib) == intent.compute_at(e.cells, len(cells))


def test_ilp_admits_everything_when_it_fits() -> None:
    city = instances.tiny_city()
    intents = [_wifi("a", ["c1", "c2"], 50), _wifi("b", ["c3"], 50)]
    result = ilp.solve(city, intents, {"a": 2.0, "b": 1.0}, time_limit_s=10)
    assert result.optimal
    assert result.objective == pytest.approx(3.0)
    assert set(result.placements) == {"a", "b"}
    _check_placements(city, intents, result.placements)


def test_ilp_chooses_the_more_valuable_of_two_slices_that_conflict_on_radio() -> None:
    city = instances.tiny_city(radio_mbps=100)
    intents = [_wifi("cheap", ["c1", "c2"], 80), _wifi("dear", ["c2", "c3"], 80)]
    result = ilp.solve(city, intents, {"cheap": 1.0, "dear": 5.0}, time_limit_s=10)
    assert result.optimal
    assert set(result.placements) == {"dear"}
    # The naive greedy takes them in order and is stuck with the cheap one.
    assert set(naive.run(intents, city)) == {"cheap"}


def test_ilp_splits_a_slice_across_edge_sites_when_one_site_lacks_compute() -> None:
    # 3000m per edge site: a slice of 2 replicas × 2000m cannot run at one site (4000m), but
    # split over both sites it needs 1 replica (2000m) at each.
    city = instances.tiny_city(cpu_millicores=3000)
    intents = [_wifi("big", ["c1", "c4"], 10, cpu=2000, replicas=2)]
    result = ilp.solve(city, intents, {"big": 1.0}, time_limit_s=10)
    assert set(result.placements) == {"big"}
    assert sorted(e.site for e in result.placements["big"].edges) == ["e1", "e2"]
    _check_placements(city, intents, result.placements)
    assert naive.run(intents, city) == {}  # single-site only


def test_ilp_respects_link_bandwidth_by_routing_over_the_other_edge() -> None:
    # 100 Mbps links: c1 and c2 share a1's uplink towards e1 and a1–a2 towards e2, so two 60 Mbps
    # cells cannot both leave a1 the same way.
    city = instances.tiny_city(link_mbps=100)
    intents = [_wifi("pair", ["c1", "c2"], 60)]
    result = ilp.solve(city, intents, {"pair": 1.0}, time_limit_s=10)
    assert set(result.placements) == {"pair"}
    edges = {a.edge for a in result.placements["pair"].assignments}
    assert edges == {"e1", "e2"}
    _check_placements(city, intents, result.placements)


def test_warm_start_outside_the_candidate_routes_is_dropped_not_trusted() -> None:
    city = instances.tiny_city()
    intents = [_wifi("a", ["c1"], 50)]
    good = naive.run(intents, city)["a"]
    bogus = Placement("a", good.spec_hash, good.kbps_per_cell, (), good.edges)  # no assignments
    result = ilp.solve(city, intents, {"a": 1.0}, time_limit_s=10, warm_start={"a": bogus})
    assert result.optimal and set(result.placements) == {"a"}
    result = ilp.solve(city, intents, {"a": 1.0}, time_limit_s=10, warm_start={"a": good})
    assert result.optimal and set(result.placements) == {"a"}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    radio=st.sampled_from([60, 100, 150]),
    cpu=st.sampled_from([2000, 3000, 5000]),
    link=st.sampled_from([80, 150, 1000]),
    requests=st.lists(
        st.tuples(
            st.lists(st.sampled_from(["c1", "c2", "c3", "c4"]), min_size=1, max_size=2, unique=True),
            st.sampled_from([30, 50, 70]),
            st.integers(min_value=1, max_value=9),
            st.sampled_from([(1000, 1), (1000, 2), (2000, 2)]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_ilp_matches_brute_force_and_beats_every_heuristic(
    radio: int,
    cpu: int,
    link: int,
    requests: list[tuple[list[str], int, int, tuple[int, int]]],
) -> None:
    city = instances.tiny_city(radio_mbps=radio, cpu_millicores=cpu, link_mbps=link)
    intents = [
        _wifi(f"s{i}", cells, mbps, cpu=w_cpu, replicas=w_rep)
        for i, (cells, mbps, _, (w_cpu, w_rep)) in enumerate(requests)
    ]
    revenue = {f"s{i}": float(value) for i, (_, _, value, _) in enumerate(requests)}
    result = ilp.solve(city, intents, revenue, time_limit_s=10)
    assert result.optimal
    _check_placements(city, intents, result.placements)
    assert result.objective == pytest.approx(sum(revenue[n] for n in result.placements))
    assert result.objective == pytest.approx(_brute_force(city, intents, revenue))
    greedy = naive.run(intents, city)
    _check_placements(city, intents, greedy)
    assert result.objective >= sum(revenue[n] for n in greedy) - 1e-9
    batch = planner.plan_batch(intents, city).state.admitted
    assert result.objective >= sum(revenue[n] for n in batch) - 1e-9


def test_naive_greedy_stays_within_capacity_on_a_congested_generated_city() -> None:
    city = instances.build_city(60, seed=3, capacity_scale=0.3)
    intents = instances.make_intents(city, instances.RequestMix(40, 3, 12), seed=4)
    placed = naive.run(intents, city)
    assert 0 < len(placed) < len(intents)  # congested: some, not all
    _check_placements(city, intents, placed)
    rev = instances.revenues(city, intents)
    result = ilp.solve(city, intents, rev, time_limit_s=20, warm_start=placed)
    _check_placements(city, intents, result.placements)
    assert result.objective >= sum(rev[n] for n in placed) - 1e-6
