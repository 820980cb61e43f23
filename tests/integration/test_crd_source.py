"""Cluster mode end to end on a real kube-apiserver: NetworkSlice objects -> watch -> the real
ControllerService (SQLite store) -> KubeRealiser -> objects and status written back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.kube import gateway as kube_gateway
from controller.kube.crd_source import CrdSource, document_of
from controller.kube.realiser import KubeRealiser
from controller.runtime.service import ControllerService
from controller.runtime.store import Store
from slices import errors
from tests.support import kube_real
from tests.support.clock import FakeClock
from tests.support.envtest import KubeApiServer
from tests.support.kube_fixtures import city
from tests.support.waiting import eventually

NAMES = ("cs-cars", "cs-bad", "cs-loop", "cs-a", "cs-b", "cs-c")


@pytest.fixture(scope="module")
def server(kube_controller_manager: KubeApiServer) -> Iterator[KubeApiServer]:
    kube_real.install_crd(kube_controller_manager)
    yield kube_controller_manager
    kube_real.delete_slices(kube_controller_manager, *NAMES)


def _service(server: KubeApiServer, state: Path) -> ControllerService:
    realiser = KubeRealiser(kube_real.gateway(server), city(), slice_objects=True)
    return ControllerService(city(), Store.open(state), [realiser], FakeClock())


def _slice(name: str, kind: str = "vehicle", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "edgeslice.io/v1alpha1",
        "kind": "NetworkSlice",
        "metadata": {"name": name},
        "spec": {"kind": kind, "coverage": {"sites": ["c1", "c2"]}, **spec},
    }


def _kubectl(server: KubeApiServer) -> kube_gateway.KubeGateway:
    return kube_real.gateway(server, "kubectl")


def _status(server: KubeApiServer, name: str) -> dict[str, Any]:
    obj = _kubectl(server).get("NetworkSlice", name) or {}
    status: dict[str, Any] = obj.get("status") or {}
    return status


@pytest.fixture
def running(server: KubeApiServer, tmp_path: Path) -> Iterator[tuple[ControllerService, CrdSource]]:
    service = _service(server, tmp_path / "state.db")
    source = CrdSource(kube_real.gateway(server), service)
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop, 1, 0.05), daemon=True)
    thread.start()
    yield service, source
    stop.set()
    thread.join(5)


def _wait_state(server: KubeApiServer, name: str, state: str) -> None:
    """Until the status of NetworkSlice ``name`` says ``state`` (at most 30 s)."""
    eventually(
        f"{name} {state}", lambda: _status(server, name).get("state") == state, timeout_s=30, interval_s=0.1
    )


def test_kubectl_apply_realises_the_slice_and_writes_status(
    server: KubeApiServer, running: tuple[ControllerService, CrdSource]
) -> None:
    service, _ = running
    kubectl = _kubectl(server)
    kubectl.apply(_slice("cs-cars"))
    _wait_state(server, "cs-cars", "Ready")
    status = _status(server, "cs-cars")
    assert status["observedGeneration"] == 1 and status["sst"] == 4
    assert status["edgeSites"] and set(status["edgeSites"]) <= {"e1", "e2"}
    kinds = {c["type"]: c["status"] for c in status["conditions"]}
    assert kinds["Admitted"] == kinds["Placed"] == kinds["Realised"] == "True"
    assert kubectl.list("Deployment", "slice-cs-cars")[0]
    assert [e.actor for e in service.events(slice_name="cs-cars") if e.action == "apply"] == ["kubernetes"]
    # The spec is the user's: our status writes never touched it.
    obj = kubectl.get("NetworkSlice", "cs-cars")
    assert obj is not None and obj["spec"]["kind"] == "vehicle" and "workloads" not in obj["spec"]

    # A spec change reaches the service as a new generation.
    kubectl.apply(_slice("cs-cars", priority=500))
    eventually(
        "generation 2",
        lambda: _status(server, "cs-cars").get("observedGeneration") == 2,
        timeout_s=30,
        interval_s=0.1,
    )
    assert service.get("cs-cars").intent.priority == 500

    # kubectl delete: the finalizer holds the object until the slice and its objects are gone.
    kubectl.delete("NetworkSlice", "cs-cars")
    eventually(
        "the object gone",
        lambda: kubectl.get("NetworkSlice", "cs-cars") is None,
        timeout_s=60,
        interval_s=0.1,
    )
    eventually(
        "namespace removed",
        lambda: kubectl.get("Namespace", "slice-cs-cars") is None,
        timeout_s=60,
        interval_s=0.1,
    )
    with pytest.raises(errors.NotFound):
        service.get("cs-cars")


def test_an_invalid_spec_is_refused_on_the_object_status(
    server: KubeApiServer, running: tuple[ControllerService, CrdSource]
) -> None:
    service, _ = running
    # The CRD's own rules refuse SST/kind mismatches; the controller refuses what only it knows.
    _kubectl(server).apply(_slice("cs-bad", coverage={"sites": ["nowhere"]}))
    _wait_state(server, "cs-bad", "Rejected")
    status = _status(server, "cs-bad")
    assert status["reason"] == "InvalidSpec"
    assert "nowhere" in status["message"]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Admitted"] == ("False", "InvalidSpec")
    assert conditions["Ready"] == ("False", "InvalidSpec")
    assert "cs-bad" not in [r.name for r in service.list_slices()]


def test_status_writes_do_not_loop_back(server: KubeApiServer, tmp_path: Path) -> None:
    service = _service(server, tmp_path / "state.db")
    gw = kube_real.gateway(server)
    source = CrdSource(gw, service)
    _kubectl(server).apply(_slice("cs-loop"))
    source.sync()
    source.refresh_statuses()

    def status_writes() -> int:
        return sum(n for (verb, res, _), n in gw.metrics.snapshot().items() if res == "networkslices/status")

    writes = status_writes()
    obj = gw.get("NetworkSlice", "cs-loop")
    assert obj is not None
    for event, o in [("MODIFIED", obj)] * 3:
        source.handle(event, o)
    assert source.refresh_statuses() == 0
    assert status_writes() == writes
    assert service.get("cs-loop").generation == 1


def test_a_standby_that_takes_over_rebuilds_from_the_objects_without_double_booking(
    server: KubeApiServer, tmp_path: Path
) -> None:
    kubectl = _kubectl(server)
    names = ("cs-a", "cs-b", "cs-c")
    for i, name in enumerate(names):
        kubectl.apply(_slice(name, snssai={"sst": 4, "sd": f"00000{i + 1}"}))
    first_service = _service(server, tmp_path / "a.db")
    CrdSource(kube_real.gateway(server), first_service).sync()

    def realised() -> dict[str, tuple[str, str]]:
        out = {}
        for name in names:
            for dep in kubectl.list("Deployment", f"slice-{name}")[0]:
                out[f"{name}/{dep['metadata']['name']}"] = (
                    dep["metadata"]["uid"],
                    dep["metadata"]["resourceVersion"],
                )
        return out

    before = realised()
    assert {key.split("/")[0] for key in before} == set(names)
    # The leader dies; the standby (its own state) lists the objects and takes the same decisions.
    standby_service = _service(server, tmp_path / "b.db")
    CrdSource(kube_real.gateway(server), standby_service).sync()
    assert set(names) <= {r.name for r in standby_service.list_slices()}
    assert realised() == before  # server-side apply of the same objects is a no-op

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
