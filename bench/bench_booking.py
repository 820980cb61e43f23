"""Booking API: admission over the capacity calendar, REST end to end, activation of a burst.

    python bench/bench_booking.py [--cells 20000] [--bookings 10000] [--seed 1] [--profile]
    python bench/bench_booking.py --quick      # a small city, a few hundred bookings (smoke check)

On a ``controller.core.citygen`` city with the real controller service (SQLite state file, plan
recorder) and a fake clock, so every window lies in the future:

1. **Admission.** ``--bookings`` CAMARA bookings spread over ``--days`` days through
   ``BookingService.create`` (area → cells, QoS → spec, ``ControllerService.book`` over the
   calendar, the booking row): circles and simple polygons covering a few to about 100 cells,
   1–8 h windows, Wi-Fi / vehicle / IoT profiles. Each ``create`` call is timed, wall and CPU.
2. **REST.** A real ``BookingServer`` (uvicorn, loopback) over that state; a client process runs
   ``--clients`` threads with httpx at ``--rate`` requests/s in all for ``--rest-s`` seconds
   (open loop: each request at its scheduled time) of ``POST /slices``; latency per request.
3. **Activation.** ``--burst`` more bookings whose windows start within one minute; the clock is
   moved past that minute and the reconcile passes run as the process's loop runs them
   (``reconcile_batch``) until every one is active (Ready or Admitted).
4. **Real clock** (``--real-burst N``, default on unless ``--quick``): the same through the
   controller process's own wiring and reconcile loop on the real clock, N bookings due in one
   second: from their window's start to the last one active.

Prints the figures one a line, the outcome counts and the peak RSS. Targets (issue 15): create
p50 ≤ 20 ms, p95 ≤ 100 ms; REST p50 ≤ 50 ms at 50 requests/s from 4 clients; 500 activations
within 5 s; peak RSS ≤ 1 GiB.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import io
import math
import multiprocessing
import pstats
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_admission import peak_rss_mib, percentile
from controller.booking import camara, ports
from controller.booking.app import API_PREFIX, make_app
from controller.booking.clients import ClientRegistry
from controller.booking.server import BookingServer
from controller.booking.service import BookingService
from controller.booking.tokens import SignedTokens
from controller.core import citygen
from controller.core.topology import Topology
from controller.core.topology_file import write_topology_file
from controller.process.wiring import RECONCILE_BATCH
from controller.runtime.plan_recorder import PlanRecorder
from controller.runtime.service import ControllerService, SliceState
from controller.runtime.store import Store
from tests.support.clock import FakeClock

TARGET_CREATE_P50_MS = 20.0
TARGET_CREATE_P95_MS = 100.0
TARGET_REST_P50_MS = 50.0
TARGET_ACTIVATION_S = 5.0
TARGET_RSS_MIB = 1024.0

#: The fake clock's "now": a Monday; the booked week starts an hour later.
T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
#: Area of one hex cell of the generated city (km²): spacing² × √3 / 2.
CELL_AREA_KM2 = citygen.CELL_SPACING_KM**2 * math.sqrt(3) / 2
KM_PER_DEG_LAT = citygen.KM_PER_DEG_LAT
ACTIVE = (SliceState.READY, SliceState.ADMITTED)


def stats_ms(values_s: list[float]) -> str:
    ms = sorted(v * 1000 for v in values_s)
    if not ms:
        return "no samples"
    return (
        f"p50 {percentile(ms, 50):.2f} ms, p95 {percentile(ms, 95):.2f} ms, max {ms[-1]:.1f} ms, "
        f"mean {sum(ms) / len(ms):.2f} ms (n={len(ms)})"
    )


# -- the requests ---------------------------------------------------------------------------------


class Requests:
    """CAMARA ``SliceAttributes`` bodies (JSON-ready dicts) over a city, seeded."""

    def __init__(self, city: Topology, seed: int, max_cells: int = 100) -> None:
        self.rng = random.Random(seed)
        self.points = [(city.sites[c].lat, city.sites[c].lon) for c in city.cells]
        self.max_cells = max(2, min(max_cells, len(self.points)))

    def area(self) -> dict[str, Any]:
        """A circle (60 %) or a simple polygon (star-shaped around its centre, 3–15 points) about
        a random cell, sized to cover a few to ``max_cells`` cells (log-uniform)."""
        rng = self.rng
        lat, lon = rng.choice(self.points)
        cells = math.exp(rng.uniform(math.log(2), math.log(self.max_cells)))
        radius_km = math.sqrt(cells * CELL_AREA_KM2 / math.pi)
        if rng.random() < 0.6:
            return {
                "areaType": "CIRCLE",
                "center": {"latitude": lat, "longitude": lon},
                "radius": round(radius_km * 1000, 1),
            }
        n = rng.randint(3, 15)
        angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))
        # Spread the angles out a little so no two points nearly coincide.
        angles = [a * 0.5 + (2 * math.pi * i / n) * 0.5 for i, a in enumerate(angles)]
        km_per_deg_lon = citygen.KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat))
        boundary = []
        for a in angles:
            r = radius_km * rng.uniform(0.9, 1.6)  # a polygon loses area to its chords
            boundary.append(
                {
                    "latitude": round(lat + r * math.sin(a) / KM_PER_DEG_LAT, 6),
                    "longitude": round(lon + r * math.cos(a) / km_per_deg_lon, 6),
                }
            )
        return {"areaType": "POLYGON", "boundary": boundary}

    def qos(self, kind: str | None = None) -> dict[str, Any]:
        """Wi-Fi (event Wi-Fi, cameras), vehicle (URLLC, ≤ 10 ms) or IoT (sensors), 35/25/40 %."""
        rng = self.rng
        if kind is None:
            kind = rng.choices(("wifi", "vehicle", "iot"), (0.35, 0.25, 0.40))[0]
        if kind == "wifi":
            down, up, unit, budget = rng.randint(2, 25), rng.randint(1, 5), "Mbps", rng.choice((50, 100, 300))
        elif kind == "vehicle":
            down, up, unit, budget = rng.randint(1, 10), rng.randint(1, 5), "Mbps", rng.choice((5, 10))
        else:
            down, up, unit, budget = (
                rng.randint(10, 500),
                rng.randint(10, 200),
                "kbps",
                rng.choice((100, 1000)),
            )
        return {
            "maxNumOfDevices": rng.randint(5, 20),
            "downStreamRatePerDevice": {"value": down, "unit": unit},
            "upStreamRatePerDevice": {"value": up, "unit": unit},
            "downStreamDelayBudget": {"value": budget, "unit": "Milliseconds"},
            "upStreamDelayBudget": {"value": budget, "unit": "Milliseconds"},
        }

    def booking(self, start: datetime, hours: float, kind: str | None = None) -> dict[str, Any]:
        end = start + timedelta(hours=hours)
        return {
            "serviceTime": {"startDate": start.isoformat(), "endDate": end.isoformat()},
            "serviceArea": self.area(),
            "sliceQosProfile": self.qos(kind),
        }

    def week(self, first: datetime, days: float) -> dict[str, Any]:
        """A booking starting on a quarter hour within ``days`` of ``first``, 1–8 h long."""
        quarters = max(1, int(days * 96) - 32)  # the last start leaves room for an 8 h window
        start = first + timedelta(minutes=15 * self.rng.randrange(quarters))
        return self.booking(start, self.rng.randint(1, 8))


# -- measurements ---------------------------------------------------------------------------------


@dataclass
class Outcomes:
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    binding: Counter[str] = field(default_factory=Counter)
    created: list[camara.SliceInfo] = field(default_factory=list)


_BINDING = re.compile(r"\b(cell|link|site|edge|radio|cpu|memory|compute|latency)\b", re.IGNORECASE)


def create_all(
    service: BookingService, tenants: list[ports.Tenant], bodies: list[dict[str, Any]]
) -> Outcomes:
    out = Outcomes()
    clock, cpu = time.perf_counter, time.process_time
    for i, body in enumerate(bodies):
        attributes = camara.SliceAttributes.model_validate(body)
        tenant = tenants[i % len(tenants)]
        c0, t0 = cpu(), clock()
        try:
            info = service.create(tenant, attributes)
        except ports.BookingError as exc:
            out.codes[exc.code] += 1
            if exc.code == "NETWORK_SLICE_BOOKING.RESOURCES_INSUFFICIENT":
                m = _BINDING.search(exc.message)
                out.binding[m.group(1).lower() if m else exc.message[:40]] += 1
        else:
            out.codes["created"] += 1
            out.created.append(info)
        out.wall_s.append(clock() - t0)
        out.cpu_s.append(cpu() - c0)
    return out


def _client_process(
    url: str, tokens: list[str], bodies: list[list[dict[str, Any]]], interval_s: float
) -> tuple[list[float], list[int], list[float]]:
    """In a process of its own: one thread per token, each POSTing its bodies every
    ``interval_s`` (open loop, staggered). Returns latencies, statuses and how late each was sent."""
    import httpx

    latencies: list[float] = []
    statuses: list[int] = []
    late: list[float] = []
    lock = threading.Lock()
    begin = time.perf_counter() + 0.5

    def run(k: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[k]}", "x-correlator": f"bench-{k}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for i, body in enumerate(bodies[k]):
                due = begin + (i + k / len(tokens)) * interval_s
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                t0 = time.perf_counter()
                r = client.post(f"{API_PREFIX}/slices", json=body)
                t1 = time.perf_counter()
                with lock:
                    latencies.append(t1 - t0)
                    statuses.append(r.status_code)
                    late.append(max(0.0, t0 - due))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(tokens))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, statuses, late


def token(url: str, client_id: str, secret: str) -> str:
    import httpx

    r = httpx.post(
        f"{url}/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=30
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def activate(svc: ControllerService, names: list[str]) -> tuple[float, float, int, int]:
    """Reconcile passes as the process's loop runs them (batches of RECONCILE_BATCH, the first
    full) until every one of ``names`` is active; returns (wall s, CPU s, passes, active)."""
    t0, c0 = time.perf_counter(), time.process_time()
    passes = 0
    active = 0
    for _ in range(10):
        passes += 1
        more, full = True, True
        while more:
            _, more = svc.reconcile_batch(RECONCILE_BATCH, full=full)
            full = False
        active = sum(1 for n in names if svc.get(n).state in ACTIVE)
        if active == len(names):
            break
    return time.perf_counter() - t0, time.process_time() - c0, passes, active


def real_clock_burst(work: Path, city_file: Path, n: int, seed: int) -> tuple[float, float, int]:
    """``n`` bookings due in the same second through the controller process's wiring (real
    clock, its reconcile loop). Returns (s from the window's start to the last activation,
    s the booking took, how many became active)."""
    from controller.booking.settings import BookingSettings
    from controller.cli.companions import Companions
    from controller.process.config import RuntimeConfig
    from controller.process.wiring import Controller

    parts = Companions(None, None, booking=BookingSettings("127.0.0.1:0", dev=True))
    config = RuntimeConfig(
        topology=str(city_file),
        state_file=work / "real.db",
        state_dir=work / "real-state",
        listen="127.0.0.1:0",
        reconcile_interval_s=60,  # the loop must wake for the window by itself
        environ={},
    )
    controller = Controller(config, attachments=parts.attachments())
    controller.start()
    try:
        svc, running = controller.service, parts.booking_api
        assert svc is not None and running is not None
        tenant, _ = ClientRegistry(svc.store).add("real-clock", "create,get,delete")
        req = Requests(svc.city(), seed, max_cells=10)
        lead_s = 5.0 + 0.03 * n
        start = (datetime.now(UTC) + timedelta(seconds=lead_s)).replace(microsecond=0)
        t0 = time.perf_counter()
        names: list[str] = []
        for _ in range(3 * n):
            if len(names) == n:
                break
            attributes = camara.SliceAttributes.model_validate(req.booking(start, 1, kind="iot"))
            try:
                info = running.service.create(tenant, attributes)
            except ports.BookingError:
                continue
            names.append(slice_name(tenant.name, info.sliceId))
        booking_s = time.perf_counter() - t0
        if datetime.now(UTC) >= start:
            print(f"  (booking {n} took {booking_s:.1f} s, past the window's start: raise the lead)")
        pending = set(names)
        deadline = time.monotonic() + lead_s + 60
        last = start
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                if svc.get(name).state in ACTIVE:
                    pending.discard(name)
                    last = datetime.now(UTC)
            time.sleep(0.02)
        return (last - start).total_seconds(), booking_s, len(names) - len(pending)
    finally:
        controller.stop()


def slice_name(tenant: str, slice_id: Any) -> str:
    from controller.booking.service import slice_name as name

    return name(tenant, slice_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--bookings", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=7.0, help="the bookings spread over this many days")
    parser.add_argument("--max-cells", type=int, default=100, help="the largest area, in cells")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rest-s", type=float, default=20.0, help="how long the REST load runs")
    parser.add_argument("--rate", type=float, default=50.0, help="REST requests per second, all clients")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--burst", type=int, default=500, help="bookings due in the same minute")
    parser.add_argument("--real-burst", type=int, default=None, help="the same on the real clock (0: skip)")
    parser.add_argument("--quick", action="store_true", help="a small city and few bookings (smoke check)")
    parser.add_argument("--profile", action="store_true", help="profile the admission loop (cProfile)")
    args = parser.parse_args(argv)
    if args.quick:
        args.cells, args.bookings, args.rest_s, args.rate, args.burst = 400, 200, 1.0, 20.0, 20
    real_burst = args.real_burst if args.real_burst is not None else (0 if args.quick else args.burst)

    t = time.perf_counter()
    source = citygen.generate_city(args.cells, args.seed)
    city = Topology.from_file(source)
    print(
        f"city: {len(city.cells)} cells, {len(city.edge_sites)} edge sites, {len(city.links)} links "
        f"(generated and built in {time.perf_counter() - t:.1f} s)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-booking-") as tmp:
        work = Path(tmp)
        store = Store.open(work / "edgeslice.db")
        clock = FakeClock(T0)
        svc = ControllerService(city, store, [PlanRecorder(work / "realisation", city)], clock)
        registry = ClientRegistry(store, clock)
        tenants = [registry.add(f"agency-{k}", "create,get,delete")[0] for k in range(8)]
        service = BookingService(svc, store, clock)
        req = Requests(city, args.seed + 100, args.max_cells)
        first = T0 + timedelta(hours=1)
        bodies = [req.week(first, args.days) for _ in range(args.bookings)]
        kinds = Counter("polygon" if b["serviceArea"]["areaType"] == "POLYGON" else "circle" for b in bodies)
        print(
            f"bookings: {len(bodies)} over {args.days:g} days from {first:%Y-%m-%d %H:%M} UTC (fake clock), "
            f"1-8 h windows, {kinds['circle']} circles and {kinds['polygon']} polygons, up to {args.max_cells} cells"
        )

        # 1. Admission.
        profiler = cProfile.Profile() if args.profile else None
        t = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        out = create_all(service, tenants, bodies)
        if profiler is not None:
            profiler.disable()
        total = time.perf_counter() - t
        note = " under cProfile" if profiler else ""
        print(f"admission (BookingService.create){note}, wall: {stats_ms(out.wall_s)}")
        print(f"admission (BookingService.create){note}, CPU: {stats_ms(out.cpu_s)}")
        print(
            f"  whole loop {total:.1f} s; outcomes: {', '.join(f'{k} {n}' for k, n in out.codes.most_common())}"
        )
        if out.binding:
            print(f"  refused for: {', '.join(f'{k} {n}' for k, n in out.binding.most_common())}")
        if svc.over_capacity():
            print(f"ERROR: ledger over capacity on {', '.join(svc.over_capacity()[:5])}")
            return 1
        if profiler is not None:
            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text)
            stats.sort_stats("tottime").print_stats(20)
            stats.sort_stats("cumulative").print_stats(30)
            print(text.getvalue())
            return 0

        # 2. REST end to end.
        signed = SignedTokens(store, "urn:edgeslice:bench", "bench", 3600, clock)
        per_client = args.rate / args.clients
        app = make_app(service, registry, signed, rate_limit_per_s=2 * per_client, jwks=signed.jwks)
        server = BookingServer(app, "127.0.0.1:0")
        server.start()
        try:
            rest_tokens = []
            for k in range(args.clients):
                tenant, secret = registry.add(f"rest-{k}", "create,get,delete", requests_per_s=2 * per_client)
                rest_tokens.append(token(server.url, tenant.client_id, secret))
            n_each = max(1, int(args.rest_s * per_client))
            rest_bodies = [[req.week(first, args.days) for _ in range(n_each)] for _ in range(args.clients)]
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
                t = time.perf_counter()
                latencies, statuses, late = pool.submit(
                    _client_process, server.url, rest_tokens, rest_bodies, 1 / per_client
                ).result()
                rest_total = time.perf_counter() - t
        finally:
            server.stop()
        sent = len(latencies)
        print(
            f"REST POST /slices end to end ({args.clients} client threads in their own process, "
            f"{args.rate:g} requests/s for {args.rest_s:g} s): {stats_ms(latencies)}"
        )
        codes = Counter(statuses)
        print(
            f"  statuses: {', '.join(f'{k} {n}' for k, n in sorted(codes.items()))}; "
            f"sent {sent} in {rest_total:.1f} s (incl. the client's start); "
            f"sent late p95 {percentile(sorted(late), 95) * 1000:.1f} ms"
        )

        # 3. Activation of a burst due in the same minute.
        burst_req = Requests(city, args.seed + 200, max_cells=10)
        at = T0 + timedelta(minutes=30)
        names: list[str] = []
        burst_tenant = tenants[0]
        t = time.perf_counter()
        for _ in range(3 * args.burst):
            if len(names) == args.burst:
                break
            start = at + timedelta(seconds=burst_req.rng.randrange(60))
            attributes = camara.SliceAttributes.model_validate(burst_req.booking(start, 1, kind="iot"))
            try:
                info = service.create(burst_tenant, attributes)
            except ports.BookingError:
                continue
            names.append(slice_name(burst_tenant.name, info.sliceId))
        booked_s = time.perf_counter() - t
        held = len(svc.list_slices())
        clock.advance((at + timedelta(seconds=60) - T0).total_seconds())
        wall, cpu, passes, active = activate(svc, names)
        print(
            f"activation of {len(names)} bookings due in one minute (fake clock, {held} slices held): "
            f"{wall:.2f} s wall, {cpu:.2f} s CPU, {passes} pass(es); {active} active"
        )
        print(f"  (booking the {len(names)} took {booked_s:.1f} s)")
        store.close()
        # The target's figure: one controller holding the week's bookings (part 4 below starts a
        # second controller on a second copy of the city in this process).
        rss_one = peak_rss_mib()
        print(
            f"peak RSS through the bookings, REST and the burst: {rss_one:.0f} MiB (one controller, its server)"
        )

        # 4. The same on the real clock through the process's reconcile loop.
        if real_burst > 0:
            city_file = work / "city.json"
            write_topology_file(source, city_file)
            lag, booking_s, n_active = real_clock_burst(work, city_file, real_burst, args.seed + 300)
            print(
                f"activation on the real clock (controller process wiring, reconcile loop): {n_active} of "
                f"{real_burst} active {lag:.2f} s after their window's start (booked in {booking_s:.1f} s)"
            )

    rss = peak_rss_mib()
    print(f"peak RSS {rss:.0f} MiB (the whole run: both controllers and cities)")
    p50 = percentile(sorted(v * 1000 for v in out.wall_s), 50)
    p95 = percentile(sorted(v * 1000 for v in out.wall_s), 95)
    rest50 = percentile(sorted(v * 1000 for v in latencies), 50)

    def ok(good: bool) -> str:
        return "OK" if good else "MISSED"

    print(
        f"targets: create p50 {ok(p50 <= TARGET_CREATE_P50_MS)} (<= {TARGET_CREATE_P50_MS:g} ms), "
        f"p95 {ok(p95 <= TARGET_CREATE_P95_MS)} (<= {TARGET_CREATE_P95_MS:g} ms), "
        f"REST p50 {ok(rest50 <= TARGET_REST_P50_MS)} (<= {TARGET_REST_P50_MS:g} ms), "
        f"activation {ok(wall <= TARGET_ACTIVATION_S and active == len(names))} (<= {TARGET_ACTIVATION_S:g} s), "
        f"RSS {ok(rss_one <= TARGET_RSS_MIB)} (<= {TARGET_RSS_MIB:g} MiB, one controller)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
