"""Placement on tiny hand-built cities: routes within the bound, shared links, edge sizing, and
rejections that name the binding element and the shortfall."""

from __future__ import annotations

import pytest

from controller.core import placement
from controller.core.ledger import Ledger
from controller.core.placement import Rejection, place
from controller.core.placement_model import Placement, Reservation
from controller.core.topology import Topology
from tests.support import cityfixtures as cf


def placed(result: Placement | Rejection) -> Placement:
    assert isinstance(result, Placement), result
    return result


def rejected(result: Placement | Rejection) -> Rejection:
    assert isinstance(result, Rejection), result
    return result


def reserve(city: Topology, ledger: Ledger, p: Placement) -> None:
    res = p.reservation(city)
    assert ledger.shortfall(res) is None
    ledger.reserve(p.slice_name, res)


def test_cells_go_to_the_near_edge_when_everything_has_room() -> None:
    city = cf.two_edge_city(cells=3)
    p = placed(place(cf.intent("s", "iot", zones=["town"]), city, Ledger(city)))
    assert [(a.cell, a.edge, a.nodes, a.latency_ms) for a in p.assignments] == [
        (f"c{i}", "near", (f"c{i}", "a1", "near"), 1.5) for i in (1, 2, 3)
    ]
    # IoT profile: one mqtt workload, 2 replicas of 500m / 512 MiB at the one edge site.
    assert [(e.site, e.cells, e.cpu_millicores, e.memory_mib, e.replicas) for e in p.edges] == [
        ("near", 3, 1000, 1024, (("mqtt", 2),))
    ]
    assert p.unserved == ()
    assert p.worst_latency_ms == 1.5


def test_place_does_not_touch_the_ledger_and_is_deterministic() -> None:
    city = cf.ring_city(aggs=6, cells_per_agg=3, edges_at=(0, 3))
    ledger = Ledger(city)
    before = ledger.snapshot()
    intent = cf.intent("cars", "vehicle", zones=["city"], latency_ms=10)
    first = place(intent, city, ledger)
    assert ledger.snapshot() == before
    assert place(intent, city, ledger) == first
    # A fresh but equal topology gives the same answer too (no hidden iteration-order state).
    assert place(intent, cf.ring_city(aggs=6, cells_per_agg=3, edges_at=(0, 3)), Ledger(city)) == first


def test_cells_of_one_slice_share_the_aggregation_link() -> None:
    # Each uplink fits two 75 Mbps cells; four cells fit only if the slice counts its own load.
    city = cf.two_edge_city(cells=4, near_mbps=150, far_mbps=150)
    ledger = Ledger(city)
    p = placed(place(cf.intent("cars", "vehicle", zones=["town"]), city, ledger))
    per_edge = {e.site: e.cells for e in p.edges}
    assert per_edge == {"near": 2, "far": 2}
    reserve(city, ledger, p)
    assert ledger.over_capacity() == []
    assert ledger.free_link(city.link(("a1", "near")).index) == 0


def test_shared_link_shortfall_names_link_and_amount() -> None:
    # latency 3 ms rules out `far` (4.5 ms); the near uplink fits one 75 Mbps cell of two.
    city = cf.two_edge_city(cells=2, near_mbps=100)
    r = rejected(place(cf.intent("cars", "vehicle", zones=["town"], latency_ms=3), city, Ledger(city)))
    assert r.reason == "LinkCapacityExceeded"
    assert r.binding == "link:a1:near"
    assert "link a1:near has 100 Mbps free, needs 150 Mbps (short by 50 Mbps)" in r.message
    assert r.short_by == 50_000


def test_wide_coverage_is_split_across_edge_sites_and_sized_per_site() -> None:
    # Ring r0-r1-r2-r3, 1 ms hops, edges at r0 and r2: with a 1.5 ms bound each cell has one choice.
    city = cf.ring_city(aggs=4, cells_per_agg=2, edges_at=(0, 2))
    intent = cf.intent("w", "iot", zones=["z0", "z2"], latency_ms=1.5, cpu=300, replicas=4)
    p = placed(place(intent, city, Ledger(city)))
    assert {a.cell: a.edge for a in p.assignments} == {
        "r0-c0": "e0",
        "r0-c1": "e0",
        "r2-c0": "e2",
        "r2-c1": "e2",
    }
    # 4 replicas over 4 cells: each site runs ceil(4 * 2 / 4) = 2 replicas of 300m.
    assert [(e.site, e.cells, e.cpu_millicores) for e in p.edges] == [("e0", 2, 600), ("e2", 2, 600)]
    assert all(a.latency_ms <= 1.5 for a in p.assignments)


