"""Admitting many slices: online (in the order given) or as a batch (most important and most
profitable per unit of capacity first), with preemption applied and preempted or capacity-
rejected slices retried, highest priority first, whenever capacity is released.

The state is plain data (:class:`PlanState`); :func:`plan` and :func:`release` update the state
they are given and return the decisions they took, in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy import optimize, sparse

from controller.core import admission, placement
from controller.core.admission import Decision, Outcome
from controller.core.ledger import Ledger
from controller.core.placement_model import Placement
from controller.core.topology import Topology
from slices import errors
from slices.profiles import SliceIntent


@dataclass
class PlanState:
    """Who holds what: the ledger is always the sum of the admitted placements."""

    topology: Topology
    ledger: Ledger
    admitted: dict[str, tuple[SliceIntent, Placement]] = field(default_factory=admission.AdmittedSlices)
    preempted: dict[str, tuple[SliceIntent, str]] = field(default_factory=dict)  # (intent, why)
    rejected: dict[str, Decision] = field(default_factory=dict)
    #: Rejected for lack of capacity: retried (with the preempted) after every release.
    pending: dict[str, SliceIntent] = field(default_factory=dict)

    @classmethod
    def empty(cls, topology: Topology) -> PlanState:
        return cls(topology, Ledger(topology))

    def copy(self) -> PlanState:
        return PlanState(
            self.topology,
            self.ledger.copy(),
            admission.AdmittedSlices(self.admitted),
            dict(self.preempted),
            dict(self.rejected),
            dict(self.pending),
        )


@dataclass(frozen=True)
class PlanResult:
    decisions: tuple[Decision, ...]
    state: PlanState

    def final(self) -> dict[str, Decision]:
        """The last decision taken for each slice (a preempted slice's last word is PREEMPTED)."""
        return {d.slice_name: d for d in self.decisions}


BatchOrder = Literal["priority", "revenue"]
Worth = Callable[[SliceIntent, Topology], float]


def revenue(intent: SliceIntent, topology: Topology) -> float:
    """What a slice is worth to batch planning: the bandwidth it sells, Mbit/s per cell × cells.

    Within one priority (the default batch order) this is what density ranks by; with
    ``order="revenue"`` it is the whole objective.
    """
    try:
        cells = len(topology.cells_in(intent.coverage))
    except errors.InvalidSpec:
        return 0.0
    return cells * intent.kbps_per_cell / 1000


Element = tuple[str, str | int]  # ("radio", cell), ("link", index), ("cpu", ""), ("memory", "")

#: Pricings batch planning tries at most (see :func:`_price_rounds`); each is one planning pass.
BATCH_ROUNDS = 7
#: Stop trying pricings once a round admits this share of the LP relaxation's optimum.
GOOD_ENOUGH = 0.995
#: Exponents of utilisation used as prices in the last rounds: high powers price only what
#: actually filled up.
PRICE_EXPONENTS = (40, 8)


def _demands(intents: Sequence[SliceIntent], topology: Topology) -> dict[str, dict[Element, float]]:
    """Each slice's share of every element it would use on its nearest routes (edge compute
    counted as one pool, since which site serves it is not known before placing)."""
    edges = topology.edge_sites
    cpu_pool = max(sum(topology.sites[e].cpu_millicores for e in edges), 1)
    mem_pool = max(sum(topology.sites[e].memory_mib for e in edges), 1)
    out: dict[str, dict[Element, float]] = {}
    for intent in intents:
        try:
            cells = topology.cells_in(intent.coverage)
        except errors.InvalidSpec:
            cells = ()
        bw = intent.kbps_per_cell
        d: dict[Element, float] = {}
        for cell in cells:
            d[("radio", cell)] = bw / max(topology.sites[cell].radio_kbps, 1)
            near = topology.nearest_routes(cell, 1)
            if near:
                for i in near[0].links:
                    d[("link", i)] = d.get(("link", i), 0.0) + bw / topology.link_capacity_kbps[i]
        cpu, mem = intent.compute_at(len(cells), len(cells)) if cells else (0, 0)
        d[("cpu", "")] = cpu / cpu_pool
        d[("memory", "")] = mem / mem_pool
        out[intent.name] = d
    return out


def _utilisation(state: PlanState) -> dict[Element, float]:
    topo, ledger = state.topology, state.ledger
    u: dict[Element, float] = {}
    for cell, kbps in ledger.radio_kbps.items():
        u[("radio", cell)] = kbps / max(topo.sites[cell].radio_kbps, 1)
    for i, kbps in enumerate(ledger.link_kbps):
        if kbps:
            u[("link", i)] = kbps / topo.link_capacity_kbps[i]
    edges = topo.edge_sites
    u[("cpu", "")] = sum(ledger.cpu_millicores.values()) / max(
        sum(topo.sites[e].cpu_millicores for e in edges), 1
    )
    u[("memory", "")] = sum(ledger.memory_mib.values()) / max(sum(topo.sites[e].memory_mib for e in edges), 1)
    return u


def _densities(
    intents: Sequence[SliceIntent],
    topology: Topology,
    demands: dict[str, dict[Element, float]],
    prices: dict[Element, float],
    worth: Worth | None = None,
) -> dict[str, float]:
    out: dict[str, float] = {}
    worth = worth or revenue
    for intent in intents:
        cost = sum(share * prices.get(key, 0.0) for key, share in demands[intent.name].items())
        value = worth(intent, topology)
        out[intent.name] = value / cost if cost > 0 else value * 1e12
    return out


def _ordered(
    intents: Sequence[SliceIntent], density: dict[str, float], order: BatchOrder
) -> list[SliceIntent]:
    """``priority``: highest priority first, then highest density; ``revenue``: by density alone
    (what maximises revenue when priorities do not follow it). Ties by name."""
    if order == "revenue":
        return sorted(intents, key=lambda i: (-density[i.name], i.name))
    return sorted(intents, key=lambda i: (-i.priority, -density[i.name], i.name))


def _apply(state: PlanState, intent: SliceIntent, decision: Decision) -> list[Decision]:
    """Make the state follow an admission decision; returns it and any preemptions it caused."""
    out = [decision]
    name = intent.name
    if decision.outcome != Outcome.ADMITTED:
        if name in state.admitted:
            # A changed spec that does not fit: the slice keeps its previous placement.
            kept = Decision(
                name,
                Outcome.REJECTED,
                state.admitted[name][1],
                decision.reason,
                f"update rejected, previous placement kept: {decision.message}",
            )
            return [kept]
        state.rejected[name] = decision
        state.preempted.pop(name, None)
        if decision.reason in placement.CAPACITY_REASONS:
            state.pending[name] = intent
        else:
            state.pending.pop(name, None)
        return out
    assert decision.placement is not None
    for victim in decision.preempts:
        victim_intent, _ = state.admitted.pop(victim)
        state.ledger.release(victim)
        why = (
            f"preempted by slice {name!r} (priority {intent.priority} over {victim_intent.priority}): "
            f"{decision.message}"
        )
        state.preempted[victim] = (victim_intent, why)
        out.append(Decision(victim, Outcome.PREEMPTED, None, "Preempted", why))
    if name in state.admitted:
        state.ledger.release(name)
    res = decision.placement.reservation(state.topology)
    short = state.ledger.shortfall(res)
    if short is not None:  # placement's own invariant; never trade it for an over-booked ledger
        raise AssertionError(f"placement of {name!r} overbooks {short.element} {short.name}")
    state.ledger.reserve(name, res)
    state.admitted[name] = (intent, decision.placement)
    state.rejected.pop(name, None)
    state.preempted.pop(name, None)
    state.pending.pop(name, None)
    return out


def apply_decision(state: PlanState, intent: SliceIntent, decision: Decision) -> list[Decision]:
    """Make ``state`` follow a decision taken elsewhere (e.g. against a ledger that counts the
    capacity calendar); returns it and the preemptions it caused, as :func:`submit` does."""
    return _apply(state, intent, decision)


def submit(state: PlanState, intent: SliceIntent, *, allow_preemption: bool = True) -> list[Decision]:
    """Decide one slice against the state and apply the decision (online admission)."""
    decision = admission.admit(
        intent, state.topology, state.ledger, state.admitted, allow_preemption=allow_preemption
    )
    return _apply(state, intent, decision)


def plan(
    intents: Sequence[SliceIntent],
    topology: Topology,
    state: PlanState | None = None,
    *,
    allow_preemption: bool = True,
) -> PlanResult:
    """Admit slices one by one in the order given (online); updates and returns ``state``.

    >>> from controller.core.examples import small_city, wifi
    >>> city = small_city(radio_mbps=200)     # c1 - a1 - e1
    >>> result = plan([wifi("a", "000001", 150), wifi("b", "000002", 100)], city)
    >>> [(d.slice_name, d.outcome.value, d.reason) for d in result.decisions]
    [('a', 'admitted', 'Admitted'), ('b', 'rejected', 'RadioCapacityExceeded')]
    >>> [(d.slice_name, d.outcome.value) for d in release(result.state, "a")]  # b waited
    [('b', 'admitted')]
    """
    state = state if state is not None else PlanState.empty(topology)
    decisions: list[Decision] = []
    for intent in intents:
        decisions += submit(state, intent, allow_preemption=allow_preemption)
    return PlanResult(tuple(decisions), state)


def lp_prices(
    intents: Sequence[SliceIntent],
    topology: Topology,
    demands: dict[str, dict[Element, float]],
    load: dict[Element, float],
    worth: Worth,
) -> tuple[dict[Element, float], float]:
    """Shadow prices of the contended elements from the LP relaxation of batch admission, and
    the relaxation's optimum (an estimate of the most worth the batch could admit).

    ``max Σ worth·x`` subject to ``Σ share·x ≤ 1`` on every element the batch oversubscribes,
    ``0 ≤ x ≤ 1`` (routes fixed to the nearest, compute pooled): its duals say what a unit of
    each element is worth at the margin, balancing several kinds of capacity that run out
    together, which no single-kind ordering does. Empty when nothing is contended or the LP fails.
    """
    rows = sorted((k for k, v in load.items() if v > 1.0), key=str)
    if not rows or not intents:
        return {}, math.inf
    index = {k: r for r, k in enumerate(rows)}
    data: list[float] = []
    row_ix: list[int] = []
    col_ix: list[int] = []
    for col, intent in enumerate(intents):
        for key, share in demands[intent.name].items():
            r = index.get(key)
            if r is not None and share > 0:
                data.append(share)
                row_ix.append(r)
                col_ix.append(col)
    matrix = sparse.csr_matrix((data, (row_ix, col_ix)), shape=(len(rows), len(intents)))
    value = np.array([-worth(i, topology) for i in intents], dtype=float)
    res = optimize.linprog(value, A_ub=matrix, b_ub=np.ones(len(rows)), bounds=(0, 1), method="highs")
    if res.status != 0 or res.ineqlin is None:
        return {}, math.inf
    duals = -np.asarray(res.ineqlin.marginals, dtype=float)
    return {k: float(duals[r]) for k, r in index.items() if duals[r] > 1e-12}, -float(res.fun)


def _price_rounds(load: dict[Element, float], lp: dict[Element, float]) -> list[dict[Element, float] | int]:
    """The pricings batch planning tries: LP shadow prices, every element by contention (load
    squared), then each kind of capacity alone (a city is often bound by one: compute, radio
    or transport), then (an int: the exponent) utilisation of the best round so far raised to
    that power."""
    contended = {k: v * v for k, v in load.items()}
    rounds: list[dict[Element, float] | int] = [lp] if lp else []
    rounds.append(contended)
    for kinds in (("cpu", "memory"), ("radio",), ("link",)):
        rounds.append({k: v for k, v in contended.items() if k[0] in kinds})
    rounds.extend(PRICE_EXPONENTS)
    return rounds


def plan_batch(
    intents: Sequence[SliceIntent],
    topology: Topology,
    state: PlanState | None = None,
    order: BatchOrder = "priority",
    worth: Worth | None = None,
) -> PlanResult:
    """Offline planning: admit in order of priority (unless ``order="revenue"``), then revenue density.

    ``worth(intent, topology)`` is what a slice is worth (default :func:`revenue`); a caller with
    its own prices (the benchmarks) passes its own.

    Density is worth over the capacity a slice would use, each element of capacity priced. A
    few pricings are tried (:func:`_price_rounds`: by contention, by one kind of capacity at a
    time, by how full the best round so far left each element) and the round that admits the
    most worth wins; identical orders are planned once. ``state`` (if given) is updated with
    the winning round only. With ``order="revenue"`` nothing is preempted.
    """
    # Ordering by revenue sets priority aside, so priority must not preempt either.
    preempt = order == "priority"
    worth = worth or revenue
    demands = _demands(intents, topology)
    load: dict[Element, float] = {}
    for d in demands.values():
        for key, share in d.items():
            load[key] = load.get(key, 0.0) + share
    best: tuple[float, list[SliceIntent], PlanResult] | None = None
    seen: set[tuple[str, ...]] = set()
    lp, estimate = lp_prices(intents, topology, demands, load, worth)
    for pricing in _price_rounds(load, lp)[:BATCH_ROUNDS]:
        if best is not None and best[0] >= GOOD_ENOUGH * estimate:
            break  # as good as the relaxation says is possible: more rounds cannot pay
        if isinstance(pricing, int):
            assert best is not None
            used = _utilisation(best[2].state)
            prices = {k: used.get(k, 0.0) ** pricing for k in load}
        else:
            prices = pricing
        ordered = _ordered(intents, _densities(intents, topology, demands, prices, worth), order)
        names = tuple(i.name for i in ordered)
        if names in seen:
            continue
        seen.add(names)
        result = plan(
            ordered, topology, state.copy() if state is not None else None, allow_preemption=preempt
        )
        value = sum(worth(i, topology) for i in intents if i.name in result.state.admitted)
        if best is None or value > best[0]:
            best = (value, ordered, result)
    assert best is not None
    if state is None:
        return best[2]
    return plan(best[1], topology, state, allow_preemption=preempt)


def release(state: PlanState, name: str) -> list[Decision]:
    """Remove a slice (freeing what it held) and re-admit waiting slices that now fit."""
    if name in state.admitted:
        state.admitted.pop(name)
        state.ledger.release(name)
    elif name in state.preempted or name in state.rejected:
        state.preempted.pop(name, None)
        state.rejected.pop(name, None)
        state.pending.pop(name, None)
        return []
    else:
        raise errors.NotFound(f"slice {name!r} is not in the plan")
    return readmit(state)


def readmit(state: PlanState) -> list[Decision]:
    """Try the preempted and capacity-rejected slices again, highest priority first.

    Retries do not preempt: a slice waits for capacity someone gave back, it does not start a
    chain of evictions.
    """
    waiting = [i for i, _ in state.preempted.values()] + list(state.pending.values())
    waiting.sort(key=lambda i: (-i.priority, i.name))
    decisions: list[Decision] = []
    for intent in waiting:
        decision = admission.admit(
            intent, state.topology, state.ledger, state.admitted, allow_preemption=False
        )
        if decision.outcome == Outcome.ADMITTED:
            decisions += _apply(state, intent, decision)
    return decisions
