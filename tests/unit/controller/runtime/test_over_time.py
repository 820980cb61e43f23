"""Admission over a window decides as the plain definition would: the ledger without the
bookings that have begun, plus every booking's peak over the window, on every element.

``over_time`` adjusts only the elements a slice can reach, by one signed change; this checks,
over random calendars on the small city, that its decisions (outcome, placement, message) are
the ones the plain definition gives."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core import admission
from controller.core.calendar import OPEN_END, Window
from controller.runtime import over_time
from controller.runtime.lifecycle import new_slot
from controller.runtime.service import ControllerService
from slices.profiles import resolve
from tests.support.clock import FakeClock
from tests.support.runtime_helpers import doc, make_service

CELLS = ("c1", "c2", "c3", "c4")
HOUR = 3600.0

booking = st.tuples(
    st.integers(0, 12),  # start, hours from now
    st.one_of(st.integers(1, 6), st.none()),  # length in hours (None: no end)
    st.lists(st.sampled_from(CELLS), min_size=1, max_size=3, unique=True),
    st.integers(10, 150),  # Mbps per cell
    st.sampled_from(["wifi", "iot"]),
)


def _doc(
    name: str, start_h: int, length: int | None, cells: list[str], mbps: int, kind: str, clock: FakeClock
) -> Any:
    start = clock.now() + timedelta(hours=start_h)
    schedule: dict[str, str] = {"start": start.isoformat()}
    if length is not None:
        schedule["end"] = (start + timedelta(hours=length)).isoformat()
    return doc(name, kind, cells, sla={"dlMbpsPerCell": mbps, "ulMbpsPerCell": 0}, schedule=schedule)


def _plain(svc: ControllerService, slot: Any, now: float) -> admission.Decision:
    """The definition: release every booking from a copy of the ledger, reserve the full peak."""
    world = svc._world
    window = slot.window
    future = window is not None and window.start > now
    over = window if future else Window(now, window.end if window is not None else OPEN_END)
    ledger = world.ledger.copy()
    for name in world.calendar.names():
        if name != slot.name:
            ledger.release(name)
    peak = world.calendar.peak(over, exclude=(slot.name,))
    if peak.bookings:
        ledger.reserve(over_time.CALENDAR_HOLDER, peak.reservation)
    decision = admission.admit(
        slot.intent,
        world.placing,
        ledger,
        world.admitted,
        allow_preemption=not future,
        protected=world.calendar,
    )
    return over_time.with_time(decision, peak, over, world)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(booking, min_size=1, max_size=10),
    st.integers(0, 8),
    booking,
    st.booleans(),
)
def test_decisions_over_a_window_match_the_definition(
    tmp_path_factory: Any, bookings: list[Any], advance_h: int, probe: Any, always_on: bool
) -> None:
    clock = FakeClock()
    svc, store = make_service(Path(tmp_path_factory.mktemp("over")), clock=clock)
    try:
        for i, (b_start, b_length, b_cells, b_mbps, b_kind) in enumerate(bookings):
            svc.apply([_doc(f"b{i}", b_start, b_length, b_cells, b_mbps, b_kind, clock)], "operator:a")
        clock.advance(advance_h * HOUR)
        svc.reconcile()  # some windows began (now in the ledger), some ended
        start_h, length, cells, mbps, kind = probe
        if always_on:
            document = doc("probe", kind, cells, sla={"dlMbpsPerCell": mbps, "ulMbpsPerCell": 0})
        else:
            document = _doc("probe", start_h, length, cells, mbps, kind, clock)
        slot = new_slot(document, resolve(document), clock.now())
        now = clock.now().timestamp()
        world = svc._world
        fast, _ = over_time.decide(world, slot, slot.intent, now)
        plain = _plain(svc, slot, now)
        assert (fast.outcome, fast.reason, fast.placement, fast.preempts) == (
            plain.outcome,
            plain.reason,
            plain.placement,
            plain.preempts,
        )
        assert fast.message == plain.message
    finally:
        store.close()
