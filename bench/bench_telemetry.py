"""Telemetry ingest benchmark: simulated agents streaming KPI batches to one controller.

Two measurements in one run, each server in a process of its own (so its CPU and RSS are its
own), the load generator in this process:

1. **Sustained city** — every site of a generated city runs the reference agent
   (:mod:`telemetry.site.simulator`) reporting every ``--interval`` seconds to the real controller
   (``ControllerService`` on SQLite with slices placed, the agent gRPC server, lease monitor and
   SLA evaluation on). Reports accepted messages/s, KPI records/s, controller CPU and RSS, the
   SLA pass time, and whether any lease was missed. Target: 20,000 sites every 10 s (2,000
   messages/s) sustained on a 2-CPU machine (bench/README.md names the one measured).
2. **Saturation vs bare grpcio** — ``--streams`` streams (on the cells of a ``--saturation-cells``
   city that carry the most slices) send pre-built telemetry batches as fast as they can, to the
   controller (rate limits lifted) and to a bare grpcio asyncio server with the same transport
   options that only parses each message, alternating for ``--rounds`` rounds. Target: the
   controller within 1.5× of the baseline (the median ratio).

    python bench/bench_telemetry.py                       # 20,000 sites, 10 s interval
    python bench/bench_telemetry.py --cells 2000 --interval 2 --measure 20   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc
import grpc.aio
import psutil

from controller.cli import sim_city
from controller.core import citygen
from controller.core.topology import Topology
from controller.core.topology_file import write_topology_file
from protos.edgeslice.agent.v1 import agent_pb2
from telemetry import agentlink as agent_service
from telemetry.site import simulator

SLICES = 40


def slice_zones(topology: Topology) -> list[str]:
    """Zone of slice ``i``: ``slice_zones(t)[i % len(...)]``."""
    return sorted({z for s in topology.sites.values() for z in s.zones if z.startswith("district-")})


def busiest_cells(topology: Topology, count: int) -> list[str]:
    """The ``count`` cells covered by the most slices: saturation batches carry KPI records."""
    zones = slice_zones(topology)
    covering = {z: sum(1 for i in range(SLICES) if zones[i % len(zones)] == z) for z in zones}
    score = {c: sum(covering.get(z, 0) for z in topology.sites[c].zones) for c in topology.cells}
    return sorted(topology.cells, key=lambda c: (-score[c], c))[:count]


def cells_for_sites(sites: int) -> int:
    """Cells of a generated city with about ``sites`` sites (1 aggregation per 12 cells, …)."""
    return max(20, round(sites / (1 + 1 / 12 + 1 / 2500)))


# ---------------------------------------------------------------------------------- servers


def serve_controller(args: argparse.Namespace) -> None:
    """Child process: the real controller with agents served; prints its counters every second."""
    from controller.core.topology import load_topology
    from controller.runtime.clock import RealClock
    from controller.runtime.service import ControllerService
    from controller.runtime.store import Store
    from slices.intent import NetworkSlice

    topology = load_topology(args.city)
    tmp = tempfile.mkdtemp()
    service = ControllerService(topology, Store.open(Path(tmp) / "state.db"), [], RealClock())
    zones = slice_zones(topology)
    docs = [
        NetworkSlice.model_validate(
            {
                "metadata": {"name": f"s{i:02d}"},
                "spec": {
                    "kind": ("iot", "wifi", "vehicle")[i % 3],
                    "snssai": {"sst": (3, 1, 4)[i % 3], "sd": f"{i + 1:06x}"},
                    "coverage": {"zones": [zones[i % len(zones)]]},
                },
            }
        )
        for i in range(SLICES)
    ]
    ready = sum(1 for r in service.apply(docs, "bench") if r.state.value == "Ready")
    settings = agent_service.AgentSettings(
        lease_s=3 * args.interval,
        heartbeat_interval_s=args.interval,
        telemetry_interval_s=args.interval,
        rate_per_s=args.rate,
        rate_burst=max(40.0, args.rate),
        sla_window_s=args.interval,
    )
    server = agent_service.serve_agents(service, "127.0.0.1:0", dev=True, settings=settings, sla=True)
    gc_clock = _GcClock()
    print(json.dumps({"port": server.port, "slices_ready": ready}), flush=True)
    reg = server.registry
    while True:
        time.sleep(1.0)
        statuses = reg.statuses(connected_only=True)
        sla = server.sla_monitor
        print(
            json.dumps(
                {
                    "accepted": server.servicer.accepted_messages,
                    "kpi_records": sum(s.kpi_records for s in statuses),
                    "connected": sum(1 for s in statuses if s.connected),
                    "acked": sum(1 for s in statuses if s.acked_generation == s.desired_generation),
                    "downs": len(server.lease_monitor.downs) if server.lease_monitor else 0,
                    "sla_pass_s": sla.last_pass_s if sla else 0.0,
                    "sla_passes": sla.passes if sla else 0,
                    "gc_s": gc_clock.spent_s,
                }
            ),
            flush=True,
        )


class _GcClock:
    """Time the process spends in the garbage collector (a pause stalls every stream)."""

    def __init__(self) -> None:
        self.spent_s = 0.0
        self._start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.spent_s += time.perf_counter() - self._start


def serve_baseline(_: argparse.Namespace) -> None:
    """Child process: a bare grpcio asyncio server that parses each AgentMessage and counts it."""
    count = 0
    welcome = agent_pb2.ControllerMessage()
    welcome.welcome.site_id = "x"
    config = agent_pb2.ControllerMessage()
    config.config.generation = 1

    async def connect(requests: Any, context: Any) -> None:
        nonlocal count
        async for raw in requests:
            msg = agent_pb2.AgentMessage.FromString(raw)
            if msg.WhichOneof("body") == "hello":
                config.config.site_id = msg.hello.site_id
                await context.write(welcome)
                await context.write(config)
            count += 1

    async def main() -> None:
        # The same transport settings as the controller's agent server: only the handler differs.
        server = grpc.aio.server(options=agent_service.server_options(agent_service.AgentSettings()))
        handler = grpc.method_handlers_generic_handler(
            "edgeslice.agent.v1.SiteAgent",
            {
                "Connect": grpc.stream_stream_rpc_method_handler(
                    connect,
                    request_deserializer=None,
                    response_serializer=agent_pb2.ControllerMessage.SerializeToString,
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        gc_clock = _GcClock()
        print(json.dumps({"port": port}), flush=True)
        while True:
            await asyncio.sleep(1.0)
            print(json.dumps({"accepted": count, "gc_s": gc_clock.spent_s}), flush=True)

    asyncio.run(main())


class Child:
    """A server subprocess whose JSON lines we follow."""

    def __init__(self, role: str, extra: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--role", role, *extra], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.first: dict[str, Any] = json.loads(self.proc.stdout.readline())
        self.latest: dict[str, Any] = {}
        self.ps = psutil.Process(self.proc.pid)
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.latest = json.loads(line)

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def rss_mib(self) -> float:
        return float(self.ps.memory_info().rss) / 2**20

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        t = p.cpu_times()
        total += t.user + t.system
    return total


def window(child: Child, seconds: float, load: list[psutil.Process] | None = None) -> dict[str, float]:
    """Rates over ``seconds`` from the child's own counters, its CPU time over the same time (and
    the load generators' CPU: a starved load generator caps the rate as surely as the server),
    and the machine's 1-minute load average at the end (other jobs share the cores)."""
    load = load if load is not None else [psutil.Process()]
    time.sleep(1.2)
    a, cpu_a, gen_a, t_a = dict(child.latest), child.cpu_s(), _cpu_s(load), time.monotonic()
    time.sleep(seconds)
    b, cpu_b, gen_b, t_b = dict(child.latest), child.cpu_s(), _cpu_s(load), time.monotonic()
    wall = t_b - t_a
    messages = b["accepted"] - a["accepted"]
    return {
        "wall_s": wall,
        "messages_per_s": messages / wall,
        "kpi_records_per_s": (b.get("kpi_records", 0) - a.get("kpi_records", 0)) / wall,
        "cpu_percent": 100 * (cpu_b - cpu_a) / wall,
        "cpu_us_per_message": 1e6 * (cpu_b - cpu_a) / max(messages, 1),
        "loadgen_cpu_percent": 100 * (gen_b - gen_a) / wall,
        "loadavg_1m": os.getloadavg()[0],
        "rss_mib": child.rss_mib(),
        "downs": b.get("downs", 0) - a.get("downs", 0),
        "sla_pass_s": b.get("sla_pass_s", 0.0),
        "gc_percent": 100 * (b.get("gc_s", 0.0) - a.get("gc_s", 0.0)) / wall,
    }


