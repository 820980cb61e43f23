"""Offline planning over time: slices with a schedule decided over their windows, and the plan as
it stands at one instant.

A slice without a schedule holds its capacity at all times: it is in the plan's ledger. A slice
with a schedule holds it only during ``[start, end)``: it is in a capacity calendar
(:class:`controller.core.calendar.Calendar`). Each slice is decided, in the order given (the
controller's), as the live controller decides it (``controller.runtime.over_time``): against the
ledger plus the most the calendar's other slices overlapping its window hold at once, element by
element. So two bookings for the same cells on different days both fit, and two on the same
afternoon are decided on their combined demand; a slice without a schedule overlaps every window.

A slice with a schedule is decided as a booking whose window has not begun (the plan has no
"now"): over its whole window, preempting nothing. A slice without a schedule may preempt slices
without a schedule, as admission allows; the capacity bookings hold is not preemptible.

:meth:`TimedPlan.at` is the plan at one instant: what the slices holding capacity then reserve
(no schedule, or a window containing it). Pure: no clock; times are POSIX seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from controller.core import admission, planner
from controller.core.admission import Decision, Outcome
from controller.core.calendar import OPEN_END, Calendar, Peak, Window, timestamp, when
from controller.core.placement_model import Placement
from controller.core.planner import PlanState
from controller.core.topology import Topology
from slices.intent import Schedule
from slices.profiles import SliceIntent

#: The window of a slice without a schedule: it overlaps every other.
ALWAYS = Window(-math.inf, OPEN_END)
#: The ledger holder of the calendar's peak during a decision (no slice can have this name).
CALENDAR_HOLDER = "@calendar"


def window_of(schedule: Schedule | None) -> Window | None:
    """A schedule's window in POSIX seconds; None for a slice without one."""
    if schedule is None:
        return None
    return Window(schedule.start.timestamp(), timestamp(schedule.end))


def contains(window: Window | None, at: float) -> bool:
    """Whether a slice with this window holds capacity at ``at`` (half-open; None: always)."""
    return window is None or window.start <= at < window.end


def with_time(decision: Decision, peak: Peak | None, window: Window | None, topology: Topology) -> Decision:
    """A capacity refusal that names when its binding element is short, if bookings bound it
    (the live controller's message, ``controller.runtime.over_time.with_time``)."""
    if decision.outcome != Outcome.REJECTED or peak is None or decision.binding is None:
        return decision
    kind, _, name = decision.binding.partition(":")
    at: float | None
    if kind == "link":
        a, _, b = name.partition(":")
        index = topology.link_index.get((a, b))
        at = peak.time_of_link(index) if index is not None else None
    else:
        at = peak.time_of(decision.binding)
    if at is None:
        return decision
    span = f"window {window}" if window is not None else "no schedule: it would hold at all times"
    return replace(
        decision, message=f"{decision.message}, at {when(at)} (bookings then hold the most of it; {span})"
    )


@dataclass
class TimedPlan:
    """The plan over time: slices without a schedule in ``state`` (its ledger holds exactly
    them), admitted slices with a schedule in ``calendar`` and ``booked``."""

    topology: Topology
    state: PlanState
    calendar: Calendar = field(default_factory=Calendar)
    #: Every slice with a schedule, admitted or not.
    windows: dict[str, Window] = field(default_factory=dict)
    booked: dict[str, tuple[SliceIntent, Placement]] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)

    @classmethod
    def empty(cls, topology: Topology) -> TimedPlan:
        return cls(topology, PlanState.empty(topology))

    def final(self) -> dict[str, Decision]:
        """The last decision taken for each slice (a preempted slice's last word is PREEMPTED)."""
        return {d.slice_name: d for d in self.decisions}

    def window(self, name: str) -> Window | None:
        return self.windows.get(name)

    def holds_at(self, name: str, at: float) -> bool:
        """Whether ``name`` is admitted and holds capacity at ``at``."""
        if name in self.booked:
            return contains(self.windows[name], at)
        return name in self.state.admitted

    def at(self, at: float) -> PlanState:
        """The plan at one instant: the slices without a schedule and the bookings whose window
        contains ``at``, their reservations in the ledger (a copy; this plan is unchanged)."""
        ledger = self.state.ledger.copy()
        admitted = admission.AdmittedSlices(self.state.admitted)
        for name, (intent, placement) in self.booked.items():
            if contains(self.windows[name], at):
                ledger.reserve(name, placement.reservation(self.topology))
                admitted[name] = (intent, placement)
        return PlanState(self.topology, ledger, admitted)

    def peak(self) -> PlanState:
        """The most held at once, element by element, over every window: the slices without a
        schedule plus the calendar's peak (held by :data:`CALENDAR_HOLDER`). Its ``admitted``
        are the slices without a schedule only."""
        ledger = self.state.ledger.copy()
        if len(self.calendar):
            ledger.reserve(CALENDAR_HOLDER, self.calendar.peak(ALWAYS).reservation)
        return PlanState(self.topology, ledger, admission.AdmittedSlices(self.state.admitted))

    def _seen_by(self, name: str, window: Window) -> admission.AdmittedSlices:
        """The admitted slices a decision over ``window`` checks its S-NSSAI against: those
        without a schedule and the bookings that overlap it."""
        seen = admission.AdmittedSlices(self.state.admitted)
        for other in self.calendar.overlapping(window, exclude=(name,)):
            seen[other] = self.booked[other]
        return seen

    def submit(self, intent: SliceIntent, window: Window | None) -> list[Decision]:
        """Decide one slice over its window (None: at all times) and apply the decision."""
        name = intent.name
        over = window if window is not None else ALWAYS
        state = self.state
        with state.ledger.trial() as ledger:
            peak: Peak | None = None
            if any(other != name for other in self.calendar.names()):
                peak = self.calendar.peak(over, exclude=(name,))
                if peak.bookings:
                    ledger.reserve(CALENDAR_HOLDER, peak.reservation)
            decision = admission.admit(
                intent, self.topology, ledger, self._seen_by(name, over), allow_preemption=window is None
            )
        decision = with_time(decision, peak, window, self.topology)
        if window is None:
            out = planner.apply_decision(state, intent, decision)
        else:
            self.windows[name] = window
            if decision.outcome == Outcome.ADMITTED and decision.placement is not None:
                self.calendar.put(name, window, decision.placement.reservation(self.topology))
                self.booked[name] = (intent, decision.placement)
                state.rejected.pop(name, None)
            else:
                self.calendar.remove(name)
                self.booked.pop(name, None)
                state.rejected[name] = decision
            out = [decision]
        self.decisions += out
        return out


def plan(
    intents: Sequence[SliceIntent], topology: Topology, windows: Mapping[str, Window | None]
) -> TimedPlan:
    """Decide slices one by one in the order given (the controller's), each over its window
    (``windows[name]``; missing or None: no schedule, at all times).

    >>> from controller.core.examples import small_city, wifi
    >>> city = small_city(radio_mbps=200)     # c1 - a1 - e1
    >>> day = 86_400.0
    >>> result = plan([wifi("sat", "000001", 150), wifi("sun", "000002", 150)], city,
    ...               {"sat": Window(0, day), "sun": Window(day, 2 * day)})
    >>> [(d.slice_name, d.outcome.value) for d in result.decisions]
    [('sat', 'admitted'), ('sun', 'admitted')]
    >>> result.at(day / 2).ledger.radio_kbps, result.holds_at("sun", day / 2)
    ({'c1': 150000}, False)
    """
    out = TimedPlan.empty(topology)
    for intent in intents:
        out.submit(intent, windows.get(intent.name))
    return out
