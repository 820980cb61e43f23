"""Placement quality: admitted revenue of our planners as a share of the exact ILP optimum.

    python bench/bench_quality.py                      # every instance
    python bench/bench_quality.py --quick              # a subset, shorter ILP limit (CI smoke check)
    python bench/bench_quality.py --revenue priority   # revenue weighted by priority, not list price

For each instance (a generated city and a set of mixed slice requests, revenue as defined in
``bench/instances.py``) it runs, each on an empty ledger:

* ``batch``  — ``controller.core.planner.plan_batch`` (priority, then revenue density);
* ``batch-rev`` — ``plan_batch(order="revenue", worth=...)``: priority set aside, maximising
  the same revenue the ILP maximises (the operator's prices are the planner's objective);
* ``online`` — ``controller.core.planner.plan`` in the given (random) order, with preemption;
* ``naive``  — ``bench/naive.py``: given order, first feasible edge site, shortest paths;
* ``ilp``    — ``bench/ilp.py`` with HiGHS, time-limited, warm-started from the best of the above.

and prints each one's admitted revenue as % of the ILP's (and, when HiGHS stopped at its time
limit, the gap to the proven bound). Every placement set is re-checked against a fresh
``Ledger``: nothing may be over capacity.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import ilp, instances, naive
from controller.core import planner
from controller.core.ledger import Ledger
from controller.core.placement_model import Placement
from controller.core.topology import Topology
from slices.profiles import SliceIntent


@dataclass(frozen=True)
class Instance:
    name: str
    cells: int
    seed: int
    requests: int
    min_cells: int
    max_cells: int
    capacity_scale: float
    congested: bool  # by design; the ILP's admitted share printed beside it confirms it
    quick: bool = False

    @property
    def kind(self) -> str:
        return "congested" if self.congested else "loose"


INSTANCES: tuple[Instance, ...] = (
    Instance("L100-a", 100, 1, 50, 5, 25, 1.0, congested=False, quick=True),
    Instance("C100-a", 100, 1, 100, 5, 25, 0.5, congested=True, quick=True),
    Instance("L100-b", 100, 2, 60, 5, 25, 1.0, congested=False),
    Instance("C100-b", 100, 2, 100, 5, 25, 0.6, congested=True),
    Instance("L500-a", 500, 1, 50, 10, 60, 1.0, congested=False),
    Instance("C500-a", 500, 1, 120, 10, 50, 0.6, congested=True),
    Instance("L500-b", 500, 2, 60, 10, 50, 1.0, congested=False),
    # Default capacities, but 300 requests for two 64-core edge sites: compute binds.
    Instance("C500-c", 500, 3, 300, 5, 20, 1.0, congested=True),
)


@dataclass(frozen=True)
class Outcome:
    revenue: float
    admitted: int
    seconds: float


def _check(topology: Topology, placements: Mapping[str, Placement], who: str) -> None:
    over = Ledger.from_placements(topology, placements.values()).over_capacity()
    if over:
        raise SystemExit(f"{who}: placements overbook {', '.join(over[:3])}")


def _outcome(
    topology: Topology,
    placements: Mapping[str, Placement],
    rev: Mapping[str, float],
    seconds: float,
    who: str,
) -> Outcome:
    _check(topology, placements, who)
    return Outcome(sum(rev[n] for n in placements), len(placements), seconds)


@dataclass(frozen=True)
class Row:
    instance: Instance
    offered: float  # revenue of every request
    ilp: ilp.IlpResult
    ilp_outcome: Outcome
    heuristics: dict[str, Outcome]


def run_instance(inst: Instance, time_limit_s: float, model: str) -> Row:
    city = instances.build_city(inst.cells, inst.seed, inst.capacity_scale)
    intents = instances.make_intents(
        city, instances.RequestMix(inst.requests, inst.min_cells, inst.max_cells), seed=inst.seed + 100
    )
    rev = instances.revenues(city, intents, model)

    outcomes: dict[str, Outcome] = {}
    placements: dict[str, dict[str, Placement]] = {}

    def worth(intent: SliceIntent, topology: Topology) -> float:
        return rev[intent.name]

    runs: list[tuple[str, Callable[[], planner.PlanResult]]] = [
        ("batch", lambda: planner.plan_batch(intents, city)),
        # The operator's own prices as the planner's objective, priority set aside.
        ("batch-rev", lambda: planner.plan_batch(intents, city, order="revenue", worth=worth)),
        ("online", lambda: planner.plan(intents, city)),
    ]
    for who, planned in runs:
        t = time.perf_counter()
        admitted = planned().state.admitted
        seconds = time.perf_counter() - t
        placements[who] = {name: p for name, (_, p) in admitted.items()}
        outcomes[who] = _outcome(city, placements[who], rev, seconds, who)
    t = time.perf_counter()
    placements["naive"] = naive.run(intents, city)
    outcomes["naive"] = _outcome(city, placements["naive"], rev, time.perf_counter() - t, "naive")

    best = max(outcomes, key=lambda who: outcomes[who].revenue)
    result = ilp.solve(city, intents, rev, time_limit_s=time_limit_s, warm_start=placements[best])
    return Row(
        instance=inst,
        offered=sum(rev.values()),
        ilp=result,
        ilp_outcome=_outcome(city, result.placements, rev, result.seconds, "ilp"),
        heuristics=outcomes,
    )


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 100.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the quick subset (CI smoke check)")
    parser.add_argument("--time-limit", type=float, default=None, help="HiGHS seconds per instance")
    parser.add_argument("--only", nargs="*", default=None, help="instance names to run")
    parser.add_argument(
        "--revenue",
        choices=instances.REVENUE_MODELS,
        default="priced",
        help="revenue weighting per slice (see bench/instances.py); default priced",
    )
    args = parser.parse_args(argv)
    time_limit = args.time_limit if args.time_limit is not None else (20.0 if args.quick else 60.0)
    chosen = [
        i for i in INSTANCES if (not args.quick or i.quick) and (args.only is None or i.name in args.only)
    ]
    if not chosen:
        parser.error("no instance selected")

    started = time.perf_counter()
    print(f"revenue model: {args.revenue}; HiGHS time limit {time_limit:g} s per instance (wall clock)")
    who_all = ("batch", "batch-rev", "online", "naive")
    header = (
        f"{'instance':<8} {'cells':>5} {'req':>4} {'scale':>5} | {'ILP status':<10} {'revenue':>9} "
        f"{'gap':>6} {'adm':>7} {'share':>5} {'vars':>6} {'ilp s':>6} | "
        + " ".join(f"{w + '%':>9}" for w in who_all)
        + f" | {'batch s':>7} {'online s':>8}"
    )
    print(header)
    print("-" * len(header))
    rows: list[Row] = []
    for inst in chosen:
        row = run_instance(inst, time_limit, args.revenue)
        rows.append(row)
        res, io, hs = row.ilp, row.ilp_outcome, row.heuristics
        status = "optimal" if res.optimal else ("time limit" if "Time" in res.status else res.status)
        print(
            f"{inst.name:<8} {inst.cells:>5} {inst.requests:>4} {inst.capacity_scale:>5.2f} | {status:<10} "
            f"{io.revenue:>9.0f} {100 * res.gap:>5.2f}% {io.admitted:>3}/{inst.requests:<3} "
            f"{_pct(io.revenue, row.offered):>4.0f}% "
            f"{res.variables:>6} {res.seconds:>6.1f} | "
            + " ".join(f"{_pct(hs[w].revenue, io.revenue) if w in hs else math.nan:>9.1f}" for w in who_all)
            + f" | {hs['batch'].seconds:>7.2f} {hs['online'].seconds:>8.2f}",
            flush=True,
        )
    print()
    print("average % of ILP revenue (in brackets: % of the ILP's proven upper bound):")
    for kind in ("loose", "congested"):
        group = [r for r in rows if r.instance.kind == kind]
        if not group:
            continue
        parts = []
        for who in (w for w in who_all if w in group[0].heuristics):
            vs_obj = statistics.mean(_pct(r.heuristics[who].revenue, r.ilp_outcome.revenue) for r in group)
            vs_bound = statistics.mean(_pct(r.heuristics[who].revenue, r.ilp.bound) for r in group)
            parts.append(f"{who} {vs_obj:.1f}% ({vs_bound:.1f}%)")
        ilp_share = statistics.mean(_pct(r.ilp_outcome.revenue, r.offered) for r in group)
        print(
            f"  {kind:<9} ({len(group)} instances, ILP admits {ilp_share:.0f}% of offered revenue): "
            f"{', '.join(parts)}"
        )
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
