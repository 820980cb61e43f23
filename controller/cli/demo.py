"""``slicectl demo``: the whole story on embedded defaults, narrated as it happens.

It generates a city, starts a real controller (operator API on loopback, SQLite state,
realisation plans and rendered Kubernetes manifests in the work folder), and drives it through
the API like an operator would: IoT, vehicle and Wi-Fi slices are applied, one is rejected with
its reason, a high-priority slice preempts the Wi-Fi slice, an edge site is drained and the
slices it served are re-placed, and the audit trail is printed.

With a :class:`SiteWorld` (``slicectl demo`` passes one built from the telemetry package: this
package may not import it) the controller also serves site agents and metrics, simulated agents
for every site connect, their config acks and SLA verdicts are shown, one edge site's agent is
killed and the missed lease and the healing are read back from the audit trail, and a few lines
of the controller's own ``/metrics`` are printed. In both cases a city agency books a slice through
the controller's CAMARA booking API over real HTTP for a window a few seconds ahead, and the demo
shows it scheduled, activated and expired, with the CloudEvents its sink received
(:mod:`controller.cli.demo_booking`). Then it exits, or with ``forever`` keeps
running until ``stop`` is set (``slicectl demo`` sets it on SIGTERM or Ctrl-C).
"""

from __future__ import annotations

import hashlib
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from controller.api.client import ApiClient
from controller.cli import companions, demo_booking
from controller.core import citygen
from controller.core.topology import Topology
from controller.core.topology_file import write_topology_file
from controller.process import wiring as runtime
from controller.process.config import MANIFESTS_DIR, RuntimeConfig
from controller.runtime.observer import ServiceObserver
from controller.runtime.store import StateLock, Store, lock_path
from slices import errors

SST = {"iot": 3, "vehicle": 4, "wifi": 1}
Echo = Callable[[str], None]
ACK_TIMEOUT_S = 15.0
LEASE_TIMEOUT_S = 15.0
METRIC_LINES = (
    "edgeslice_slices{",
    "edgeslice_agents{",
    "edgeslice_healings_total{",
    "edgeslice_preemptions_total{",
    "edgeslice_controller_events_total{",
    'edgeslice_grpc_server_started_total{api="agent"',
    'edgeslice_grpc_server_handled_total{api="operator"',
)


@dataclass(frozen=True)
class AgentAck:
    """One site agent's view of its configuration: the generation pushed and the one acked."""

    site: str
    kind: str  # edge, aggregation, core, cell
    connected: bool
    desired_generation: int
    acked_generation: int
    slices: int  # slices configured at the site


class SiteWorld(Protocol):
    """The site side of the demo (agent server, simulated agents, metrics), built from the
    telemetry package by the CLI and attached to the demo's controller."""

    @property
    def observer(self) -> ServiceObserver | None: ...

    def interceptors(self) -> list[Any]: ...

    def attachments(self) -> list[runtime.Attachment]: ...

    def start_agents(self, topology: Topology, sites: Sequence[str]) -> None:
        """Connect a simulated agent for each of ``sites``; returns once they are connected."""
        ...

    def acks(self) -> list[AgentAck]: ...

    @property
    def sla_window_s(self) -> float:
        """How much recent telemetry one SLA verdict judges."""
        ...

    def kill_agent(self, site: str) -> None:
        """The site's agent goes silent (and traffic through the site is lost)."""
        ...

    def set_devices(self, slice_name: str, devices: int) -> None:
        """The slice's users at each of its cells are ``devices`` (what the cells report)."""
        ...

    def close(self) -> None: ...


@dataclass
class DemoOutcome:
    workdir: Path
    address: str
    states: dict[str, str] = field(default_factory=dict)  # slice -> state at the end
    rejected: dict[str, str] = field(default_factory=dict)  # slice -> reason
    preempted: dict[str, str] = field(default_factory=dict)  # slice -> message naming the preemptor
    drained: str = ""
    moved: list[str] = field(default_factory=list)
    events: int = 0
    endpoints: dict[str, str] = field(default_factory=dict)
    agents: int = 0  # simulated agents connected
    acked: dict[str, int] = field(default_factory=dict)  # transport site -> generation acked
    sla: dict[str, str] = field(default_factory=dict)  # slice -> SLAMet status (True/False/Unknown)
    sla_violations: dict[str, str] = field(
        default_factory=dict
    )  # slice -> reason, as shown after the failure
    killed: str = ""  # the edge site whose agent was killed
    lease_expired: str = ""  # the site-down event's message
    healed: list[str] = field(default_factory=list)  # slices re-placed after the lease expired
    manifests: list[str] = field(default_factory=list)  # slices with rendered manifests
    metrics: list[str] = field(default_factory=list)  # the metric lines shown
    booking: demo_booking.BookingOutcome | None = None  # the slice booked through the REST API


