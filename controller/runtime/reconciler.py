"""The level-based reconcile pass: look at every slice that may need it, work out what it needs
(pure: :func:`needed_work` from the intent, the topology and the current placement), then do
that work in order, one store transaction per decision, realising and recording status.

Running a pass twice changes nothing the second time: a slice needs work only when its intent,
its placement and the world disagree, and a decision that failed is retried only once capacity
has been released since (the world's ``epoch``), so waiting slices do not spin.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from controller.core import admission
from controller.core.placement_model import Placement
from controller.core.topology import LinkKey, Topology
from controller.runtime import over_time
from controller.runtime.observer import ServiceObserver
from controller.runtime.realisation import RealisationResult, Realiser
from controller.runtime.store import Store, Transaction
from controller.runtime.world import SliceState, Slot, World
from slices import errors
from slices.profiles import SliceIntent
from slices.status import ConditionStatus, ConditionType, get_condition, set_condition

_log = logging.getLogger(__name__)

#: ``Slot.realised`` value meaning "every backend confirmed it holds nothing for this slice".
REMOVED: tuple[int, str] = (0, "")

HEALING_FAILED = "HealingFailed"
UPDATE_REJECTED = "UpdateRejected"


class Work(IntEnum):
    """What a slice needs, in the order a pass does it (existing slices before new ones)."""

    EXPIRE = 0  # its schedule's window has ended: release it (first, so the room is free)
    HEAL = 1  # its placement uses a down or drained element, or unserved cells came back
    RECOVER = 2  # healing had failed, and what broke it is back in service
    REVERTED = 3  # an update was refused, and the spec is back to what the placement runs
    ACTIVATE = 4  # Scheduled, and its window has begun: its booked placement becomes live
    UPDATE = 5  # the spec changed: re-admit in place
    ADMIT = 6  # new: decide for the first time
    RETRY = 7  # rejected or preempted, and capacity was released since it last tried
    REALISE = 8  # realisers have not confirmed the current placement (or its removal)


# Placement → (the placement, the sites and the links it uses), by identity. Every failure makes
# the pass ask this of every placed slice (2,000 in a city, ~100 cells each): sets answer it at C
# speed. Bounded: cleared when it outgrows any plausible number of live placements.
_USES: dict[int, tuple[Placement, frozenset[str], frozenset[LinkKey]]] = {}
_USES_MAX = 50_000


def placement_uses(placement: Placement) -> tuple[frozenset[str], frozenset[LinkKey]]:
    """The sites and the links a placement's routes go through (cached per placement object)."""
    hit = _USES.get(id(placement))
    if hit is None or hit[0] is not placement:
        if len(_USES) >= _USES_MAX:
            _USES.clear()
        sites = frozenset(n for a in placement.assignments for n in a.nodes)
        links = frozenset(k for a in placement.assignments for k in a.link_keys())
        hit = _USES[id(placement)] = (placement, sites, links)
    return hit[1], hit[2]


def broken_by(placement: Placement, topology: Topology) -> str | None:
    """Why a placement can no longer run as it is on ``topology`` (None when it can)."""
    if not (topology.down_sites or topology.down_links):
        return None
    sites, links = placement_uses(placement)
    if sites.isdisjoint(topology.down_sites) and links.isdisjoint(topology.down_links):
        return None
    # Broken: name the first element on its routes, in route order, as an operator reads them.
    if topology.down_sites:
        for a in placement.assignments:
            for node in a.nodes:
                if node in topology.down_sites:
                    return f"site {node} is out of service"
    if topology.down_links:
        for a in placement.assignments:
            for key in a.link_keys():
                if key in topology.down_links:
                    return f"link {key[0]}:{key[1]} is out of service"
    return None


