"""Latency-bounded, bandwidth-reserved placement of one slice: a pure function of
(intent, topology, ledger).

Every covered cell is assigned to one edge site by one route whose latency stays within the
slice's bound and whose every link has the slice's per-cell bandwidth free. Cells are assigned
one at a time, most constrained first; each picks the candidate (edge, route) of least
congestion-aware cost (bandwidth taken over bandwidth free on every link, plus the compute the
cell adds at the edge over what is free there, plus a little latency), counting what the slice
has already taken tentatively, so cells that share an aggregation link see each other. Edge
sites are sized by the cells they end up serving (:meth:`SliceIntent.compute_at`).

Candidates are the few lowest-latency routes of each cell from the topology's precomputed
shortest-path trees (dictionary look-ups); only when all of them lack bandwidth does placement
look further: every route within the bound, then a Dijkstra that hides saturated links.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from controller.core.ledger import Ledger
from controller.core.placement_model import CellAssignment, EdgeShare, Placement
from controller.core.topology import Route, Topology
from slices import errors
from slices.profiles import SliceIntent

# Cost weights (the bench tunes these). A candidate's cost is
#   LINK_WEIGHT    * sum over its links of kbps / free kbps
# + COMPUTE_WEIGHT * (added CPU / free CPU + added memory / free memory) at its edge site
# + LATENCY_WEIGHT * latency / bound
LINK_WEIGHT = 1.0
COMPUTE_WEIGHT = 1.0
LATENCY_WEIGHT = 0.05
#: Lowest-latency routes per cell considered before looking further.
CANDIDATE_ROUTES = 12
#: Attempts with a different cell order when the first pass strands a cell.
REORDER_ATTEMPTS = 3
#: Nearest edge sites tried with a saturated-link-avoiding Dijkstra as the last resort ...
DETOUR_EDGES = 3
#: ... and at most this many such searches per placement attempt (each walks the transport graph).
DETOUR_BUDGET = 6

#: Reasons that mean "not enough capacity now" (preemption and retries may help).
CAPACITY_REASONS = frozenset({"RadioCapacityExceeded", "LinkCapacityExceeded", "EdgeComputeExhausted"})


@dataclass(frozen=True)
class Rejection:
    """Why a slice cannot be placed: a CamelCase reason, a message naming the binding constraint.

    ``binding`` names the element that bound, as ``cell:<id>``, ``link:<a>:<b>`` or
    ``site:<id>`` (None when no single element did), so preemption can look for slices that hold it.
    """

    reason: str
    message: str
    binding: str | None = None
    #: How much the binding element lacks: kbit/s (cell, link) or millicores (site) ...
    short_by: int = 0
    #: ... and MiB for a site's memory.
    short_by_memory: int = 0


def mbps(kbps: int) -> str:
    """Human form of an integer kbit/s figure.

    >>> mbps(150_000), mbps(2_500), mbps(12)
    ('150 Mbps', '2.5 Mbps', '0.012 Mbps')
    """
    return f"{kbps / 1000:g} Mbps"


@dataclass
class _Shortage:
    """The first element a candidate route does not fit on, and by how much."""

    binding: str
    reason: str
    message: str
    short_by: int
    short_by_memory: int = 0


class _Assigner:
    """One placement attempt's tentative state: link load and cells per edge site."""

    def __init__(self, intent: SliceIntent, topology: Topology, ledger: Ledger, total: int) -> None:
        self.intent = intent
        self.topology = topology
        self.ledger = ledger
        self.total = total
        self.bw = intent.kbps_per_cell
        self.cap = topology.link_capacity_kbps
        self.used = ledger.link_kbps
        self.link_load: dict[int, int] = {}
        self.cells_at: dict[str, int] = {}
        self.chosen: dict[str, Route] = {}
        self._compute_cache: dict[int, tuple[int, int]] = {0: (0, 0)}
        self.detours_left = DETOUR_BUDGET
        self.total_cost = 0.0
        self.last_cost = 0.0

    def compute(self, n: int) -> tuple[int, int]:
        got = self._compute_cache.get(n)
        if got is None:
            got = self.intent.compute_at(n, self.total)
            self._compute_cache[n] = got
        return got

    def link_free(self, idx: int) -> int:
        return self.cap[idx] - self.used[idx] - self.link_load.get(idx, 0)

    def link_shortage(self, route: Route) -> _Shortage | None:
        bw = self.bw
        for idx in route.links:
            if self.link_free(idx) < bw:
                link = self.topology.links[idx]
                need = self.link_load.get(idx, 0) + bw
                have = self.ledger.free_link(idx)
                return _Shortage(
                    f"link:{link}",
                    "LinkCapacityExceeded",
                    f"cell {route.cell}: link {link} has {mbps(have)} free, needs {mbps(need)} "
                    f"(short by {mbps(need - have)})",
                    need - have,
                )
        return None

    def compute_shortage(self, cell: str, edge: str) -> _Shortage | None:
        cpu, mem = self.compute(self.cells_at.get(edge, 0) + 1)
        free_cpu, free_mem = self.ledger.free_cpu(edge), self.ledger.free_memory(edge)
        if cpu > free_cpu or mem > free_mem:
            short = []
            if cpu > free_cpu:
                short.append(f"{cpu - free_cpu}m CPU")
            if mem > free_mem:
                short.append(f"{mem - free_mem} MiB memory")
            return _Shortage(
                f"site:{edge}",
                "EdgeComputeExhausted",
                f"cell {cell}: edge site {edge} has {free_cpu}m CPU / {free_mem} MiB free, needs "
                f"{cpu}m CPU / {mem} MiB (short by {' and '.join(short)})",
                max(cpu - free_cpu, 0),
                max(mem - free_mem, 0),
            )
        return None

    def compute_cost(self, edge: str) -> float | None:
        """Cost of one more cell at ``edge`` (None when it does not fit)."""
        n = self.cells_at.get(edge, 0)
        cpu0, mem0 = self.compute(n)
        cpu1, mem1 = self.compute(n + 1)
        free_cpu = self.ledger.free_cpu(edge) - cpu0
        free_mem = self.ledger.free_memory(edge) - mem0
        if cpu1 - cpu0 > free_cpu or mem1 - mem0 > free_mem:
            return None
        return COMPUTE_WEIGHT * ((cpu1 - cpu0) / max(free_cpu, 1) + (mem1 - mem0) / max(free_mem, 1))

    def take(self, route: Route) -> None:
        for idx in route.links:
            self.link_load[idx] = self.link_load.get(idx, 0) + self.bw
        self.cells_at[route.edge] = self.cells_at.get(route.edge, 0) + 1
        self.chosen[route.cell] = route
        self.total_cost += self.last_cost

    def best(self, routes: Sequence[Route]) -> tuple[Route | None, _Shortage | None]:
        """The cheapest feasible route, else the shortage of the first (lowest-latency) one.

        The hot loop of placement: link frees are computed inline from the ledger's arrays.
        """
        bw = self.bw
        cap, used, load = self.cap, self.used, self.link_load.get
        latency_scale = LATENCY_WEIGHT / self.intent.latency_ms
        edge_cost: dict[str, float | None] = {}
        best: Route | None = None
        best_cost = math.inf
        first_short: _Shortage | None = None
        for route in routes:
            edge = route.edge
            if edge in edge_cost:
                compute = edge_cost[edge]
            else:
                compute = edge_cost[edge] = self.compute_cost(edge)
            if compute is None:
                if first_short is None:
                    first_short = self.link_shortage(route) or self.compute_shortage(route.cell, edge)
                continue
            links = 0.0
            for idx in route.links:
                free = cap[idx] - used[idx] - load(idx, 0)
                if free < bw:
                    break
                links += bw / free
            else:
                c = LINK_WEIGHT * links + compute + latency_scale * route.latency_ms
                if c < best_cost:
                    best, best_cost = route, c
                continue
            if first_short is None:
                first_short = self.link_shortage(route)
        self.last_cost = best_cost
        return best, first_short

    def assign(self, cell: str, near: Sequence[Route], truncated: bool) -> _Shortage | None:
        route, short = self.best(near)
        if route is None:
            # The nearest few lack room: every route within the bound, then detours, to edge
            # sites that still have compute for this cell.
            bound = self.intent.latency_ms
            roomy = {e for e in self.topology.edge_sites if self.compute_cost(e) is not None}
            if roomy and truncated:
                rest = [r for r in self.topology.routes(cell, bound)[len(near) :] if r.edge in roomy]
                route, _ = self.best(rest)
            if route is None and roomy:
                route = self._detour(cell, roomy)
                self.last_cost = 0.0
        if route is None:
            assert short is not None
            return short
        self.take(route)
        return None

    def _detour(self, cell: str, roomy: set[str]) -> Route | None:
        """Route around saturated links to the nearest edge sites that have compute room."""
        bound = self.intent.latency_ms
        reachable = sorted(
            (lat, e) for e in sorted(roomy) if (lat := self.topology.latency_to(cell, e)) <= bound
        )
        bw = self.bw
        for _, edge in reachable[:DETOUR_EDGES]:
            if self.detours_left <= 0:
                return None
            self.detours_left -= 1
            route = self.topology.detour(cell, edge, bound, lambda idx: self.link_free(idx) >= bw)
            if route is not None:
                return route
        return None


