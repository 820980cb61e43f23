"""A slice's life: apply (and its dry run), delete, and moving a placed slice elsewhere.

Each operation is a committed decision; what follows from it (admission, realisation, healing)
is the reconciler's pass, run at the end of each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.core import admission
from controller.runtime import over_time
from controller.runtime.reconciler import refresh_readiness, refresh_realised, set_cond, summary
from controller.runtime.service_core import ServiceCore
from controller.runtime.store import Transaction
from controller.runtime.world import SliceState, Slot
from slices import errors
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent, resolve
from slices.status import ConditionStatus, ConditionType


@dataclass(frozen=True)
class ApplyResult:
    name: str
    generation: int
    changed: bool  # False when the same spec was applied again
    state: SliceState
    reason: str
    message: str


class Lifecycle:
    def __init__(self, core: ServiceCore) -> None:
        self.core = core

    def apply(
        self, documents: Sequence[NetworkSlice], actor: str, dry_run: bool = False
    ) -> list[ApplyResult]:
        """Validate (resolve) all, store all in one transaction, then reconcile. Nothing invalid is stored.

        ``dry_run``: the same validation, then the admission decision each changed slice would get
        against the live ledger, in the controller's order (arrival order), each seeing the ones
        before it; nothing is stored or reserved and no event is written."""
        if not documents:
            raise errors.InvalidSpec("apply: no NetworkSlice documents given")
        resolved: list[tuple[NetworkSlice, SliceIntent]] = []
        seen: set[str] = set()
        for doc in documents:
            if doc.name in seen:
                raise errors.InvalidSpec(f"{doc.name}: metadata.name: slice {doc.name!r} appears twice")
            seen.add(doc.name)
            resolved.append((doc, resolve(doc)))
        with self.core.lock:
            # A coverage naming what the city does not have is a typo, not a capacity question:
            # refuse it before anything is stored.
            for _, intent in resolved:
                self._refuse_unknown_places(intent)
            if dry_run:
                return self._dry_run(resolved)
            world = self.core.world
            at = self.core.clock.now()
            changed: list[Slot] = []
            events: list[tuple[str, str | None, str | None, str]] = []
            unchanged: set[str] = set()
            for doc, intent in resolved:
                old = world.slots.get(doc.name)
                if old is None:
                    slot = new_slot(doc, intent, at)
                    _mark_pending(slot, at)
                    changed.append(slot)
                    events.append(
                        (
                            "apply",
                            doc.name,
                            None,
                            f"created (generation 1, {intent.kind.value}, S-NSSAI {intent.snssai})",
                        )
                    )
                elif old.document == doc:
                    unchanged.add(doc.name)
                else:
                    slot = dataclasses.replace(
                        old, document=doc, intent=intent, updated_at=at, tried_epoch=-1
                    )
                    if intent.spec_hash != old.intent.spec_hash:
                        slot.generation = old.generation + 1
                        what = f"spec changed (generation {slot.generation})"
                        if slot.placement is None:
                            slot.state = SliceState.PENDING
                            _mark_pending(slot, at)
                    else:
                        what = "metadata changed"
                    changed.append(slot)
                    events.append(("apply", doc.name, None, what))
            if changed:
                self.core.reconciler.commit(changed, events, actor)
                for slot in changed:
                    world.slots[slot.name] = slot
                    world.deleting.discard(slot.name)
                    world.dirty.add(slot.name)
                self.core.reconciler.run(world)
            results = []
            for doc, _ in resolved:
                slot = world.slots[doc.name]
                results.append(
                    ApplyResult(
                        name=slot.name,
                        generation=slot.generation,
                        changed=doc.name not in unchanged,
                        state=slot.state,
                        reason=slot.reason,
                        message=slot.message,
                    )
                )
            return results

    def _refuse_unknown_places(self, intent: SliceIntent) -> None:
        """A coverage naming sites or zones the city does not have is a typo, not a capacity
        question: :class:`errors.InvalidSpec` before anything is stored."""
        world = self.core.world
        ctx = admission.Context(intent, world.base, world.ledger, {})
        for check in (admission.check_sites_known, admission.check_zones_known):
            violation = check(ctx)
            if violation is not None:
                raise errors.InvalidSpec(f"{intent.name}: {violation[1]}")

    def book(
        self, document: NetworkSlice, actor: str, extra: Callable[[Transaction], None] | None = None
    ) -> ApplyResult:
        """Admit a new slice or store nothing: a booking that does not fit is refused
        (:class:`errors.AdmissionRejected`, naming the binding element and when), not kept as
        Rejected. ``extra``: writes that commit with it (the booking's row)."""
        intent = resolve(document)
        with self.core.lock:
            world = self.core.world
            if document.name in world.slots or document.name in world.deleting:
                raise errors.InvalidSpec(f"{document.name}: metadata.name: slice {document.name!r} exists")
            self._refuse_unknown_places(intent)
            at = self.core.clock.now()
            slot = new_slot(document, intent, at)
            decision, future = over_time.decide(world, slot, intent, at.timestamp())
            if decision.outcome != admission.Outcome.ADMITTED:
                raise errors.AdmissionRejected(decision.reason, decision.message)
            _mark_pending(slot, at)
            applied = ("apply", slot.name, None, f"booked (generation 1, {intent.kind.value})")
            self.core.reconciler.settle(world, slot, decision, future, actor, [applied], extra)
            if not future:
                self.core.reconciler.run(world)  # its window has begun: realise it now
            slot = world.slots[slot.name]
            return ApplyResult(slot.name, slot.generation, True, slot.state, slot.reason, slot.message)

    def _dry_run(self, resolved: Sequence[tuple[NetworkSlice, SliceIntent]]) -> list[ApplyResult]:
        world = self.core.world
        at = self.core.clock.now()
        admitted = admission.AdmittedSlices(world.admitted)
        results: list[ApplyResult] = []
        with world.ledger.trial() as ledger:
            for doc, intent in resolved:
                old = world.slots.get(doc.name)
                if old is not None and (old.document == doc or intent.spec_hash == old.intent.spec_hash):
                    same = old.document == doc
                    results.append(
                        ApplyResult(
                            name=old.name,
                            generation=old.generation,
                            changed=not same,
                            state=old.state,
                            reason=old.reason,
                            message=("unchanged" if same else "metadata changed")
                            + (f"; {old.message}" if old.message else ""),
                        )
                    )
                    continue
                generation = 1 if old is None else old.generation + 1
                probe = new_slot(doc, intent, at, generation)
                # Over its window, against the bookings of the calendar (as the pass would decide).
                decision, future = over_time.decide(world, probe, intent, at.timestamp(), admitted)
                if (
                    future
                    and decision.outcome == admission.Outcome.ADMITTED
                    and decision.placement is not None
                ):
                    window = probe.window
                    results.append(
                        ApplyResult(
                            doc.name,
                            generation,
                            True,
                            SliceState.SCHEDULED,
                            "Scheduled",
                            f"would be booked {window}: {decision.message}",
                        )
                    )
                    continue
                if decision.outcome == admission.Outcome.ADMITTED and decision.placement is not None:
                    for victim in decision.preempts:
                        ledger.release(victim)
                        admitted.pop(victim, None)
                    ledger.release(doc.name)
                    ledger.reserve(doc.name, decision.placement.reservation(world.base))
                    admitted[doc.name] = (intent, decision.placement)
                    message = decision.message
                    if decision.preempts and "preempts" not in message:
                        message += f"; would preempt {', '.join(decision.preempts)}"
                    state, reason = SliceState.ADMITTED, decision.reason
                elif old is not None and old.placement is not None:
                    state, reason = old.state, "UpdateRejected"
                    message = (
                        f"generation {generation} would not fit ({decision.reason}: {decision.message}); "
                        f"generation {old.placed_generation} would keep running"
                    )
                else:
                    state, reason, message = SliceState.REJECTED, decision.reason, decision.message
                results.append(ApplyResult(doc.name, generation, True, state, reason, message))
        return results

    def delete(self, name: str, actor: str, extra: Callable[[Transaction], None] | None = None) -> None:
        """``extra``: writes that commit with the deletion (a booking's row)."""
        with self.core.lock:
            world = self.core.world
            slot = self.core.slot(name)
            at = self.core.clock.now()
            tomb = dataclasses.replace(slot, updated_at=at, booked=None)
            tomb.set_placed(None, None, None)
            row = dataclasses.replace(tomb.to_row(), deleted_at=at)
            if slot.placement:
                held = f"released {summary(slot.placement)}"
            elif slot.booked:
                held = f"released its booking {slot.window}"
            else:
                held = "held nothing"

            def write(tx: Transaction) -> None:
                tx.put_slice(row)
                if extra is not None:
                    extra(tx)

            self.core.reconciler.commit(
                [],
                [("delete", name, None, f"deleted (generation {slot.generation}); {held}")],
                actor,
                extra=write,
            )
            world.release(name)
            del world.slots[name]
            world.deleting.add(name)
            self.core.reconciler.run(world)

    def replace_slice(self, name: str, reason: str, actor: str, avoid: Collection[str] = ()) -> bool:
        """Try to move a slice away from its edge sites and ``avoid`` (sustained SLA violation);
        True if it moved."""
        with self.core.lock:
            world = self.core.world
            slot = self.core.slot(name)
            p, intent = slot.placement, slot.placed_intent
            if p is None or intent is None:
                return False
            away = {*p.edge_sites, *(s for s in avoid if s in world.topology.sites)}
            elsewhere = world.placing.with_down(
                sites=[s for s in sorted(away) if s not in world.placing.down_sites]
            )
            now = self.core.clock.now().timestamp()
            over, _ = over_time.decision_window(slot, now)  # placed, so from now on
            with over_time.ledger_over(world, over, name, now, intent) as (ledger, _):  # later bookings count
                decision = admission.admit(intent, elsewhere, ledger, world.admitted, allow_preemption=False)
            if decision.outcome != admission.Outcome.ADMITTED or decision.placement is None:
                self.core.reconciler.commit(
                    [],
                    [
                        (
                            "heal",
                            name,
                            None,
                            f"cannot move away from {', '.join(p.edge_sites)} ({reason}): {decision.reason}: {decision.message}",
                        )
                    ],
                    actor,
                )
                return False
            at = self.core.clock.now()
            new = dataclasses.replace(slot, realised=None, backends=None, agents=None, workloads=None)
            new.set_placed(decision.placement, intent, None)
            new._placed_doc, new.placed_generation = slot._placed_doc, slot.placed_generation
            set_cond(
                new, ConditionType.PLACED, ConditionStatus.TRUE, "Replaced", summary(decision.placement), at
            )
            refresh_realised(new, self.core.reconciler.policy, at)
            self.core.reconciler.commit(
                [new],
                [
                    (
                        "heal",
                        name,
                        None,
                        f"moved from {', '.join(p.edge_sites)} to {', '.join(decision.placement.edge_sites)}: {reason}",
                    )
                ],
                actor,
            )
            new.placed_revision = self.core.reconciler.revision
            world.release(name)
            world.hold(new, decision.placement, intent)
            world.slots[name] = new
            world.dirty.add(name)
            self.core.observer.healed(intent.kind.value, True)
            self.core.reconciler.run(world)
            return True


def new_slot(document: NetworkSlice, intent: SliceIntent, at: datetime, generation: int = 1) -> Slot:
    """A slice as first stored: Pending, holding nothing."""
    return Slot(
        name=document.name,
        generation=generation,
        document=document,
        intent=intent,
        state=SliceState.PENDING,
        reason="Pending",
        message="waiting for admission",
        placement=None,
        placed_intent=None,
        placed_generation=0,
        conditions=(),
        created_at=at,
        updated_at=at,
    )


def _mark_pending(slot: Slot, at: datetime) -> None:
    """A slice stored and not yet decided: says so on its state and its Admitted condition."""
    slot.reason, slot.message = "Pending", "waiting for admission"
    set_cond(slot, ConditionType.ADMITTED, ConditionStatus.UNKNOWN, "Pending", "waiting for admission", at)
    refresh_readiness(slot, at)
