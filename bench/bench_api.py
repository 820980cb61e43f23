"""End-to-end apply throughput through the operator gRPC API, measured from the client's side.

    python bench/bench_api.py [--cells 20000] [--slices 400] [--seed 1] [--concurrency 1] [--batch 1]
    python bench/bench_api.py --cells 2000 --slices 40 --profile   # where an apply's time goes

Starts a real controller process (``slicectl controller run --cells N --seed S``: the generated
city, a fresh SQLite file, the API on loopback in dev mode), waits until it serves, then
applies ``--slices`` mixed NetworkSlice documents (IoT / vehicle / Wi-Fi, each covering the
10–200 cells nearest a random point, own S-NSSAI) through :class:`controller.api.client.ApiClient`,
``--batch`` documents per ApplySlices call from ``--concurrency`` client threads. Every call
stores the slices, decides admission and placement and records the plan before it answers, so
the latency is what an operator waits for. Prints slices/s, per-call latency p50/p95/p99, the
outcomes, the controller's start-up time and its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.bench_admission import percentile
from controller.api import client as api_client
from controller.core import citygen
from controller.core.topology_file import SiteKind

KINDS = (("iot", 3, 0.4), ("vehicle", 4, 0.25), ("wifi", 1, 0.35))


def documents(cells: int, seed: int, count: int, min_cells: int, max_cells: int) -> list[str]:
    """``count`` NetworkSlice documents (JSON, which is YAML too) over the generated city's cells."""
    city = citygen.generate_city(cells, seed)
    cell_sites = [s for s in city.sites if s.kind == SiteKind.CELL]
    ids = [s.id for s in cell_sites]
    lat = np.array([s.location.lat for s in cell_sites])
    lon = np.array([s.location.lon for s in cell_sites])
    x = (lon - lon.mean()) * 111.32 * math.cos(math.radians(float(lat.mean())))
    y = (lat - lat.mean()) * 110.574
    rng = np.random.default_rng(seed)
    weights = np.array([w for _, _, w in KINDS])
    out = []
    for i in range(count):
        kind, sst, _ = KINDS[int(rng.choice(len(KINDS), p=weights / weights.sum()))]
        k = int(rng.integers(min_cells, max_cells + 1))
        centre = int(rng.integers(len(ids)))
        nearest = np.argpartition((x - x[centre]) ** 2 + (y - y[centre]) ** 2, k - 1)[:k]
        doc = {
            "apiVersion": "edgeslice.io/v1alpha1",
            "kind": "NetworkSlice",
            "metadata": {"name": f"{kind}-{i:05d}"},
            "spec": {
                "kind": kind,
                "snssai": {"sst": sst, "sd": f"{i + 1:06x}"},
                "coverage": {"sites": sorted(ids[j] for j in nearest.tolist())},
            },
        }
        out.append(json.dumps(doc))
    return out


def start_controller(folder: Path, cells: int, seed: int) -> tuple[subprocess.Popen[bytes], str, str, float]:
    """A controller process; returns it, its address, its dev token and seconds until it served."""
    state = folder / "state"
    cmd = [
        sys.executable,
        "-c",
        "from controller.cli import main; main()",
        "controller",
        "run",
        "--cells",
        str(cells),
        "--seed",
        str(seed),
        "--state",
        str(folder / "bench.db"),
        "--state-dir",
        str(state),
        "--listen",
        "127.0.0.1:0",
        "--reconcile-interval",
        "3600",
        "--log-level",
        "warning",
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(folder / "controller.log", "wb"))  # noqa: SIM115
    addr_file = state / "controller.addr"
    while not addr_file.exists():
        if proc.poll() is not None:
            raise SystemExit(
                f"controller exited with {proc.returncode}: {(folder / 'controller.log').read_text()}"
            )
        if time.perf_counter() - t0 > 600:
            proc.kill()
            raise SystemExit("controller did not start within 600 s")
        time.sleep(0.1)
    started = time.perf_counter() - t0
    return proc, addr_file.read_text().strip(), (state / "token").read_text().strip(), started


