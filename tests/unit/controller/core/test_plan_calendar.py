"""Offline planning over time: slices with a schedule decided over their windows against the
capacity calendar, slices without one at all times, and the plan as it stands at one instant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.core import plan_calendar
from controller.core.calendar import OPEN_END, Window
from controller.core.plan_calendar import TimedPlan
from controller.core.topology import Topology
from slices.intent import Schedule
from slices.profiles import SliceIntent
from tests.support import cityfixtures as cf

HOUR = 3600.0
DAY = 24 * HOUR
SAT = datetime(2030, 7, 6, tzinfo=UTC).timestamp()  # midnight UTC, a Saturday
SUN = SAT + DAY


def afternoon(day: float, start_h: float = 14, end_h: float = 18) -> Window:
    return Window(day + start_h * HOUR, day + end_h * HOUR)


@pytest.fixture
def city() -> Topology:
    # c1 and c2 have 150 Mbps of radio each: one 100 Mbps hotspot fits a cell, two do not.
    return cf.two_edge_city(cells=2, radio_mbps=150)


def hotspot(
    name: str,
    mbps: float = 100,
    cells: tuple[str, ...] = ("c1",),
    *,
    priority: int | None = None,
    preemptible: bool | None = None,
    sd: str | None = None,
) -> SliceIntent:
    return cf.intent(
        name, "wifi", cells=cells, dl_mbps=mbps, ul_mbps=0, priority=priority, preemptible=preemptible, sd=sd
    )


def outcomes(plan: TimedPlan) -> dict[str, tuple[str, str]]:
    return {n: (d.outcome.value, d.reason) for n, d in plan.final().items()}


def test_two_bookings_on_different_days_both_fit(city: Topology) -> None:
    plan = plan_calendar.plan(
        [hotspot("sat"), hotspot("sun")], city, {"sat": afternoon(SAT), "sun": afternoon(SUN)}
    )
    assert outcomes(plan) == {"sat": ("admitted", "Admitted"), "sun": ("admitted", "Admitted")}
    assert sorted(plan.calendar.names()) == ["sat", "sun"]
    assert not plan.state.ledger.held  # bookings hold nothing at all times


def test_back_to_back_windows_do_not_add_up(city: Topology) -> None:
    first, second = Window(SAT + 10 * HOUR, SAT + 14 * HOUR), Window(SAT + 14 * HOUR, SAT + 18 * HOUR)
    plan = plan_calendar.plan([hotspot("a"), hotspot("b")], city, {"a": first, "b": second})
    assert outcomes(plan) == {"a": ("admitted", "Admitted"), "b": ("admitted", "Admitted")}


def test_the_same_afternoon_adds_up_and_the_refusal_names_element_and_time(city: Topology) -> None:
    late = Window(SAT + 16 * HOUR, SAT + 20 * HOUR)  # overlaps 16:00-18:00
    plan = plan_calendar.plan([hotspot("sat"), hotspot("late")], city, {"sat": afternoon(SAT), "late": late})
    assert outcomes(plan)["late"] == ("rejected", "RadioCapacityExceeded")
    decision = plan.final()["late"]
    assert decision.binding == "cell:c1"
    assert decision.message == (
        "cell c1 has 50 Mbps free, needs 100 Mbps (short by 50 Mbps), at 2030-07-06 16:00 UTC "
        "(bookings then hold the most of it; window 2030-07-06 16:00 UTC to 2030-07-06 20:00 UTC)"
    )
    assert "late" not in plan.calendar and "late" in plan.state.rejected
    # Each on its own cell: the same afternoon, no shared element, both fit.
    apart = plan_calendar.plan(
        [hotspot("sat"), hotspot("late", cells=("c2",))], city, {"sat": afternoon(SAT), "late": late}
    )
    assert outcomes(apart)["late"] == ("admitted", "Admitted")


def test_a_slice_without_a_schedule_counts_against_every_window(city: Topology) -> None:
    always = hotspot("always", mbps=60)
    plan = plan_calendar.plan(
        [always, hotspot("sat"), hotspot("sun", mbps=90)],
        city,
        {
            "sat": afternoon(SAT),
            "sun": afternoon(SUN),
        },
    )
    assert outcomes(plan) == {
        "always": ("admitted", "Admitted"),
        "sat": ("rejected", "RadioCapacityExceeded"),  # 60 + 100 > 150
        "sun": ("admitted", "Admitted"),  # 60 + 90 = 150
    }
    # A booking bound by a slice without a schedule names no time: no booking bound it.
    assert plan.final()["sat"].message == "cell c1 has 90 Mbps free, needs 100 Mbps (short by 10 Mbps)"


def test_a_slice_without_a_schedule_must_fit_beside_every_booking(city: Topology) -> None:
    plan = plan_calendar.plan(
        [hotspot("sat"), hotspot("always", mbps=60, priority=900)], city, {"sat": afternoon(SAT)}
    )
    decision = plan.final()["always"]
    assert (decision.outcome.value, decision.reason) == ("rejected", "RadioCapacityExceeded")
    # A booking is not preemptible capacity, whatever the priorities.
    assert not decision.preempts and "sat" in plan.calendar
    assert decision.message.endswith(
        "at 2030-07-06 14:00 UTC (bookings then hold the most of it; no schedule: it would hold at all times)"
    )


def test_slices_without_a_schedule_still_preempt_each_other(city: Topology) -> None:
    low = hotspot("low", priority=5, preemptible=True)
    high = hotspot("high", priority=900)
    plan = plan_calendar.plan([low, high], city, {})
    assert outcomes(plan) == {"low": ("preempted", "Preempted"), "high": ("admitted", "AdmittedByPreemption")}
    assert list(plan.state.admitted) == ["high"]


def test_a_booking_preempts_nothing(city: Topology) -> None:
    low = hotspot("low", priority=5, preemptible=True)
    booking = hotspot("booking", priority=900)
    plan = plan_calendar.plan([low, booking], city, {"booking": afternoon(SAT)})
    assert outcomes(plan) == {
        "low": ("admitted", "Admitted"),
        "booking": ("rejected", "RadioCapacityExceeded"),
    }


def test_snssai_clashes_only_between_windows_that_overlap(city: Topology) -> None:
    a, b, c = (hotspot(n, mbps=10, sd="00000a") for n in ("a", "b", "c"))
    windows = {"a": afternoon(SAT), "b": afternoon(SUN), "c": Window(SAT + 17 * HOUR, SAT + 19 * HOUR)}
    plan = plan_calendar.plan([a, b, c], city, windows)
    assert outcomes(plan) == {
        "a": ("admitted", "Admitted"),
        "b": ("admitted", "Admitted"),
        "c": ("rejected", "SnssaiConflict"),
    }


def test_at_picks_the_slices_holding_capacity_then(city: Topology) -> None:
    always = hotspot("always", mbps=20, cells=("c2",))
    windows = {"sat": afternoon(SAT), "sun": afternoon(SUN)}
    plan = plan_calendar.plan([always, hotspot("sat"), hotspot("sun", mbps=50)], city, windows)
    cases = {
        SAT + 15 * HOUR: ["always", "sat"],
        SAT + 14 * HOUR: ["always", "sat"],  # the start is inside the window
        SAT + 18 * HOUR: ["always"],  # the end is not
        SUN + 17 * HOUR: ["always", "sun"],
        SAT - DAY: ["always"],
    }
    for at, holding in cases.items():
        assert [n for n in ("always", "sat", "sun") if plan.holds_at(n, at)] == holding, at
        state = plan.at(at)
        assert sorted(state.admitted) == holding
        assert sorted(state.ledger.held) == holding
    assert plan.at(SAT + 15 * HOUR).ledger.radio_kbps == {"c1": 100_000, "c2": 20_000}
    assert plan.at(SUN + 15 * HOUR).ledger.radio_kbps == {"c1": 50_000, "c2": 20_000}
    assert not plan.holds_at("nobody", SAT)
    # The plan itself is unchanged by looking at it.
    assert sorted(plan.state.ledger.held) == ["always"]


def test_at_leaves_out_rejected_bookings(city: Topology) -> None:
    windows = {"sat": afternoon(SAT), "late": afternoon(SAT, 16, 20)}
    plan = plan_calendar.plan([hotspot("sat"), hotspot("late")], city, windows)
    assert not plan.holds_at("late", SAT + 17 * HOUR)
    assert sorted(plan.at(SAT + 17 * HOUR).admitted) == ["sat"]


def test_peak_is_the_most_held_at_once_over_every_window(city: Topology) -> None:
    windows = {"sat": afternoon(SAT), "sun": afternoon(SUN), "eve": afternoon(SAT, 17, 22)}
    intents = [hotspot("sat", mbps=100), hotspot("sun", mbps=120), hotspot("eve", mbps=40)]
    plan = plan_calendar.plan([*intents, hotspot("always", mbps=10, cells=("c2",))], city, windows)
    assert all(d.outcome.value == "admitted" for d in plan.final().values())
    # c1: Saturday 17-18 holds 140, Sunday 120; the peak is per element, at once.
    assert plan.peak().ledger.radio_kbps == {"c1": 140_000, "c2": 10_000}
    assert list(plan.peak().admitted) == ["always"]


def test_window_of_a_schedule() -> None:
    start = datetime(2030, 7, 6, 16, tzinfo=UTC)
    assert plan_calendar.window_of(None) is None
    assert plan_calendar.window_of(Schedule(start=start)) == Window(start.timestamp(), OPEN_END)
    end = datetime(2030, 7, 6, 18, tzinfo=UTC)
    assert plan_calendar.window_of(Schedule(start=start, end=end)) == Window(
        start.timestamp(), end.timestamp()
    )
