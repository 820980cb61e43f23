"""Controller restart time with many slices stored.

    python bench/bench_restart.py [--slices 2000] [--cells 2000]

Fills a SQLite state file with N applied slices (a generated city; each slice covers a few
neighbouring cells), then measures, three times each:

* in-process restart: open the store and build the service (load rows, resolve intents,
  rebuild the ledger from the placements);
* the first reconcile pass after a restart (every plan re-checked by the plan recorder);
* a steady-state pass when nothing changed;
* a real ``slicectl controller run`` process: from spawn to the API answering ``ListSlices``
  with every slice (includes Python start-up and imports).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.core.citygen import generate_city  # noqa: E402
from controller.core.topology import Topology  # noqa: E402
from controller.core.topology_file import write_topology_file  # noqa: E402
from controller.runtime.clock import RealClock  # noqa: E402
from controller.runtime.plan_recorder import PlanRecorder  # noqa: E402
from controller.runtime.service import ControllerService  # noqa: E402
from controller.runtime.store import Store  # noqa: E402
from slices.intent import NetworkSlice  # noqa: E402
from tests.support.controller_process import start_controller  # noqa: E402

SST = {"iot": 3, "vehicle": 4, "wifi": 1}


def documents(city: Topology, n: int) -> list[NetworkSlice]:
    kinds = ("iot", "vehicle", "wifi")
    cells = city.cells
    out = []
    for i in range(n):
        kind = kinds[i % 3]
        first = (i * 7) % len(cells)
        cover = [cells[(first + k) % len(cells)] for k in range(3)]
        sd = hashlib.sha256(f"s{i}".encode()).hexdigest()[:6]
        spec: dict[str, object] = {
            "kind": kind,
            "snssai": {"sst": SST[kind], "sd": sd},
            "coverage": {"sites": cover},
            "sla": {"dlMbpsPerCell": 5, "ulMbpsPerCell": 1},
            "workloads": [{"name": "app", "image": "nginx:1.27", "cpuMillicores": 50, "memoryMib": 64}],
        }
        out.append(NetworkSlice.model_validate({"metadata": {"name": f"slice-{i:05d}"}, "spec": spec}))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=2000)
    ap.add_argument("--cells", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        work = Path(tmp)
        source = generate_city(args.cells, seed=1)
        city = Topology.from_file(source)
        topo_file = work / "city.json"  # JSON: the C parser; a YAML file of this size takes seconds
        write_topology_file(source, topo_file)
        db = work / "edgeslice.db"
        plans = work / "state" / "realisation"
        store = Store.open(db)
        svc = ControllerService(city, store, [PlanRecorder(plans, city)], RealClock())
        t0 = time.perf_counter()
        docs = documents(city, args.slices)
        for i in range(0, len(docs), 100):
            svc.apply(docs[i : i + 100], "bench")
        fill_s = time.perf_counter() - t0
        placed = sum(1 for r in svc.list_slices() if r.placement is not None)
        ledger = svc.ledger_snapshot()
        store.close()
        print(f"city: {len(city.cells)} cells, {len(city.edge_sites)} edge sites, {len(city.links)} links")
        print(
            f"filled: {args.slices} slices ({placed} placed) in {fill_s:.1f} s; state file {db.stat().st_size / 1e6:.1f} MB"
        )

        load, first, steady = [], [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            store = Store.open(db)
            svc = ControllerService(city, store, [PlanRecorder(plans, city)], RealClock())
            load.append(time.perf_counter() - t0)
            assert svc.ledger_snapshot() == ledger, "ledger differs after restart"
            t0 = time.perf_counter()
            changed = svc.reconcile()
            first.append(time.perf_counter() - t0)
            assert changed == 0, f"restart changed {changed} slices"
            t0 = time.perf_counter()
            svc.reconcile()
            steady.append(time.perf_counter() - t0)
            store.close()

        spawn, ready, topo = [], [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            proc = start_controller(work, topo_file, timeout_s=300)
            with proc.client(timeout_s=120) as client:
                n = len(client.list_slices())
            spawn.append(time.perf_counter() - t0)
            proc.terminate()
            assert n == args.slices, n
            # Controllers before 2312fdd logged how long start() took; report it when the line is there.
            found = re.findall(r"ready in ([0-9.]+) s \(topology ([0-9.]+) s\)", proc.log.read_text())
            if found:
                ready.append(float(found[-1][0]))
                topo.append(float(found[-1][1]))

        def fmt(xs: list[float]) -> str:
            return f"median {statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f})"

        print(f"restart, in process (open store + rebuild ledger): {fmt(load)}")
        print(f"first reconcile pass after restart (re-check {placed} plans): {fmt(first)}")
        print(f"steady reconcile pass, nothing changed: {fmt(steady)}")
        print(f"restart, real process (spawn to ListSlices answering {args.slices} slices): {fmt(spawn)}")
        if ready:
            print(
                f"  of which controller start() to serving: {fmt(ready)}; loading the topology file: {fmt(topo)}"
            )
        cpu = time.process_time()
        print(f"(this process used {cpu:.1f} s CPU; compare with wall time to judge machine load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
