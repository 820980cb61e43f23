"""The realiser's running loop on a real kube-apiserver (+ controller-manager): what it owns is
watched, and drift is repaired without any reconcile of the service: a deleted Deployment is
recreated, a ``kubectl scale`` or ``kubectl set image`` by another manager is reverted with an
Event naming the field and the manager. Ownership: objects carry ownerReferences, and a user's
namespace that happens to have the slice's name is never adopted."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from controller.kube import manifests as kube_manifests
from controller.kube.gateway import KubeGateway, Obj
from controller.kube.realiser import KubeRealiser
from slices.status import ConditionStatus
from tests.support import kube_real
from tests.support.envtest import KubeApiServer
from tests.support.kube_fixtures import city, intent, placement
from tests.support.waiting import eventually


@pytest.fixture
def running(kube_controller_manager: KubeApiServer) -> Iterator[tuple[KubeRealiser, kube_real.RecordingSink]]:
    gw = kube_real.gateway(kube_controller_manager)
    from controller.kube.gateway import EventRecorder

    realiser = KubeRealiser(gw, city(), events=EventRecorder(gw, "test"), resync_s=5)
    sink = kube_real.RecordingSink()
    realiser.workloads = sink
    stop = threading.Event()
    realiser.start(stop)
    yield realiser, sink
    stop.set()
    realiser.stop()


def _realise(realiser: KubeRealiser, name: str) -> None:
    """Realise slice ``name`` at edge site e1 (into namespace ``slice-<name>``)."""
    slice_ = intent(name)
    assert realiser.realise(slice_, placement(slice_, "e1"), 1).ok


def _deployment(server: KubeApiServer, ns: str, name: str) -> Obj | None:
    return kube_real.gateway(server).get("Deployment", name, ns)


def _drift_notes(gw: KubeGateway, ns: str, name: str) -> list[str]:
    """The notes of the DriftRepaired events about object ``name`` in namespace ``ns``."""
    return [e["note"] for e in kube_real.events_about(gw, ns, name) if e["reason"] == "DriftRepaired"]


def test_a_deleted_deployment_is_recreated_by_the_running_loop(
    kube_controller_manager: KubeApiServer, running: tuple[KubeRealiser, kube_real.RecordingSink]
) -> None:
    server = kube_controller_manager
    realiser, _ = running
    _realise(realiser, "drift-del")
    ns = "slice-drift-del"
    before = _deployment(server, ns, "v2x-edge-e1")
    assert before is not None
    server.kubectl("delete", "deployment", "v2x-edge-e1", "-n", ns)
    again = eventually(
        "the Deployment recreated",
        lambda: (
            d
            if (d := _deployment(server, ns, "v2x-edge-e1")) is not None
            and d["metadata"]["uid"] != before["metadata"]["uid"]
            else None
        ),
        timeout_s=30,
        interval_s=0.1,
    )
    assert again["spec"]["replicas"] == 2
    gw = kube_real.gateway(server)
    notes = eventually(
        "a DriftRepaired event",
        lambda: _drift_notes(gw, ns, "v2x-edge-e1"),
        timeout_s=30,
        interval_s=0.1,
    )
    assert any("was deleted; recreated" in n for n in notes), notes


def test_scale_and_image_changes_by_another_manager_are_reverted_with_an_event(
    kube_controller_manager: KubeApiServer, running: tuple[KubeRealiser, kube_real.RecordingSink]
) -> None:
    server = kube_controller_manager
    realiser, _ = running
    _realise(realiser, "drift-edit")
    ns, name = "slice-drift-edit", "v2x-edge-e1"
    image = _deployment(server, ns, name)["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[index]
    server.kubectl("scale", "deployment", name, "-n", ns, "--replicas=7")
    eventually(
        "replicas restored to 2",
        lambda: (d := _deployment(server, ns, name)) is not None and d["spec"]["replicas"] == 2,
        timeout_s=30,
        interval_s=0.1,
    )
    server.kubectl("set", "image", f"deployment/{name}", "-n", ns, "v2x-edge=example.com/evil:1")
    eventually(
        "image restored",
        lambda: (
            (d := _deployment(server, ns, name)) is not None
            and d["spec"]["template"]["spec"]["containers"][0]["image"] == image
        ),
        timeout_s=30,
        interval_s=0.1,
    )
    gw = kube_real.gateway(server)
    notes = eventually(
        "two DriftRepaired events",
        lambda: found if len(found := _drift_notes(gw, ns, name)) >= 2 else None,
        timeout_s=30,
        interval_s=0.1,
    )
    assert any("reverted spec.replicas (changed by kubectl)" in n for n in notes), notes
    assert any(
        "spec.template.spec.containers[name=v2x-edge].image (changed by kubectl-set)" in n for n in notes
    ), notes
    # The object is ours again: edgeslice owns the fields it applies, nobody else does.
    dep = _deployment(server, ns, name)
    assert dep is not None
    for entry in dep["metadata"]["managedFields"]:
        if entry["manager"] in ("kubectl", "kubectl-set"):
            raise AssertionError(f"{entry['manager']} still owns {entry['fieldsV1']}")


def test_every_object_is_owned_and_the_namespace_goes_with_its_contents(
    kube_controller_manager: KubeApiServer, running: tuple[KubeRealiser, kube_real.RecordingSink]
) -> None:
    server = kube_controller_manager
    realiser, _ = running
    _realise(realiser, "owned")
    gw = kube_real.gateway(server)
    ns = gw.get("Namespace", "slice-owned")
    assert ns is not None
    uid = ns["metadata"]["uid"]
    for kind in kube_manifests.KIND_ORDER[1:]:  # all but the Namespace
        items, _ = gw.list(kind, "slice-owned", kube_manifests.slice_selector("owned"))
        assert items, kind
        for item in items:
            refs = item["metadata"]["ownerReferences"]
            assert [(r["kind"], r["uid"]) for r in refs] == [("Namespace", uid)], (kind, refs)
    # The garbage collector follows them: the Deployment's ReplicaSet is owned by it.
    eventually(
        "the deployment controller made a ReplicaSet",
        lambda: gw.list("ReplicaSet", "slice-owned")[0],
        timeout_s=30,
        interval_s=0.1,
    )
    assert realiser.remove("owned").ok
    eventually(
        "namespace deleted", lambda: gw.get("Namespace", "slice-owned") is None, timeout_s=60, interval_s=0.1
    )


def test_a_users_namespace_with_the_slices_name_is_never_adopted(
    kube_controller_manager: KubeApiServer, running: tuple[KubeRealiser, kube_real.RecordingSink]
) -> None:
    server = kube_controller_manager
    realiser, sink = running
    server.kubectl("create", "namespace", "slice-taken")
    server.kubectl("create", "configmap", "precious", "-n", "slice-taken", "--from-literal=a=b")
    slice_ = intent("taken")
    result = realiser.realise(slice_, placement(slice_, "e1"), 1)
    assert (result.ok, result.reason) == (False, "NamespaceConflict")
    assert "namespace slice-taken exists and was not created by edgeslice" in result.message
    gw = kube_real.gateway(server)
    ns = gw.get("Namespace", "slice-taken")
    assert ns is not None
    assert kube_manifests.MANAGED_BY not in (ns["metadata"].get("labels") or {})
    assert not gw.list("Deployment", "slice-taken")[0]
    reported = eventually(
        "the conflict reported to the service", lambda: sink.last("taken"), timeout_s=30, interval_s=0.1
    )
    assert reported[0] == ConditionStatus.FALSE and reported[1] == "NamespaceConflict"
    assert "slice-taken" in reported[2]
    # Removing the slice leaves the user's namespace and its ConfigMap alone.
    assert realiser.remove("taken").ok
    assert gw.get("Namespace", "slice-taken") is not None
    assert gw.get("ConfigMap", "precious", "slice-taken") is not None


def test_ready_follows_the_deployments_available_condition(
    kube_controller_manager: KubeApiServer, running: tuple[KubeRealiser, kube_real.RecordingSink]
) -> None:
    server = kube_controller_manager
    realiser, sink = running
    _realise(realiser, "avail")
    ns = "slice-avail"
    gw = kube_real.gateway(server)
    eventually(
        "two pods made by the ReplicaSet",
        lambda: len(gw.list("Pod", ns)[0]) == 2,
        timeout_s=30,
        interval_s=0.1,
    )
    first = eventually(
        "a first availability report", lambda: sink.last("avail"), timeout_s=30, interval_s=0.1
    )
    assert first[:2] == (ConditionStatus.FALSE, "WorkloadsUnavailable")
    assert "Deployment slice-avail/v2x-edge-e1" in first[2]
    assert kube_real.mark_pods_ready(server, ns) == 2
    eventually(
        "workloads available once the pods are Ready",
        lambda: (r := sink.last("avail")) is not None and r[0] == ConditionStatus.TRUE,
        timeout_s=30,
        interval_s=0.1,
    )


def test_a_deleted_namespace_brings_the_whole_slice_back(
    kube_controller_manager: KubeApiServer, running: tuple[KubeRealiser, kube_real.RecordingSink]
) -> None:
    server = kube_controller_manager
    realiser, _ = running
    _realise(realiser, "drift-ns")
    gw = kube_real.gateway(server)
    ns = "slice-drift-ns"
    before = gw.get("Namespace", ns)
    assert before is not None
    server.kubectl("delete", "namespace", ns, "--wait=false")
    # The namespace controller empties it, then it goes; the realiser's watch sees that and
    # realises the slice again in a new namespace (a new uid), every object included.
    again = eventually(
        "the namespace recreated",
        lambda: (
            n
            if (n := gw.get("Namespace", ns)) is not None
            and n["metadata"]["uid"] != before["metadata"]["uid"]
            and not n["metadata"].get("deletionTimestamp")
            else None
        ),
        timeout_s=90,
        interval_s=0.1,
    )
    assert again["metadata"]["labels"][kube_manifests.SLICE_LABEL] == "drift-ns"
    for kind in kube_manifests.KIND_ORDER[1:]:  # all but the Namespace
        eventually(f"{kind} recreated", lambda k=kind: gw.list(k, ns)[0], timeout_s=60, interval_s=0.1)  # type: ignore[misc]
