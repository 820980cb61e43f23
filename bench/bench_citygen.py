"""City generator speed: generate, build the graph, write and read the file, peak memory.

    python bench/bench_citygen.py [--cells 1000 5000 20000] [--seed 0] [--repeat 3]

Each size runs in a fresh Python process, so its peak RSS is its own (the interpreter and the
imported libraries are part of every figure): once the city is generated
and built, and again after writing and reading it back (PyYAML's node tree is the big one). Times are medians over
``--repeat`` runs of ``controller.core.citygen.generate_city`` and ``Topology.from_file``, and one
JSON and one YAML write and read through ``controller.core.topology_file`` (libyaml's C
loader/dumper when present; PyYAML still builds every object in Python, so a big city is
much faster to load from JSON). Target: a 20,000-cell city generated and built in seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(cells: int, seed: int, repeat: int) -> dict[str, float]:
    from controller.core import citygen, topology_file
    from controller.core.topology import Topology

    citygen.generate_city(10, seed)  # warm up: lazy imports (scipy.spatial) are not generation time
    gen, build, gen_cpu, build_cpu = [], [], [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        city = citygen.generate_city(cells, seed)
        t1, c1 = time.perf_counter(), time.process_time()
        topo = Topology.from_file(city)
        t2, c2 = time.perf_counter(), time.process_time()
        gen.append(t1 - t0)
        build.append(t2 - t1)
        gen_cpu.append(c1 - c0)
        build_cpu.append(c2 - c1)
    result: dict[str, float] = {
        "cells": cells,
        "sites": len(topo.sites),
        "links": len(topo.links),
        "generate_s": statistics.median(gen),
        "build_s": statistics.median(build),
        "generate_cpu_s": statistics.median(gen_cpu),
        "build_cpu_s": statistics.median(build_cpu),
        "build_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("json", "yaml"):
            path = Path(tmp) / f"city.{fmt}"
            t0 = time.perf_counter()
            topology_file.write_topology_file(city, path)
            t1 = time.perf_counter()
            again = topology_file.read_topology_file(path)
            t2 = time.perf_counter()
            assert again == city
            result |= {
                f"write_{fmt}_s": t1 - t0,
                f"read_{fmt}_s": t2 - t1,
                f"{fmt}_mib": path.stat().st_size / 2**20,
            }
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.cells[0], args.seed, args.repeat)))
        return
    print(
        f"{'cells':>6} {'sites':>6} {'links':>6} | {'generate (cpu)':>16} | {'build (cpu)':>16} |"
        f" {'JSON write / read / size':>27} | {'YAML write / read / size':>27} | peak RSS: built / after file I/O"
    )
    for cells in args.cells:
        child = [sys.executable, __file__, "--one", "--cells", str(cells), "--seed", str(args.seed)]
        child += ["--repeat", str(args.repeat)]
        r = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
        print(
            f"{r['cells']:>6.0f} {r['sites']:>6.0f} {r['links']:>6.0f} |"
            f" {r['generate_s']:>6.2f}s ({r['generate_cpu_s']:>5.2f}s) |"
            f" {r['build_s']:>6.2f}s ({r['build_cpu_s']:>5.2f}s) |"
            f" {r['write_json_s']:>6.2f}s / {r['read_json_s']:>5.2f}s / {r['json_mib']:>4.1f} MiB |"
            f" {r['write_yaml_s']:>6.2f}s / {r['read_yaml_s']:>5.2f}s / {r['yaml_mib']:>4.1f} MiB |"
            f" {r['build_rss_mib']:>5.0f} MiB / {r['peak_rss_mib']:>5.0f} MiB",
            flush=True,
        )


if __name__ == "__main__":
    main()