def needed_work(slot: Slot, topology: Topology, epoch: int, now: float = -math.inf) -> Work | None:
    """What the slice needs now; pure. ``epoch`` gates retries of decisions that failed; ``now``
    (POSIX seconds) is held against the slice's schedule."""
    window = slot.window
    if window is not None and slot.state != SliceState.EXPIRED:
        if window.end <= now:
            return Work.EXPIRE
        if slot.state == SliceState.SCHEDULED:
            if slot.booked is None:
                return Work.ADMIT  # a spec change dropped the booking: decide again
            return Work.ACTIVATE if window.start <= now else None
    if slot.state == SliceState.EXPIRED:
        return _realise_or_none(slot)
    p = slot.placement
    may_retry = slot.tried_epoch < epoch
    if p is not None:
        if broken_by(p, topology) is not None:
            return Work.HEAL if (slot.reason != HEALING_FAILED or may_retry) else _realise_or_none(slot)
        if slot.reason == HEALING_FAILED:
            return Work.RECOVER
        if p.unserved and may_retry and any(topology.homes(c) for c in p.unserved):
            return Work.HEAL
        if p.spec_hash != slot.intent.spec_hash and (slot.reason != UPDATE_REJECTED or may_retry):
            return Work.UPDATE
        if p.spec_hash == slot.intent.spec_hash and _update_refused(slot):
            return Work.REVERTED
        return _realise_or_none(slot)
    if slot.state == SliceState.PENDING:
        return Work.ADMIT
    if slot.state in (SliceState.REJECTED, SliceState.PREEMPTED) and may_retry:
        return Work.RETRY
    return _realise_or_none(slot)


def _update_refused(slot: Slot) -> bool:
    admitted = get_condition(slot.conditions, ConditionType.ADMITTED)
    return slot.reason == UPDATE_REJECTED or (admitted is not None and admitted.reason == UPDATE_REJECTED)


def _realise_or_none(slot: Slot) -> Work | None:
    want = REMOVED if slot.placement is None else (slot.placed_generation, slot.placement.spec_hash)
    return Work.REALISE if slot.realised != want else None


def order_work(items: Iterable[tuple[Work, Slot]]) -> list[tuple[Work, Slot]]:
    """Heals first, then updates and new slices in arrival order, then retries highest priority first.

    The sort is stable: ``items`` come in arrival order, so ties keep it.
    """

    def key(item: tuple[Work, Slot]) -> tuple[int, int]:
        work, slot = item
        return (work.value, -slot.intent.priority if work in (Work.HEAL, Work.RETRY) else 0)

    return sorted(items, key=key)


def summary(p: Placement) -> str:
    text = f"{len(p.assignments)} cells served from {', '.join(p.edge_sites)}, worst latency {p.worst_latency_ms:.3g} ms"
    if p.unserved:
        text += f"; {len(p.unserved)} covered cells out of service"
    return text


def set_cond(
    slot: Slot, type_: ConditionType, status: ConditionStatus, reason: str, message: str, at: datetime
) -> None:
    slot.conditions = set_condition(slot.conditions, type_, status, reason, message, slot.generation, at)


@dataclass(frozen=True)
class RealisationPolicy:
    """What evidence makes a slice Realised, besides its realisation backends' results.

    ``agents``: None when no agent server runs (site configs are not pushed; said in the
    message), else the agent policy ("all", "edge" or "none", see telemetry.agentlink.settings).
    ``workloads``: in Kubernetes mode, the slice's Deployments must be Available."""

    agents: str | None = None
    workloads: bool = False


def realised_condition(slot: Slot, policy: RealisationPolicy) -> tuple[ConditionStatus, str, str]:
    """(status, reason, message) of the Realised condition of a placed slice, from its evidence:
    True only when every backend applied the placement, its workloads are Available (Kubernetes
    mode) and every site agent the policy requires acked a generation carrying it."""
    b = slot.backends
    if b is None:
        return ConditionStatus.FALSE, "Realising", "waiting for the realisation backends"
    ok, reason, message = b
    if not ok:
        return ConditionStatus.FALSE, reason, message
    parts = [message]
    if policy.workloads:
        w = slot.workloads
        if w is None:
            return ConditionStatus.FALSE, "WorkloadsUnavailable", "no workload availability observed yet"
        if w[0] != ConditionStatus.TRUE:
            return ConditionStatus.FALSE, w[1] or "WorkloadsUnavailable", w[2]
        parts.append(w[2])
    if policy.agents is None:
        parts.append("no agent server runs: site configs are not pushed to agents")
    elif policy.agents == "none":
        parts.append("agent policy none: no site agent confirms the configuration")
    else:
        a = slot.agents
        if a is None:
            return (
                ConditionStatus.FALSE,
                "AwaitingAcks",
                "no site agent has acked the slice's configuration yet",
            )
        if a.refused:
            site, generation, why, text = a.refused[0]
            more = f" (and {len(a.refused) - 1} more sites)" if len(a.refused) > 1 else ""
            return (
                ConditionStatus.FALSE,
                "ConfigRefused",
                f"site {site} refused config generation {generation}: {why}: {text}{more}",
            )
        if a.acked < a.required:
            shown = ", ".join(a.waiting) + (" ..." if a.required - a.acked > len(a.waiting) else "")
            return (
                ConditionStatus.FALSE,
                "AwaitingAcks",
                f"at least {a.acked} of {a.required} sites acked the slice's configuration; waiting for {shown}",
            )
        exempt = f" ({a.exempt} sites without agents by policy {a.policy})" if a.exempt else ""
        parts.append(f"all {a.required} sites acked the configuration{exempt}")
    return ConditionStatus.TRUE, "Applied", "; ".join(p for p in parts if p)


