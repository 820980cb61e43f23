"""Shared builders for the controller runtime tests: slice documents, a realiser that fails on
command and a service on the small city (:func:`tests.support.cityfixtures.small_city`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from controller.core.placement_model import Placement
from controller.core.topology import Topology
from controller.process.config import RuntimeConfig
from controller.runtime.plan_recorder import PlanRecorder
from controller.runtime.realisation import RealisationResult, Realiser
from controller.runtime.service import ControllerService
from controller.runtime.store import Store
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent
from tests.support.cityfixtures import small_city
from tests.support.clock import FakeClock


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


def placement_of(service: ControllerService, name: str) -> Placement:
    """Where slice ``name`` is placed (the test fails if it is not)."""
    placement = service.get(name).placement
    assert placement is not None, f"{name} is not placed"
    return placement


def make_service(
    folder: Path,
    topology: Topology | None = None,
    extra: Sequence[Realiser] = (),
    clock: FakeClock | None = None,
) -> tuple[ControllerService, Store]:
    city = topology or small_city()
    store = Store.open(folder / "state.db")
    realisers: list[Realiser] = [PlanRecorder(folder / "realisation", city), *extra]
    return ControllerService(city, store, realisers, clock or FakeClock()), store


def loopback_config(tmp_path: Path, **settings: Any) -> RuntimeConfig:
    """An in-process controller's configuration: state in ``tmp_path``, the operator API on a free
    loopback port, no environment read; ``settings`` add to it (e.g. ``sample_cells=20``)."""
    return RuntimeConfig(
        state_file=tmp_path / "edgeslice.db",
        state_dir=tmp_path / "state",
        listen="127.0.0.1:0",
        environ={},
        **settings,
    )
