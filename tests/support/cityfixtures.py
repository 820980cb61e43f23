"""Tiny hand-built cities for unit tests: topology-file dicts small enough to reason about.

Each builder returns a :class:`Topology`; ``*_file`` variants return the validated
:class:`TopologyFile` (for CLI tests that write it to disk). Capacities are in the file's units
(Mbps, millicores, MiB); latencies are given per link in ms so expected routes are obvious.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from controller.core.topology import Topology
from controller.core.topology_file import TopologyFile
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent, resolve

Doc = dict[str, Any]


def cell(
    sid: str, radio_mbps: float = 1000, zones: Sequence[str] = (), lat: float = 0.0, lon: float = 0.0
) -> Doc:
    return {
        "id": sid,
        "kind": "cell",
        "location": {"lat": lat, "lon": lon},
        "zones": list(zones),
        "capacity": {"radioMbps": radio_mbps},
    }


def agg(sid: str, lat: float = 0.0, lon: float = 0.0, zones: Sequence[str] = ()) -> Doc:
    out: Doc = {"id": sid, "kind": "aggregation", "location": {"lat": lat, "lon": lon}}
    if zones:
        out["zones"] = list(zones)
    return out


def edge(
    sid: str,
    cpu: int = 16_000,
    memory: int = 32_768,
    lat: float = 0.0,
    lon: float = 0.0,
    zones: Sequence[str] = (),
) -> Doc:
    out: Doc = {
        "id": sid,
        "kind": "edge",
        "location": {"lat": lat, "lon": lon},
        "capacity": {"cpuMillicores": cpu, "memoryMib": memory},
    }
    if zones:
        out["zones"] = list(zones)
    return out


def link(a: str, b: str, mbps: float = 10_000, ms: float = 0.5) -> Doc:
    return {"a": a, "b": b, "bandwidthMbps": mbps, "latencyMs": ms}


def build_file(sites: Sequence[Doc], links: Sequence[Doc], name: str = "fixture") -> TopologyFile:
    return TopologyFile.model_validate({"name": name, "sites": list(sites), "links": list(links)})


def build(sites: Sequence[Doc], links: Sequence[Doc], name: str = "fixture") -> Topology:
    return Topology.from_file(build_file(sites, links, name))


def two_edge_file(
    cells: int = 4,
    radio_mbps: float = 1000,
    near_mbps: float = 10_000,
    far_mbps: float = 10_000,
    near_cpu: int = 16_000,
    far_cpu: int = 16_000,
) -> TopologyFile:
    """``cells`` cells c1..cN (zone ``town``) on aggregation a1; edge ``near`` 1 ms from a1 and
    edge ``far`` 4 ms from a1 (access links 0.5 ms, 10 Gbps).

        c1..cN ── a1 ──(1 ms, near_mbps)── near
                    └──(4 ms, far_mbps)─── far
    """
    sites = [cell(f"c{i}", radio_mbps, zones=["town"]) for i in range(1, cells + 1)]
    sites += [agg("a1"), edge("near", cpu=near_cpu), edge("far", cpu=far_cpu)]
    links = [link(f"c{i}", "a1") for i in range(1, cells + 1)]
    links += [link("a1", "near", near_mbps, 1.0), link("a1", "far", far_mbps, 4.0)]
    return build_file(sites, links, "two-edge")


def two_edge_city(**kwargs: Any) -> Topology:
    return Topology.from_file(two_edge_file(**kwargs))


def small_city() -> Topology:
    """Four cells (200 Mbps radio each) on two aggregation sites; two edge sites: the controller
    runtime tests' city, whose capacities make admission, preemption and healing easy to follow.

        c1, c2 ── a1 ──(1 ms)── e1        zones: c1, c2 ``north``; c3, c4 ``south``
                  │ 0.5 ms                 access links 0.2 ms, 10 Gbps; the rest 100 Gbps
        c3, c4 ── a2 ──(1 ms)── e2        each edge site: 16 cores, 32 GiB
    """
    lat, lon = 48.85, 2.35
    sites = [
        cell(f"c{i}", 200, zones=["north" if i <= 2 else "south"], lat=lat, lon=lon) for i in range(1, 5)
    ]
    sites += [agg(a, lat, lon) for a in ("a1", "a2")]
    sites += [edge(e, 16_000, 32_768, lat, lon) for e in ("e1", "e2")]
    links = [link(c, a, 10_000, 0.2) for c, a in (("c1", "a1"), ("c2", "a1"), ("c3", "a2"), ("c4", "a2"))]
    links += [link("a1", "e1", 100_000, 1), link("a2", "e2", 100_000, 1), link("a1", "a2", 100_000, 0.5)]
    return build(sites, links, "small")


def dual_homed_city() -> Topology:
    """Cells c1, c2 each dual-homed to a1 (0.2 ms) and a2 (0.3 ms); a1-a2 0.4 ms; edge e1 on a1
    and e2 on a2 (0.5 ms, 64 cores and 256 GiB each); every site in zone ``z``: the telemetry
    tests' city (sites spread east along latitude 48)."""
    z = ["z"]
    sites = [cell("c1", 1000, z, 48.0, 0.0), cell("c2", 1000, z, 48.0, 0.01)]
    sites += [agg("a1", 48.0, 0.02, z), agg("a2", 48.0, 0.03, z)]
    sites += [edge("e1", 64_000, 262_144, 48.0, 0.04, z), edge("e2", 64_000, 262_144, 48.0, 0.05, z)]
    links = [link(c, a, 10_000, ms) for c in ("c1", "c2") for a, ms in (("a1", 0.2), ("a2", 0.3))]
    links += [link("a1", "e1", 100_000, 0.5), link("a2", "e2", 100_000, 0.5), link("a1", "a2", 100_000, 0.4)]
    return build(sites, links, "small")


