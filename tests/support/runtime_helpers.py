"""Shared builders for the controller runtime tests: a small hand-made city whose capacities
make admission, preemption and healing easy to reason about, and slice documents."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from controller.core.placement_model import Placement
from controller.core.topology import Topology
from controller.core.topology_file import TopologyFile
from controller.runtime.plan_recorder import PlanRecorder
from controller.runtime.realisation import RealisationResult
from controller.runtime.service import ControllerService
from controller.runtime.store import Store
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent
from tests.support.clock import FakeClock


def _site(sid: str, kind: str, **cap: Any) -> dict[str, Any]:
    return {"id": sid, "kind": kind, "location": {"lat": 48.85, "lon": 2.35}, "capacity": cap, "zones": []}


def small_city() -> Topology:
    """Four cells (200 Mbps radio each) on two aggregation sites; two edge sites.

    c1, c2 home on a1; c3, c4 on a2; a1-e1 and a2-e2 are 1 ms, a1-a2 0.5 ms; each edge site
    has 16 cores and 32 GiB.
    """
    sites = [
        {**_site(f"c{i}", "cell", radioMbps=200), "zones": ["north" if i <= 2 else "south"]}
        for i in range(1, 5)
    ]
    sites += [_site("a1", "aggregation"), _site("a2", "aggregation")]
    sites += [_site(e, "edge", cpuMillicores=16000, memoryMib=32768) for e in ("e1", "e2")]
    links = [
        {"a": "c1", "b": "a1", "bandwidthMbps": 10000, "latencyMs": 0.2},
        {"a": "c2", "b": "a1", "bandwidthMbps": 10000, "latencyMs": 0.2},
        {"a": "c3", "b": "a2", "bandwidthMbps": 10000, "latencyMs": 0.2},
        {"a": "c4", "b": "a2", "bandwidthMbps": 10000, "latencyMs": 0.2},
        {"a": "a1", "b": "e1", "bandwidthMbps": 100000, "latencyMs": 1},
        {"a": "a2", "b": "e2", "bandwidthMbps": 100000, "latencyMs": 1},
        {"a": "a1", "b": "a2", "bandwidthMbps": 100000, "latencyMs": 0.5},
    ]
    return Topology.from_file(TopologyFile.model_validate({"name": "small", "sites": sites, "links": links}))


def doc(name: str, kind: str, cells: list[str] | None = None, **spec: Any) -> NetworkSlice:
    """A NetworkSlice with its own S-NSSAI (SD from the name) so slices do not clash."""
    sst = {"iot": 3, "vehicle": 4, "wifi": 1}[kind]
    sd = hashlib.sha256(name.encode()).hexdigest()[:6]
    body: dict[str, Any] = {
        "kind": kind,
        "snssai": {"sst": sst, "sd": sd},
        "coverage": {"sites": cells or ["c1"]},
    }
    body.update(spec)
    return NetworkSlice.model_validate({"metadata": {"name": name}, "spec": body})


class FlakyRealiser:
    """A realiser at our own interface that fails while ``broken`` is set."""

    name = "flaky"

    def __init__(self) -> None:
        self.broken = False
        self.realised: dict[str, int] = {}
        self.removed: list[str] = []

    def realise(self, intent: SliceIntent, placement: Placement, generation: int) -> RealisationResult:
        if self.broken:
            return RealisationResult(False, "Unreachable", "backend is down")
        self.realised[intent.name] = generation
        return RealisationResult(True, "Applied", "ok")

    def remove(self, name: str) -> RealisationResult:
        if self.broken:
            return RealisationResult(False, "Unreachable", "backend is down")
        self.realised.pop(name, None)
        self.removed.append(name)
        return RealisationResult(True, "Removed", "ok")


def make_service(
    folder: Path,
    topology: Topology | None = None,
    extra: list[Any] | None = None,
    clock: FakeClock | None = None,
) -> tuple[ControllerService, Store]:
    city = topology or small_city()
    store = Store.open(folder / "state.db")
    realisers = [PlanRecorder(folder / "realisation", city), *(extra or [])]
    return ControllerService(city, store, realisers, clock or FakeClock()), store
