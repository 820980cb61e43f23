"""Admission speed: slices admitted online, one by one, on a big generated city.

    python bench/bench_admission.py [--cells 20000] [--slices 2000] [--seed 1] [--profile]

Builds a ``controller.core.citygen`` city, then ``--slices`` mixed requests (IoT / vehicle / Wi-Fi,
10–200 cells each, the cells nearest a random point, so coverage is a coherent district), and
admits them in order through ``controller.core.admission.admit``, applying every decision to the
ledger as the controller does (release the preempted, reserve the placement). Prints the
admission-time percentiles (the ``admit`` call only; applying is timed apart), the outcome
counts, the topology build time and the peak RSS. Targets: p50 ≤ 20 ms, p95 ≤ 100 ms, peak RSS
≤ 1 GiB. ``--profile`` runs the admission loop under cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import instances
from controller.core import admission, citygen
from controller.core.admission import Outcome
from controller.core.ledger import Ledger
from controller.core.placement_model import Placement
from controller.core.topology import Topology
from slices.profiles import SliceIntent

TARGET_P50_MS = 20.0
TARGET_P95_MS = 100.0
TARGET_RSS_MIB = 1024.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([1.0, 2.0, 3.0, 4.0], 95)
    (2.0, 4.0)
    """
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


@dataclass
class Run:
    admit_wall_s: list[float] = field(default_factory=list)  # per admit() call, wall clock
    admit_cpu_s: list[float] = field(default_factory=list)  # per admit() call, this process's CPU
    apply_s: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)


def admit_all(topology: Topology, intents: list[SliceIntent]) -> tuple[Run, Ledger]:
    """Admit in order, applying every decision to the ledger as the controller does."""
    ledger = Ledger(topology)
    admitted: dict[str, tuple[SliceIntent, Placement]] = {}
    run = Run()
    clock, cpu_clock = time.perf_counter, time.process_time
    for intent in intents:
        c0, t0 = cpu_clock(), clock()
        decision = admission.admit(intent, topology, ledger, admitted)
        t1, c1 = clock(), cpu_clock()
        run.admit_wall_s.append(t1 - t0)
        run.admit_cpu_s.append(c1 - c0)
        run.reasons[decision.reason] += 1
        if decision.outcome == Outcome.ADMITTED:
            assert decision.placement is not None
            for victim in decision.preempts:
                ledger.release(victim)
                admitted.pop(victim)
                run.outcomes["preempted"] += 1
            ledger.reserve(intent.name, decision.placement.reservation(topology))
            admitted[intent.name] = (intent, decision.placement)
            run.outcomes["admitted"] += 1
        else:
            run.outcomes["rejected"] += 1
        run.apply_s.append(clock() - t1)
    run.outcomes["held at end"] = len(admitted)
    return run, ledger


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--slices", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-cells", type=int, default=10)
    parser.add_argument("--max-cells", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="profile the admission loop (slower)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    source = citygen.generate_city(args.cells, args.seed)
    t1 = time.perf_counter()
    topology = Topology.from_file(source)
    t2 = time.perf_counter()
    print(
        f"city: {len(topology.cells)} cells, {len(topology.sites)} sites, {len(topology.links)} links, "
        f"{len(topology.edge_sites)} edge sites"
    )
    print(f"  generate {t1 - t0:.2f} s, build topology (validate + routing trees) {t2 - t1:.2f} s")

    t = time.perf_counter()
    mix = instances.RequestMix(args.slices, args.min_cells, args.max_cells)
    intents = instances.make_intents(topology, mix, seed=args.seed + 100)
    kinds = Counter(i.kind.value for i in intents)
    print(
        f"requests: {len(intents)} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
        f"{args.min_cells}-{args.max_cells} cells each, built in {time.perf_counter() - t:.2f} s"
    )

    profiler = cProfile.Profile() if args.profile else None
    t = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    run, ledger = admit_all(topology, intents)
    if profiler is not None:
        profiler.disable()
    total = time.perf_counter() - t
    over = ledger.over_capacity()
    if over:
        print(f"ERROR: ledger over capacity on {', '.join(over[:5])}")
        return 1

    rss = peak_rss_mib()
    figures: dict[str, tuple[float, float]] = {}
    for label, values in (("wall clock", run.admit_wall_s), ("CPU time", run.admit_cpu_s)):
        ms = sorted(v * 1000 for v in values)
        p50, p95 = percentile(ms, 50), percentile(ms, 95)
        figures[label] = (p50, p95)
        print(
            f"admission {label} ({'under cProfile, ' if profiler else ''}admit() only): "
            f"p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {ms[-1]:.1f} ms, mean {sum(ms) / len(ms):.2f} ms"
        )
    print("  (CPU time: what this process used; wall clock also counts waiting for a shared core)")
    print(f"  applying decisions (reserve/release): total {sum(run.apply_s):.2f} s; whole loop {total:.1f} s")
    out = run.outcomes
    print(
        f"outcomes: admitted {out['admitted']}, rejected {out['rejected']}, "
        f"preempted {out['preempted']}, holding at the end {out['held at end']}"
    )
    print(f"  reasons: {', '.join(f'{r} {n}' for r, n in run.reasons.most_common())}")
    print(f"peak RSS {rss:.0f} MiB")
    if profiler is None:
        verdict = []
        for label, (p50, p95) in figures.items():
            verdict.append(
                f"{label} p50 {'OK' if p50 <= TARGET_P50_MS else 'MISSED'} (≤ {TARGET_P50_MS:g} ms)"
            )
            verdict.append(f"p95 {'OK' if p95 <= TARGET_P95_MS else 'MISSED'} (≤ {TARGET_P95_MS:g} ms)")
        verdict.append(f"RSS {'OK' if rss <= TARGET_RSS_MIB else 'MISSED'} (≤ {TARGET_RSS_MIB:g} MiB)")
        print(f"targets: {', '.join(verdict)}")
    else:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(15)
        stats.sort_stats("cumulative").print_stats(25)
        print(text.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