def refresh_realised(slot: Slot, policy: RealisationPolicy, at: datetime) -> None:
    """Set a placed slice's Realised condition from its evidence, then its state and Ready."""
    if slot.placement is not None:
        status, reason, message = realised_condition(slot, policy)
        set_cond(slot, ConditionType.REALISED, status, reason, message, at)
    refresh_readiness(slot, at)


def refresh_readiness(slot: Slot, at: datetime) -> None:
    """Derive the state and the Ready condition of a placed slice from its other conditions."""
    p = slot.placement
    if p is None:
        set_cond(
            slot, ConditionType.READY, ConditionStatus.FALSE, slot.reason or "NotPlaced", slot.message, at
        )
        return
    realised = get_condition(slot.conditions, ConditionType.REALISED)
    sla = get_condition(slot.conditions, ConditionType.SLA_MET)
    admitted = get_condition(slot.conditions, ConditionType.ADMITTED)
    if slot.reason == HEALING_FAILED:
        slot.state = SliceState.DEGRADED
    elif p.unserved:
        slot.state = SliceState.DEGRADED
        slot.reason = "CellsOutOfService"
        shown = ", ".join(p.unserved[:5]) + (" ..." if len(p.unserved) > 5 else "")
        slot.message = f"{len(p.unserved)} covered cells out of service: {shown}"
    elif sla is not None and sla.status == ConditionStatus.FALSE:
        slot.state, slot.reason, slot.message = SliceState.DEGRADED, sla.reason, sla.message
    elif realised is None or realised.status != ConditionStatus.TRUE:
        slot.state = SliceState.ADMITTED
        slot.reason = realised.reason if realised is not None else "Realising"
        slot.message = realised.message if realised is not None else "waiting for realisation"
    elif admitted is not None and admitted.reason == UPDATE_REJECTED:
        slot.state, slot.reason, slot.message = SliceState.READY, UPDATE_REJECTED, admitted.message
    else:
        slot.state, slot.reason, slot.message = SliceState.READY, "", ""
    if slot.state == SliceState.READY:
        set_cond(slot, ConditionType.READY, ConditionStatus.TRUE, "Ready", "slice is serving", at)
    else:
        set_cond(slot, ConditionType.READY, ConditionStatus.FALSE, slot.reason, slot.message, at)


def _status_key(slot: Slot) -> tuple[object, ...]:
    conds = tuple((c.type, c.status, c.reason, c.message, c.observed_generation) for c in slot.conditions)
    return (slot.state, slot.reason, slot.message, slot.placement, conds)


@dataclass
class PassResult:
    changed: int = 0
    errors: int = 0
    more: bool = False  # stopped at max_steps with work left


EventSpec = tuple[str, str | None, str | None, str]  # action, slice, site, message


