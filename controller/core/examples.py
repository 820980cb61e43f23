"""A small example city and its slices, small enough to hold in your head: the one setup of the core's doctests.

The city is a star: cells ``c1``, ``c2``, … link to the aggregation site ``a1`` (1000 Mbps,
0.5 ms each), and ``a1`` links to each edge site on its own uplink. The tests build larger
cities with their own builder; these are for reading an example in a docstring.

>>> city = small_city(150, cells=2, edges=(Edge("e1"), Edge("e2", uplink_latency_ms=2)))
>>> [(s.id, s.radio_kbps, s.cpu_millicores) for s in city.sites.values()]
[('c1', 150000, 0), ('c2', 150000, 0), ('a1', 0, 0), ('e1', 0, 16000), ('e2', 0, 16000)]
>>> [str(link) for link in city.links]
['a1:c1', 'a1:c2', 'a1:e1', 'a1:e2']
>>> hotspot = slice_intent("hotspot", "wifi")
>>> hotspot.name, hotspot.coverage.sites
('hotspot', ('c1',))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.core.topology import Topology
from controller.core.topology_file import TopologyFile
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent, resolve


@dataclass(frozen=True)
class Edge:
    """An edge site of :func:`small_city` and its uplink from ``a1``."""

    id: str
    cpu_millicores: int = 16_000
    memory_mib: int = 16_384
    uplink_mbps: float = 1000
    uplink_latency_ms: float = 1


def small_city(
    radio_mbps: float = 200, *, cells: int = 1, edges: tuple[Edge, ...] = (Edge("e1"),)
) -> Topology:
    """Cells ``c1``…``c<cells>`` of ``radio_mbps`` each, the aggregation ``a1``, and ``edges``."""

    def site(i: str, kind: str, **capacity: float) -> dict[str, Any]:
        return {"id": i, "kind": kind, "location": {"lat": 0, "lon": 0}, "capacity": capacity}

    cell_ids = [f"c{n}" for n in range(1, cells + 1)]
    sites = [site(c, "cell", radioMbps=radio_mbps) for c in cell_ids] + [site("a1", "aggregation")]
    sites += [site(e.id, "edge", cpuMillicores=e.cpu_millicores, memoryMib=e.memory_mib) for e in edges]
    links = [{"a": c, "b": "a1", "bandwidthMbps": 1000, "latencyMs": 0.5} for c in cell_ids]
    links += [
        {"a": "a1", "b": e.id, "bandwidthMbps": e.uplink_mbps, "latencyMs": e.uplink_latency_ms}
        for e in edges
    ]
    return Topology.from_file(TopologyFile.model_validate({"sites": sites, "links": links}))


def slice_intent(name: str, kind: str, *, cells: tuple[str, ...] = ("c1",), **spec: Any) -> SliceIntent:
    """A slice of profile ``kind`` named ``name`` covering ``cells``; ``spec``: more of its spec, as in YAML."""
    return resolve(
        NetworkSlice.model_validate(
            {"metadata": {"name": name}, "spec": {"kind": kind, "coverage": {"sites": list(cells)}, **spec}}
        )
    )


def wifi(name: str, sd: str, dl_mbps: float) -> SliceIntent:
    """A wifi slice on ``c1`` with S-NSSAI 1/``sd`` asking ``dl_mbps`` down a cell and nothing up."""
    return slice_intent(
        name, "wifi", snssai={"sst": 1, "sd": sd}, sla={"dlMbpsPerCell": dl_mbps, "ulMbpsPerCell": 0}
    )
