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
import math
from collections.abc import Iterator
from dataclasses import replace

from controller.core import admission
from controller.core.calendar import OPEN_END, ElementKey, Peak, Window, element_keys, when
from controller.core.ledger import Ledger
from controller.core.placement_model import Reservation
from controller.core.topology import Topology
from controller.runtime.world import Slot, World
from slices.profiles import SliceIntent

#: The ledger holder of the calendar's peak during a decision (no slice can have this name).
CALENDAR_HOLDER = "@calendar"


@contextlib.contextmanager
def ledger_over(
    world: World, window: Window, deciding: str, now: float, intent: SliceIntent
) -> Iterator[tuple[Ledger, Peak | None]]:
    """The ledger over ``window`` for a decision about ``deciding`` (its own booking is left out);
    undone on exit. With no booking but ``deciding``'s, the live ledger itself.

    Only the elements ``intent`` can use (:func:`reachable`) are adjusted: there the bookings
    that have begun (in the ledger now) are replaced by the most the window's bookings hold at
    once. Elsewhere the ledger is left as it is: the decision cannot touch it."""
    calendar = world.calendar
    if len(calendar) == 0 or (len(calendar) == 1 and deciding in calendar):
        yield world.ledger, None
        return
    only = reachable(world.placing, intent)
    peak = calendar.peak(window, exclude=(deciding,), only=only)
    # The bookings in the ledger are those whose window contains ``now`` (one that ended but is
    # not expired yet stays counted as the ledger holds it: a moment's caution, never a double booking).
    held = calendar.held(world.ledger.held, exclude=(deciding,), only=only, at=now)
    change = _difference(peak.reservation, held)
    with world.ledger.trial() as ledger:
        if change is not None:
            ledger.reserve(CALENDAR_HOLDER, change)
        yield ledger, peak


def _difference(a: Reservation, b: Reservation) -> Reservation | None:
    """``a - b`` per element (negative where ``b`` holds more); None when it is zero everywhere."""
    out = Reservation()
    for mine, theirs, into in (
        (a.radio_kbps, b.radio_kbps, out.radio_kbps),
        (a.cpu_millicores, b.cpu_millicores, out.cpu_millicores),
        (a.memory_mib, b.memory_mib, out.memory_mib),
    ):
        for key in mine.keys() | theirs.keys():
            d = mine.get(key, 0) - theirs.get(key, 0)
            if d:
                into[key] = d
    for idx in a.link_kbps.keys() | b.link_kbps.keys():
        d = a.link_kbps.get(idx, 0) - b.link_kbps.get(idx, 0)
        if d:
            out.link_kbps[idx] = d
    if not (out.radio_kbps or out.link_kbps or out.cpu_millicores or out.memory_mib):
        return None
    return out


#: (topology, cell) -> the calendar keys of the cell and of all its routes; bounded.
_REACHABLE: dict[tuple[int, str], frozenset[ElementKey]] = {}
_REACHABLE_MAX = 200_000


def reachable(topology: Topology, intent: SliceIntent) -> set[ElementKey]:
    """The elements a placement of ``intent`` can use: its covered cells' radio, and the links
    and edge sites of every route from them (to any edge, whatever the latency bound: a superset
    is as correct and lets the per-cell answer be shared by every slice)."""
    found: set[ElementKey] = set()
    for cell in topology.cells_in(intent.coverage):
        key = (id(topology), cell)
        keys = _REACHABLE.get(key)
        if keys is None:
            routes = topology.routes(cell, math.inf)
            links = {i for r in routes for i in r.links}
            keys = frozenset(element_keys([cell], links, {r.edge for r in routes}))
            if len(_REACHABLE) >= _REACHABLE_MAX:
                _REACHABLE.clear()
            _REACHABLE[key] = keys
        found |= keys
    return found


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


def decision_window(slot: Slot, now: float) -> tuple[Window, bool]:
    """The window a decision about ``slot`` covers, and whether it lies in the future: a future
    booking's own window; otherwise from ``now`` on (to the schedule's end, if it has one)."""
    window = slot.window
    if window is not None and window.start > now:
        return window, True
    return Window(now, window.end if window is not None else OPEN_END), False


def decide(
    world: World, slot: Slot, intent: SliceIntent, now: float, admitted: admission.Admitted | None = None
) -> tuple[admission.Decision, bool]:
    """Admission of ``slot`` over its window; reserves nothing. Returns the decision and whether
    the window lies in the future. ``admitted``: the admitted slices to decide against (a dry
    run's own copy), by default the world's.

    A future booking is decided against the bookings of its window and preempts nothing running
    now; anything else is decided from ``now`` on (to its end, if it has one), against every
    booking that overlaps, and may preempt as admission allows."""
    over, future = decision_window(slot, now)
    with ledger_over(world, over, slot.name, now, intent) as (ledger, peak):
        decision = admission.admit(
            intent,
            world.placing,
            ledger,
            world.admitted if admitted is None else admitted,
            allow_preemption=not future,
            protected=world.calendar,
        )
    return with_time(decision, peak, over, world), future