def manifest(name: str, kind: str, coverage: dict[str, Any], **spec: Any) -> str:
    """A NetworkSlice document as YAML (flow style keeps it one screen)."""
    import yaml

    sd = hashlib.sha256(name.encode()).hexdigest()[:6]
    body = {"kind": kind, "snssai": {"sst": SST[kind], "sd": sd}, "coverage": coverage, **spec}
    doc = {
        "apiVersion": "edgeslice.io/v1alpha1",
        "kind": "NetworkSlice",
        "metadata": {"name": name},
        "spec": body,
    }
    return yaml.safe_dump(doc, sort_keys=False)


DEMO_FILES = ("edgeslice.db", "edgeslice.db-wal", "edgeslice.db-shm", "city.yaml")


def fresh_start(workdir: Path) -> None:
    """Remove what an earlier demo left in ``workdir`` (only the demo's own files), so the
    story starts from an empty controller every time. Refused while a demo runs there (its
    controller holds the state's lock): its state is not deleted from under it."""
    lock = StateLock.acquire(
        lock_path(workdir / "edgeslice.db"),
        f"demo folder {workdir}",
        "another demo runs there: stop it, or give --workdir",
    )
    try:
        for name in DEMO_FILES:
            (workdir / name).unlink(missing_ok=True)
        plans = workdir / "state" / "realisation"
        if plans.is_dir():
            for plan in plans.glob("*.yaml"):
                plan.unlink()
    finally:
        lock.release()


def _zone(city: Topology, *prefixes: str) -> str:
    zones = city.zones()
    for prefix in prefixes:
        match = [z for z in zones if z.startswith(prefix)]
        if match:
            return match[0]
    raise errors.TopologyError(
        f"the demo city has no zone starting with {' or '.join(prefixes)}; use more cells"
    )


def _show(echo: Echo, client: ApiClient, names: list[str]) -> None:
    for s in client.list_slices():
        if s.name not in names:
            continue
        where = ""
        if s.HasField("placement"):
            edges = ", ".join(f"{e.site}" for e in s.placement.edges)
            where = (
                f" on {edges} ({s.placement.cells_served} cells, worst {s.placement.worst_latency_ms:.2f} ms)"
            )
        why = f" - {s.reason}: {s.message}" if s.reason else ""
        echo(f"    {s.name:<16} {s.kind:<8} {s.state:<10}{where}{why}")


def run_demo(
    workdir: Path,
    cells: int = 60,
    forever: bool = False,
    echo: Echo = print,
    seed: int = 0,
    world: SiteWorld | None = None,
    stop: threading.Event | None = None,
) -> DemoOutcome:
    workdir.mkdir(parents=True, exist_ok=True)
    fresh_start(workdir)
    echo(f"edgeslice demo - work folder {workdir}")
    source = citygen.generate_city(cells, seed=seed)
    topo_file = workdir / "city.yaml"
    write_topology_file(source, topo_file)
    city = Topology.from_file(source)
    echo(
        f"1. Generated city {city.name!r}: {len(city.cells)} cells, {len(city.edge_sites)} edge sites "
        f"({', '.join(city.edge_sites)}), {len(city.links)} links -> {topo_file}"
    )
    config = RuntimeConfig(
        topology=str(topo_file),
        state_file=workdir / "edgeslice.db",
        state_dir=workdir / "state",
        listen="127.0.0.1:0",
        reconcile_interval_s=2.0,
    )
    # The CAMARA booking API beside the operator API (loopback, dev mode, sinks on 127.0.0.1).
    booking_api = companions.Companions(None, None, booking=demo_booking.settings())
    controller = runtime.Controller(
        config,
        observer=world.observer if world else None,
        attachments=[*(world.attachments() if world else ()), *booking_api.attachments()],
        interceptors=world.interceptors() if world else (),
    )
    controller.start()
    try:
        outcome = DemoOutcome(
            workdir=workdir, address=controller.address, endpoints=dict(controller.endpoints)
        )
        echo(f"2. Controller serving on {controller.address} (state {config.state_file})")
        for name, where in controller.endpoints.items():
            if name != "operator":
                echo(f"   {name} on {where}")
        token = (workdir / "state" / "token").read_text(encoding="utf-8").strip()
        assert controller.service is not None, "a started controller has its service"
        booking = (controller.endpoints["booking"], controller.service.store)
        with ApiClient(controller.address, token) as client:
            _story(client, city, echo, outcome, world, booking)
        if forever:
            echo("")
            echo("Running until Ctrl-C or SIGTERM. Explore with, for example:")
            echo(f"    export EDGESLICE_STATE_DIR={workdir / 'state'}")
            echo("    slicectl slice list")
            echo("    slicectl slice events --follow")
            if "metrics" in controller.endpoints:
                echo(f"    slicectl top --metrics-url {controller.endpoints['metrics']}")
            echo(f"    ls {workdir / 'state' / 'realisation'}")
            stop = stop or threading.Event()
            try:
                while not stop.wait(0.5):  # a timed wait, so signal handlers run promptly
                    pass
            except KeyboardInterrupt:
                stop.set()
            echo("stopping")
        return outcome
    finally:
        if world is not None:
            world.close()  # the agents first, so none is left redialling a stopped server
        controller.stop()