def test_radio_shortfall_names_the_cell() -> None:
    city = cf.two_edge_city(cells=2, radio_mbps=100)
    r = rejected(place(cf.intent("hot", "wifi", cells=["c2"]), city, Ledger(city)))
    assert (r.reason, r.binding, r.short_by) == ("RadioCapacityExceeded", "cell:c2", 20_000)
    assert r.message == "cell c2 has 100 Mbps free, needs 120 Mbps (short by 20 Mbps)"


def test_latency_unreachable_names_nearest_edge_and_bound() -> None:
    city = cf.two_edge_city(cells=1)
    r = rejected(place(cf.intent("cars", "vehicle", cells=["c1"], latency_ms=1), city, Ledger(city)))
    assert r.reason == "LatencyUnreachable"
    assert r.message == "cell c1: nearest edge site near is 1.5 ms away, bound is 1 ms"


def test_compute_shortfall_names_site_and_amounts() -> None:
    city = cf.two_edge_city(cells=1, near_cpu=500, far_cpu=800)
    r = rejected(place(cf.intent("big", "iot", cells=["c1"], cpu=1000), city, Ledger(city)))
    assert r.reason == "EdgeComputeExhausted"
    assert r.binding == "site:near"
    assert (
        "edge site near has 500m CPU / 32768 MiB free, needs 1000m CPU / 256 MiB (short by 500m CPU)"
        in r.message
    )
    assert r.short_by == 500


def test_compute_pressure_moves_cells_to_the_roomier_site() -> None:
    # `near` can host the slice but only just; `far` is within the bound and idle.
    city = cf.two_edge_city(cells=2, near_cpu=1200, far_cpu=64_000)
    p = placed(place(cf.intent("app", "iot", zones=["town"], cpu=1000), city, Ledger(city)))
    assert p.edge_sites == ("far",)


def test_cells_out_of_service_are_unserved_not_rejected() -> None:
    city = cf.two_edge_city(cells=3).with_down(sites=["c2"])
    p = placed(place(cf.intent("s", "iot", zones=["town"]), city, Ledger(city)))
    assert [a.cell for a in p.assignments] == ["c1", "c3"]
    assert p.unserved == ("c2",)
    every = cf.two_edge_city(cells=1).with_down(sites=["c1"])
    r = rejected(place(cf.intent("s", "iot", zones=["town"]), every, Ledger(every)))
    assert r.reason == "CoverageOutOfService"


def test_saturated_tree_route_is_detoured_within_the_bound() -> None:
    # One edge at r0; r1's cells normally go r1-r0-e0. Fill r0:r1: the way round r1-r2-r3-r0
    # (4 ms total) is within a 5 ms bound, so placement detours instead of rejecting.
    city = cf.ring_city(aggs=4, cells_per_agg=1, edges_at=(0,))
    ledger = Ledger(city)
    blocked = city.link(("r0", "r1")).index
    ledger.reserve("blocker", Reservation(link_kbps={blocked: city.links[blocked].bandwidth_kbps}))
    p = placed(place(cf.intent("cars", "vehicle", cells=["r1-c0"]), city, ledger))
    (a,) = p.assignments
    assert a.nodes == ("r1-c0", "r1", "r2", "r3", "r0", "e0")
    assert a.latency_ms == pytest.approx(4.0)
    tight = rejected(place(cf.intent("cars", "vehicle", cells=["r1-c0"], latency_ms=3), city, ledger))
    assert tight.reason == "LinkCapacityExceeded" and tight.binding == "link:r0:r1"


def test_unknown_coverage_site_is_a_rejection_not_a_crash() -> None:
    city = cf.two_edge_city(cells=1)
    r = rejected(place(cf.intent("s", cells=["nope"]), city, Ledger(city)))
    assert r.reason == "UnknownSite"


def test_cost_weights_are_module_constants() -> None:
    for name in ("LINK_WEIGHT", "COMPUTE_WEIGHT", "LATENCY_WEIGHT", "CANDIDATE_ROUTES"):
        assert isinstance(getattr(placement, name), int | float)
