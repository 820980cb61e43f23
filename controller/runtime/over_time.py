"""Admission over time: the ledger as it stands over a window, counting the capacity calendar.

The ledger holds what is reserved now: slices without a schedule and the bookings whose window
has begun. A decision for a window (a booking's, or ``[now, end)`` for everything else) must see
what holds regardless of time plus the most the bookings overlapping that window hold at once
(:meth:`controller.core.calendar.Calendar.peak`). So a slice applied now cannot take capacity a
booking holds for next week, and two bookings on the same afternoon add up while two on different
days do not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

from controller.core import admission
from controller.core.calendar import OPEN_END, Peak, Window, when
from controller.core.ledger import Ledger
from controller.runtime.world import Slot, World
from slices.profiles import SliceIntent

#: The ledger holder of the calendar's peak during a decision (no slice can have this name).
CALENDAR_HOLDER = "@calendar"


@contextlib.contextmanager
def ledger_over(world: World, window: Window, deciding: str) -> Iterator[tuple[Ledger, Peak | None]]:
    """The ledger over ``window`` for a decision about ``deciding`` (its own booking is left out);
    undone on exit. With no booking but ``deciding``'s, the live ledger itself."""
    calendar = world.calendar
    if len(calendar) == 0 or (len(calendar) == 1 and deciding in calendar):
        yield world.ledger, None
        return
    with world.ledger.trial() as ledger:
        # Bookings that have begun are in the ledger as well: count each once, by its window.
        for name in calendar.names():
            if name in ledger.held:
                ledger.release(name)
        peak = calendar.peak(window, exclude=(deciding,))
        if peak.bookings:
            ledger.reserve(CALENDAR_HOLDER, peak.reservation)
        yield ledger, peak


def with_time(
    decision: admission.Decision, peak: Peak | None, window: Window, world: World
) -> admission.Decision:
    """A capacity refusal that names when its binding element is short, if bookings bound it."""
    if decision.outcome != admission.Outcome.REJECTED or peak is None or decision.binding is None:
        return decision
    at = peak.time_of(decision.binding)
    kind, _, name = decision.binding.partition(":")
    if kind == "link":
        a, _, b = name.partition(":")
        index = world.base.link_index.get((a, b))
        at = peak.time_of_link(index) if index is not None else None
    if at is None:
        return decision
    return replace(
        decision,
        message=f"{decision.message}, at {when(at)} (bookings then hold the most of it; window {window})",
    )


def decide(
    world: World, slot: Slot, intent: SliceIntent, now: float, admitted: admission.Admitted | None = None
) -> tuple[admission.Decision, bool]:
    """Admission of ``slot`` over its window; reserves nothing. Returns the decision and whether
    the window lies in the future. ``admitted``: the admitted slices to decide against (a dry
    run's own copy), by default the world's.

    A future booking is decided against the bookings of its window and preempts nothing running
    now; anything else is decided from ``now`` on (to its end, if it has one), against every
    booking that overlaps, and may preempt as admission allows."""
    window = slot.window
    future = window is not None and window.start > now
    if window is not None and future:
        over = window
    else:
        over = Window(now, window.end if window is not None else OPEN_END)
    with ledger_over(world, over, slot.name) as (ledger, peak):
        decision = admission.admit(
            intent,
            world.placing,
            ledger,
            world.admitted if admitted is None else admitted,
            allow_preemption=not future,
        )
    return with_time(decision, peak, over, world), future
