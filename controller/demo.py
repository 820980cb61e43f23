"""``slicectl demo``: the whole story on embedded defaults, narrated as it happens.

It generates a city, starts a real controller (operator API on loopback, SQLite state and
realisation plans in the work folder), and drives it through the API like an operator would:
IoT, vehicle and Wi-Fi slices are applied, one is rejected with its reason, a high-priority
slice preempts the Wi-Fi slice, an edge site is drained and the slices it served are re-placed,
and the audit trail is printed. Then it exits, or with ``forever`` keeps running for exploration.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller import citygen, runtime
from controller.api_client import ApiClient
from controller.topology import Topology
from controller.topology_file import write_topology_file
from slices import errors

SST = {"iot": 3, "vehicle": 4, "wifi": 1}
Echo = Callable[[str], None]


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
    story starts from an empty controller every time."""
    for name in DEMO_FILES:
        (workdir / name).unlink(missing_ok=True)
    plans = workdir / "state" / "realisation"
    if plans.is_dir():
        for plan in plans.glob("*.yaml"):
            plan.unlink()


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
    workdir: Path, cells: int = 60, forever: bool = False, echo: Echo = print, seed: int = 0
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
    config = runtime.RuntimeConfig(
        topology=str(topo_file),
        state_file=workdir / "edgeslice.db",
        state_dir=workdir / "state",
        listen="127.0.0.1:0",
        reconcile_interval_s=2.0,
    )
    controller = runtime.Controller(config)
    controller.start()
    try:
        outcome = DemoOutcome(workdir=workdir, address=controller.address)
        echo(f"2. Controller serving on {controller.address} (state {config.state_file})")
        token = (workdir / "state" / "token").read_text(encoding="utf-8").strip()
        with ApiClient(controller.address, token) as client:
            _story(client, city, echo, outcome)
        if forever:
            echo("")
            echo("Running until Ctrl-C. Explore with, for example:")
            echo(f"    export EDGESLICE_STATE_DIR={workdir / 'state'}")
            echo("    slicectl slice list")
            echo("    slicectl slice events --follow")
            echo(f"    ls {workdir / 'state' / 'realisation'}")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                echo("stopping")
        return outcome
    finally:
        controller.stop()


def _story(client: ApiClient, city: Topology, echo: Echo, outcome: DemoOutcome) -> None:
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
    status = client.topology_status()
    busiest = max(
        (s for s in status.sites if s.kind == "edge"), key=lambda s: (s.slices, s.cpu_reserved_millicores)
    )
    echo(f"5. Draining edge site {busiest.site} for maintenance ({busiest.slices} slices use it):")
    moved = client.drain(busiest.site)
    outcome.drained, outcome.moved = busiest.site, moved
    echo(f"    re-placed: {', '.join(moved) if moved else 'none'}")
    _show(echo, client, names)
    events = client.events()
    outcome.events = len(events)
    echo(f"6. Audit trail ({len(events)} events):")
    for e in events:
        about = e.slice or e.site
        echo(f"    #{e.seq:<3} {e.actor:<14} {e.action:<9} {about:<16} {e.message}")
    outcome.states = {s.name: s.state for s in client.list_slices()}
    plans = sorted(p.name for p in (outcome.workdir / "state" / "realisation").glob("*.yaml"))
    echo(f"7. Realisation plans in {outcome.workdir / 'state' / 'realisation'}: {', '.join(plans)}")


def _coverage(zone: str) -> Any:
    from slices.intent import Coverage

    return Coverage(zones=(zone,))