class Reconciler:
    """Does the work of a pass: decide, commit, install in memory, realise. Callers hold the
    service lock; every commit bumps ``revision`` and wakes audit-trail watchers.
    """

    def __init__(
        self,
        store: Store,
        realisers: Sequence[Realiser],
        now: Callable[[], datetime],
        monotonic: Callable[[], float],
        observer: ServiceObserver,
        on_commit: Callable[[], None],
    ) -> None:
        self.store = store
        self.realisers = list(realisers)
        self.now = now
        self.monotonic = monotonic
        self.observer = observer
        self.on_commit = on_commit
        self.revision = 0
        self.policy = RealisationPolicy()
        self._scanned_epoch = -1
        self.lock = threading.RLock()

    # -- committing ---------------------------------------------------------------------------

    def commit(
        self,
        slots: Iterable[Slot],
        events: Iterable[EventSpec],
        actor: str,
        extra: Callable[[Transaction], None] | None = None,
    ) -> None:
        """One transaction: the slices' rows, their audit events and any extra writes."""
        at = self.now()
        with self.store.transaction() as tx:
            for slot in slots:
                tx.put_slice(slot.to_row())
            for action, name, site, message in events:
                tx.add_event(at, actor, action, message, slice_name=name, site=site)
            if extra is not None:
                extra(tx)
        self.revision += 1
        self.on_commit()

    # -- the pass -----------------------------------------------------------------------------

    def run(
        self, world: World, full: bool = False, max_rounds: int = 8, max_steps: int | None = None
    ) -> PassResult:
        """Do what the slices need; with ``max_steps``, stop early and leave the rest dirty
        (``result.more``) so a caller can release its lock between batches."""
        started = self.monotonic()
        result = PassResult()
        steps = 0
        failed: set[str] = set()  # realisations that failed this pass: retried next pass, not now
        for _ in range(max_rounds):
            self._clean_up_deleted(world, result)
            if full or world.epoch != self._scanned_epoch:
                candidates: Iterable[str] = list(world.slots)
                self._scanned_epoch = world.epoch
                full = False
            else:
                dirty = world.dirty
                candidates = [n for n in world.slots if n in dirty] if len(dirty) > 1 else list(dirty)
            world.dirty.clear()
            now = self.now().timestamp()
            due = world.calendar.pop_due(now)  # windows that began or ended since the last round
            if due:
                candidates = list(dict.fromkeys([*candidates, *due]))
            items = []
            for name in candidates:
                slot = world.slots.get(name)
                if slot is None or name in failed:
                    continue
                work = needed_work(slot, world.topology, world.epoch, now)
                if work is not None:
                    items.append((work, slot))
            if not items:
                break
            ordered = order_work(items)
            for i, (work, slot) in enumerate(ordered):
                if max_steps is not None and steps >= max_steps:
                    world.dirty.update(s.name for _, s in ordered[i:])
                    result.more = True
                    break
                steps += 1
                if world.slots.get(slot.name) is not slot:
                    continue  # replaced by an earlier decision in this round
                try:
                    if self.step(world, work, slot):
                        result.changed += 1
                except errors.StoreError:
                    result.errors += 1
                    raise
                except Exception:  # one slice's bug must not starve the others; it is logged
                    _log.exception("reconciling slice %s (%s) failed", slot.name, work.name)
                    result.errors += 1
                    failed.add(slot.name)
                if (
                    work == Work.REALISE
                    and slot.name in world.slots
                    and _realise_or_none(world.slots[slot.name])
                ):
                    failed.add(slot.name)
                elif slot.name in world.slots:
                    world.dirty.add(slot.name)  # it may need the next step (a decision, then realising)
            if result.more:
                break
        self.observer.reconciled(self.monotonic() - started, result.changed, result.errors)
        return result

    def step(self, world: World, work: Work, slot: Slot) -> bool:
        if work in (Work.ADMIT, Work.RETRY, Work.UPDATE, Work.HEAL):
            return self._decide(world, work, slot)
        if work == Work.ACTIVATE:
            return self._activate(world, slot)
        if work == Work.EXPIRE:
            return self._expire(world, slot)
        if work == Work.RECOVER:
            return self._recover(world, slot)
        if work == Work.REVERTED:
            return self._reverted(world, slot)
        return self._realise(world, slot)

    # -- decisions ----------------------------------------------------------------------------

    def _decide(self, world: World, work: Work, slot: Slot, actor: str = "controller") -> bool:
        intent = slot.placed_intent if (work == Work.HEAL and slot.placed_intent is not None) else slot.intent
        why = broken_by(slot.placement, world.topology) if (work == Work.HEAL and slot.placement) else None
        at = self.now()
        started = self.monotonic()
        decision, future = over_time.decide(world, slot, intent, at.timestamp())
        self.observer.placement_timed(self.monotonic() - started)
        slot.tried_epoch = world.epoch
        if future and decision.outcome == admission.Outcome.ADMITTED and decision.placement is not None:
            return self._booked(world, work, slot, decision, at, actor)
        if decision.outcome == admission.Outcome.ADMITTED and decision.placement is not None:
            if work == Work.HEAL and decision.placement == slot.placement:
                return False
            return self._admitted(world, work, slot, intent, decision, why, at, actor)
        return self._not_admitted(world, work, slot, decision, why, at, actor)

    def _admitted(
        self,
        world: World,
        work: Work,
        slot: Slot,
        intent: SliceIntent,
        decision: admission.Decision,
        why: str | None,
        at: datetime,
        actor: str,
        before: Sequence[EventSpec] = (),
        extra: Callable[[Transaction], None] | None = None,
    ) -> bool:
        placement = decision.placement
        assert placement is not None
        new = dataclasses.replace(slot)
        document = slot.document if intent is slot.intent else None
        new.set_placed(placement, intent, document)
        if document is None:  # healing the placed generation: keep its document
            new._placed_doc = slot._placed_doc
            new.placed_generation = slot.placed_generation
        new.realised = None
        new.backends = new.agents = new.workloads = None  # evidence of the old placement
        if new.reason == HEALING_FAILED:
            new.reason = ""
        set_cond(new, ConditionType.ADMITTED, ConditionStatus.TRUE, decision.reason, decision.message, at)
        set_cond(new, ConditionType.PLACED, ConditionStatus.TRUE, "Placed", summary(placement), at)
        refresh_realised(new, self.policy, at)
        victims = [self._preempted(world.slots[v], slot, at) for v in decision.preempts if v in world.slots]
        action = {
            Work.ADMIT: "admit",
            Work.RETRY: "readmit",
            Work.UPDATE: "readmit",
            Work.HEAL: "heal",
        }[work]
        text = decision.message
        if work == Work.UPDATE:
            text = f"generation {slot.generation} re-admitted in place: {text}"
        elif work == Work.HEAL:
            text = f"re-placed ({why or 'cells back in service'}): {text}"
        elif work == Work.RETRY:
            text = f"admitted after waiting ({slot.reason}): {text}"
        events: list[EventSpec] = [(action, slot.name, None, text)]
        for v in victims:
            events.append(("preempt", v.name, None, v.message))
        self.commit([new, *victims], [*before, *events], actor, extra)
        new.placed_revision = self.revision
        # Memory follows the commit: release the old and the victims, then hold the new.
        world.release(slot.name)
        for v in victims:
            world.release(v.name)
            world.slots[v.name] = v
            world.dirty.add(v.name)
        world.hold(new, placement, intent)
        world.slots[new.name] = new
        world.dirty.add(new.name)
        kind = slot.intent.kind.value
        self.observer.decision(kind, "admitted", decision.reason)
        for v in victims:
            self.observer.preempted(v.intent.kind.value)
        if work == Work.HEAL:
            self.observer.healed(kind, True)
        return True

    def _booked(
        self,
        world: World,
        work: Work,
        slot: Slot,
        decision: admission.Decision,
        at: datetime,
        actor: str,
        before: Sequence[EventSpec] = (),
        extra: Callable[[Transaction], None] | None = None,
    ) -> bool:
        """Admitted for a future window: the placement is held in the calendar, nothing is
        realised until the window begins."""
        placement = decision.placement
        assert placement is not None and slot.window is not None
        new = dataclasses.replace(slot)
        new.booked = placement
        new.state, new.reason = SliceState.SCHEDULED, "Scheduled"
        new.message = f"capacity booked {slot.window}; realised when it begins"
        set_cond(
            new,
            ConditionType.ADMITTED,
            ConditionStatus.TRUE,
            "Booked",
            f"{new.message}: {decision.message}",
            at,
        )
        set_cond(new, ConditionType.PLACED, ConditionStatus.TRUE, "Booked", summary(placement), at)
        set_cond(
            new, ConditionType.REALISED, ConditionStatus.FALSE, "NotStarted", "its window has not begun", at
        )
        refresh_readiness(new, at)
        self.commit(
            [new], [*before, ("book", slot.name, None, f"{new.message}: {decision.message}")], actor, extra
        )
        world.release(slot.name)  # the booking it replaces, if any
        world.book(new, placement)
        world.slots[new.name] = new
        self.observer.decision(slot.intent.kind.value, "admitted", "Booked")
        return True

    def settle(
        self,
        world: World,
        slot: Slot,
        decision: admission.Decision,
        future: bool,
        actor: str,
        before: Sequence[EventSpec],
        extra: Callable[[Transaction], None] | None = None,
    ) -> None:
        """Commit an admission a caller has just decided for a new slice (:meth:`Lifecycle.book`),
        as a pass would, with the caller's events and writes in the same transaction: one
        decision and one commit per booking."""
        assert decision.outcome == admission.Outcome.ADMITTED
        at = self.now()
        slot.tried_epoch = world.epoch
        if future:
            self._booked(world, Work.ADMIT, slot, decision, at, actor, before, extra)
        else:
            self._admitted(world, Work.ADMIT, slot, slot.intent, decision, None, at, actor, before, extra)

    def _activate(self, world: World, slot: Slot) -> bool:
        """The window has begun: the booked placement becomes live (the calendar held its room)."""
        placement = slot.booked
        assert placement is not None
        at = self.now()
        new = dataclasses.replace(slot)
        new.booked = None
        new.set_placed(placement, slot.intent, slot.document)
        began = f"window {slot.window} began: {summary(placement)}"
        new.state, new.reason, new.message = SliceState.ADMITTED, "Active", began
        new.realised = None
        new.backends = new.agents = new.workloads = None
        set_cond(
            new, ConditionType.ADMITTED, ConditionStatus.TRUE, "Active", f"window {slot.window} began", at
        )
        refresh_realised(new, self.policy, at)  # the state and message now say what realising needs
        self.commit([new], [("activate", slot.name, None, began)], "controller")
        new.placed_revision = self.revision
        world.activate(new, placement, slot.intent)
        world.slots[new.name] = new
        world.dirty.add(new.name)
        return True

    def _expire(self, world: World, slot: Slot) -> bool:
        """The window has ended: release everything it holds; realisers remove its workloads."""
        at = self.now()
        window = slot.window
        new = dataclasses.replace(slot)
        new.booked = None
        new.set_placed(None, None, None)
        new.realised = None
        new.backends = new.agents = new.workloads = None
        new.state, new.reason = SliceState.EXPIRED, "Expired"
        new.message = f"window {window} ended; capacity released"
        set_cond(new, ConditionType.ADMITTED, ConditionStatus.FALSE, "Expired", new.message, at)
        set_cond(new, ConditionType.PLACED, ConditionStatus.FALSE, "Expired", "reservation released", at)
        set_cond(new, ConditionType.REALISED, ConditionStatus.FALSE, "Expired", "workloads removed", at)
        refresh_readiness(new, at)
        self.commit([new], [("expire", slot.name, None, new.message)], "controller")
        world.release(slot.name)
        world.slots[new.name] = new
        world.dirty.add(new.name)
        return True

    def _preempted(self, victim: Slot, by: Slot, at: datetime) -> Slot:
        new = dataclasses.replace(victim)
        new.set_placed(None, None, None)
        new.realised = None
        new.backends = new.agents = new.workloads = None
        new.tried_epoch = -1
        new.state = SliceState.PREEMPTED
        new.reason = "Preempted"
        new.message = (
            f"preempted by slice {by.name!r} (priority {by.intent.priority} > {victim.intent.priority}); "
            "re-admitted automatically when capacity is released"
        )
        set_cond(new, ConditionType.ADMITTED, ConditionStatus.FALSE, "Preempted", new.message, at)
        set_cond(new, ConditionType.PLACED, ConditionStatus.FALSE, "Preempted", "reservation released", at)
        set_cond(new, ConditionType.REALISED, ConditionStatus.FALSE, "Preempted", "workloads removed", at)
        refresh_readiness(new, at)
        return new

    def _not_admitted(
        self,
        world: World,
        work: Work,
        slot: Slot,
        decision: admission.Decision,
        why: str | None,
        at: datetime,
        actor: str,
    ) -> bool:
        new = dataclasses.replace(slot)
        kind = slot.intent.kind.value
        if work == Work.UPDATE:
            assert slot.placement is not None
            text = (
                f"generation {slot.generation} does not fit ({decision.reason}: {decision.message}); "
                f"generation {slot.placed_generation} keeps running"
            )
            set_cond(new, ConditionType.ADMITTED, ConditionStatus.FALSE, UPDATE_REJECTED, text, at)
            new.reason = UPDATE_REJECTED
            refresh_readiness(new, at)
            action = "reject"
        elif work == Work.HEAL:
            new.reason = HEALING_FAILED
            new.message = (
                f"{why or 'cells back in service'}; cannot re-place: {decision.reason}: {decision.message}"
            )
            refresh_readiness(new, at)
            text, action = new.message, "degrade"
            self.observer.healed(kind, False)
        elif slot.state == SliceState.PREEMPTED and work == Work.RETRY:
            return False  # still no room; it keeps the reason naming its preemptor
        else:
            new.state, new.reason, new.message = SliceState.REJECTED, decision.reason, decision.message
            set_cond(
                new, ConditionType.ADMITTED, ConditionStatus.FALSE, decision.reason, decision.message, at
            )
            set_cond(new, ConditionType.PLACED, ConditionStatus.FALSE, "NotPlaced", "no placement held", at)
            refresh_readiness(new, at)
            text, action = f"{decision.reason}: {decision.message}", "reject"
        dropped = slot.booked is not None and work != Work.HEAL
        if dropped:
            new.booked = None  # a changed booking that no longer fits gives up its old window
        if _status_key(new) == _status_key(slot) and not dropped:
            return False
        self.commit([new], [(action, slot.name, None, text)], actor)
        if dropped:
            world.release(slot.name)
        world.slots[new.name] = new
        self.observer.decision(kind, "rejected", decision.reason)
        return True

    def _recover(self, world: World, slot: Slot) -> bool:
        at = self.now()
        new = dataclasses.replace(slot)
        new.reason, new.message = "", ""
        refresh_readiness(new, at)
        self.commit(
            [new],
            [("heal", slot.name, None, "out-of-service elements are back; placement valid again")],
            "controller",
        )
        world.slots[new.name] = new
        world.dirty.add(new.name)
        self.observer.healed(slot.intent.kind.value, True)
        return True

    def _reverted(self, world: World, slot: Slot) -> bool:
        """The refused update was taken back: the running placement is this generation's again,
        so the refusal no longer describes the slice."""
        at = self.now()
        new = dataclasses.replace(slot)
        new.reason, new.message = "", ""
        new.placed_generation = slot.generation  # the same spec: the placement holds for it
        new._placed_doc = slot.document.to_wire()
        text = f"generation {slot.generation} has the spec generation {slot.placed_generation} runs: the refused update is withdrawn"
        set_cond(new, ConditionType.ADMITTED, ConditionStatus.TRUE, "Admitted", text, at)
        refresh_readiness(new, at)
        self.commit([new], [("readmit", slot.name, None, text)], "controller")
        world.slots[new.name] = new
        return True

    # -- realisation --------------------------------------------------------------------------

    @staticmethod
    def _remove(backend: Realiser, name: str) -> RealisationResult:
        try:
            return backend.remove(name)
        except Exception as exc:  # a backend bug must not stop the pass; report it on the slice
            _log.exception("realiser %s failed removing %s", backend.name, name)
            return RealisationResult(False, "BackendError", f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _apply(backend: Realiser, intent: SliceIntent, p: Placement, generation: int) -> RealisationResult:
        try:
            return backend.realise(intent, p, generation)
        except Exception as exc:
            _log.exception("realiser %s failed realising %s", backend.name, intent.name)
            return RealisationResult(False, "BackendError", f"{type(exc).__name__}: {exc}")

    def _realise(self, world: World, slot: Slot) -> bool:
        at = self.now()
        p = slot.placement
        if p is None:
            removed = [self._remove(r, slot.name) for r in self.realisers]
            if all(r.ok for r in removed):
                slot.realised = REMOVED
            return False
        intent = slot.placed_intent or slot.intent
        results = [(r.name, self._apply(r, intent, p, slot.placed_generation)) for r in self.realisers]
        new = dataclasses.replace(slot)
        bad = [(name, res) for name, res in results if not res.ok]
        if bad:
            name, res = bad[0]
            new.backends = (False, res.reason, f"{name}: {res.message}")
        else:
            msg = "; ".join(f"{name}: {res.message}" for name, res in results) or "no realisation backend"
            new.backends = (True, "Applied", msg)
        refresh_realised(new, self.policy, at)
        if not bad:
            new.realised = (slot.placed_generation, p.spec_hash)
        changed = _status_key(new) != _status_key(slot)
        if changed:
            events: list[EventSpec] = []
            if bad:
                cond = get_condition(new.conditions, ConditionType.REALISED)
                events.append(("realise-failed", slot.name, None, cond.message if cond else ""))
            self.commit([new], events, "controller")
        world.slots[new.name] = new
        return changed

    def _clean_up_deleted(self, world: World, result: PassResult) -> None:
        for name in sorted(world.deleting):
            results = [self._remove(r, name) for r in self.realisers]
            if all(r.ok for r in results):
                with self.store.transaction() as tx:
                    tx.remove_slice(name)
                world.deleting.discard(name)
            else:
                result.errors += 1
