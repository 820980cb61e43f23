"""What placing a slice decides, as plain values: which edge site serves each covered cell, by
which path, and what that reserves. Serialisable, so the store keeps placements and rebuilds the
ledger from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.core.topology import LinkKey, Topology, link_key


@dataclass(frozen=True)
class CellAssignment:
    cell: str
    edge: str
    nodes: tuple[str, ...]  # cell, ..., edge
    latency_ms: float

    def link_keys(self) -> list[LinkKey]:
        return [link_key(u, v) for u, v in zip(self.nodes, self.nodes[1:], strict=False)]


@dataclass(frozen=True)
class EdgeShare:
    """The part of a slice one edge site runs: how many cells it serves and the compute it gets."""

    site: str
    cells: int
    cpu_millicores: int
    memory_mib: int
    replicas: tuple[tuple[str, int], ...]  # (workload name, replicas here)


@dataclass(frozen=True)
class Reservation:
    """Capacity a placement takes, keyed by element; integers so release is exact."""

    radio_kbps: dict[str, int] = field(default_factory=dict)
    link_kbps: dict[int, int] = field(default_factory=dict)
    cpu_millicores: dict[str, int] = field(default_factory=dict)
    memory_mib: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Placement:
    slice_name: str
    spec_hash: str
    kbps_per_cell: int
    assignments: tuple[CellAssignment, ...]
    edges: tuple[EdgeShare, ...]
    unserved: tuple[str, ...] = ()  # covered cells that are out of service

    @property
    def worst_latency_ms(self) -> float:
        return max((a.latency_ms for a in self.assignments), default=0.0)

    @property
    def edge_sites(self) -> tuple[str, ...]:
        return tuple(e.site for e in self.edges)

    def uses_site(self, site: str) -> bool:
        return any(site in a.nodes for a in self.assignments)

    def uses_link(self, key: LinkKey) -> bool:
        return any(key in a.link_keys() for a in self.assignments)

    def reservation(self, topology: Topology) -> Reservation:
        """Resolve link keys to the topology's indices (raises NotFound for a vanished link)."""
        radio: dict[str, int] = {}
        links: dict[int, int] = {}
        bw = self.kbps_per_cell
        for a in self.assignments:
            radio[a.cell] = radio.get(a.cell, 0) + bw
            for key in a.link_keys():
                idx = topology.link(key).index
                links[idx] = links.get(idx, 0) + bw
        return Reservation(
            radio_kbps=radio,
            link_kbps=links,
            cpu_millicores={e.site: e.cpu_millicores for e in self.edges},
            memory_mib={e.site: e.memory_mib for e in self.edges},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "slice": self.slice_name,
            "specHash": self.spec_hash,
            "kbpsPerCell": self.kbps_per_cell,
            "assignments": [[a.cell, a.edge, list(a.nodes), a.latency_ms] for a in self.assignments],
            "edges": [
                {
                    "site": e.site,
                    "cells": e.cells,
                    "cpuMillicores": e.cpu_millicores,
                    "memoryMib": e.memory_mib,
                    "replicas": dict(e.replicas),
                }
                for e in self.edges
            ],
            "unserved": list(self.unserved),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Placement:
        return cls(
            slice_name=data["slice"],
            spec_hash=data["specHash"],
            kbps_per_cell=int(data["kbpsPerCell"]),
            assignments=tuple(
                CellAssignment(cell, edge, tuple(nodes), float(lat))
                for cell, edge, nodes, lat in data["assignments"]
            ),
            edges=tuple(
                EdgeShare(
                    site=e["site"],
                    cells=int(e["cells"]),
                    cpu_millicores=int(e["cpuMillicores"]),
                    memory_mib=int(e["memoryMib"]),
                    replicas=tuple((k, int(v)) for k, v in e["replicas"].items()),
                )
                for e in data["edges"]
            ),
            unserved=tuple(data.get("unserved", ())),
        )