# ---------------------------------------------------------------------------------- load


def run_agents(args: argparse.Namespace) -> None:
    """Child process: simulated agents for every ``--shards``-th site starting at ``--shard``."""
    from controller.core.topology import load_topology

    city = load_topology(args.city)
    sites = sorted(city.sites)[args.shard :: args.shards]
    sim = simulator.Simulator(
        f"127.0.0.1:{args.port}",
        sim_city.from_topology(city),
        sites,
        streams_per_channel=2000,
        seed=args.shard,
    )
    # Announce first: the parent starts the next shard on this line, and the ramp takes a while.
    print(json.dumps({"sites": len(sites)}), flush=True)
    simulator.SimulatorThread(sim).start(wait_connected_s=None, ramp_per_s=args.ramp / args.shards)
    while True:
        time.sleep(1.0)
        agents = list(sim.agents.values())
        errors: dict[str, int] = {}
        for a in agents:
            if not a.connected.is_set() and a.stats.last_error:
                key = a.stats.last_error[:80]
                errors[key] = errors.get(key, 0) + 1
        connected = sum(1 for a in agents if a.connected.is_set())
        dead = sum(1 for t in list(sim._tasks.values()) if t.done())  # agents whose run() ended
        print(
            json.dumps(
                {
                    "sent": sim.messages_sent(),
                    "accepted": 0,
                    "started": len(agents),
                    "connected": connected,
                    "dead": dead,
                    "errors": errors,
                }
            ),
            flush=True,
        )


