"""The controller's in-memory view: every slice (its intent, placement and status), the ledger
derived from the placements, and which sites and links are drained or down.

The store is the durable truth; this is its working copy, changed only after a commit succeeds
so memory never runs ahead of the file. Conversions to and from store rows live here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from controller.core import admission
from controller.core.calendar import Calendar, Window, timestamp
from controller.core.ledger import Ledger
from controller.core.placement_model import Placement
from controller.core.topology import LinkKey, Topology
from controller.runtime.realisation import AgentProgress
from controller.runtime.store_rows import SliceRow
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent, resolve
from slices.status import Condition, ConditionStatus


class SliceState(StrEnum):
    PENDING = "Pending"  # stored, not yet decided
    READY = "Ready"  # admitted, placed and realised (and SLA met once agents report)
    ADMITTED = "Admitted"  # admitted and placed, realisation not confirmed yet
    DEGRADED = "Degraded"  # placed but some cells unserved / SLA not met / healing failed
    REJECTED = "Rejected"
    PREEMPTED = "Preempted"  # waits for capacity, re-admitted automatically
    SCHEDULED = "Scheduled"  # admitted for a future window: capacity booked, nothing realised yet
    EXPIRED = "Expired"  # its window ended: capacity released, workloads removed


@dataclass
class Slot:
    """One slice as the controller holds it. ``placed_*`` describe what the placement was made
    for, which lags the intent while an update does not fit (the old size keeps running).
    """

    name: str
    generation: int
    document: NetworkSlice
    intent: SliceIntent
    state: SliceState
    reason: str
    message: str
    placement: Placement | None
    placed_intent: SliceIntent | None
    placed_generation: int
    conditions: tuple[Condition, ...]
    created_at: datetime
    updated_at: datetime
    # Runtime only: the capacity epoch a waiting decision was last tried at, and what the
    # realisers last confirmed (generation, spec hash); None after a restart, so the first
    # pass re-realises everything (backends are idempotent).
    tried_epoch: int = -1
    realised: tuple[int, str] | None = None
    # Runtime only: the evidence the Realised condition is derived from (see
    # controller.runtime.reconciler.realised_condition): what the realisation backends said of the current
    # placement, what the site agents confirmed of it, whether its workloads are available (in
    # Kubernetes mode), and the service revision its placement was committed at (agent progress
    # computed against an older revision is about another placement and is ignored).
    backends: tuple[bool, str, str] | None = None
    agents: AgentProgress | None = None
    workloads: tuple[ConditionStatus, str, str] | None = None
    placed_revision: int = 0
    progress_written_at: float = -1e18  # monotonic time the agent-progress message was last stored
    # A Scheduled slice's placement: held in the capacity calendar for its window, not in the
    # ledger and not realised, until its start (then it becomes ``placement``).
    booked: Placement | None = None

    @property
    def window(self) -> Window | None:
        """The schedule's window, None for a slice that holds from now until deleted."""
        schedule = self.document.spec.schedule
        if schedule is None:
            return None
        return Window(schedule.start.timestamp(), timestamp(schedule.end))

    def to_row(self) -> SliceRow:
        placement: dict[str, Any] | None = None
        if self.placement is not None:
            placement = {**self.placement.to_dict(), "generation": self.placed_generation}
        elif self.booked is not None:
            placement = {**self.booked.to_dict(), "generation": self.generation, "booked": True}
        placed_document = None
        if self.placed_intent is not None and self.placement is not None:
            placed_document = self._placed_doc
        return SliceRow(
            name=self.name,
            generation=self.generation,
            document=self.document.to_wire(),
            spec_hash=self.intent.spec_hash,
            state=self.state.value,
            reason=self.reason,
            message=self.message,
            placement=placement,
            placed_document=placed_document,
            conditions=[c.model_dump(mode="json", by_alias=True) for c in self.conditions],
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    # The document the placement was made for; kept beside the slot so rows round-trip.
    _placed_doc: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_row(cls, row: SliceRow) -> Slot:
        document = NetworkSlice.model_validate(row.document)
        intent = resolve(document)
        placement = placed_intent = booked = None
        placed_generation = 0
        if row.placement is not None and row.placement.get("booked"):
            booked = Placement.from_dict(row.placement)
        elif row.placement is not None:
            placement = Placement.from_dict(row.placement)
            placed_generation = int(row.placement.get("generation", row.generation))
            placed_doc = row.placed_document or row.document
            same = placed_doc == row.document  # the usual case: resolve once
            placed_intent = intent if same else resolve(NetworkSlice.model_validate(placed_doc))
        slot = cls(
            name=row.name,
            generation=row.generation,
            document=document,
            intent=intent,
            state=SliceState(row.state),
            reason=row.reason,
            message=row.message,
            placement=placement,
            placed_intent=placed_intent,
            placed_generation=placed_generation,
            conditions=tuple(Condition.model_validate(c) for c in row.conditions),
            created_at=row.created_at,
            updated_at=row.updated_at,
            booked=booked,
        )
        slot._placed_doc = row.placed_document or (row.document if placement is not None else None)
        return slot

    def set_placed(
        self, placement: Placement | None, intent: SliceIntent | None, document: NetworkSlice | None
    ) -> None:
        self.placement = placement
        self.placed_intent = intent if placement is not None else None
        self.placed_generation = self.generation if placement is not None else 0
        self._placed_doc = document.to_wire() if (placement is not None and document is not None) else None


@dataclass
class World:
    base: Topology
    slots: dict[str, Slot] = field(default_factory=dict)
    drained_sites: set[str] = field(default_factory=set)
    drained_links: set[LinkKey] = field(default_factory=set)
    cordoned_sites: set[str] = field(default_factory=set)  # no new placements there (persisted)
    down_sites: dict[str, str] = field(default_factory=dict)  # site -> reason (agents; not persisted)
    down_links: dict[LinkKey, str] = field(default_factory=dict)
    deleting: set[str] = field(default_factory=set)  # deleted; realisers still to clean up
    dirty: set[str] = field(default_factory=set)  # slices the next pass must look at
    epoch: int = 0  # bumps when capacity is released or the topology improves
    topology: Topology = field(init=False)
    # What new placements may use: ``topology`` without the cordoned sites (the same object when
    # none is cordoned). Existing placements are judged against ``topology``, so a cordon moves nothing.
    placing: Topology = field(init=False)
    ledger: Ledger = field(init=False)
    # By name, indexed by S-NSSAI (admission checks uniqueness at every decision).
    admitted: admission.AdmittedSlices = field(default_factory=admission.AdmittedSlices)
    # What slices with a schedule hold over time (Scheduled ones only there, not in the ledger).
    calendar: Calendar = field(default_factory=Calendar)

    def __post_init__(self) -> None:
        self.topology = self.base
        self.placing = self.base
        self.ledger = Ledger(self.base)

    def retopologise(self) -> None:
        """Rebuild the routed view after a drain, failure or recovery (the ledger is unchanged:
        capacities do not move, only which elements may carry new traffic)."""
        self.topology = self.base.with_down(
            self.drained_sites | set(self.down_sites), self.drained_links | set(self.down_links)
        )
        self.recordon()
        self.dirty.update(n for n, s in self.slots.items() if s.placement is not None)

    def recordon(self) -> None:
        """Rebuild ``placing`` after a cordon or uncordon (nothing else changes)."""
        extra = self.cordoned_sites - self.drained_sites - set(self.down_sites)
        if not extra:
            self.placing = self.topology
            return
        self.placing = self.base.with_down(
            self.drained_sites | set(self.down_sites) | extra, self.drained_links | set(self.down_links)
        )

    def hold(self, slot: Slot, placement: Placement, intent: SliceIntent) -> None:
        """Reserve a placement now (and, for a slice with a schedule, in the calendar too)."""
        reservation = placement.reservation(self.base)
        self.ledger.reserve(slot.name, reservation)
        self.admitted[slot.name] = (intent, placement)
        window = slot.window
        if window is not None:
            self.calendar.put(slot.name, window, reservation)

    def book(self, slot: Slot, placement: Placement) -> None:
        """Hold a placement in the calendar only, for the slice's future window."""
        window = slot.window
        assert window is not None, "only a slice with a schedule is booked"
        self.calendar.put(slot.name, window, placement.reservation(self.base))

    def activate(self, slot: Slot, placement: Placement, intent: SliceIntent) -> None:
        """A booking's window began: its placement goes into the ledger; its calendar entry,
        which held the room, stays as it is (nothing is released, so the epoch does not move)."""
        self.ledger.reserve(slot.name, placement.reservation(self.base))
        self.admitted[slot.name] = (intent, placement)

    def release(self, name: str) -> None:
        if self.ledger.release(name) is not None:
            self.epoch += 1
        if self.calendar.remove(name):
            self.epoch += 1  # a booking's capacity is free again: waiting slices may fit
        self.admitted.pop(name, None)
