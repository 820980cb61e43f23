"""The embedded default realisation backend: writes each slice's realisation plan as YAML into
``<state-dir>/realisation/<slice>.yaml`` where an operator can read it (and a later backend, or a
person, can act on it).

The plan says what the slice needs where: per edge site the workloads, replicas, CPU and memory;
per cell the radio share; per link the bandwidth reserved; and the QoS (5QI, ARP) of its flows.
Writing is idempotent (an unchanged plan is not rewritten) and atomic (a reader never sees half
a file); removing deletes exactly that file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from controller.core.placement_model import Placement
from controller.core.topology import Topology
from controller.runtime.realisation import RealisationResult
from slices import files
from slices.profiles import SliceIntent

PLAN_KIND = "RealisationPlan"
HEADER = "# edgeslice realisation plan"
# libyaml's emitter when present: much faster than the pure-Python one, which matters when a
# restart re-checks thousands of plans.
_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def arp_priority_level(priority: int) -> int:
    """Map the slice priority (0..1000, higher wins) to a 3GPP ARP priority level (1..15, lower wins).

    >>> arp_priority_level(10), arp_priority_level(20), arp_priority_level(100), arp_priority_level(1000)
    (14, 13, 5, 1)
    """
    return max(1, min(15, 15 - priority // 10))


def render_plan(
    intent: SliceIntent, placement: Placement, generation: int, topology: Topology | None = None
) -> dict[str, Any]:
    """The plan as a plain mapping (what the YAML file holds)."""
    served: dict[str, int] = {}
    link_kbps: dict[str, int] = {}
    cells: list[dict[str, Any]] = []
    bw = placement.kbps_per_cell
    for a in placement.assignments:
        served[a.edge] = served.get(a.edge, 0) + 1
        cell: dict[str, Any] = {
            "cell": a.cell,
            "edge": a.edge,
            "path": list(a.nodes),
            "latencyMs": round(a.latency_ms, 3),
            "radioKbps": bw,
        }
        if topology is not None and a.cell in topology.sites and topology.sites[a.cell].radio_kbps:
            cell["radioShare"] = round(bw / topology.sites[a.cell].radio_kbps, 4)
        cells.append(cell)
        for u, v in a.link_keys():
            key = f"{u}:{v}"
            link_kbps[key] = link_kbps.get(key, 0) + bw
    edges: list[dict[str, Any]] = []
    images = {w.name: w for w in intent.workloads}
    for e in placement.edges:
        entry: dict[str, Any] = {
            "site": e.site,
            "cellsServed": e.cells,
            "cpuMillicores": e.cpu_millicores,
            "memoryMib": e.memory_mib,
            "workloads": [
                {
                    "name": name,
                    "image": images[name].image if name in images else "",
                    "replicas": n,
                    "cpuMillicores": images[name].cpu_millicores if name in images else 0,
                    "memoryMib": images[name].memory_mib if name in images else 0,
                }
                for name, n in e.replicas
            ],
        }
        if topology is not None and e.site in topology.sites:
            entry["nodeLabel"] = topology.sites[e.site].node_label
        edges.append(entry)
    return {
        "apiVersion": "edgeslice.io/v1alpha1",
        "kind": PLAN_KIND,
        "slice": intent.name,
        "generation": generation,
        "specHash": placement.spec_hash,
        "sliceKind": intent.kind.value,
        "snssai": intent.snssai,
        "isolation": intent.isolation.value,
        "qos": {
            "fiveQI": intent.five_qi,
            "arp": {
                "priorityLevel": arp_priority_level(intent.priority),
                "preemptionCapability": "MAY_PREEMPT",
                "preemptionVulnerability": "PREEMPTABLE" if intent.preemptible else "NOT_PREEMPTABLE",
            },
            "dlKbpsPerCell": intent.dl_kbps,
            "ulKbpsPerCell": intent.ul_kbps,
            "latencyMs": intent.latency_ms,
        },
        "edgeSites": edges,
        "cells": cells,
        "links": [{"link": k, "bandwidthKbps": v} for k, v in sorted(link_kbps.items())],
        "unservedCells": list(placement.unserved),
    }


class PlanRecorder:
    """:class:`controller.runtime.realisation.Realiser` that records plans in a folder."""

    name = "plan-recorder"

    def __init__(self, folder: str | Path, topology: Topology | None = None) -> None:
        self.folder = Path(folder)
        self.topology = topology
        self.writes = 0  # files actually (re)written; lets tests see idempotence

    def path_for(self, name: str) -> Path:
        return self.folder / f"{name}.yaml"

    def realise(self, intent: SliceIntent, placement: Placement, generation: int) -> RealisationResult:
        plan = render_plan(intent, placement, generation, self.topology)
        # The header names what the plan was made from and the hash of the body below it, so an
        # unchanged, untouched file is recognised without rendering YAML again (a restart
        # re-checks every plan) while a stale or hand-edited one is rewritten.
        wanted = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
        target = self.path_for(intent.name)
        try:
            if self._current(target, wanted):
                return RealisationResult(True, "Applied", f"plan recorded in {target}")
            body = yaml.dump(plan, Dumper=_Dumper, sort_keys=False, width=120)
            digest = hashlib.sha256(body.encode()).hexdigest()[:16]
            text = f"{HEADER} {wanted} {digest}\n{body}"
            self.folder.mkdir(parents=True, exist_ok=True)
            files.write_text_atomic(target, text)
        except OSError as exc:
            return RealisationResult(False, "WriteFailed", f"cannot write {target}: {exc.strerror or exc}")
        self.writes += 1
        return RealisationResult(True, "Applied", f"plan recorded in {target}")

    @staticmethod
    def _current(target: Path, wanted: str) -> bool:
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            return False
        header, _, body = text.partition("\n")
        prefix, _, marks = header.rpartition(" ")
        prefix, _, fingerprint = prefix.rpartition(" ")
        if prefix != HEADER or fingerprint != wanted:
            return False
        return hashlib.sha256(body.encode()).hexdigest()[:16] == marks

    def remove(self, name: str) -> RealisationResult:
        target = self.path_for(name)
        try:
            target.unlink()
        except FileNotFoundError:
            return RealisationResult(True, "Removed", f"no plan at {target}")
        except OSError as exc:
            return RealisationResult(False, "RemoveFailed", f"cannot remove {target}: {exc.strerror or exc}")
        return RealisationResult(True, "Removed", f"plan {target} removed")
