"""Shared values for the Kubernetes tests: a two-edge city, a vehicle slice and its placements."""

from __future__ import annotations

from controller.core.placement_model import CellAssignment, EdgeShare, Placement
from controller.core.topology import Topology
from controller.core.topology_file import TopologyFile
from controller.kube import gateway as kube_gateway
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent, resolve

#: The two-edge city as a topology document (tests that write it to a file use this).
CITY_DOCUMENT: dict[str, object] = {
    "sites": [
        {
            "id": "c1",
            "kind": "cell",
            "location": {"lat": 0, "lon": 0},
            "capacity": {"radioMbps": 500},
        },
        {
            "id": "c2",
            "kind": "cell",
            "location": {"lat": 0, "lon": 0.01},
            "capacity": {"radioMbps": 500},
        },
        {
            "id": "e1",
            "kind": "edge",
            "location": {"lat": 0, "lon": 0.02},
            "nodeLabel": "north-rack",
            "capacity": {"cpuMillicores": 64000, "memoryMib": 131072},
        },
        {
            "id": "e2",
            "kind": "edge",
            "location": {"lat": 0, "lon": 0.03},
            "capacity": {"cpuMillicores": 64000, "memoryMib": 131072},
        },
    ],
    "links": [
        {"a": "c1", "b": "e1", "bandwidthMbps": 10000, "latencyMs": 0.5},
        {"a": "c2", "b": "e1", "bandwidthMbps": 10000, "latencyMs": 0.5},
        {"a": "c1", "b": "e2", "bandwidthMbps": 10000, "latencyMs": 0.8},
        {"a": "c2", "b": "e2", "bandwidthMbps": 10000, "latencyMs": 0.8},
    ],
}


def city() -> Topology:
    return Topology.from_file(TopologyFile.model_validate(CITY_DOCUMENT))


def intent(name: str = "cars", kind: str = "vehicle") -> SliceIntent:
    return resolve(
        NetworkSlice.model_validate(
            {"metadata": {"name": name}, "spec": {"kind": kind, "coverage": {"sites": ["c1", "c2"]}}}
        )
    )


def placement(slice_intent: SliceIntent, *sites: str) -> Placement:
    """The slice's two cells split over ``sites`` (one cell each when two sites are given)."""
    cells = ("c1", "c2")
    per_site: dict[str, list[str]] = {s: [] for s in sites}
    for i, cell in enumerate(cells):
        per_site[sites[i % len(sites)]].append(cell)
    edges = []
    for site, served in per_site.items():
        cpu, mem = slice_intent.compute_at(len(served), len(cells))
        replicas = tuple(
            (w.name, slice_intent.replicas_at(w, len(served), len(cells))) for w in slice_intent.workloads
        )
        edges.append(EdgeShare(site, len(served), cpu, mem, replicas))
    assignments = tuple(
        CellAssignment(cell, site, (cell, site), 0.5) for site, served in per_site.items() for cell in served
    )
    return Placement(
        slice_intent.name, slice_intent.spec_hash, slice_intent.kbps_per_cell, assignments, tuple(edges)
    )


def gateway(url: str, sleeps: list[float] | None = None) -> kube_gateway.KubeGateway:
    """A gateway to ``url`` whose backoff sleeps are recorded, not slept."""
    record = sleeps if sleeps is not None else []
    return kube_gateway.KubeGateway(
        kube_gateway.api_client_for(host=url), attempts=4, timeout_s=5, sleep=record.append
    )