def _out_of_service(topology: Topology, cell: str) -> bool:
    return not topology.nearest_routes(cell, 1)


def covered_cells(intent: SliceIntent, topology: Topology) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(cells in service, cells out of service) the slice covers, in topology order.

    A cell is out of service when it is down or has no working path to any edge site at all.
    """
    cells = topology.cells_in(intent.coverage)
    served = tuple(c for c in cells if not _out_of_service(topology, c))
    if len(served) == len(cells):
        return served, ()
    down = set(cells) - set(served)
    return served, tuple(c for c in cells if c in down)


def place(intent: SliceIntent, topology: Topology, ledger: Ledger) -> Placement | Rejection:
    """Assign every covered cell to an edge site within the latency bound; pure (ledger unchanged).

    >>> from controller.core.examples import Edge, slice_intent, small_city
    >>> city = small_city(radio_mbps=400, cells=2, edges=(
    ...     Edge("e1", cpu_millicores=8000, memory_mib=8192, uplink_mbps=200),
    ...     Edge("e2", cpu_millicores=8000, memory_mib=8192, uplink_latency_ms=3)))
    >>> cars = slice_intent("cars", "vehicle", cells=("c1", "c2"))
    >>> p = place(cars, city, Ledger(city))
    >>> [(a.cell, a.edge, a.latency_ms) for a in p.assignments]  # 75 Mbps a cell would fill e1's link
    [('c1', 'e2', 3.5), ('c2', 'e2', 3.5)]
    >>> [(e.site, e.cells, e.cpu_millicores) for e in p.edges]
    [('e2', 2, 4000)]
    >>> strict = slice_intent("strict", "vehicle", sla={"latencyMs": 1})
    >>> place(strict, city, Ledger(city)).message
    'cell c1: nearest edge site e1 is 1.5 ms away, bound is 1 ms'
    """
    try:
        served, unserved = covered_cells(intent, topology)
    except errors.InvalidSpec as exc:
        return Rejection("UnknownSite", str(exc))
    if not served:
        if unserved:
            return Rejection(
                "CoverageOutOfService",
                f"all {len(unserved)} covered cells are out of service (first: {unserved[0]})",
                f"cell:{unserved[0]}",
            )
        return Rejection("NoCoverage", "the coverage selects no cell of the topology")
    bw = intent.kbps_per_cell
    for cell in served:
        free = ledger.free_radio(cell)
        if free < bw:
            return Rejection(
                "RadioCapacityExceeded",
                f"cell {cell} has {mbps(free)} free, needs {mbps(bw)} (short by {mbps(bw - free)})",
                f"cell:{cell}",
                bw - free,
            )
    bound = intent.latency_ms
    candidates: dict[str, tuple[tuple[Route, ...], bool]] = {}
    for cell in served:
        near = topology.nearest_routes(cell, CANDIDATE_ROUTES)
        within = tuple(r for r in near if r.latency_ms <= bound)
        if not within:
            nearest = near[0]
            return Rejection(
                "LatencyUnreachable",
                f"cell {cell}: nearest edge site {nearest.edge} is {nearest.latency_ms:.3g} ms away, "
                f"bound is {bound:g} ms",
                f"cell:{cell}",
            )
        candidates[cell] = (within, len(within) == len(near) == CANDIDATE_ROUTES)
    # Most constrained first: fewest candidates, then the farthest best option.
    order = sorted(served, key=lambda c: (len(candidates[c][0]), -candidates[c][0][0].latency_ms))
    single = _single_edge(intent, topology, ledger, order, candidates)
    if single is not None:
        return _placement(intent, single, served, unserved)
    failure: _Shortage | None = None
    for _ in range(REORDER_ATTEMPTS):
        assigner = _Assigner(intent, topology, ledger, len(served))
        failed_at = -1
        for i, cell in enumerate(order):
            near, truncated = candidates[cell]
            failure = assigner.assign(cell, near, truncated)
            if failure is not None:
                failed_at = i
                break
        if failed_at < 0:
            return _placement(intent, assigner, served, unserved)
        if failed_at == 0:
            break  # stranded with nothing of its own taken yet: no other order helps
        # Give the stranded cell first pick next time.
        failed_cell = order[failed_at]
        order = [failed_cell, *(c for c in order if c != failed_cell)]
    assert failure is not None
    return Rejection(
        failure.reason, failure.message, failure.binding, failure.short_by, failure.short_by_memory
    )


def _single_edge(
    intent: SliceIntent,
    topology: Topology,
    ledger: Ledger,
    order: Sequence[str],
    candidates: dict[str, tuple[tuple[Route, ...], bool]],
) -> _Assigner | None:
    """The cheapest placement that serves every cell from one edge site, if there is one.

    One site runs the fewest replicas (:meth:`SliceIntent.compute_at` rounds up per site), so a
    slice is split only when no single site can serve all of it within the bound. Sites are
    tried in order of their summed candidate latency; a site is dropped as soon as its partial
    cost passes the best complete one.
    """
    common: dict[str, float] | None = None
    for cell in order:
        lat: dict[str, float] = {}
        for r in candidates[cell][0]:
            lat.setdefault(r.edge, r.latency_ms)
        common = lat if common is None else {e: common[e] + lat[e] for e in common if e in lat}
        if not common:
            return None
    assert common is not None
    total = len(order)
    cpu, mem = intent.compute_at(total, total)
    best: _Assigner | None = None
    for edge in sorted(common, key=lambda e: (common[e], e)):
        if cpu > ledger.free_cpu(edge) or mem > ledger.free_memory(edge):
            continue
        assigner = _Assigner(intent, topology, ledger, total)
        for cell in order:
            route, _ = assigner.best([r for r in candidates[cell][0] if r.edge == edge])
            if route is None:
                break
            assigner.take(route)
            if best is not None and assigner.total_cost >= best.total_cost:
                break
        else:
            best = assigner
    return best


def _placement(
    intent: SliceIntent, assigner: _Assigner, served: tuple[str, ...], unserved: tuple[str, ...]
) -> Placement:
    assignments = tuple(
        CellAssignment(cell, r.edge, r.nodes, r.latency_ms)
        for cell in served
        for r in (assigner.chosen[cell],)
    )
    total = len(served)
    edges = []
    for site in sorted(assigner.cells_at):
        n = assigner.cells_at[site]
        cpu, mem = intent.compute_at(n, total)
        replicas = tuple((w.name, intent.replicas_at(w, n, total)) for w in intent.workloads)
        edges.append(EdgeShare(site, n, cpu, mem, replicas))
    return Placement(
        slice_name=intent.name,
        spec_hash=intent.spec_hash,
        kbps_per_cell=intent.kbps_per_cell,
        assignments=assignments,
        edges=tuple(edges),
        unserved=unserved,
    )
