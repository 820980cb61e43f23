"""Slices with a schedule: admission over the capacity calendar, activation at the window's start,
expiry at its end, and restarts in between. A real SQLite file, the real reconciler and placement;
time from the fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.runtime.service import ControllerService, SliceState
from slices import errors
from slices.status import ConditionStatus, ConditionType, get_condition
from tests.support.clock import FakeClock
from tests.support.runtime_helpers import doc, make_service

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)  # a Saturday morning
HOUR = 3600.0


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def wifi(name: str, start_h: float, end_h: float | None, mbps: float = 120, **spec: Any) -> Any:
    """A Wi-Fi slice on cell c1 alone taking ``mbps`` of its 200 Mbps radio (DL, no UL)."""
    schedule: dict[str, str] = {"start": at(start_h)}
    if end_h is not None:
        schedule["end"] = at(end_h)
    sla = {"dlMbpsPerCell": mbps, "ulMbpsPerCell": 0}
    return doc(name, "wifi", ["c1"], sla=sla, schedule=schedule, **spec)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def svc(tmp_path: Path, clock: FakeClock) -> ControllerService:
    return make_service(tmp_path, clock=clock)[0]


def _ready(svc: ControllerService, name: str) -> tuple[str, str]:
    c = get_condition(svc.get(name).conditions, ConditionType.READY)
    assert c is not None
    return c.status.value, c.reason


def test_bookings_on_different_days_both_fit_and_on_the_same_afternoon_add_up(svc: ControllerService) -> None:
    [sat] = svc.apply([wifi("saturday", 24 + 6, 24 + 10)], "operator:a")
    [sun] = svc.apply([wifi("sunday", 48 + 6, 48 + 10)], "operator:a")
    assert (sat.state, sun.state) == (SliceState.SCHEDULED, SliceState.SCHEDULED)
    # Nothing is reserved now, nothing realised.
    assert svc.ledger_snapshot()[0] == {}
    assert svc.get("saturday").placement is None and svc.get("saturday").booked is not None
    assert _ready(svc, "saturday") == ("False", "Scheduled")
    realised = get_condition(svc.get("saturday").conditions, ConditionType.REALISED)
    assert realised is not None and (realised.status, realised.reason) == (
        ConditionStatus.FALSE,
        "NotStarted",
    )
    # 120 + 120 > 200 on the same afternoon: refused, naming the cell and when.
    [clash] = svc.apply([wifi("clash", 24 + 8, 24 + 12)], "operator:a")
    assert clash.state == SliceState.REJECTED
    assert "c1" in clash.message and "at 2026-12-06 16:00 UTC" in clash.message, clash.message
    # Back to back with saturday's window: no overlap, fits.
    [after] = svc.apply([wifi("after", 24 + 10, 24 + 11)], "operator:a")
    assert after.state == SliceState.SCHEDULED


def test_a_slice_applied_now_cannot_take_what_next_week_holds(svc: ControllerService) -> None:
    svc.apply([wifi("festival", 7 * 24, 7 * 24 + 5)], "operator:a")
    # Without a schedule a slice holds from now on, so next week's booking counts against it.
    [now] = svc.apply(
        [doc("cafe", "wifi", ["c1"], sla={"dlMbpsPerCell": 120, "ulMbpsPerCell": 0})], "operator:a"
    )
    assert now.state == SliceState.REJECTED and "2026-12-12 08:00 UTC" in now.message, now.message
    # A smaller one fits beside it, and the booking still stands.
    [small] = svc.apply(
        [doc("kiosk", "wifi", ["c1"], sla={"dlMbpsPerCell": 60, "ulMbpsPerCell": 0})], "operator:a"
    )
    assert small.state in (SliceState.READY, SliceState.ADMITTED)
    assert svc.get("festival").state == SliceState.SCHEDULED


def test_the_window_starts_the_slice_and_its_end_releases_it(
    svc: ControllerService, clock: FakeClock, tmp_path: Path
) -> None:
    svc.apply([wifi("match", 2, 4)], "operator:a")
    assert svc.seconds_until_due() == pytest.approx(2 * HOUR)
    clock.advance(2 * HOUR - 1)
    svc.reconcile()
    assert svc.get("match").state == SliceState.SCHEDULED
    clock.advance(1)
    svc.reconcile()
    record = svc.get("match")
    assert record.state == SliceState.READY and record.placement is not None
    assert svc.ledger_snapshot()[0] == {"c1": 120_000}
    assert (tmp_path / "realisation" / "match.yaml").exists()
    clock.advance(2 * HOUR)
    svc.reconcile()
    record = svc.get("match")
    assert record.state == SliceState.EXPIRED and record.placement is None
    assert _ready(svc, "match") == ("False", "Expired")
    assert svc.ledger_snapshot()[0] == {}
    assert not (tmp_path / "realisation" / "match.yaml").exists()
    actions = [e.action for e in svc.events(slice_name="match")]
    assert actions == ["apply", "book", "activate", "expire"]
    activated = next(e for e in svc.events(slice_name="match") if e.action == "activate")
    assert "began: 1 cells served from" in activated.message, activated.message
    # Expired is final: another pass changes nothing.
    assert svc.reconcile() == 0


def test_a_restart_keeps_future_bookings_and_activates_what_fell_due(
    tmp_path: Path, clock: FakeClock
) -> None:
    svc, store = make_service(tmp_path, clock=clock)
    svc.apply(
        [wifi("early", 1, 3), wifi("late", 5, 8, mbps=60), wifi("past", 0.5, 0.75, mbps=10)], "operator:a"
    )
    store.close()
    clock.advance(2 * HOUR)  # down across early's start and past's whole window
    svc2, _ = make_service(tmp_path, clock=clock)
    assert svc2.get("late").state == SliceState.SCHEDULED and svc2.get("late").booked is not None
    svc2.reconcile()
    assert svc2.get("early").state == SliceState.READY
    assert svc2.get("past").state == SliceState.EXPIRED
    # The future booking still counts: 120 (early, now) + 60 (late) + 30 more would not fit at 5 h.
    [more] = svc2.apply([wifi("more", 2.5, 6, mbps=30)], "operator:a")
    assert more.state == SliceState.SCHEDULED  # early ends at 3 h, before late begins: 120+30, then 60+30
    [too_much] = svc2.apply([wifi("too-much", 2.5, 6, mbps=60)], "operator:a")
    assert too_much.state == SliceState.REJECTED


def test_book_stores_nothing_when_it_does_not_fit(svc: ControllerService) -> None:
    svc.apply([wifi("first", 1, 2)], "operator:a")
    revision, events = svc.revision, svc.events()
    with pytest.raises(errors.AdmissionRejected, match="c1"):
        svc.book(wifi("second", 1.5, 2.5), "tenant:b")
    assert (svc.revision, svc.events()) == (revision, events)
    with pytest.raises(errors.NotFound):
        svc.get("second")
    result = svc.book(wifi("third", 2, 3), "tenant:b")
    assert result.state == SliceState.SCHEDULED
    assert [(e.actor, e.action) for e in svc.events(slice_name="third")] == [
        ("tenant:b", "apply"),
        ("tenant:b", "book"),
    ]


def test_deleting_a_booking_frees_its_window(svc: ControllerService) -> None:
    svc.apply([wifi("first", 1, 2)], "operator:a")
    svc.delete("first", "operator:a")
    [second] = svc.apply([wifi("second", 1, 2)], "operator:a")
    assert second.state == SliceState.SCHEDULED


def test_a_schedule_needs_a_time_zone_and_an_end_after_its_start() -> None:
    with pytest.raises(errors.InvalidSpec, match="time zone"):
        from slices.intent import parse_slice

        parse_slice(
            {
                "metadata": {"name": "a"},
                "spec": {
                    "kind": "wifi",
                    "coverage": {"sites": ["c1"]},
                    "schedule": {"start": "2026-12-05T08:00:00"},
                },
            }
        )
    with pytest.raises(errors.InvalidSpec, match="not after start"):
        wifi_doc = {"start": at(2), "end": at(1)}
        from slices.intent import parse_slice

        parse_slice(
            {
                "metadata": {"name": "a"},
                "spec": {"kind": "wifi", "coverage": {"sites": ["c1"]}, "schedule": wifi_doc},
            }
        )


def test_a_dry_run_answers_would_this_fit_then_and_reserves_nothing(svc: ControllerService) -> None:
    svc.apply([wifi("match", 30, 34)], "operator:a")
    revision, events = svc.revision, svc.events()
    [fits] = svc.apply([wifi("other-day", 54, 58)], "operator:a", dry_run=True)
    [clash] = svc.apply([wifi("same-day", 31, 33)], "operator:a", dry_run=True)
    assert fits.state == SliceState.SCHEDULED and "would be booked" in fits.message
    assert clash.state == SliceState.REJECTED and "at 2026-12-06 15:00 UTC" in clash.message, clash.message
    assert (svc.revision, svc.events()) == (revision, events)
    assert svc.ledger_snapshot()[0] == {}