def profile_service(cells: int, seed: int, docs: list[str]) -> None:
    """Where an apply's time goes inside the controller: the same documents, in-process, profiled."""
    import cProfile
    import io
    import pstats

    from controller.core.topology import Topology
    from controller.runtime.clock import RealClock
    from controller.runtime.plan_recorder import PlanRecorder
    from controller.runtime.service import ControllerService
    from controller.runtime.store import Store
    from slices import intent

    t = time.perf_counter()
    parsed = [intent.load_slices(d, "bench")[0] for d in docs]  # the YAML path (slicectl, YAML files)
    print(f"YAML parse of a document: {(time.perf_counter() - t) / len(docs) * 1000:.1f} ms")
    t = time.perf_counter()
    for d in docs:
        intent.parse_slice(json.loads(d), "bench")
    print(f"JSON parse of a document: {(time.perf_counter() - t) / len(docs) * 1000:.2f} ms")
    city = Topology.from_file(citygen.generate_city(cells, seed))
    with tempfile.TemporaryDirectory(prefix="bench-api-profile-") as tmp:
        store = Store.open(Path(tmp) / "state.db")
        service = ControllerService(city, store, [PlanRecorder(Path(tmp) / "plans", city)], RealClock())
        profiler = cProfile.Profile()
        t = time.perf_counter()
        profiler.enable()
        for doc in parsed:
            service.apply([doc], "operator:bench")
        profiler.disable()
        print(
            f"ControllerService.apply in-process: {(time.perf_counter() - t) / len(parsed) * 1000:.1f} ms per slice"
        )
        store.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(12)
    print(out.getvalue())


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=1, help="client threads")
    parser.add_argument("--batch", type=int, default=1, help="documents per ApplySlices call")
    parser.add_argument("--min-cells", type=int, default=10)
    parser.add_argument("--max-cells", type=int, default=200)
    parser.add_argument(
        "--profile", action="store_true", help="profile ControllerService.apply in-process instead (no gRPC)"
    )
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    docs = documents(args.cells, args.seed, args.slices, args.min_cells, args.max_cells)
    print(f"{len(docs)} slice documents over a {args.cells}-cell city in {time.perf_counter() - t0:.1f} s")
    if args.profile:
        profile_service(args.cells, args.seed, docs)
        return 0
    batches = [docs[i : i + args.batch] for i in range(0, len(docs), args.batch)]

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        proc, address, token, started = start_controller(Path(tmp), args.cells, args.seed)
        try:
            print(
                f"controller serving on {address} after {started:.1f} s (generate city, build routes, open store)"
            )
            latencies: list[float] = []
            states: Counter[str] = Counter()
            lock = threading.Lock()
            queue = iter(enumerate(batches))
            failures: list[str] = []

            def worker() -> None:
                with api_client.ApiClient(address, token, timeout_s=120) as client:
                    while True:
                        with lock:
                            item = next(queue, None)
                        if item is None:
                            return
                        i, batch = item
                        manifest = [(f"call-{i}-doc-{j}", doc) for j, doc in enumerate(batch)]
                        t = time.perf_counter()
                        try:
                            results = client.apply(manifest)
                        except Exception as exc:
                            with lock:
                                failures.append(str(exc))
                            continue
                        elapsed = time.perf_counter() - t
                        with lock:
                            latencies.append(elapsed * 1000)
                            states.update(r.state for r in results)

            with api_client.ApiClient(address, token) as warm:  # connect once before timing
                warm.list_slices()
                # The API's own cost: an authenticated call that does almost nothing in the service.
                trips = []
                for _ in range(200):
                    t = time.perf_counter()
                    warm.events(limit=1)
                    trips.append((time.perf_counter() - t) * 1000)
                trips.sort()
                print(
                    f"authenticated round trip (ListEvents limit 1) ms: p50 {percentile(trips, 50):.2f}  "
                    f"p95 {percentile(trips, 95):.2f}"
                )
            threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
            t_all = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            wall = time.perf_counter() - t_all
            latencies.sort()
            applied = sum(states.values())
            print(
                f"applied {applied} slices in {len(latencies)} calls ({args.batch}/call, "
                f"{args.concurrency} client threads) in {wall:.2f} s: {applied / wall:.1f} slices/s"
            )
            print(
                f"per-call latency ms: p50 {percentile(latencies, 50):.1f}  p95 {percentile(latencies, 95):.1f}  "
                f"p99 {percentile(latencies, 99):.1f}  max {latencies[-1] if latencies else 0:.1f}"
            )
            print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
            print(f"controller peak RSS {peak_rss_mib(proc.pid):.0f} MiB")
            if failures:
                print(f"{len(failures)} calls failed, first: {failures[0]}")
                return 1
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EDGESLICE_STATE_DIR", tempfile.gettempdir())
    sys.exit(main())
