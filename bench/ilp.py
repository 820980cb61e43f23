"""Exact slice placement as an integer linear programme, solved with HiGHS: the yardstick.

Given a topology, an (empty) ledger and a set of slice requests, choose which requests to admit
and, for every covered cell of an admitted request, one candidate route (from the same candidate
set the heuristic uses, ``Topology.routes(cell, intent.latency_ms)``), so that the admitted
revenue is as large as possible and no radio, link, CPU or memory capacity is exceeded.

Variables (all integer):

* ``a[r]``       binary, request r admitted;
* ``x[r,c,k]``   binary, cell c of r is served over candidate route k; ``Σ_k x[r,c,k] = a[r]``;
* ``y[r,e]``     binary, r runs at edge site e; ``Σ_{k→e} x[r,c,k] ≤ y[r,e] ≤ a[r]`` for every cell c;
* ``z[r,e,w]``   replicas of workload w of r at e, ``0..w.replicas``;
  ``N_r·z ≥ w.replicas·n[r,e]`` (with ``n[r,e] = Σ_{c,k→e} x``) and ``z ≥ y[r,e]``, which is
  exactly ``SliceIntent.replicas_at`` (``max(1, ceil(replicas·here/total))``) at the optimum.

Capacities: radio per cell ``Σ kbps_r·a[r] ≤ radio``; bandwidth per link
``Σ kbps_r·x[r,c,k] (k uses the link) ≤ bandwidth``; CPU and memory per edge site
``Σ cpu_w·z[r,e,w] ≤ cpu``. Objective: ``max Σ revenue_r·a[r]``.

The solution is turned back into :class:`Placement` values, so callers can check it with the
project's own :class:`Ledger` (the tests do).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import highspy
import numpy as np
from scipy import sparse

from controller.core.placement_model import CellAssignment, EdgeShare, Placement
from controller.core.topology import Route, Topology
from slices.profiles import SliceIntent


@dataclass(frozen=True)
class IlpResult:
    status: str  # HiGHS model status, e.g. "Optimal", "Time limit reached"
    objective: float  # revenue of the best solution found (0 if none)
    bound: float  # best proven upper bound on the revenue
    seconds: float
    build_seconds: float
    variables: int
    constraints: int
    placements: dict[str, Placement] = field(default_factory=dict)

    @property
    def optimal(self) -> bool:
        return self.status == "Optimal"

    @property
    def gap(self) -> float:
        """Relative MIP gap (bound − objective) / bound; 0 when proven optimal."""
        if self.bound <= 0:
            return 0.0
        return max(0.0, (self.bound - self.objective) / self.bound)


@dataclass
class _Model:
    """Column-wise model under construction (COO triplets, turned into CSC at the end)."""

    cost: list[float] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    cols: list[int] = field(default_factory=list)
    vals: list[float] = field(default_factory=list)
    row_lower: list[float] = field(default_factory=list)
    row_upper: list[float] = field(default_factory=list)

    def col(self, cost: float, upper: float) -> int:
        self.cost.append(cost)
        self.lower.append(0.0)
        self.upper.append(upper)
        return len(self.cost) - 1

    def row(self, lower: float, upper: float) -> int:
        self.row_lower.append(lower)
        self.row_upper.append(upper)
        return len(self.row_lower) - 1

    def coef(self, row: int, col: int, value: float) -> None:
        self.rows.append(row)
        self.cols.append(col)
        self.vals.append(value)


def _candidates(topology: Topology, intent: SliceIntent) -> dict[str, list[Route]] | None:
    """Candidate routes per covered cell; None when some cell has none (the request cannot fit)."""
    out: dict[str, list[Route]] = {}
    for cell in topology.cells_in(intent.coverage):
        routes = topology.routes(cell, intent.latency_ms)
        if not routes:
            return None
        out[cell] = routes
    return out


def solve(
    topology: Topology,
    intents: Sequence[SliceIntent],
    revenue: Mapping[str, float],
    time_limit_s: float = 60.0,
    warm_start: Mapping[str, Placement] | None = None,
    threads: int = 1,
) -> IlpResult:
    """Maximise admitted revenue over ``intents`` on an empty ``topology``.

    ``warm_start`` (a feasible set of placements, e.g. from a heuristic) is offered to HiGHS as
    its first incumbent; assignments not among the candidate routes are dropped from it, so it
    stays feasible.
    """
    t0 = time.perf_counter()
    m = _Model()
    capacity_rows: dict[tuple[str, str | int], int] = {}

    def capacity_row(element: str, key: str | int, cap: int) -> int:
        """The ``Σ … ≤ cap`` row of one radio, link, CPU or memory capacity, made on first use."""
        row = capacity_rows.get((element, key))
        if row is None:
            row = capacity_rows[(element, key)] = m.row(-math.inf, float(cap))
        return row

    admit_col: dict[str, int] = {}
    route_cols: dict[str, list[tuple[int, Route]]] = {}
    edge_cols: dict[str, dict[str, int]] = {}
    replica_cols: dict[str, dict[tuple[str, str], int]] = {}
    for intent in intents:
        candidates = _candidates(topology, intent)
        if candidates is None:
            continue
        name = intent.name
        kbps = intent.kbps_per_cell
        n_cells = len(candidates)
        a = m.col(float(revenue[name]), 1.0)
        admit_col[name] = a
        route_cols[name] = []
        edges = sorted({r.edge for routes in candidates.values() for r in routes})
        y = {e: m.col(0.0, 1.0) for e in edges}
        edge_cols[name] = y
        for e in edges:  # y ≤ a: redundant for integers, but it tightens the LP relaxation
            row = m.row(-math.inf, 0.0)
            m.coef(row, y[e], 1.0)
            m.coef(row, a, -1.0)
        load_row = {e: {w.name: m.row(-math.inf, 0.0) for w in intent.workloads} for e in edges}
        for e in edges:
            for w in intent.workloads:
                z = m.col(0.0, float(w.replicas))
                replica_cols.setdefault(name, {})[(e, w.name)] = z
                m.coef(load_row[e][w.name], z, -float(n_cells))  # w.replicas·n[r,e] − N·z ≤ 0
                at_least_one = m.row(-math.inf, 0.0)  # y − z ≤ 0
                m.coef(at_least_one, y[e], 1.0)
                m.coef(at_least_one, z, -1.0)
                m.coef(capacity_row("cpu", e, topology.sites[e].cpu_millicores), z, w.cpu_millicores)
                m.coef(capacity_row("memory", e, topology.sites[e].memory_mib), z, w.memory_mib)
        for cell, routes in candidates.items():
            choose = m.row(0.0, 0.0)  # Σ_k x − a = 0
            m.coef(choose, a, -1.0)
            m.coef(capacity_row("radio", cell, topology.sites[cell].radio_kbps), a, kbps)
            uses_edge = {e: m.row(-math.inf, 0.0) for e in {r.edge for r in routes}}  # Σ_{k→e} x − y ≤ 0
            for e, row in uses_edge.items():
                m.coef(row, y[e], -1.0)
            for route in routes:
                x = m.col(0.0, 1.0)
                route_cols[name].append((x, route))
                m.coef(choose, x, 1.0)
                m.coef(uses_edge[route.edge], x, 1.0)
                for w in intent.workloads:
                    m.coef(load_row[route.edge][w.name], x, float(w.replicas))
                for link in route.links:
                    m.coef(capacity_row("link", link, topology.links[link].bandwidth_kbps), x, float(kbps))

    n_cols, n_rows = len(m.cost), len(m.row_lower)
    build_seconds = time.perf_counter() - t0
    if n_cols == 0:
        return IlpResult("Optimal", 0.0, 0.0, 0.0, build_seconds, 0, 0)

    matrix = sparse.csc_matrix(
        (np.asarray(m.vals, dtype=float), (np.asarray(m.rows), np.asarray(m.cols))), shape=(n_rows, n_cols)
    )
    matrix.sum_duplicates()
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = n_rows
    lp.col_cost_ = np.asarray(m.cost, dtype=float)
    lp.col_lower_ = np.asarray(m.lower, dtype=float)
    lp.col_upper_ = np.asarray(m.upper, dtype=float)
    inf = highspy.kHighsInf
    lp.row_lower_ = np.asarray([max(v, -inf) for v in m.row_lower], dtype=float)
    lp.row_upper_ = np.asarray(m.row_upper, dtype=float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data
    lp.a_matrix_.num_col_ = n_cols
    lp.a_matrix_.num_row_ = n_rows
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n_cols
    lp.sense_ = highspy.ObjSense.kMaximize

    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("threads", threads)
    h.passModel(lp)
    if warm_start:
        start = _warm_start_vector(
            n_cols, warm_start, admit_col, route_cols, edge_cols, replica_cols, intents
        )
        sol = highspy.HighsSolution()
        sol.col_value = list(start)
        sol.value_valid = True
        h.setSolution(sol)
    t1 = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - t1
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    values = np.asarray(h.getSolution().col_value) if has_solution else np.zeros(n_cols)
    objective = float(info.objective_function_value) if has_solution else 0.0
    bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else objective
    placements = _placements(values, intents, admit_col, route_cols) if has_solution else {}
    return IlpResult(
        status=status,
        objective=objective,
        bound=bound,
        seconds=seconds,
        build_seconds=build_seconds,
        variables=n_cols,
        constraints=n_rows,
        placements=placements,
    )


def _warm_start_vector(
    n_cols: int,
    warm_start: Mapping[str, Placement],
    admit_col: Mapping[str, int],
    route_cols: Mapping[str, list[tuple[int, Route]]],
    edge_cols: Mapping[str, Mapping[str, int]],
    replica_cols: Mapping[str, Mapping[tuple[str, str], int]],
    intents: Sequence[SliceIntent],
) -> np.ndarray:
    start = np.zeros(n_cols)
    by_name = {i.name: i for i in intents}
    for name, placement in warm_start.items():
        if name not in admit_col:
            continue
        chosen = {(a.cell, a.edge, a.nodes) for a in placement.assignments}
        cols = [x for x, r in route_cols[name] if (r.cell, r.edge, r.nodes) in chosen]
        covered = {r.cell for _, r in route_cols[name]}
        if len(cols) != len(covered) or {a.cell for a in placement.assignments} != covered:
            continue  # a detour, a cell left out: not expressible with the candidate routes
        start[admit_col[name]] = 1.0
        start[cols] = 1.0
        intent = by_name[name]
        for share in placement.edges:
            start[edge_cols[name][share.site]] = 1.0
            for w in intent.workloads:
                n = intent.replicas_at(w, share.cells, len(placement.assignments))
                start[replica_cols[name][(share.site, w.name)]] = float(n)
    return start


def _placements(
    values: np.ndarray,
    intents: Sequence[SliceIntent],
    admit_col: Mapping[str, int],
    route_cols: Mapping[str, list[tuple[int, Route]]],
) -> dict[str, Placement]:
    out: dict[str, Placement] = {}
    for intent in intents:
        a = admit_col.get(intent.name)
        if a is None or values[a] < 0.5:
            continue
        chosen = [r for x, r in route_cols[intent.name] if values[x] > 0.5]
        out[intent.name] = placement_of(intent, chosen)
    return out


def placement_of(intent: SliceIntent, routes: Sequence[Route]) -> Placement:
    """A :class:`Placement` serving each cell over its route, compute sized by ``compute_at``."""
    assignments = tuple(CellAssignment(r.cell, r.edge, r.nodes, r.latency_ms) for r in routes)
    per_edge: dict[str, int] = {}
    for r in routes:
        per_edge[r.edge] = per_edge.get(r.edge, 0) + 1
    total = len(routes)
    edges = []
    for site, n in sorted(per_edge.items()):
        cpu, mem = intent.compute_at(n, total)
        replicas = tuple((w.name, intent.replicas_at(w, n, total)) for w in intent.workloads)
        edges.append(EdgeShare(site, n, cpu, mem, replicas))
    return Placement(intent.name, intent.spec_hash, intent.kbps_per_cell, assignments, tuple(edges))
