"""What-if: which slices a site or link failure hits, how they would be re-placed, and that
asking changes nothing."""

from __future__ import annotations

import copy

import pytest

from controller.core import planner
from controller.core.admission import Outcome
from controller.core.ledger import Ledger
from controller.core.placement_model import Placement
from controller.core.topology import link_key
from controller.core.whatif import what_if
from slices import errors
from slices.profiles import SliceIntent
from tests.support import cityfixtures as cf

CITY = cf.ring_city(aggs=4, cells_per_agg=2, edges_at=(0, 2))


def admitted() -> dict[str, tuple[SliceIntent, Placement]]:
    state = planner.plan(
        [
            cf.intent("west", zones=["z0"], latency_ms=2),  # r0 cells, served by e0
            cf.intent("east", zones=["z2"], latency_ms=2),  # r2 cells, served by e2
            cf.intent("tight", "vehicle", zones=["z0"], latency_ms=1.2),  # only e0 is near enough
        ],
        CITY,
    ).state
    assert {n: p.edge_sites for n, (_, p) in state.admitted.items()} == {
        "west": ("e0",),
        "east": ("e2",),
        "tight": ("e0",),
    }
    return state.admitted


def test_failed_edge_site_moves_slices_that_can_move_and_names_those_that_cannot() -> None:
    slices = admitted()
    report = what_if(CITY, slices, fail_sites=["e0"])
    assert report.failed_sites == ("e0",)
    assert report.unaffected == ("east",)
    # Highest priority first: the vehicle slice (100) before the IoT one (20).
    tight, west = report.affected
    assert (tight.slice_name, tight.lost_edges, tight.recovered) == ("tight", ("e0",), False)
    assert tight.decision.reason == "LatencyUnreachable"
    assert tight.decision.message == "cell r0-c0: nearest edge site e2 is 3 ms away, bound is 1.2 ms"
    assert (west.slice_name, west.lost_cells, west.recovered) == ("west", ("r0-c0", "r0-c1"), False)
    doc = report.to_dict()
    assert doc["failedSites"] == ["e0"] and doc["unaffected"] == 1


def test_failed_link_reroutes_within_bound() -> None:
    slices = planner.plan([cf.intent("north", zones=["z1"], latency_ms=10)], CITY).state.admitted
    (_, p) = slices["north"]
    first_hop = link_key(*p.assignments[0].nodes[1:3])
    report = what_if(CITY, slices, fail_links=[first_hop])
    (impact,) = report.affected
    assert impact.recovered
    assert impact.decision.outcome == Outcome.ADMITTED
    assert impact.decision.placement is not None
    for a in impact.decision.placement.assignments:
        assert first_hop not in a.link_keys()


def test_failed_cell_leaves_it_unserved() -> None:
    report = what_if(CITY, admitted(), fail_sites=["r2-c1"])
    (impact,) = report.affected
    assert impact.slice_name == "east" and impact.lost_cells == ("r2-c1",)
    assert impact.decision.placement is not None
    assert impact.decision.placement.unserved == ("r2-c1",)


def test_what_if_changes_nothing() -> None:
    slices = admitted()
    before = copy.deepcopy(slices)
    what_if(CITY, slices, fail_sites=["e0", "e2"], fail_links=[("r0", "r1")])
    assert slices == before
    assert CITY.down_sites == frozenset() and CITY.down_links == frozenset()


@pytest.mark.parametrize(
    ("sites", "links"), [(["e0"], []), (["e2"], []), (["e0", "e2"], [("r0", "r1")]), (["r2-c1"], [])]
)
def test_copying_the_live_ledger_decides_as_rebuilding_it(
    sites: list[str], links: list[tuple[str, str]]
) -> None:
    slices = admitted()
    live = Ledger.from_placements(CITY, (p for _, p in slices.values()))
    before = live.snapshot(), dict(live.held), live.revision
    assert what_if(CITY, slices, sites, links, ledger=live) == what_if(CITY, slices, sites, links)
    assert (live.snapshot(), dict(live.held), live.revision) == before  # the live ledger is untouched


def test_unknown_elements_are_not_found() -> None:
    with pytest.raises(errors.NotFound, match="site 'nope' is not in topology 'ring'"):
        what_if(CITY, admitted(), fail_sites=["nope"])
    with pytest.raises(errors.NotFound, match="link r0:r2 is not in topology 'ring'"):
        what_if(CITY, admitted(), fail_links=[("r0", "r2")])