def ring_file(
    aggs: int = 4,
    cells_per_agg: int = 2,
    edges_at: Sequence[int] = (0, 2),
    radio_mbps: float = 1000,
    access_mbps: float = 10_000,
    ring_mbps: float = 10_000,
    edge_mbps: float = 10_000,
    ring_ms: float = 1.0,
    cpu: int = 16_000,
    memory: int = 32_768,
) -> TopologyFile:
    """Aggregation sites r0..r{n-1} in a ring; cells r{i}-c{j} hang off r{i} (zone ``z{i}``, all
    also ``city``); edge site e{i} hangs off r{i} for each i in ``edges_at`` (0.5 ms)."""
    sites: list[Doc] = []
    links: list[Doc] = []
    for i in range(aggs):
        sites.append(agg(f"r{i}", lat=0.01 * i))
        for j in range(cells_per_agg):
            sites.append(cell(f"r{i}-c{j}", radio_mbps, zones=[f"z{i}", "city"], lat=0.01 * i, lon=0.001 * j))
            links.append(link(f"r{i}-c{j}", f"r{i}", access_mbps, 0.5))
    if aggs > 1:
        for i in range(aggs if aggs > 2 else 1):
            links.append(link(f"r{i}", f"r{(i + 1) % aggs}", ring_mbps, ring_ms))
    for i in edges_at:
        sites.append(edge(f"e{i}", cpu, memory, lat=0.01 * i))
        links.append(link(f"r{i}", f"e{i}", edge_mbps, 0.5))
    return build_file(sites, links, "ring")


def ring_city(**kwargs: Any) -> Topology:
    return Topology.from_file(ring_file(**kwargs))


def intent(
    name: str,
    kind: str = "iot",
    *,
    cells: Sequence[str] = (),
    zones: Sequence[str] = (),
    sd: str | None = None,
    latency_ms: float | None = None,
    dl_mbps: float | None = None,
    ul_mbps: float | None = None,
    priority: int | None = None,
    preemptible: bool | None = None,
    cpu: int | None = None,
    memory: int = 256,
    replicas: int = 1,
) -> SliceIntent:
    """A resolved slice with just the fields a test cares about (``cpu`` sets one workload)."""
    sst = {"iot": 3, "vehicle": 4, "wifi": 1}[kind]
    spec: Doc = {"kind": kind, "coverage": {}}
    if cells:
        spec["coverage"]["sites"] = list(cells)
    if zones:
        spec["coverage"]["zones"] = list(zones)
    spec["snssai"] = {"sst": sst, "sd": sd or format(zlib.crc32(name.encode()) % 0xFFFFFF, "06x")}
    sla: Doc = {}
    if latency_ms is not None:
        sla["latencyMs"] = latency_ms
    if dl_mbps is not None:
        sla["dlMbpsPerCell"] = dl_mbps
    if ul_mbps is not None:
        sla["ulMbpsPerCell"] = ul_mbps
    if sla:
        spec["sla"] = sla
    if priority is not None:
        spec["priority"] = priority
    if preemptible is not None:
        spec["preemptible"] = preemptible
    if cpu is not None:
        spec["workloads"] = [
            {
                "name": "app",
                "image": "busybox:1",
                "cpuMillicores": cpu,
                "memoryMib": memory,
                "replicas": replicas,
            }
        ]
    return resolve(NetworkSlice.model_validate({"metadata": {"name": name}, "spec": spec}))
