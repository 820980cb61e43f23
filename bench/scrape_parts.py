"""Where a city-scale metrics scrape's time goes: its parts timed in process, best of 5.

    python bench/scrape_parts.py [--cells 20000] [--slices 2000] [--profile tottime]

The state of ``bench_metrics.py`` (a generated city, 2,000 slices placed by the real service,
every site's agent reporting through the real registry), without HTTP: each part runs right after
every agent reported (as between two scrapes), with the cyclic garbage collector paused as a
scrape pauses it. ``--profile`` prints a cProfile of one whole scrape sorted by that key.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from prometheus_client import generate_latest

from bench.bench_metrics import Agents, placed_city
from controller.runtime.store import Store
from telemetry.metrics.agents import AgentRegistryView
from telemetry.metrics.kpis import KPI_MAX_AGE_S
from telemetry.metrics.scrapes import configure_process


def main(argv: list[str] | None = None) -> None:
    configure_process()  # as the controller's composition root does
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=20_000)
    ap.add_argument("--slices", type=int, default=2_000)
    ap.add_argument("--profile", metavar="SORT", help="cProfile one scrape, sorted by SORT")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        service, observer, _ = placed_city(Store.open(Path(folder) / "s.db"), args.cells, args.slices, 1, 3.0)
        prom = observer.registry
        agents = Agents(service, 1)
        view = AgentRegistryView(agents.registry)
        observer.watch(service, view)
        for _ in range(5):
            agents.report()
        generate_latest(prom)  # per-revision caches built
        gc.collect()
        gc.freeze()
        registry = agents.registry
        cells = frozenset(s for s, kind in registry.site_kinds().items() if kind == "cell")

        def best(label: str, part: Callable[[], object]) -> None:
            spent = []
            for _ in range(5):
                agents.report()
                gc.disable()
                start = time.perf_counter()
                part()
                spent.append(time.perf_counter() - start)
                gc.enable()
            print(f"{label:60s} {min(spent) * 1000:7.1f} ms")

        families = list(prom.collect())

        class Collected:
            def collect(self) -> Sequence[object]:
                return families

        best("whole scrape (generate_latest)", lambda: generate_latest(prom))
        best("collection (CollectorRegistry.collect)", lambda: list(prom.collect()))
        best("text writer, families collected already", lambda: generate_latest(Collected()))  # type: ignore[arg-type]
        best("AgentRegistryView.slice_kpis (KPI read + aggregation)", view.slice_kpis)
        best(
            "AgentRegistry.latest_kpi_columns (KPI read)",
            lambda: registry.latest_kpi_columns(registry.clock() - KPI_MAX_AGE_S, cells),
        )
        best("AgentRegistryView.agent_table", view.agent_table)
        best("ControllerService.list_slices", service.list_slices)
        if args.profile:
            agents.report()
            profile = cProfile.Profile()
            profile.enable()
            generate_latest(prom)
            profile.disable()
            pstats.Stats(profile).sort_stats(args.profile).print_stats(30)


if __name__ == "__main__":
    main()