def _story(
    client: ApiClient,
    city: Topology,
    echo: Echo,
    outcome: DemoOutcome,
    world: SiteWorld | None,
    booking: tuple[str, Store],
) -> None:
    if world is not None:
        # Every site but the core: the edge and aggregation agents carry the transport config,
        # the cells' agents report the radio KPIs the SLA is judged on.
        sites = sorted(s for s, info in city.sites.items() if info.kind.value != "core")
        world.start_agents(city, sites)
        outcome.agents = len(sites)
        kinds: dict[str, int] = {}
        for s in sites:
            kinds[city.sites[s].kind.value] = kinds.get(city.sites[s].kind.value, 0) + 1
        echo(
            f"   {len(sites)} simulated site agents connected ("
            + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
            + ")"
        )
    downtown = _zone(city, "downtown", "district-")
    corridor = _zone(city, "corridor-", "district-")
    hotspot = _zone(city, "hotspot-", "downtown")
    hot_cells = city.cells_in(_coverage(hotspot))
    # Size the Wi-Fi and the emergency slices from the hotspot's smallest cell, so the two
    # cannot share it and the emergency one must preempt (whatever the generated radio sizes).
    smallest = min(city.sites[c].radio_kbps for c in hot_cells) // 1000
    wifi_dl = int(smallest * 0.6)
    sos_dl = int(smallest * 0.5)
    first = [
        ("city-sensors", manifest("city-sensors", "iot", {"zones": [downtown]})),
        ("metro-cars", manifest("metro-cars", "vehicle", {"zones": [corridor]})),
        (
            "stadium-wifi",
            manifest(
                "stadium-wifi",
                "wifi",
                {"zones": [hotspot]},
                sla={"dlMbpsPerCell": wifi_dl, "ulMbpsPerCell": 20},
            ),
        ),
        (
            "robot-control",
            manifest("robot-control", "vehicle", {"zones": [downtown]}, sla={"latencyMs": 0.01}),
        ),
    ]
    echo(f"3. Applying IoT ({downtown}), vehicle ({corridor}), Wi-Fi ({hotspot}, {wifi_dl} Mbps/cell) and a")
    echo("   robot-control slice asking for a 0.01 ms latency bound:")
    for name, text in first:
        [r] = client.apply([(name, text)])
        line = f"    apply {name:<16} -> {r.state}"
        if r.reason and r.state != "Ready":
            line += f" ({r.reason}: {r.message})"
        echo(line)
        if r.state == "Rejected":
            outcome.rejected[name] = r.reason
    echo(
        f"4. An emergency video slice (priority 900, {sos_dl} Mbps/cell) on {hotspot}, where Wi-Fi holds the radio:"
    )
    sos = manifest(
        "ambulance-video",
        "vehicle",
        {"zones": [hotspot]},
        priority=900,
        sla={"dlMbpsPerCell": sos_dl, "ulMbpsPerCell": 10, "latencyMs": 10},
    )
    [r] = client.apply([("ambulance-video", sos)])
    echo(f"    apply ambulance-video  -> {r.state}{' (' + r.message + ')' if r.message else ''}")
    wifi = client.get("stadium-wifi")
    echo(f"    stadium-wifi is now {wifi.state}: {wifi.message}")
    if wifi.state == "Preempted":
        outcome.preempted["stadium-wifi"] = wifi.message
    names = ["city-sensors", "metro-cars", "stadium-wifi", "robot-control", "ambulance-video"]
    echo("   Slices now:")
    _show(echo, client, names)
    if world is not None:
        _acks(echo, client, world, outcome, "5. Site agents acknowledge their configuration")
        _sla(echo, client, names, outcome)
    status = client.topology_status()
    busiest = max(
        (s for s in status.sites if s.kind == "edge"), key=lambda s: (s.slices, s.cpu_reserved_millicores)
    )
    echo(f"6. Draining edge site {busiest.site} for maintenance ({busiest.slices} slices use it):")
    report = client.drain_report(busiest.site)
    moved = list(report.moved_slices)
    outcome.drained, outcome.moved = busiest.site, moved
    echo(f"    re-placed: {', '.join(moved) if moved else 'none'}")
    for label, kind in (("preempted", "Preempted"), ("could not move (Degraded, still there)", "NotMoved")):
        names_of = [m.slice for m in report.moves if m.outcome == kind]
        if names_of:
            echo(f"    {label}: {', '.join(names_of)}")
    _show(echo, client, names)
    if world is not None:
        _acks(echo, client, world, outcome, "   The agents acknowledge the moved slices' configuration")
        _show(echo, client, names)
        client.undrain(busiest.site)
        echo(f"   Maintenance over: {busiest.site} is back in service (slices stay where they are).")
        _failure(echo, client, world, outcome, names)
    base_url, store = booking
    outcome.booking = demo_booking.book_a_window(
        echo,
        client,
        city,
        list(city.cells_in(_coverage(downtown))),
        base_url,
        store,
        f"8. The city's events office books a {demo_booking.WINDOW_S:g} s slice for a street festival in {downtown}",
        # The festival's visitors, within the booked maxNumOfDevices, once the slice is live.
        crowd=world.set_devices if world is not None else None,
    )
    events = client.events()
    outcome.events = len(events)
    echo(f"9. Audit trail ({len(events)} events):")
    for e in events:
        about = e.slice or e.site
        echo(f"    #{e.seq:<3} {e.actor:<14} {e.action:<13} {about:<16} {e.message}")
    outcome.states = {s.name: s.state for s in client.list_slices()}
    state_dir = outcome.workdir / "state"
    plans = sorted(p.name for p in (state_dir / "realisation").glob("*.yaml"))
    echo(f"10. Realisation plans in {state_dir / 'realisation'}: {', '.join(plans)}")
    folder = state_dir / MANIFESTS_DIR
    outcome.manifests = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if outcome.manifests:
        first_name = outcome.manifests[0]
        files = sorted(p.name for p in (folder / first_name).glob("*.yaml"))
        echo(f"   Kubernetes manifests (what --kube would apply) in {folder}/<slice>/, e.g. {first_name}:")
        echo(f"    {', '.join(files)}")
        echo(f"    read them with: EDGESLICE_STATE_DIR={state_dir} slicectl slice manifests {first_name}")
    if "metrics" in outcome.endpoints:
        _metrics(echo, outcome.endpoints["metrics"], outcome)