def sustained(args: argparse.Namespace, city: Topology, city_file: Path) -> dict[str, float]:
    ctl = Child("controller", ["--city", str(city_file), "--interval", str(args.interval), "--rate", "20"])
    print(f"controller up on port {ctl.first['port']}, {ctl.first['slices_ready']}/{SLICES} slices Ready")
    shards: list[Child] = []
    sim = simulator.Simulator(
        f"127.0.0.1:{ctl.first['port']}",
        sim_city.from_topology(city),
        sorted(city.sites),
        streams_per_channel=2000,
    )
    runner = simulator.SimulatorThread(sim)
    try:
        started = time.monotonic()
        if args.agent_procs > 1:
            # Several load-generator processes: one Python process cannot drive a whole big city.
            common = ["--city", str(city_file), "--port", str(ctl.first["port"]), "--ramp", str(args.ramp)]
            shards = [
                Child("agents", [*common, "--shard", str(i), "--shards", str(args.agent_procs)])
                for i in range(args.agent_procs)
            ]
        else:
            runner.start(wait_connected_s=None, ramp_per_s=args.ramp)
        n = len(city.sites)
        shown = 0.0
        while ctl.latest.get("acked", 0) < n or ctl.latest.get("connected", 0) < n:
            waited = time.monotonic() - started
            if waited > args.connect_timeout:
                # Measure what did connect, and say how much did not: a partial city is a result too.
                print(
                    f"NOT ALL CONNECTED: {ctl.latest.get('connected', 0)} connected and "
                    f"{ctl.latest.get('acked', 0)} acked of {n} after {args.connect_timeout:g} s; measuring anyway"
                )
                break
            if waited - shown > 15:
                shown = waited
                print(
                    f"  {waited:.0f} s: {ctl.latest.get('connected', 0)} connected, {ctl.latest.get('acked', 0)} acked"
                    + "".join(
                        f"; load generator {i}: {c.latest.get('started', 0)} started, "
                        f"{c.latest.get('connected', 0)} connected, {c.latest.get('dead', 0)} agents ended, "
                        f"not connected: {c.latest.get('errors', {})}"
                        for i, c in enumerate(shards)
                    )
                )
            time.sleep(0.5)
        else:
            print(f"{n} agents connected and acked in {time.monotonic() - started:.1f} s")
        time.sleep(args.interval)  # let the reports spread over the interval
        gens = [c.ps for c in shards] if shards else [psutil.Process()]
        result = window(ctl, args.measure, gens)
        result["sites"] = n
        result["connected"] = ctl.latest.get("connected", 0)
        return result
    finally:
        for child in shards:
            child.stop()
        if not shards:
            runner.stop()
        ctl.stop()


