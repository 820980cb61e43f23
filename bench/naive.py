"""The naive greedy baseline: requests in the given order, each on the first edge site that fits.

For each request, edge sites are tried nearest first (by the mean latency of the covered
cells); every covered cell takes its shortest-latency route to that one site; the first site
where radio, every link, CPU and memory all fit wins. No splitting across sites, no detours,
no reordering, no preemption: what a first implementation would do.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.core.ledger import Ledger
from controller.core.placement_model import CellAssignment, EdgeShare, Placement
from controller.core.topology import Route, Topology
from slices.profiles import SliceIntent


def place_one(intent: SliceIntent, topology: Topology, ledger: Ledger) -> Placement | None:
    """A single-site placement that fits ``ledger``'s free capacity, or None."""
    cells = topology.cells_in(intent.coverage)
    if not cells:
        return None
    per_cell: list[dict[str, Route]] = []
    for cell in cells:
        best: dict[str, Route] = {}
        for r in topology.routes(cell, intent.latency_ms):  # best first
            best.setdefault(r.edge, r)
        per_cell.append(best)
    reachable = set(per_cell[0]).intersection(*per_cell[1:])
    order = sorted(reachable, key=lambda e: (sum(b[e].latency_ms for b in per_cell), e))
    cpu, mem = intent.compute_at(len(cells), len(cells))
    replicas = tuple((w.name, intent.replicas_at(w, len(cells), len(cells))) for w in intent.workloads)
    for edge in order:
        routes = [b[edge] for b in per_cell]
        placement = Placement(
            slice_name=intent.name,
            spec_hash=intent.spec_hash,
            kbps_per_cell=intent.kbps_per_cell,
            assignments=tuple(CellAssignment(r.cell, r.edge, r.nodes, r.latency_ms) for r in routes),
            edges=(EdgeShare(edge, len(cells), cpu, mem, replicas),),
        )
        if ledger.shortfall(placement.reservation(topology)) is None:
            return placement
    return None


def run(
    intents: Sequence[SliceIntent], topology: Topology, ledger: Ledger | None = None
) -> dict[str, Placement]:
    """Place ``intents`` in order on ``ledger`` (a fresh one if None); returns the admitted."""
    ledger = ledger if ledger is not None else Ledger(topology)
    admitted: dict[str, Placement] = {}
    for intent in intents:
        placement = place_one(intent, topology, ledger)
        if placement is not None:
            ledger.reserve(intent.name, placement.reservation(topology))
            admitted[intent.name] = placement
    return admitted