def _acks(echo: Echo, client: ApiClient, world: SiteWorld, outcome: DemoOutcome, title: str) -> None:
    """Wait until the configs follow the placements (every edge site holds the active slices
    placed there) and every agent with a config acked its current generation; show the transport
    sites one by one and the cells as a count."""
    expected: dict[str, int] = {}
    for s in client.list_slices():
        if s.HasField("placement") and s.state not in ("Rejected", "Preempted"):
            for e in s.placement.edges:
                expected[e.site] = expected.get(e.site, 0) + 1
    deadline = time.monotonic() + ACK_TIMEOUT_S
    while True:
        acks = [a for a in world.acks() if a.connected and a.desired_generation]
        held = {a.site: a.slices for a in acks}
        pending = [a for a in acks if a.acked_generation != a.desired_generation]
        pending_sites = [a.site for a in pending] + [
            site for site, n in expected.items() if held.get(site) != n
        ]
        if not pending_sites or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    echo(f"{title} (generation pushed -> acked):")
    for a in acks:
        if a.kind != "cell":
            outcome.acked[a.site] = a.acked_generation
            echo(
                f"    {a.site:<10} {a.kind:<12} {a.slices} slices  generation {a.desired_generation} -> acked {a.acked_generation}"
            )
    cells = [a for a in acks if a.kind == "cell"]
    done = sum(1 for a in cells if a.acked_generation == a.desired_generation)
    echo(f"    {done}/{len(cells)} configured cells acked their current generation")
    if pending_sites:
        echo(f"    still waiting for {', '.join(sorted(set(pending_sites))[:5])}")


