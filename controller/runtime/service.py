"""The controller's one entry point for everything that changes or reads slice state.

The operator gRPC API, the agent service, the Kubernetes NetworkSlice watcher and the demo all
call this class; none of them touches the store or the ledger directly. It is thread-safe (one
lock: decisions are serialised, reads see committed state).

The names and signatures below are the agreed interface between the runtime (controller.runtime.service
/ store / reconciler), the operator API (controller.api.server), the agents (telemetry.*),
Kubernetes (controller.kube_*) and metrics (telemetry.metrics.exporter). The service does the operator's
and agents' operations itself (each a committed decision) and leaves the rest to the
level-based pass in :mod:`controller.runtime.reconciler`.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pydantic

from controller.core import admission, whatif
from controller.core.capacity import CapacityView
from controller.core.placement_model import Placement
from controller.core.topology import LinkKey, Topology, parse_link_key
from controller.core.topology_file import TopologyFile
from controller.runtime.clock import Clock
from controller.runtime.observer import NullObserver, ServiceObserver
from controller.runtime.realisation import AgentProgress, Realiser
from controller.runtime.reconciler import (
    RealisationPolicy,
    Reconciler,
    placement_uses,
    realised_condition,
    refresh_readiness,
    refresh_realised,
    set_cond,
    summary,
)
from controller.runtime.store import Store, Transaction, bad_row
from controller.runtime.world import SliceState, Slot, World
from slices import errors
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent, resolve
from slices.status import Condition, ConditionStatus, ConditionType, get_condition

__all__ = [
    "ApplyResult",
    "ControllerService",
    "DrainReport",
    "Event",
    "SiteStatus",
    "SliceMove",
    "SliceRecord",
    "SliceState",
    "TopologyStatus",
]


@dataclass(frozen=True)
class SliceRecord:
    name: str
    generation: int  # bumps on every spec change
    document: NetworkSlice
    intent: SliceIntent
    state: SliceState
    placement: Placement | None
    conditions: tuple[Condition, ...]
    reason: str  # CamelCase reason of the current state ("" when Ready)
    message: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Event:
    """One line of the audit trail."""

    seq: int
    at: datetime
    actor: str  # "operator:<token name>", "controller", "agent:<site>", "kubernetes"
    action: str  # apply, delete, admit, reject, preempt, readmit, heal, degrade, drain, undrain, site-down, site-up, link-down, link-up, sla-violation
    slice: str | None
    site: str | None
    message: str


@dataclass(frozen=True)
class ApplyResult:
    name: str
    generation: int
    changed: bool  # False when the same spec was applied again
    state: SliceState
    reason: str
    message: str


@dataclass(frozen=True)
class SliceMove:
    """What a drain did to one slice."""

    slice: str
    outcome: str  # "Moved", "Preempted", "NotMoved" or "CellOutOfService"
    message: str


#: Drain outcomes: re-placed off the site; lost its placement to a slice the drain moved; still on
#: the drained site (no room elsewhere: Degraded, healed when room appears); the drained site is
#: one of its covered cells, now out of service (its other cells keep being served).
MOVED, PREEMPTED, NOT_MOVED, CELL_OUT = "Moved", "Preempted", "NotMoved", "CellOutOfService"


@dataclass(frozen=True)
class DrainReport:
    site: str
    already_drained: bool
    moves: tuple[SliceMove, ...]

    @property
    def moved(self) -> list[str]:
        return [m.slice for m in self.moves if m.outcome == MOVED]


@dataclass(frozen=True)
class SiteStatus:
    site: str
    kind: str
    up: bool
    drained: bool
    reason: str
    cpu_reserved: int
    cpu_capacity: int
    memory_reserved: int
    memory_capacity: int
    radio_reserved_kbps: int
    radio_capacity_kbps: int
    slices: int  # slices with a route through or workloads at this site
    cordoned: bool = False  # no new placements there


@dataclass(frozen=True)
class TopologyStatus:
    name: str
    sites: tuple[SiteStatus, ...]
    down_links: tuple[LinkKey, ...]
    link_utilisation: tuple[tuple[LinkKey, int, int], ...] = field(
        default=()
    )  # (link, reserved, capacity), busiest first


class ControllerService:
    def __init__(
        self,
        topology: Topology,
        store: Store,
        realisers: Sequence[Realiser],
        clock: Clock,
        observer: ServiceObserver | None = None,
        workloads_evidence: bool = False,
    ) -> None:
        """Load the stored slices and maintenance, rebuild the ledger from the placements.

        ``workloads_evidence``: a realiser reports workload availability (Kubernetes mode), and a
        slice is Realised only once it says Available (:meth:`record_workloads`)."""
        self._lock = threading.RLock()
        self._events_cond = threading.Condition()
        self._store = store
        self._clock = clock
        self._observer: ServiceObserver = observer or NullObserver()
        self._world = World(topology)
        # topology_status(): the last answer, by (service revision, ledger revision).
        self._status_cache: tuple[tuple[int, int], TopologyStatus] | None = None
        self._reconciler = Reconciler(
            store, realisers, clock.now, clock.monotonic, self._observer, self._notify
        )
        #: Called as (kind, name, drained, actor) before a drain or undrain is committed; raising
        #: refuses it. The runtime keeps the cluster's copy of the operator state this way.
        self.maintenance_hook: Callable[[str, str, bool, str], None] | None = None
        self._reconciler.policy = RealisationPolicy(None, workloads_evidence)
        self._progress_pending: set[str] = (
            set()
        )  # slices whose stored ack count lags (see record_agent_progress)
        #: The newest audit event before this service loaded: what it decides, from loading on
        #: (a stored placement that no longer fits), comes after (the decision log starts here).
        self.first_seq_after = store.last_event_seq()
        self._load()

    # -- start-up -----------------------------------------------------------------------------

    def _load(self) -> None:
        # Thousands of long-lived objects are created here and none is garbage: pausing the
        # cyclic collector meanwhile halves the restart time (bench/bench_restart.py).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._load_rows()
        finally:
            if was_enabled:
                gc.enable()

    def _load_rows(self) -> None:
        world = self._world
        for m in self._store.maintenance():
            if m.kind == "site" and m.name in world.base.sites:
                world.drained_sites.add(m.name)
            elif m.kind == "cordon" and m.name in world.base.sites:
                world.cordoned_sites.add(m.name)
            elif m.kind == "link":
                key = parse_link_key(m.name)
                if key in world.base.link_index:
                    world.drained_links.add(key)
        if world.drained_sites or world.drained_links:
            world.retopologise()
        elif world.cordoned_sites:
            world.recordon()
        invalid: list[Slot] = []
        slots: list[Slot] = []
        for row in self._store.load_slices():
            if row.deleted_at is not None:
                world.deleting.add(row.name)
                continue
            try:
                slots.append(Slot.from_row(row))
            except (errors.EdgesliceError, pydantic.ValidationError, KeyError, ValueError, TypeError) as exc:
                raise bad_row(self._store.path, row.name, exc) from exc  # one line, names the slice
        # Rebuild reservations, most important first; a placement that no longer fits the
        # topology (a changed file) is dropped and decided again, never double-booked.
        at = self._clock.now()
        for slot in sorted(
            slots, key=lambda s: (-(s.placed_intent or s.intent).priority, s.created_at, s.name)
        ):
            world.slots[slot.name] = slot
            p = slot.placement
            if p is None or slot.placed_intent is None:
                continue
            try:
                res = p.reservation(world.base)
                short = world.ledger.shortfall(res)
            except errors.NotFound as exc:
                short, why = None, str(exc)
            else:
                why = f"{short.element} {short.name} no longer has room" if short else ""
            if why:
                slot.set_placed(None, None, None)
                slot.state, slot.reason = SliceState.PENDING, "PlacementInvalid"
                slot.message = f"stored placement does not fit the topology ({why}); deciding again"
                set_cond(slot, ConditionType.PLACED, ConditionStatus.FALSE, slot.reason, slot.message, at)
                invalid.append(slot)
                continue
            world.ledger.reserve(slot.name, res)
            world.admitted[slot.name] = (slot.placed_intent, p)
        world.slots = dict(sorted(world.slots.items(), key=lambda kv: (kv[1].created_at, kv[0])))
        if invalid:
            self._reconciler.commit(
                invalid, [("degrade", s.name, None, s.message) for s in invalid], "controller"
            )
        world.dirty.update(world.slots)

    def _notify(self) -> None:
        with self._events_cond:
            self._events_cond.notify_all()

    def _record(self, slot: Slot) -> SliceRecord:
        return SliceRecord(
            name=slot.name,
            generation=slot.generation,
            document=slot.document,
            intent=slot.intent,
            state=slot.state,
            placement=slot.placement,
            conditions=slot.conditions,
            reason=slot.reason,
            message=slot.message,
            created_at=slot.created_at,
            updated_at=slot.updated_at,
        )

    def _slot(self, name: str) -> Slot:
        slot = self._world.slots.get(name)
        if slot is None:
            raise errors.NotFound(f"slice {name!r} not found")
        return slot

    # -- operator operations ----------------------------------------------------------------
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
        with self._lock:
            # A coverage naming what the city does not have is a typo, not a capacity question:
            # refuse it before anything is stored.
            for _, intent in resolved:
                ctx = admission.Context(intent, self._world.base, self._world.ledger, {})
                for check in (admission.check_sites_known, admission.check_zones_known):
                    violation = check(ctx)
                    if violation is not None:
                        raise errors.InvalidSpec(f"{intent.name}: {violation[1]}")
            if dry_run:
                return self._dry_run(resolved)
            world = self._world
            at = self._clock.now()
            changed: list[Slot] = []
            events: list[tuple[str, str | None, str | None, str]] = []
            unchanged: set[str] = set()
            for doc, intent in resolved:
                old = world.slots.get(doc.name)
                if old is None:
                    slot = Slot(
                        name=doc.name,
                        generation=1,
                        document=doc,
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
                self._reconciler.commit(changed, events, actor)
                for slot in changed:
                    world.slots[slot.name] = slot
                    world.deleting.discard(slot.name)
                    world.dirty.add(slot.name)
                self._reconciler.run(world)
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

    def _dry_run(self, resolved: Sequence[tuple[NetworkSlice, SliceIntent]]) -> list[ApplyResult]:
        world = self._world
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
                decision = admission.admit(intent, world.placing, ledger, admitted)
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

    def delete(self, name: str, actor: str) -> None:
        with self._lock:
            world = self._world
            slot = self._slot(name)
            at = self._clock.now()
            tomb = dataclasses.replace(slot, updated_at=at)
            tomb.set_placed(None, None, None)
            row = dataclasses.replace(tomb.to_row(), deleted_at=at)
            held = f"released {summary(slot.placement)}" if slot.placement else "held nothing"
            self._reconciler.commit(
                [],
                [("delete", name, None, f"deleted (generation {slot.generation}); {held}")],
                actor,
                extra=lambda tx: tx.put_slice(row),
            )
            world.release(name)
            del world.slots[name]
            world.deleting.add(name)
            self._reconciler.run(world)

    def get(self, name: str) -> SliceRecord:
        with self._lock:
            return self._record(self._slot(name))

    def list_slices(self) -> list[SliceRecord]:
        with self._lock:
            return [self._record(s) for s in self._world.slots.values()]

    def explain(self, name: str) -> dict[str, object]:
        """Why the slice is where it is: the decision, checks passed/failed, binding constraint, routes."""
        with self._lock:
            slot = self._slot(name)
            intent = slot.intent
            out: dict[str, object] = {
                "slice": slot.name,
                "generation": slot.generation,
                "state": slot.state.value,
                "reason": slot.reason,
                "message": slot.message,
                "resolved": {
                    "kind": intent.kind.value,
                    "snssai": intent.snssai,
                    "latencyMs": intent.latency_ms,
                    "kbpsPerCell": intent.kbps_per_cell,
                    "priority": intent.priority,
                    "preemptible": intent.preemptible,
                    "fiveQI": intent.five_qi,
                },
                "conditions": [c.model_dump(mode="json", by_alias=True) for c in slot.conditions],
            }
            admitted_cond = get_condition(slot.conditions, ConditionType.ADMITTED)
            if admitted_cond is not None:
                out["decision"] = {
                    "status": admitted_cond.status.value,
                    "reason": admitted_cond.reason,
                    "message": admitted_cond.message,
                }
            ctx = admission.Context(intent, self._world.topology, self._world.ledger, self._world.admitted)
            checks = []
            for check in admission.CHECKS:
                violation = check(ctx)
                label = check.__name__.removeprefix("check_")
                checks.append(
                    {
                        "check": label,
                        "passed": violation is None,
                        **({"reason": violation[0], "message": violation[1]} if violation else {}),
                    }
                )
            out["checks"] = checks
            if slot.placement is not None:
                p = slot.placement
                out["placement"] = {
                    "generation": slot.placed_generation,
                    "edges": [
                        {
                            "site": e.site,
                            "cells": e.cells,
                            "cpuMillicores": e.cpu_millicores,
                            "memoryMib": e.memory_mib,
                        }
                        for e in p.edges
                    ],
                    "worstLatencyMs": p.worst_latency_ms,
                    "routes": [
                        {"cell": a.cell, "edge": a.edge, "path": list(a.nodes), "latencyMs": a.latency_ms}
                        for a in p.assignments
                    ],
                    "unserved": list(p.unserved),
                }
            elif slot.state in (SliceState.REJECTED, SliceState.PREEMPTED, SliceState.PENDING):
                out["bindingConstraint"] = {"reason": slot.reason, "message": slot.message}
            return out

    def events(self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None) -> list[Event]:
        if limit <= 0:
            raise errors.InvalidSpec(f"limit: must be positive, got {limit}")
        return [
            Event(
                seq=r.seq,
                at=r.at,
                actor=r.actor,
                action=r.action,
                slice=r.slice,
                site=r.site,
                message=r.message,
            )
            for r in self._store.events(after_seq, limit, slice_name)
        ]

    def wait_events(self, after_seq: int, timeout_s: float) -> list[Event]:
        """Block until events newer than ``after_seq`` exist or the timeout passes (for watch/follow)."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._events_cond:
            while True:
                found = self.events(after_seq)
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                self._events_cond.wait(left)

    def topology(self) -> Topology:
        """The topology as the controller sees it now (with down and drained elements)."""
        with self._lock:
            return self._world.topology

    def topology_file(self) -> TopologyFile:
        """The topology file the controller runs on (what a simulator of this city needs)."""
        return self._world.base.source

    def capacity(self) -> CapacityView:
        """Every site's and link's capacity, reserved and free figures (the ledger's view; the
        same object until a reservation moves). Which sites are up, drained or cordoned is
        :meth:`topology_status`'s (or :meth:`topology`'s and :meth:`cordoned`'s) to say."""
        with self._lock:
            return self._world.ledger.capacity()

    def topology_status(self) -> TopologyStatus:
        """Every site's and busy link's capacity figures, derived from :meth:`capacity` and the
        sites' state; the same answer until the state moves."""
        with self._lock:
            view = self._world.ledger.capacity()
            key = (self.revision, view.revision)
            cached = self._status_cache
            if cached is None or cached[0] != key:
                cached = self._status_cache = (key, self._topology_status(view))
            return cached[1]

    def _topology_status(self, view: CapacityView) -> TopologyStatus:
        world = self._world
        drained, down, cordoned = world.drained_sites, world.down_sites, world.cordoned_sites
        sites = [
            SiteStatus(
                site=sid,
                kind=kind,
                up=True,
                drained=False,
                reason="",
                cpu_reserved=cpu,
                cpu_capacity=cpu_cap,
                memory_reserved=mem,
                memory_capacity=mem_cap,
                radio_reserved_kbps=radio,
                radio_capacity_kbps=radio_cap,
                slices=users,
            )
            for sid, kind, cpu, cpu_cap, mem, mem_cap, radio, radio_cap, users in zip(
                view.sites,
                view.kinds,
                view.cpu_reserved_millicores.tolist(),
                view.cpu_capacity_millicores.tolist(),
                view.memory_reserved_mib.tolist(),
                view.memory_capacity_mib.tolist(),
                view.radio_reserved_kbps.tolist(),
                view.radio_capacity_kbps.tolist(),
                view.slices.tolist(),
                strict=True,
            )
        ]
        for sid in {*down, *drained, *cordoned}:  # few
            i = view.site_index[sid]
            sites[i] = dataclasses.replace(
                sites[i],
                up=sid not in down,
                drained=sid in drained,
                reason="Drained"
                if sid in drained
                else down.get(sid, "") or ("Cordoned" if sid in cordoned else ""),
                cordoned=sid in cordoned,
            )
        busiest = view.busiest_links.tolist()
        keys, reserved, capacity = view.links, view.link_reserved_kbps, view.link_capacity_kbps
        return TopologyStatus(
            name=world.base.name,
            sites=tuple(sites),
            down_links=tuple(sorted(set(world.down_links) | world.drained_links)),
            link_utilisation=tuple(
                zip(
                    [keys[i] for i in busiest],
                    reserved[busiest].tolist(),
                    capacity[busiest].tolist(),
                    strict=True,
                )
            ),
        )

    def _affected(self, site: str | None = None, link: LinkKey | None = None) -> list[str]:
        out = []
        for slot in self._world.slots.values():
            p = slot.placement
            if p is not None and (
                (site is not None and p.uses_site(site)) or (link is not None and p.uses_link(link))
            ):
                out.append(slot.name)
        return out

    def drain(self, site: str, actor: str) -> list[str]:
        """Take a site out of service for maintenance; returns the slices re-placed."""
        return self.drain_report(site, actor).moved

    def drain_report(self, site: str, actor: str) -> DrainReport:
        """Take a site out of service for maintenance; says what became of every slice it
        concerned: moved off it, preempted by a slice that moved, or still on it."""
        with self._lock:
            world = self._world
            world.base.site(site)
            if site in world.drained_sites:
                return DrainReport(site, True, ())
            affected = self._affected(site=site)
            placed_before = {n for n, s in world.slots.items() if s.placement is not None}
            self._commit_maintenance(
                "site",
                site,
                True,
                "drain",
                f"site {site} drained for maintenance; {len(affected)} slices use it",
                actor,
            )
            world.drained_sites.add(site)
            world.retopologise()
            self._reconciler.run(world)
            return DrainReport(site, False, tuple(self._moves(site, affected, placed_before)))

    def _moves(self, site: str, affected: Sequence[str], placed_before: set[str]) -> list[SliceMove]:
        world = self._world
        out: list[SliceMove] = []
        preempted = {
            n
            for n in placed_before
            if (s := world.slots.get(n)) is not None
            and s.placement is None
            and s.state == SliceState.PREEMPTED
        }
        for name in sorted({*affected, *preempted}):
            slot = world.slots.get(name)
            if slot is None:
                continue
            p = slot.placement
            if name in preempted:
                out.append(SliceMove(name, PREEMPTED, slot.message))
            elif p is None:
                out.append(SliceMove(name, NOT_MOVED, f"lost its placement: {slot.reason}: {slot.message}"))
            elif site in p.unserved:
                out.append(SliceMove(name, CELL_OUT, f"covered cell {site} is out of service; {summary(p)}"))
            elif p.uses_site(site):
                out.append(SliceMove(name, NOT_MOVED, f"{slot.reason or slot.state.value}: {slot.message}"))
            else:
                out.append(SliceMove(name, MOVED, f"now {summary(p)}"))
        return out

    def cordon(self, site: str, actor: str) -> tuple[bool, list[str]]:
        """No new placements on ``site``; nothing moves. Returns (changed, the slices placed there)."""
        with self._lock:
            world = self._world
            world.base.site(site)
            on_site = self._affected(site=site)
            if site in world.cordoned_sites:
                return False, on_site
            self._commit_maintenance(
                "cordon",
                site,
                True,
                "cordon",
                f"site {site} cordoned: no new placements; {len(on_site)} slices stay on it",
                actor,
            )
            world.cordoned_sites.add(site)
            world.recordon()
            return True, on_site

    def uncordon(self, site: str, actor: str) -> bool:
        """Allow new placements on a cordoned site again; False when it was not cordoned."""
        with self._lock:
            world = self._world
            world.base.site(site)
            if site not in world.cordoned_sites:
                return False
            self._commit_maintenance(
                "cordon", site, False, "uncordon", f"site {site} uncordoned: new placements allowed", actor
            )
            world.cordoned_sites.discard(site)
            world.epoch += 1  # waiting slices may fit now
            world.recordon()
            self._reconciler.run(world)
            return True

    def cordoned(self) -> list[str]:
        with self._lock:
            return sorted(self._world.cordoned_sites)

    def undrain(self, site: str, actor: str) -> list[str]:
        with self._lock:
            world = self._world
            world.base.site(site)
            if site not in world.drained_sites:
                return []
            self._commit_maintenance("site", site, False, "undrain", f"site {site} back in service", actor)
            world.drained_sites.discard(site)
            world.epoch += 1
            world.retopologise()
            before = {n: s.placement for n, s in world.slots.items()}
            self._reconciler.run(world)
            return [
                n for n, s in world.slots.items() if s.placement is not None and before.get(n) != s.placement
            ]

    def _commit_maintenance(
        self, kind: str, site: str, on: bool, action: str, message: str, actor: str
    ) -> None:
        """Record a drain or cordon of ``site`` (``on``) or its end: first where the cluster keeps
        it (the hook, in Kubernetes mode; a refusal there refuses the operation), then in the
        store with its audit event, in one transaction."""
        if self.maintenance_hook is not None:
            self.maintenance_hook(kind, site, on, actor)
        at = self._clock.now()

        def record(tx: Transaction) -> None:
            if on:
                tx.set_maintenance(kind, site, at, actor)
            else:
                tx.clear_maintenance(kind, site)

        self._reconciler.commit([], [(action, None, site, message)], actor, extra=record)

    def what_if(self, fail_sites: Sequence[str], fail_links: Sequence[LinkKey]) -> dict[str, object]:
        with self._lock:
            world = self._world
            report = whatif.what_if(world.topology, dict(world.admitted), fail_sites, fail_links, world.ledger)
        return report.to_dict()

    def reconcile(self) -> int:
        """One level-based pass; returns how many slices changed. Running it twice changes nothing."""
        with self._lock:
            return self._reconciler.run(self._world, full=True).changed

    def reconcile_batch(self, max_steps: int, full: bool = False) -> tuple[int, bool]:
        """Part of a pass, at most ``max_steps`` slices, so the lock is released between batches
        (a restart re-realising thousands of slices does not stall the API). Returns (changed,
        more work left)."""
        with self._lock:
            result = self._reconciler.run(self._world, full=full, max_steps=max_steps)
            return result.changed, result.more

        # -- what agents report (issue 4) --------------------------------------------------------

    def site_down(self, site: str, reason: str, actor: str) -> list[str]:
        """A site stopped (missed lease); heal the slices it served. Returns the slices affected."""
        return self.sites_down([(site, reason)], actor)

    def sites_down(self, downs: Sequence[tuple[str, str]], actor: str) -> list[str]:
        """Several sites stopped at once, as (site, reason): many leases expiring in one check.

        One decision: their site-down events are committed in one transaction, the topology is
        re-routed once, and one healing pass follows (each re-placement its own transaction, as
        every decision is). Sites already down are skipped; an unknown site is refused before
        anything is recorded. Returns the slices affected, in slice order.
        """
        with self._lock:
            world = self._world
            for site, _ in downs:
                world.base.site(site)
            fresh: dict[str, str] = {}
            for site, reason in downs:
                if site not in world.down_sites and site not in fresh:
                    fresh[site] = reason or "SiteDown"
            if not fresh:
                return []
            affected: list[str] = []
            hits = dict.fromkeys(fresh, 0)
            for slot in world.slots.values():
                p = slot.placement
                if p is not None:
                    used = placement_uses(p)[0].intersection(fresh)
                    if used:
                        affected.append(slot.name)
                        for site in used:
                            hits[site] += 1
            events: list[tuple[str, str | None, str | None, str]] = [
                ("site-down", None, site, f"site {site} down: {reason}; {hits[site]} slices affected")
                for site, reason in fresh.items()
            ]
            self._reconciler.commit([], events, actor)
            world.down_sites.update(fresh)
            world.retopologise()
            self._reconciler.run(world)
            return affected

    def site_up(self, site: str, actor: str) -> None:
        with self._lock:
            world = self._world
            world.base.site(site)
            if site not in world.down_sites:
                return
            self._reconciler.commit([], [("site-up", None, site, f"site {site} back up")], actor)
            del world.down_sites[site]
            world.epoch += 1
            world.retopologise()
            self._reconciler.run(world)

    def link_down(self, key: LinkKey, reason: str, actor: str) -> list[str]:
        with self._lock:
            world = self._world
            key = world.base.link(key).key
            if key in world.down_links:
                return []
            affected = self._affected(link=key)
            self._reconciler.commit(
                [],
                [
                    (
                        "link-down",
                        None,
                        None,
                        f"link {key[0]}:{key[1]} down: {reason}; {len(affected)} slices affected",
                    )
                ],
                actor,
            )
            world.down_links[key] = reason or "LinkDown"
            world.retopologise()
            self._reconciler.run(world)
            return affected

    def link_up(self, key: LinkKey, actor: str) -> None:
        with self._lock:
            world = self._world
            key = world.base.link(key).key
            if key not in world.down_links:
                return
            self._reconciler.commit([], [("link-up", None, None, f"link {key[0]}:{key[1]} back up")], actor)
            del world.down_links[key]
            world.epoch += 1
            world.retopologise()
            self._reconciler.run(world)

    def set_sla(self, name: str, met: bool | None, reason: str, message: str, actor: str) -> None:
        """Record the SLAMet condition (agents' KPIs evaluated by telemetry.agentlink.sla); ``met`` None is
        Unknown: no evidence either way."""
        with self._lock:
            slot = self._slot(name)
            at = self._clock.now()
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
            self._reconciler.commit([new], events, actor)
            self._world.slots[name] = new

    # -- what realises a slice: agents and workloads -------------------------------------------

    def require_agents(self, policy: str) -> None:
        """An agent server runs: from now on a slice is Realised only when the site agents the
        ``policy`` requires have acked it (telemetry.agentlink.service.AGENT_POLICIES)."""
        with self._lock:
            rec = self._reconciler
            rec.policy = dataclasses.replace(rec.policy, agents=policy)
            self._refresh_realised(list(self._world.slots), "controller")

    def record_agent_progress(self, progress: Mapping[str, AgentProgress], actor: str) -> None:
        """What the site agents confirmed of each slice. A change of status or reason is stored at
        once; a count that only grew is stored at most every few seconds (the message says "at
        least", so it stays true meanwhile)."""
        with self._lock:
            now = self._clock.monotonic()
            changed = []
            due = [
                n
                for n in self._progress_pending
                if n not in self._world.slots
                or now - self._world.slots[n].progress_written_at >= PROGRESS_WRITE_S
            ]
            self._progress_pending.difference_update(due)
            updates = {**{n: self._world.slots[n].agents for n in due if n in self._world.slots}, **progress}
            for name, p in updates.items():
                slot = self._world.slots.get(name)
                if p is None or slot is None or slot.placement is None or p.revision < slot.placed_revision:
                    continue  # gone, or computed for a placement it no longer has
                new = dataclasses.replace(slot, agents=p)
                before = get_condition(slot.conditions, ConditionType.REALISED)
                status, reason, _ = realised_condition(new, self._reconciler.policy)
                same_kind = before is not None and (before.status, before.reason) == (status, reason)
                if (
                    same_kind
                    and reason == "AwaitingAcks"
                    and now - slot.progress_written_at < PROGRESS_WRITE_S
                ):
                    slot.agents = p  # runtime only; the stored message still says "at least" the old count
                    self._progress_pending.add(name)
                    continue
                new.progress_written_at = now
                changed.append(new)
            self._commit_realised(changed, actor)

    @property
    def progress_pending(self) -> bool:
        """Whether an agent-progress count waits to be stored (:meth:`record_agent_progress`
        stores it once due, even when called with nothing new)."""
        return bool(self._progress_pending)

    def record_workloads(self, name: str, status: ConditionStatus, reason: str, message: str) -> None:
        """Whether the slice's workloads are available (a Kubernetes realiser's watch reports it)."""
        with self._lock:
            slot = self._world.slots.get(name)
            if slot is None or slot.placement is None or slot.workloads == (status, reason, message):
                return
            self._commit_realised(
                [dataclasses.replace(slot, workloads=(status, reason, message))], "kubernetes"
            )

    def config_refused(
        self, site: str, generation: int, reason: str, message: str, slices: Sequence[str]
    ) -> None:
        """A site agent refused a config generation: an event on every slice it carried."""
        with self._lock:
            text = f"site {site} refused config generation {generation}: {reason}: {message}"
            events = [("config-refused", name, site, text) for name in slices if name in self._world.slots]
            if events:
                self._reconciler.commit([], events, f"agent:{site}")

    def _refresh_realised(self, names: Iterable[str], actor: str) -> None:
        self._commit_realised([dataclasses.replace(self._world.slots[n]) for n in names], actor)

    def _commit_realised(self, slots: Sequence[Slot], actor: str) -> None:
        """Recompute Realised (and the state and Ready) of ``slots``; commit those that changed."""
        at = self._clock.now()
        out = []
        for new in slots:
            old = self._world.slots[new.name]
            refresh_realised(new, self._reconciler.policy, at)
            if _status_key(new) != _status_key(old):
                out.append(new)
            else:
                self._world.slots[new.name] = new  # runtime evidence only
        if not out:
            return
        events = []
        for new in out:
            old_ready = get_condition(self._world.slots[new.name].conditions, ConditionType.READY)
            ready = get_condition(new.conditions, ConditionType.READY)
            if (
                ready is not None
                and ready.status == ConditionStatus.TRUE
                and (old_ready is None or old_ready.status != ConditionStatus.TRUE)
            ):
                events.append(("ready", new.name, None, "realised and serving"))
        self._reconciler.commit(out, events, actor)
        for new in out:
            self._world.slots[new.name] = new

    def replace_slice(self, name: str, reason: str, actor: str, avoid: Collection[str] = ()) -> bool:
        """Try to move a slice away from its edge sites and ``avoid`` (sustained SLA violation);
        True if it moved."""
        with self._lock:
            world = self._world
            slot = self._slot(name)
            p, intent = slot.placement, slot.placed_intent
            if p is None or intent is None:
                return False
            away = {*p.edge_sites, *(s for s in avoid if s in world.topology.sites)}
            elsewhere = world.placing.with_down(
                sites=[s for s in sorted(away) if s not in world.placing.down_sites]
            )
            decision = admission.admit(
                intent, elsewhere, world.ledger, world.admitted, allow_preemption=False
            )
            if decision.outcome != admission.Outcome.ADMITTED or decision.placement is None:
                self._reconciler.commit(
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
            at = self._clock.now()
            new = dataclasses.replace(slot, realised=None, backends=None, agents=None, workloads=None)
            new.set_placed(decision.placement, intent, None)
            new._placed_doc, new.placed_generation = slot._placed_doc, slot.placed_generation
            set_cond(
                new, ConditionType.PLACED, ConditionStatus.TRUE, "Replaced", summary(decision.placement), at
            )
            refresh_realised(new, self._reconciler.policy, at)
            self._reconciler.commit(
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
            new.placed_revision = self._reconciler.revision
            world.release(name)
            world.hold(new, decision.placement, intent)
            world.slots[name] = new
            world.dirty.add(name)
            self._observer.healed(intent.kind.value, True)
            self._reconciler.run(world)
            return True

    @property
    def revision(self) -> int:
        """Increments on every committed change; cheap to poll (agents push config when it moves)."""
        return self._reconciler.revision

    # -- for tests, benchmarks and the runtime -------------------------------------------------
    def ledger_snapshot(self) -> tuple[dict[str, int], list[int], dict[str, int], dict[str, int]]:
        with self._lock:
            return self._world.ledger.snapshot()

    def over_capacity(self) -> list[str]:
        with self._lock:
            return self._world.ledger.over_capacity()

    def drained(self) -> list[str]:
        with self._lock:
            return sorted(self._world.drained_sites)

    def state_epoch(self) -> str:
        """Identifies this controller's state (agents tell two controllers apart by it)."""
        return self._store.epoch()

    def site_generations(self) -> dict[str, tuple[int, str]]:
        """site → (its last config generation, that config's content hash), as stored."""
        return self._store.site_generations()

    def save_site_generations(self, rows: Sequence[tuple[str, int, str]]) -> None:
        self._store.save_site_generations(rows)

    def agent_sites(self) -> frozenset[str]:
        """Sites whose agent has connected at some time (kept across restarts): after a restart
        their leases run from the start, so an agent that never returns is noticed."""
        return frozenset(self._store.agent_sites())

    def remember_agent_sites(self, sites: Iterable[str]) -> None:
        self._store.add_agent_sites(sites, self._clock.now())


PROGRESS_WRITE_S = 2.0  # at most this often is a slice's growing ack count stored


def _status_key(slot: Slot) -> tuple[object, ...]:
    conds = tuple((c.type, c.status, c.reason, c.message) for c in slot.conditions)
    return (slot.state, slot.reason, slot.message, conds)


def _mark_pending(slot: Slot, at: datetime) -> None:
    """A slice stored and not yet decided: says so on its state and its Admitted condition."""
    slot.reason, slot.message = "Pending", "waiting for admission"
    set_cond(slot, ConditionType.ADMITTED, ConditionStatus.UNKNOWN, "Pending", "waiting for admission", at)
    refresh_readiness(slot, at)
