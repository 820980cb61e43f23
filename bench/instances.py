"""Benchmark instances: generated cities, mixed slice requests with coherent coverage, revenue.

A request covers the ``k`` cells nearest to a random point of the city (a district-sized disc),
given as explicit cells, so coverage is geographically coherent the way real slices are.

Revenue (the quality benchmark's and the ILP's objective) is what an admitted slice pays for
the bandwidth it sells: Mbit/s per covered cell (DL + UL) × covered cells × a weight per slice.
Three weightings, chosen with ``--revenue``:

* ``priority`` (default): weight = the slice's priority (vehicle 100, IoT 20, Wi-Fi 10 by
  default): the operator's own statement of what a slice is worth, so the yardstick and the
  planner's policy (higher priority first, may preempt) agree on what matters;
* ``priced``: weight = a list price per Mbit/s by kind, vehicle 3 > IoT 2 > Wi-Fi 1;
* ``mbps``: weight 1 (``controller.core.planner.revenue``: bandwidth sold).

Under ``priced`` and ``mbps`` a Wi-Fi slice earns more per CPU core than a vehicle slice
(120 Mbit/s for 2 cores against 75 for 4), so the ILP prefers Wi-Fi where compute binds while
any priority-first planner takes vehicles first: the gap then measures the policy, not the
placement. The README reports all three.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from controller.core.topology import Topology
from controller.core.topology_file import TopologyFile
from slices.intent import NetworkSlice, SliceKind
from slices.profiles import PROFILES, SliceIntent, resolve

PRICE_PER_MBPS: Mapping[SliceKind, float] = {
    SliceKind.VEHICLE: 3.0,
    SliceKind.IOT: 2.0,
    SliceKind.WIFI: 1.0,
}
DEFAULT_MIX: tuple[tuple[SliceKind, float], ...] = (
    (SliceKind.IOT, 0.4),
    (SliceKind.VEHICLE, 0.25),
    (SliceKind.WIFI, 0.35),
)


REVENUE_MODELS = ("priority", "priced", "mbps")


def revenue(intent: SliceIntent, cells: int, model: str = "priority") -> float:
    """What an admitted slice pays, per the module docstring.

    >>> from slices.intent import NetworkSlice
    >>> doc = NetworkSlice.model_validate({"metadata": {"name": "v"},
    ...     "spec": {"kind": "vehicle", "coverage": {"sites": ["c1", "c2"]}}})
    >>> [revenue(resolve(doc), 2, m) for m in REVENUE_MODELS]  # 2 cells × 75 Mbit/s × weight
    [15000.0, 450.0, 150.0]
    """
    mbps = cells * intent.kbps_per_cell / 1000
    if model == "priority":
        return mbps * intent.priority
    if model == "priced":
        return mbps * PRICE_PER_MBPS[intent.kind]
    if model == "mbps":
        return mbps
    raise ValueError(f"revenue model {model!r}: expected one of {', '.join(REVENUE_MODELS)}")


def revenues(topology: Topology, intents: Sequence[SliceIntent], model: str = "priority") -> dict[str, float]:
    return {i.name: revenue(i, len(topology.cells_in(i.coverage)), model) for i in intents}


def build_city(cells: int, seed: int, capacity_scale: float = 1.0) -> Topology:
    """A generated city (``controller.core.citygen``) as a routed topology."""
    from controller.core import citygen

    return Topology.from_file(citygen.generate_city(cells, seed, capacity_scale=capacity_scale))


@dataclass(frozen=True)
class RequestMix:
    count: int
    min_cells: int
    max_cells: int
    mix: tuple[tuple[SliceKind, float], ...] = DEFAULT_MIX  # (kind, share)


def make_intents(topology: Topology, spec: RequestMix, seed: int) -> list[SliceIntent]:
    """``spec.count`` slices of mixed kinds, each covering a disc of ``min..max`` nearest cells."""
    rng = np.random.default_rng(seed)
    cells = topology.cells
    lat = np.array([topology.sites[c].lat for c in cells])
    lon = np.array([topology.sites[c].lon for c in cells])
    # Equirectangular km: exact enough inside a city to rank cells by distance.
    x = (lon - lon.mean()) * 111.32 * math.cos(math.radians(float(lat.mean())))
    y = (lat - lat.mean()) * 110.574
    kinds = [k for k, _ in spec.mix]
    weights = np.array([w for _, w in spec.mix], dtype=float)
    weights /= weights.sum()
    hi = min(spec.max_cells, len(cells))
    lo = min(spec.min_cells, hi)
    width = len(str(spec.count))
    out: list[SliceIntent] = []
    for i in range(spec.count):
        kind = kinds[int(rng.choice(len(kinds), p=weights))]
        k = int(rng.integers(lo, hi + 1))
        centre = int(rng.integers(len(cells)))
        d2 = (x - x[centre]) ** 2 + (y - y[centre]) ** 2
        nearest = np.argpartition(d2, k - 1)[:k] if k < len(cells) else np.arange(len(cells))
        chosen = tuple(cells[j] for j in sorted(nearest.tolist()))
        doc = NetworkSlice.model_validate(
            {
                "metadata": {"name": f"{kind.value}-{i:0{width}d}"},
                "spec": {
                    "kind": kind.value,
                    # Admission keeps S-NSSAIs unique: every request gets its own SD.
                    "snssai": {"sst": PROFILES[kind].default_sst, "sd": f"{i + 1:06x}"},
                    "coverage": {"sites": chosen},
                },
            }
        )
        out.append(resolve(doc))
    return out


def tiny_city(radio_mbps: float = 200, cpu_millicores: int = 8000, link_mbps: float = 1000) -> Topology:
    """Four cells, two aggregation sites, two edge sites: small enough to reason about by hand.

    ``c1, c2`` hang off ``a1`` and ``c3, c4`` off ``a2``; ``a1–e1``, ``a2–e2`` and ``a1–a2``
    are links, so every cell reaches both edge sites.

    >>> tiny_city().cells
    ('c1', 'c2', 'c3', 'c4')
    """
    sites: list[dict[str, object]] = []
    for i in range(1, 5):
        sites.append(
            {
                "id": f"c{i}",
                "kind": "cell",
                "location": {"lat": 0, "lon": 0.01 * i},
                "capacity": {"radioMbps": radio_mbps},
            }
        )
    sites += [
        {"id": "a1", "kind": "aggregation", "location": {"lat": 0.01, "lon": 0.015}},
        {"id": "a2", "kind": "aggregation", "location": {"lat": 0.01, "lon": 0.035}},
    ]
    for e, lon in (("e1", 0.01), ("e2", 0.04)):
        sites.append(
            {
                "id": e,
                "kind": "edge",
                "location": {"lat": 0.02, "lon": lon},
                "capacity": {"cpuMillicores": cpu_millicores, "memoryMib": cpu_millicores * 4},
            }
        )
    links = [
        {"a": "c1", "b": "a1", "bandwidthMbps": link_mbps, "latencyMs": 0.2},
        {"a": "c2", "b": "a1", "bandwidthMbps": link_mbps, "latencyMs": 0.2},
        {"a": "c3", "b": "a2", "bandwidthMbps": link_mbps, "latencyMs": 0.2},
        {"a": "c4", "b": "a2", "bandwidthMbps": link_mbps, "latencyMs": 0.2},
        {"a": "a1", "b": "e1", "bandwidthMbps": link_mbps, "latencyMs": 0.5},
        {"a": "a2", "b": "e2", "bandwidthMbps": link_mbps, "latencyMs": 0.5},
        {"a": "a1", "b": "a2", "bandwidthMbps": link_mbps, "latencyMs": 0.5},
    ]
    return Topology.from_file(TopologyFile.model_validate({"name": "tiny", "sites": sites, "links": links}))


def slice_intent(name: str, kind: str, cells: Sequence[str], **spec: object) -> SliceIntent:
    """A resolved intent covering explicit ``cells``; ``spec`` adds fields (``sla``, ``workloads``…).

    >>> slice_intent("cam", "wifi", ["c1"]).kbps_per_cell
    120000
    """
    doc = NetworkSlice.model_validate(
        {"metadata": {"name": name}, "spec": {"kind": kind, "coverage": {"sites": list(cells)}, **spec}}
    )
    return resolve(doc)
