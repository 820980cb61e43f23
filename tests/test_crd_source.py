"""Cluster mode end to end: NetworkSlice objects in the emulator -> watch -> the real
ControllerService (SQLite store) -> KubeRealiser -> objects and status written back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.clock import FakeClock
from controller.crd_source import CrdSource, document_of
from controller.kube_realiser import KubeRealiser
from controller.service import ControllerService
from controller.store import Store
from slices import errors
from tests.kube_emulator import KubeEmulator
from tests.kube_fixtures import city, gateway


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    with KubeEmulator() as server:
        yield server


def _service(emu: KubeEmulator, state: Path) -> ControllerService:
    return ControllerService(city(), Store.open(state), [KubeRealiser(gateway(emu.url), city())], FakeClock())


def _slice(name: str, kind: str = "vehicle", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "edgeslice.io/v1alpha1",
        "kind": "NetworkSlice",
        "metadata": {"name": name},
        "spec": {"kind": kind, "coverage": {"sites": ["c1", "c2"]}, **spec},
    }


def _wait(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _status(emu: KubeEmulator, name: str) -> dict[str, Any]:
    status: dict[str, Any] = emu.stored("networkslices").get(name, {}).get("status") or {}
    return status


@pytest.fixture
def running(emu: KubeEmulator, tmp_path: Path) -> Iterator[tuple[ControllerService, CrdSource]]:
    service = _service(emu, tmp_path / "state.db")
    source = CrdSource(gateway(emu.url), service)
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop, 1, 0.05), daemon=True)
    thread.start()
    yield service, source
    stop.set()
    thread.join(5)


def test_kubectl_apply_realises_the_slice_and_writes_status(
    emu: KubeEmulator, running: tuple[ControllerService, CrdSource]
) -> None:
    service, _ = running
    kubectl = gateway(emu.url)
    kubectl.apply(_slice("cars"))
    _wait(lambda: _status(emu, "cars").get("state") == "Ready", "cars Ready")
    status = _status(emu, "cars")
    assert status["observedGeneration"] == 1 and status["sst"] == 4
    assert status["edgeSites"] and set(status["edgeSites"]) <= {"e1", "e2"}
    kinds = {c["type"]: c["status"] for c in status["conditions"]}
    assert kinds["Realised"] == "True" and kinds["Admitted"] == "True"
    assert emu.stored("deployments", "slice-cars")
    assert [e.actor for e in service.events(slice_name="cars") if e.action == "apply"] == ["kubernetes"]
    # The spec is the user's: our status writes never touched it.
    assert emu.stored("networkslices")["cars"]["spec"] == _slice("cars")["spec"]

    # A spec change reaches the service as a new generation.
    kubectl.apply(_slice("cars", priority=500))
    _wait(lambda: _status(emu, "cars").get("observedGeneration") == 2, "generation 2")
    assert service.get("cars").intent.priority == 500

    # kubectl delete: the slice and every object made for it go.
    kubectl.delete("NetworkSlice", "cars")
    _wait(lambda: "slice-cars" not in emu.stored("namespaces"), "namespace removed")
    with pytest.raises(errors.NotFound):
        service.get("cars")


def test_an_invalid_spec_is_refused_on_the_object_status(
    emu: KubeEmulator, running: tuple[ControllerService, CrdSource]
) -> None:
    service, _ = running
    gateway(emu.url).apply(_slice("bad", snssai={"sst": 1}))
    _wait(lambda: _status(emu, "bad").get("state") == "Rejected", "bad Rejected")
    status = _status(emu, "bad")
    assert status["reason"] == "InvalidSpec"
    assert "spec.snssai.sst: SST 1 (eMBB) does not fit kind 'vehicle'" in status["message"]
    assert [r.name for r in service.list_slices()] == []


def test_status_writes_do_not_loop_back(emu: KubeEmulator, tmp_path: Path) -> None:
    service = _service(emu, tmp_path / "state.db")
    source = CrdSource(gateway(emu.url), service)
    gateway(emu.url).apply(_slice("cars"))
    source.sync()
    writes = emu.count("PATCH")
    for event, obj in [("MODIFIED", emu.stored("networkslices")["cars"])] * 3:
        source.handle(event, obj)
    assert source.refresh_statuses() == 0
    assert emu.count("PATCH") == writes
    assert service.get("cars").generation == 1


def test_a_standby_that_takes_over_rebuilds_from_the_objects_without_double_booking(
    emu: KubeEmulator, tmp_path: Path
) -> None:
    kubectl = gateway(emu.url)
    for name in ("cars", "fleet", "trams"):
        kubectl.apply(_slice(name))
    first_service = _service(emu, tmp_path / "a.db")
    CrdSource(gateway(emu.url), first_service).sync()
    deployments = {
        ns: set(emu.stored("deployments", ns)) for ns in ("slice-cars", "slice-fleet", "slice-trams")
    }
    # The leader dies; the standby (its own state) lists the objects and takes the same decisions.
    standby_service = _service(emu, tmp_path / "b.db")
    writes_before = emu.count("PUT") + emu.count("POST") + emu.count("DELETE")
    CrdSource(gateway(emu.url), standby_service).sync()
    assert sorted(r.name for r in standby_service.list_slices()) == ["cars", "fleet", "trams"]
    assert {ns: set(emu.stored("deployments", ns)) for ns in deployments} == deployments
    assert emu.count("PUT") + emu.count("POST") + emu.count("DELETE") == writes_before

    # The same decisions, each slice's reservation counted once (nothing lost, nothing doubled).
    def decisions(service: ControllerService) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {
            r.name: (r.state.value, r.placement.edge_sites if r.placement else ())
            for r in service.list_slices()
        }

    assert decisions(standby_service) == decisions(first_service)
    assert standby_service.ledger_snapshot() == first_service.ledger_snapshot()


def test_document_of_drops_server_metadata() -> None:
    obj = {
        **_slice("cars"),
        "metadata": {"name": "cars", "uid": "x", "resourceVersion": "7", "generation": 2},
    }
    assert document_of(obj).name == "cars"
    with pytest.raises(errors.InvalidSpec, match=r"NetworkSlice cars: spec.coverage: Field required"):
        document_of({**obj, "spec": {"kind": "iot"}})