def _sla(
    echo: Echo,
    client: ApiClient,
    names: list[str],
    outcome: DemoOutcome,
    title: str = "   SLA verdicts from the KPIs the cells and edge sites report:",
    settled: bool = False,
    quiet: bool = False,
) -> None:
    """Wait for the SLA monitor's verdict on every placed slice (cells and edge sites report KPIs): the first
    one, or with ``settled`` until every slice meets its SLA again (traffic through a failed
    site is lost until the slices are healed, so a window may have judged it violated)."""
    deadline = time.monotonic() + LEASE_TIMEOUT_S
    while True:
        verdicts = {
            s.name: next((c for c in s.conditions if c.type == "SLAMet"), None)
            for s in client.list_slices()
            if s.name in names and s.HasField("placement") and s.state not in ("Rejected", "Preempted")
        }
        wanted = ("True",) if settled else ("True", "False")
        if all(c is not None and c.status in wanted for c in verdicts.values()):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if quiet:  # only wait
        return
    echo(title)
    for name, c in verdicts.items():
        status = c.status if c is not None else "Unknown"
        outcome.sla[name] = status
        why = f" ({c.reason}: {c.message})" if c is not None and c.message else ""
        echo(f"    {name:<16} SLAMet={status}{why}")


def _failure(echo: Echo, client: ApiClient, world: SiteWorld, outcome: DemoOutcome, names: list[str]) -> None:
    status = client.topology_status()
    victim = max((s for s in status.sites if s.kind == "edge" and s.up), key=lambda s: (s.slices, s.site))
    after = client.events()[-1].seq if client.events() else 0
    echo(f"7. Edge site {victim.site} fails: its agent goes silent ({victim.slices} slices use it)")
    world.kill_agent(victim.site)
    outcome.killed = victim.site
    t0 = time.monotonic()
    down = None
    while down is None and time.monotonic() - t0 < LEASE_TIMEOUT_S:
        down = next(
            (e for e in client.events(after) if e.action == "site-down" and e.site == victim.site), None
        )
        if down is None:
            time.sleep(0.1)
    if down is None:
        echo(f"    no missed lease detected for {victim.site} within {LEASE_TIMEOUT_S:g} s")
        return
    outcome.lease_expired = down.message
    echo(f"    after {time.monotonic() - t0:.1f} s the controller noticed: {down.message}")
    healing = [e for e in client.events(after) if e.action in ("heal", "degrade") and e.seq > down.seq]
    outcome.healed = [e.slice for e in healing if e.action == "heal"]
    for e in healing:
        echo(f"    {e.action:<8} {e.slice:<16} {e.message}")
    _show(echo, client, names)
    _acks(echo, client, world, outcome, "   The surviving agents acknowledge the new configuration")
    # Until the new configs arrived, traffic through the dead site was lost: let the SLA monitor
    # judge those samples (at most one window after the acks), then wait for it to clear.
    time.sleep(world.sla_window_s * 1.2)
    _sla(echo, client, names, outcome, "   SLA verdicts after healing:", settled=True, quiet=True)
    violations = [e for e in client.events(after) if e.action == "sla-violation"]
    if violations:
        echo("   While traffic still crossed the failed site, the SLA monitor saw violations:")
        for e in violations:
            outcome.sla_violations[e.slice] = e.message.split(":", 1)[0]
            echo(f"    {e.slice:<16} SLAMet=False ({e.message})")
    _sla(echo, client, names, outcome, "   SLA verdicts after healing:", settled=True)


def _metrics(echo: Echo, url: str, outcome: DemoOutcome) -> None:
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode("utf-8")
    shown: list[str] = []
    for prefix in METRIC_LINES:
        # A few non-zero samples of each family: what a dashboard would plot.
        lines = [ln for ln in body.splitlines() if ln.startswith(prefix) and _nonzero(ln)]
        shown.extend(lines[:3])
    outcome.metrics = shown
    echo(f"11. A few lines of the controller's own {url}:")
    for line in shown:
        echo(f"    {line}")


def _nonzero(line: str) -> bool:
    """Whether a Prometheus text sample line has a non-zero value.

    >>> _nonzero('edgeslice_slices{kind="iot",state="Ready"} 1'), _nonzero("x 0.0")
    (True, False)
    """
    try:
        return float(line.rsplit(" ", 1)[1]) != 0.0
    except (IndexError, ValueError):
        return False


def _coverage(zone: str) -> Any:
    from slices.intent import Coverage

    return Coverage(zones=(zone,))
