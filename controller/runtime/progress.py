"""What agents and workloads report of a slice: its SLA, the site agents' acks, the
workloads' availability and config refusals, and the Realised condition derived from them.

A change of the condition's status or reason is committed at once; a count of acks that only
grew is stored at most every :data:`PROGRESS_WRITE_S` (the stored message says "at least").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from controller.runtime.realisation import AgentProgress
from controller.runtime.reconciler import realised_condition, refresh_readiness, refresh_realised, set_cond
from controller.runtime.service_core import ServiceCore
from controller.runtime.world import Slot
from slices.status import ConditionStatus, ConditionType, get_condition

PROGRESS_WRITE_S = 2.0  # at most this often is a slice's growing ack count stored


class Progress:
    def __init__(self, core: ServiceCore) -> None:
        self.core = core
        self.pending: set[str] = set()  # slices whose stored ack count lags (see record_agent_progress)

    def set_sla(self, name: str, met: bool | None, reason: str, message: str, actor: str) -> None:
        """Record the SLAMet condition (agents' KPIs evaluated by telemetry.agentlink.sla); ``met`` None is
        Unknown: no evidence either way."""
        with self.core.lock:
            slot = self.core.slot(name)
            at = self.core.clock.now()
            old = get_condition(slot.conditions, ConditionType.SLA_MET)
            status = {
                True: ConditionStatus.TRUE,
                False: ConditionStatus.FALSE,
                None: ConditionStatus.UNKNOWN,
            }[met]
            reason = reason or {True: "SLAMet", False: "SLAViolated", None: "NoTelemetry"}[met]
            if old is not None and (old.status, old.reason, old.message) == (status, reason, message):
                return
            new = dataclasses.replace(slot)
            set_cond(new, ConditionType.SLA_MET, status, reason, message, at)
            refresh_readiness(new, at)
            events: list[tuple[str, str | None, str | None, str]] = []
            if met is False and (old is None or old.status != ConditionStatus.FALSE):
                events.append(("sla-violation", name, None, f"{reason}: {message}"))
            elif met is True and old is not None and old.status == ConditionStatus.FALSE:
                events.append(("sla-met", name, None, f"SLA met again: {message}"))
            elif met is None and (old is None or old.status != ConditionStatus.UNKNOWN):
                events.append(("sla-unknown", name, None, f"{reason}: {message}"))
            self.core.reconciler.commit([new], events, actor)
            self.core.world.slots[name] = new

    def require_agents(self, policy: str) -> None:
        """An agent server runs: from now on a slice is Realised only when the site agents the
        ``policy`` requires have acked it (telemetry.agentlink.settings.AGENT_POLICIES)."""
        with self.core.lock:
            rec = self.core.reconciler
            rec.policy = dataclasses.replace(rec.policy, agents=policy)
            self._refresh_realised(list(self.core.world.slots), "controller")

    def record_agent_progress(self, progress: Mapping[str, AgentProgress], actor: str) -> None:
        """What the site agents confirmed of each slice. A change of status or reason is stored at
        once; a count that only grew is stored at most every few seconds (the message says "at
        least", so it stays true meanwhile)."""
        with self.core.lock:
            now = self.core.clock.monotonic()
            changed = []
            due = [
                n
                for n in self.pending
                if n not in self.core.world.slots
                or now - self.core.world.slots[n].progress_written_at >= PROGRESS_WRITE_S
            ]
            self.pending.difference_update(due)
            updates = {
                **{n: self.core.world.slots[n].agents for n in due if n in self.core.world.slots},
                **progress,
            }
            for name, p in updates.items():
                slot = self.core.world.slots.get(name)
                if p is None or slot is None or slot.placement is None or p.revision < slot.placed_revision:
                    continue  # gone, or computed for a placement it no longer has
                new = dataclasses.replace(slot, agents=p)
                before = get_condition(slot.conditions, ConditionType.REALISED)
                status, reason, _ = realised_condition(new, self.core.reconciler.policy)
                same_kind = before is not None and (before.status, before.reason) == (status, reason)
                if (
                    same_kind
                    and reason == "AwaitingAcks"
                    and now - slot.progress_written_at < PROGRESS_WRITE_S
                ):
                    slot.agents = p  # runtime only; the stored message still says "at least" the old count
                    self.pending.add(name)
                    continue
                new.progress_written_at = now
                changed.append(new)
            self._commit_realised(changed, actor)

    @property
    def progress_pending(self) -> bool:
        """Whether an agent-progress count waits to be stored (:meth:`record_agent_progress`
        stores it once due, even when called with nothing new)."""
        return bool(self.pending)

    def record_workloads(self, name: str, status: ConditionStatus, reason: str, message: str) -> None:
        """Whether the slice's workloads are available (a Kubernetes realiser's watch reports it)."""
        with self.core.lock:
            slot = self.core.world.slots.get(name)
            if slot is None or slot.placement is None or slot.workloads == (status, reason, message):
                return
            self._commit_realised(
                [dataclasses.replace(slot, workloads=(status, reason, message))], "kubernetes"
            )

    def config_refused(
        self, site: str, generation: int, reason: str, message: str, slices: Sequence[str]
    ) -> None:
        """A site agent refused a config generation: an event on every slice it carried."""
        with self.core.lock:
            text = f"site {site} refused config generation {generation}: {reason}: {message}"
            events = [
                ("config-refused", name, site, text) for name in slices if name in self.core.world.slots
            ]
            if events:
                self.core.reconciler.commit([], events, f"agent:{site}")

    def _refresh_realised(self, names: Iterable[str], actor: str) -> None:
        self._commit_realised([dataclasses.replace(self.core.world.slots[n]) for n in names], actor)

    def _commit_realised(self, slots: Sequence[Slot], actor: str) -> None:
        """Recompute Realised (and the state and Ready) of ``slots``; commit those that changed."""
        at = self.core.clock.now()
        out = []
        for new in slots:
            old = self.core.world.slots[new.name]
            refresh_realised(new, self.core.reconciler.policy, at)
            if _status_key(new) != _status_key(old):
                out.append(new)
            else:
                self.core.world.slots[new.name] = new  # runtime evidence only
        if not out:
            return
        events = []
        for new in out:
            old_ready = get_condition(self.core.world.slots[new.name].conditions, ConditionType.READY)
            ready = get_condition(new.conditions, ConditionType.READY)
            if (
                ready is not None
                and ready.status == ConditionStatus.TRUE
                and (old_ready is None or old_ready.status != ConditionStatus.TRUE)
            ):
                events.append(("ready", new.name, None, "realised and serving"))
        self.core.reconciler.commit(out, events, actor)
        for new in out:
            self.core.world.slots[new.name] = new


def _status_key(slot: Slot) -> tuple[object, ...]:
    conds = tuple((c.type, c.status, c.reason, c.message) for c in slot.conditions)
    return (slot.state, slot.reason, slot.message, conds)