async def _blast(port: int, sites: list[str], city: Topology, seconds: float) -> int:
    """Each stream: Hello, read the config, then send one pre-built batch after another."""
    model = simulator.LoadModel(sim_city.from_topology(city))
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(max(1, len(sites) // 50))]
    sent = 0
    stop_at = time.monotonic() + seconds

    async def one(i: int, site: str) -> None:
        nonlocal sent
        call: Any = channels[i % len(channels)].stream_stream(agent_service.METHOD)()
        hello = agent_pb2.AgentMessage()
        hello.hello.site_id = site
        hello.hello.software_version = "bench-agent/1"
        hello.hello.instance_id = f"bench-{i}"
        await call.write(hello.SerializeToString())
        await call.read()  # welcome
        cfg_msg = agent_pb2.ControllerMessage.FromString(await call.read())
        model.on_applied(cfg_msg.config)
        ack = agent_pb2.AgentMessage()
        ack.ack.generation, ack.ack.ok = cfg_msg.config.generation, True
        await call.write(ack.SerializeToString())  # unacked, the controller would keep resending
        raw = agent_pb2.AgentMessage(telemetry=model.sample(site, cfg_msg.config)).SerializeToString()
        while time.monotonic() < stop_at:
            await call.write(raw)
            sent += 1
        await call.done_writing()
        call.cancel()

    await asyncio.gather(*(one(i, s) for i, s in enumerate(sites)), return_exceptions=True)
    for ch in channels:
        await ch.close()
    return sent


def saturation(args: argparse.Namespace, city: Topology, city_file: Path, role: str) -> dict[str, float]:
    extra = ["--city", str(city_file), "--interval", "1000", "--rate", "1e9"] if role == "controller" else []
    child = Child(role, extra)
    cells = busiest_cells(city, args.streams)
    result: dict[str, float] = {}

    def measure() -> None:
        result.update(window(child, args.measure))

    try:
        t = threading.Thread(target=measure)
        t.start()
        asyncio.run(_blast(child.first["port"], cells, city, args.measure + 3))
        t.join()
        return result
    finally:
        child.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", choices=("bench", "controller", "baseline", "agents"), default="bench")
    ap.add_argument("--sites", type=int, default=20_000, help="about this many sites in the city")
    ap.add_argument("--cells", type=int, help="exact cell count (overrides --sites)")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between an agent's reports")
    ap.add_argument("--measure", type=float, default=30.0, help="measurement window, seconds")
    ap.add_argument("--streams", type=int, default=200, help="streams in the saturation runs")
    ap.add_argument("--ramp", type=float, default=500.0, help="agents started per second")
    ap.add_argument("--rate", type=float, default=20.0, help=argparse.SUPPRESS)
    ap.add_argument("--city", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--shard", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--shards", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--agent-procs", type=int, default=2, help="load-generator processes (sustained part)")
    ap.add_argument(
        "--rounds", type=int, default=5, help="saturation rounds, controller and baseline alternating"
    )
    ap.add_argument(
        "--connect-timeout",
        type=float,
        default=300.0,
        help="measure after this long even if not all connected",
    )
    ap.add_argument("--saturation-cells", type=int, default=300, help="cells of the saturation city")
    ap.add_argument("--skip-sustained", action="store_true")
    ap.add_argument("--skip-saturation", action="store_true")
    args = ap.parse_args()
    if args.role == "controller":
        serve_controller(args)
        return
    if args.role == "baseline":
        serve_baseline(args)
        return
    if args.role == "agents":
        run_agents(args)
        return
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress shows in logs
    cells = args.cells or cells_for_sites(args.sites)
    city = Topology.from_file(citygen.generate_city(cells, seed=7))
    with tempfile.TemporaryDirectory() as tmp:
        city_file = Path(tmp) / "city.json"
        write_topology_file(city.source, city_file)
        print(
            f"city: {len(city.sites)} sites ({cells} cells), machine: {psutil.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} (other jobs share the cores)"
        )
        if not args.skip_sustained:
            r = sustained(args, city, city_file)
            target = r["sites"] / args.interval
            print(
                f"sustained: {r['connected']:.0f} of {r['sites']:.0f} sites connected, reporting every "
                f"{args.interval:g} s (offered {target:.0f} msg/s): "
                f"accepted {r['messages_per_s']:.0f} msg/s, {r['kpi_records_per_s']:.0f} KPI records/s; "
                f"controller CPU {r['cpu_percent']:.0f}% of one core "
                f"({r['cpu_us_per_message']:.0f} us CPU per message), RSS {r['rss_mib']:.0f} MiB; "
                f"SLA pass {r['sla_pass_s'] * 1000:.0f} ms; missed leases {r['downs']:.0f}; "
                f"load generators {r['loadgen_cpu_percent']:.0f}% CPU; load average {r['loadavg_1m']:.1f}"
            )
        if not args.skip_saturation:
            # A city of its own, where every stream's cell carries many slices (10 KPI records per
            # batch at 300 cells): the big city's cells carry one or two, which would flatter ingest.
            city = Topology.from_file(citygen.generate_city(args.saturation_cells, seed=7))
            city_file = Path(tmp) / "saturation-city.json"
            write_topology_file(city.source, city_file)
            # Alternate the two servers: the load from other jobs drifts, and a ratio of two runs
            # minutes apart would measure the drift.
            ratios = []
            for i in range(args.rounds):
                ctl = saturation(args, city, city_file, "controller")
                base = saturation(args, city, city_file, "baseline")
                ratio = base["messages_per_s"] / max(ctl["messages_per_s"], 1e-9)
                ratios.append(ratio)
                print(
                    f"saturation round {i + 1} ({args.streams} streams, {args.measure:g} s each): "
                    f"controller {_saturation_line(ctl)}; bare grpcio {_saturation_line(base)}; "
                    f"baseline/controller = {ratio:.2f}x"
                )
            print(
                f"saturation: baseline/controller median {statistics.median(ratios):.2f}x over "
                f"{len(ratios)} rounds (target <= 1.5x)"
            )


def _saturation_line(r: dict[str, float]) -> str:
    return (
        f"{r['messages_per_s']:.0f} msg/s ({r['kpi_records_per_s']:.0f} KPI records/s = "
        f"{r['kpi_records_per_s'] / max(r['messages_per_s'], 1e-9):.1f} per batch, CPU {r['cpu_percent']:.0f}% "
        f"= {r['cpu_us_per_message']:.0f} us/msg, GC {r['gc_percent']:.1f}% of the time, "
        f"RSS {r['rss_mib']:.0f} MiB, load generator CPU "
        f"{r['loadgen_cpu_percent']:.0f}%, load average {r['loadavg_1m']:.1f})"
    )


if __name__ == "__main__":
    main()
