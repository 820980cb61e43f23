"""Admission: the ordered checks (table-driven) and preemption choosing few, unimportant victims."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from controller.core import admission
from controller.core.admission import Decision, Outcome, admit
from controller.core.ledger import Ledger
from controller.core.placement_model import Placement
from controller.core.topology import Topology
from slices.intent import Circle, Coverage
from slices.profiles import SliceIntent
from tests.support import cityfixtures as cf

Admitted = dict[str, tuple[SliceIntent, Placement]]


def admit_all(city: Topology, intents: Sequence[SliceIntent]) -> tuple[Ledger, Admitted]:
    """Admit without preemption, applying each decision (all must be admitted)."""
    ledger = Ledger(city)
    admitted: Admitted = {}
    for i in intents:
        d = admit(i, city, ledger, admitted, allow_preemption=False)
        assert d.outcome == Outcome.ADMITTED, d
        assert d.placement is not None
        ledger.reserve(i.name, d.placement.reservation(city))
        admitted[i.name] = (i, d.placement)
    return ledger, admitted


def wifi(name: str, cell: str, mbps: float, priority: int = 10, preemptible: bool = True) -> SliceIntent:
    return cf.intent(
        name,
        "wifi",
        cells=[cell],
        dl_mbps=mbps,
        ul_mbps=0,
        priority=priority,
        preemptible=preemptible,
        cpu=100,
    )


def cars(name: str = "cars", cells: Sequence[str] = ("c1",), priority: int = 100) -> SliceIntent:
    return cf.intent(name, "vehicle", cells=cells, priority=priority, cpu=100)  # 75 Mbps per cell


CITY = cf.two_edge_city(cells=2)
SENSORS = cf.intent("sensors", "iot", zones=["town"], sd="0000aa")


@pytest.mark.parametrize(
    ("intent", "reason", "message"),
    [
        (
            cf.intent("x", cells=["c9"]),
            "UnknownSite",
            "spec.coverage.sites: site 'c9' is not in topology 'two-edge'",
        ),
        (
            cf.intent("x", cells=["a1"]),
            "UnknownSite",
            "spec.coverage.sites: 'a1' is a aggregation site, not a cell",
        ),
        (
            cf.intent("x", zones=["moon"]),
            "UnknownZone",
            "spec.coverage.zones: no cell of topology 'two-edge' has zone 'moon'",
        ),
        (
            cf.intent("x", zones=["town"], sd="0000aa"),
            "SnssaiConflict",
            "S-NSSAI 3-0000aa is already used by admitted slice 'sensors'",
        ),
        # Unknown site is checked before the S-NSSAI clash.
        (cf.intent("x", cells=["c9"], sd="0000aa"), "UnknownSite", None),
    ],
)
def test_checks_in_order(intent: SliceIntent, reason: str, message: str | None) -> None:
    ledger, admitted = admit_all(CITY, [SENSORS])
    d = admit(intent, CITY, ledger, admitted)
    assert (d.outcome, d.reason) == (Outcome.REJECTED, reason)
    assert d.placement is None
    if message is not None:
        assert d.message == message


def test_circle_that_selects_nothing_is_no_coverage() -> None:
    from dataclasses import replace

    far = replace(SENSORS, coverage=Coverage(circle=Circle(lat=45, lon=45, radius_km=1)))
    d = admit(far, CITY, Ledger(CITY), {})
    assert (d.reason, d.message) == ("NoCoverage", "the coverage selects no cell of the topology")


def test_admit_is_pure_and_an_update_replaces_its_own_reservation() -> None:
    ledger, admitted = admit_all(CITY, [SENSORS])
    before = ledger.snapshot()
    again = admit(SENSORS, CITY, ledger, admitted)  # same name: no S-NSSAI clash with itself
    assert again.outcome == Outcome.ADMITTED
    assert ledger.snapshot() == before
    assert admitted["sensors"][1] == again.placement


def test_capacity_rejection_without_preemptible_victims() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=200)
    ledger, admitted = admit_all(city, [wifi("w", "c1", 150, preemptible=False)])
    d = admit(cars(), city, ledger, admitted)
    assert (d.outcome, d.reason) == (Outcome.REJECTED, "RadioCapacityExceeded")
    assert d.message == "cell c1 has 50 Mbps free, needs 75 Mbps (short by 25 Mbps)"


def test_equal_priority_does_not_preempt() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=200)
    ledger, admitted = admit_all(city, [wifi("w", "c1", 150, priority=100)])
    assert admit(cars(), city, ledger, admitted).outcome == Outcome.REJECTED


def test_preempts_the_single_lowest_priority_victim_that_is_enough() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=300)
    ledger, admitted = admit_all(
        city,
        [wifi("w-a", "c1", 100, priority=10), wifi("w-b", "c1", 100, priority=5), wifi("w-c", "c1", 100)],
    )
    before = ledger.snapshot()
    d = admit(cars(), city, ledger, admitted)
    assert (d.outcome, d.preempts, d.reason) == (Outcome.ADMITTED, ("w-b",), "AdmittedByPreemption")
    assert "cell c1 has 0 Mbps free, needs 75 Mbps" in d.message
    assert ledger.snapshot() == before


def test_victims_that_hold_the_binding_element_go_first() -> None:
    # w-low (priority 1) sits on c1; w-c2 (priority 8) holds the cell the new slice needs.
    city = cf.two_edge_city(cells=2, radio_mbps=100)
    ledger, admitted = admit_all(
        city, [wifi("w-low", "c1", 100, priority=1), wifi("w-c2", "c2", 100, priority=8)]
    )
    d = admit(cars(cells=["c2"]), city, ledger, admitted)
    assert d.preempts == ("w-c2",)


def test_victims_that_fit_again_are_given_back() -> None:
    # Short by 45 Mbps on c1: w-small (20, lowest priority) is taken first but is not enough, so
    # w-big (150) goes too; after placing, w-small fits beside the new slice and is kept.
    city = cf.two_edge_city(cells=1, radio_mbps=200)
    ledger, admitted = admit_all(
        city, [wifi("w-small", "c1", 20, priority=5), wifi("w-big", "c1", 150, priority=6)]
    )
    d = admit(cars(), city, ledger, admitted)
    assert d.preempts == ("w-big",)


def test_preemption_covers_compute_and_links_too() -> None:
    city = cf.two_edge_city(cells=1, near_cpu=1000, far_cpu=1000)
    ledger, admitted = admit_all(
        city,
        [
            cf.intent(
                "app-a", "wifi", cells=["c1"], cpu=1000, priority=10, preemptible=True, dl_mbps=1, ul_mbps=0
            ),
            cf.intent(
                "app-b", "wifi", cells=["c1"], cpu=1000, priority=20, preemptible=True, dl_mbps=1, ul_mbps=0
            ),
        ],
    )
    d = admit(cf.intent("v", "vehicle", cells=["c1"], cpu=600), city, ledger, admitted)
    assert d.outcome == Outcome.ADMITTED and d.preempts == ("app-a",)
    link_city = cf.two_edge_city(cells=2, near_mbps=100, far_mbps=100)
    ledger, admitted = admit_all(
        link_city, [wifi("fill-near", "c1", 90), wifi("fill-far", "c2", 90, priority=5)]
    )
    d = admit(cars(cells=["c2"]), link_city, ledger, admitted)
    assert d.outcome == Outcome.ADMITTED and len(d.preempts) == 1


def test_no_preemption_when_even_every_victim_would_not_make_room() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=200)
    ledger, admitted = admit_all(city, [wifi("w", "c1", 100)])
    huge = cf.intent("huge", "vehicle", cells=["c1"], dl_mbps=300, ul_mbps=0)
    d = admit(huge, city, ledger, admitted)
    assert (d.outcome, d.preempts) == (Outcome.REJECTED, ())


def test_checks_are_listed_in_order() -> None:
    names = [c.__name__ for c in admission.CHECKS]
    assert names == ["check_sites_known", "check_zones_known", "check_coverage", "check_snssai_unique"]


def test_decision_fields() -> None:
    d = admit(SENSORS, CITY, Ledger(CITY), {})
    assert isinstance(d, Decision)
    assert d.reason == "Admitted"
    assert d.message == "2 cells served from near, worst latency 1.5 ms"
