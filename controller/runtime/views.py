"""What the service answers about slices, the audit trail and the topology (reads only).

Capacity figures come from the ledger's :class:`~controller.core.capacity.CapacityView`;
:meth:`Views.topology_status` derives the operator API's per-site shape from it and the sites'
state, kept while neither the service's nor the ledger's revision moves.
"""

from __future__ import annotations

import operator
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from controller.core import admission
from controller.core.capacity import CapacityView
from controller.core.placement_model import Placement
from controller.core.topology import LinkKey, Topology
from controller.core.topology_file import TopologyFile
from controller.runtime.service_core import ServiceCore
from controller.runtime.store_rows import EventRow
from controller.runtime.world import SliceState, Slot
from slices import errors
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent
from slices.status import Condition, ConditionType, get_condition


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
    #: A Scheduled slice's placement, held in the capacity calendar until its window begins.
    booked: Placement | None = None


#: One line of the audit trail: the store's row as it is read (one type, no copy).
Event = EventRow


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


class Views:
    def __init__(self, core: ServiceCore) -> None:
        self.core = core
        # topology_status(): the last answer and what it was made from (see _StatusMemo).
        self._status: _StatusMemo | None = None

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
            booked=slot.booked,
        )

    def get(self, name: str) -> SliceRecord:
        with self.core.lock:
            return self._record(self.core.slot(name))

    def list_slices(self) -> list[SliceRecord]:
        with self.core.lock:
            return [self._record(s) for s in self.core.world.slots.values()]

    def explain(self, name: str) -> dict[str, object]:
        """Why the slice is where it is: the decision, checks passed/failed, binding constraint, routes."""
        with self.core.lock:
            slot = self.core.slot(name)
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
            ctx = admission.Context(
                intent, self.core.world.topology, self.core.world.ledger, self.core.world.admitted
            )
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
        return self.core.store.events(after_seq, limit, slice_name)

    def wait_events(self, after_seq: int, timeout_s: float) -> list[Event]:
        """Block until events newer than ``after_seq`` exist or the timeout passes (for watch/follow)."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self.core.events_cond:
            while True:
                found = self.events(after_seq)
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                self.core.events_cond.wait(left)

    def topology(self) -> Topology:
        """The topology as the controller sees it now (with down and drained elements)."""
        with self.core.lock:
            return self.core.world.topology

    def topology_file(self) -> TopologyFile:
        """The topology file the controller runs on (what a simulator of this city needs)."""
        return self.core.world.base.source

    def capacity(self) -> CapacityView:
        """Every site's and link's capacity, reserved and free figures (the ledger's view; the
        same object until a reservation moves). Which sites are up, drained or cordoned is
        :meth:`topology_status`'s (or :meth:`topology`'s and :meth:`cordoned`'s) to say."""
        with self.core.lock:
            return self.core.world.ledger.capacity()

    def topology_status(self) -> TopologyStatus:
        """Every site's and busy link's capacity figures, derived from :meth:`capacity` and the
        sites' state; the same answer until the state moves."""
        with self.core.lock:
            view = self.core.world.ledger.capacity()
            key = (self.core.reconciler.revision, view.revision)
            memo = self._status
            if memo is None or memo.key != key:
                memo = self._status = self._topology_status(key, view, memo)
            return memo.status

    def _topology_status(
        self, key: tuple[int, int], view: CapacityView, last: _StatusMemo | None
    ) -> _StatusMemo:
        world = self.core.world
        drained, down, cordoned = world.drained_sites, world.down_sites, world.cordoned_sites
        state = {  # the few sites not simply up
            sid: (
                sid not in down,
                sid in drained,
                "Drained" if sid in drained else down.get(sid, "") or ("Cordoned" if sid in cordoned else ""),
                sid in cordoned,
            )
            for sid in {*down, *drained, *cordoned}
        }
        index = view.site_index
        if last is None:
            sites = _all_sites(view)
            redo = [index[sid] for sid in state]
            entries: list[tuple[LinkKey, int, int] | None] = [None] * len(view.links)
            relink = np.flatnonzero(view.link_reserved_kbps)
        else:
            old = last.view
            sites = list(last.status.sites)
            entries = last.entries
            moved: list[int] = []
            relink = np.empty(0, dtype=np.int64)
            if view is not old:
                moved = np.flatnonzero(
                    (view.radio_reserved_kbps != old.radio_reserved_kbps)
                    | (view.cpu_reserved_millicores != old.cpu_reserved_millicores)
                    | (view.memory_reserved_mib != old.memory_reserved_mib)
                    | (view.slices != old.slices)
                ).tolist()
                relink = np.flatnonzero(view.link_reserved_kbps != old.link_reserved_kbps)
            redo = [*moved, *(index[sid] for sid in {*state, *last.state})]
        for i in redo:
            sites[i] = _site_status(view, i, state.get(view.sites[i], _UP))
        keys, reserved, capacity = view.links, view.link_reserved_kbps, view.link_capacity_kbps
        for j in relink.tolist():
            entries[j] = (keys[j], int(reserved[j]), int(capacity[j]))
        busiest = view.busiest_links.tolist()
        loaded: tuple[tuple[LinkKey, int, int], ...] = ()
        if len(busiest) == 1:
            loaded = (entries[busiest[0]],)
        elif busiest:
            loaded = operator.itemgetter(*busiest)(entries)
        status = TopologyStatus(
            name=world.base.name,
            sites=tuple(sites),
            down_links=tuple(sorted(set(world.down_links) | world.drained_links)),
            link_utilisation=loaded,
        )
        return _StatusMemo(key, view, state, entries, status)


@dataclass
class _StatusMemo:
    """The last :meth:`Views.topology_status` answer, by (service revision, ledger revision),
    with what it was made from: the next answer rebuilds only the sites whose figures or state
    moved, and the (link, reserved, capacity) entries of the links whose reservation moved
    (making one per loaded link each time would cost more than the rest)."""

    key: tuple[int, int]
    view: CapacityView
    state: dict[str, _SiteState]
    entries: list[tuple[LinkKey, int, int] | None]  # by link index; set for every loaded link
    status: TopologyStatus


#: A site's state as its status says it: (up, drained, reason, cordoned).
_SiteState = tuple[bool, bool, str, bool]
_UP: _SiteState = (True, False, "", False)


def _site_status(view: CapacityView, i: int, state: _SiteState) -> SiteStatus:
    up, drained, reason, cordoned = state
    return SiteStatus(
        site=view.sites[i],
        kind=view.kinds[i],
        up=up,
        drained=drained,
        reason=reason,
        cpu_reserved=int(view.cpu_reserved_millicores[i]),
        cpu_capacity=int(view.cpu_capacity_millicores[i]),
        memory_reserved=int(view.memory_reserved_mib[i]),
        memory_capacity=int(view.memory_capacity_mib[i]),
        radio_reserved_kbps=int(view.radio_reserved_kbps[i]),
        radio_capacity_kbps=int(view.radio_capacity_kbps[i]),
        slices=int(view.slices[i]),
        cordoned=cordoned,
    )


def _all_sites(view: CapacityView) -> list[SiteStatus]:
    """Every site's status as if it were up (the first answer; later ones redo what moved)."""
    return [
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
