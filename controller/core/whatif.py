"""What if a site or a link failed: which slices lose their SLA, and where they would go.

Nothing changes: the failure is a new :class:`Topology` (:meth:`Topology.with_down`) and a
ledger holding only the slices the failure leaves alone (a copy of the live ledger with the hit
slices released, or one rebuilt from the placements); the slices it hits are re-placed on that
copy, highest priority first, without preempting anyone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.core import admission
from controller.core.admission import Decision, Outcome
from controller.core.ledger import Ledger
from controller.core.placement_model import Placement
from controller.core.topology import LinkKey, Topology, link_key
from slices.profiles import SliceIntent


@dataclass(frozen=True)
class SliceImpact:
    """One slice the failure hits: what it loses and what re-placing it would decide."""

    slice_name: str
    priority: int
    lost_cells: tuple[str, ...]  # cells whose route (or the cell itself) uses a failed element
    lost_edges: tuple[str, ...]  # edge sites of the slice that failed
    decision: Decision  # ADMITTED with the new placement, or REJECTED with the reason

    @property
    def recovered(self) -> bool:
        return self.decision.outcome == Outcome.ADMITTED


@dataclass(frozen=True)
class WhatIfReport:
    failed_sites: tuple[str, ...]
    failed_links: tuple[LinkKey, ...]
    affected: tuple[SliceImpact, ...]
    unaffected: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "failedSites": list(self.failed_sites),
            "failedLinks": [f"{a}:{b}" for a, b in self.failed_links],
            "affected": [
                {
                    "slice": i.slice_name,
                    "lostCells": list(i.lost_cells),
                    "lostEdges": list(i.lost_edges),
                    "recovered": i.recovered,
                    "reason": i.decision.reason,
                    "message": i.decision.message,
                    "edges": list(i.decision.placement.edge_sites) if i.decision.placement else [],
                    "unserved": list(i.decision.placement.unserved) if i.decision.placement else [],
                }
                for i in self.affected
            ],
            "unaffected": len(self.unaffected),
        }


def _lost(p: Placement, sites: frozenset[str], links: frozenset[LinkKey]) -> tuple[str, ...]:
    return tuple(
        a.cell
        for a in p.assignments
        if any(n in sites for n in a.nodes) or any(k in links for k in a.link_keys())
    )


def what_if(
    topology: Topology,
    admitted: Mapping[str, tuple[SliceIntent, Placement]],
    fail_sites: Iterable[str] = (),
    fail_links: Iterable[LinkKey] = (),
    ledger: Ledger | None = None,
) -> WhatIfReport:
    """Fail sites and links on a copy and re-place the slices that used them; changes nothing.

    ``ledger``: the live ledger, holding exactly ``admitted``'s reservations; the what-if works
    on a copy of it (the failure's victims released) instead of rebuilding one from every
    placement. Raises :class:`slices.errors.NotFound` for a site or link the topology does not have.

    >>> from controller.core import planner
    >>> from controller.core.examples import Edge, slice_intent, small_city
    >>> city = small_city(radio_mbps=500, edges=(Edge("e1"), Edge("e2", uplink_latency_ms=2)))
    >>> cars = slice_intent("cars", "vehicle")
    >>> state = planner.plan([cars], city).state
    >>> report = what_if(city, state.admitted, fail_sites=["e1"])
    >>> [(i.slice_name, i.lost_edges, i.decision.placement.edge_sites) for i in report.affected]
    [('cars', ('e1',), ('e2',))]
    """
    sites = tuple(sorted(set(fail_sites)))
    links = tuple(sorted({link_key(*k) for k in fail_links}))
    down = topology.with_down(sites, links)
    down_sites, down_links = frozenset(sites), frozenset(links)
    hit: dict[str, tuple[str, ...]] = {}
    for name, (_, p) in admitted.items():
        lost = _lost(p, down_sites, down_links)
        lost_edges = tuple(e for e in p.edge_sites if e in down_sites)
        if lost or lost_edges:
            hit[name] = lost
    kept = {name: pair for name, pair in admitted.items() if name not in hit}
    if ledger is None:
        trial = Ledger.from_placements(down, (p for _, p in kept.values()))
    else:
        trial = ledger.copy(down)
        for name in hit:
            trial.release(name)
    order = sorted(hit, key=lambda n: (-admitted[n][0].priority, n))
    impacts: list[SliceImpact] = []
    for name in order:
        intent, old = admitted[name]
        decision = admission.admit(intent, down, trial, kept, allow_preemption=False)
        if decision.outcome == Outcome.ADMITTED:
            assert decision.placement is not None
            trial.reserve(name, decision.placement.reservation(down))
            kept[name] = (intent, decision.placement)
        impacts.append(
            SliceImpact(
                name,
                intent.priority,
                hit[name],
                tuple(e for e in old.edge_sites if e in down_sites),
                decision,
            )
        )
    unaffected = tuple(sorted(n for n in admitted if n not in hit))
    return WhatIfReport(sites, links, tuple(impacts), unaffected)
