"""The controller in cluster mode (``--kube --intents crd``) on a real kube-apiserver with the
controller-manager: finalizers (a slice deleted while no controller runs is cleaned up once one
starts), ownerReferences to the NetworkSlice, Ready from the Deployments' Available, an image
update that rolls out, status that follows the spec, Events, and the client metrics."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.kube.crd_source import FINALIZER
from controller.process import wiring as runtime
from controller.process.config import RuntimeConfig
from controller.runtime.observer import NullObserver
from tests.support import kube_real
from tests.support.envtest import KubeApiServer
from tests.support.kube_fixtures import CITY_DOCUMENT
from tests.support.waiting import eventually

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def server(kube_controller_manager: KubeApiServer) -> Iterator[KubeApiServer]:
    kube_real.install_crd(kube_controller_manager)
    yield kube_controller_manager
    kube_real.delete_slices(
        kube_controller_manager,
        "fin-a",
        "roll",
        "st-bad",
        "st-good",
        "st-later",
        "ev-ok",
        "ev-bad",
        "ev-drift",
    )


@pytest.fixture
def city_file(tmp_path: Path) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump({"name": "two-edges", **CITY_DOCUMENT}), encoding="utf-8")
    return path


@pytest.fixture
def start(
    server: KubeApiServer, tmp_path: Path, city_file: Path
) -> Iterator[Callable[..., runtime.Controller]]:
    controllers: list[runtime.Controller] = []

    def start_one(
        identity: str = "op-test", observer: Any = None, kube_metrics_registry: Any = None, **kw: Any
    ) -> runtime.Controller:
        folder = tmp_path / f"{identity}-{len(controllers)}"
        config = RuntimeConfig(
            topology=str(city_file),
            state_file=folder / "state.db",
            state_dir=folder / "state",
            listen="127.0.0.1:0",
            reconcile_interval_s=0.3,
            environ={},
            kube=True,
            kubeconfig=str(server.admin.kubeconfig),
            intents="crd",
            watch_timeout_s=5,
            identity=identity,
            **kw,
        )
        controller = runtime.Controller(
            config, observer=observer, kube_metrics_registry=kube_metrics_registry
        )
        controller.start()
        controllers.append(controller)
        return controller

    yield start_one
    for controller in controllers:
        if not controller.wait(0):  # not stopped by the test already
            controller.stop()


def _slice(name: str, image: str | None = None, **spec: Any) -> Obj:
    sd = hashlib.sha256(name.encode()).hexdigest()[:6]
    body: Obj = {"kind": "vehicle", "snssai": {"sst": 4, "sd": sd}, "coverage": {"sites": ["c1", "c2"]}}
    if image is not None:
        body["workloads"] = [
            {
                "name": "v2x-edge",
                "image": image,
                "cpuMillicores": 500,
                "memoryMib": 256,
                "replicas": 2,
            }
        ]
    body.update(spec)
    return {
        "apiVersion": "edgeslice.io/v1alpha1",
        "kind": "NetworkSlice",
        "metadata": {"name": name},
        "spec": body,
    }


def _apply(server: KubeApiServer, doc: Obj) -> None:
    server.apply_yaml(yaml.safe_dump(doc), "--force-conflicts")


def _object(server: KubeApiServer, name: str) -> Obj | None:
    return kube_real.gateway(server).get("NetworkSlice", name)


def _conditions(server: KubeApiServer, name: str) -> dict[str, Obj]:
    obj = _object(server, name) or {}
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def _condition_is(
    server: KubeApiServer,
    name: str,
    type_: str,
    status: str,
    generation: int | None = None,
    reason: str | None = None,
) -> bool:
    cond = _conditions(server, name).get(type_)
    return (
        cond is not None
        and cond["status"] == status
        and (generation is None or cond["observedGeneration"] == generation)
        and (reason is None or cond["reason"] == reason)
    )


def _deployment_name(gw: Any, ns: str) -> str | None:
    """The slice's (one) Deployment: on e1 or e2, wherever the city had room."""
    return next((d["metadata"]["name"] for d in gw.list("Deployment", ns)[0]), None)


def test_a_slice_deleted_while_no_controller_runs_is_cleaned_up_once_one_starts(
    server: KubeApiServer, start: Callable[..., runtime.Controller]
) -> None:
    gw = kube_real.gateway(server)
    first = start()
    _apply(server, _slice("fin-a"))
    dep_name = eventually(
        "the slice realised", lambda: _deployment_name(gw, "slice-fin-a"), timeout_s=30, interval_s=0.1
    )
    obj = eventually(
        "the finalizer on the NetworkSlice",
        lambda: (
            o
            if (o := _object(server, "fin-a")) and FINALIZER in (o["metadata"].get("finalizers") or [])
            else None
        ),
        timeout_s=30,
        interval_s=0.1,
    )
    # Everything edgeslice made is owned by the NetworkSlice (the garbage collector follows it).
    ns = gw.get("Namespace", "slice-fin-a")
    assert ns is not None
    owners = [(r["kind"], r["name"], r["uid"]) for r in ns["metadata"]["ownerReferences"]]
    assert owners == [("NetworkSlice", "fin-a", obj["metadata"]["uid"])]
    dep = gw.get("Deployment", dep_name, "slice-fin-a")
    assert dep is not None
    assert dep["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    first.stop()

    server.kubectl("delete", "networkslice", "fin-a", "--wait=false")
    held = _object(server, "fin-a")
    assert held is not None and held["metadata"].get("deletionTimestamp"), "the finalizer holds it"
    assert gw.get("Namespace", "slice-fin-a") is not None

    start()
    eventually(
        "the NetworkSlice gone", lambda: _object(server, "fin-a") is None, timeout_s=60, interval_s=0.1
    )
    eventually(
        "its namespace gone", lambda: gw.get("Namespace", "slice-fin-a") is None, timeout_s=60, interval_s=0.1
    )


def test_ready_follows_available_and_an_image_update_rolls_out(
    server: KubeApiServer, start: Callable[..., runtime.Controller]
) -> None:
    gw = kube_real.gateway(server)
    controller = start()
    kubelet = kube_real.FakeKubelet(server)
    try:
        _apply(server, _slice("roll", image="registry.example.com/v2x:1"))
        dep_name = eventually(
            "the Deployment", lambda: _deployment_name(gw, "slice-roll"), timeout_s=30, interval_s=0.1
        )
        # No kubelet yet: the pods stay Pending and the slice is not Ready, saying why.
        eventually(
            "Realised=False WorkloadsUnavailable",
            lambda: _condition_is(server, "roll", "Realised", "False", reason="WorkloadsUnavailable"),
            timeout_s=30,
            interval_s=0.1,
        )
        assert _condition_is(server, "roll", "Ready", "False")
        kubelet.namespaces.append("slice-roll")
        eventually(
            "Ready once Available",
            lambda: _condition_is(server, "roll", "Ready", "True", 1),
            timeout_s=60,
            interval_s=0.1,
        )

        _apply(server, _slice("roll", image="registry.example.com/v2x:2"))
        eventually(
            "a second ReplicaSet for the rollout",
            lambda: len(gw.list("ReplicaSet", "slice-roll")[0]) >= 2,
            timeout_s=30,
            interval_s=0.1,
        )
        eventually(
            "Ready at generation 2",
            lambda: _condition_is(server, "roll", "Ready", "True", 2),
            timeout_s=90,
            interval_s=0.1,
        )
        dep = gw.get("Deployment", dep_name, "slice-roll")
        assert dep is not None
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/v2x:2"
        status = dep["status"]
        assert status["updatedReplicas"] == status["replicas"] == dep["spec"]["replicas"]
        # The quota leaves room for the surge pod: the rollout above completed (with an exact-sum
        # quota it stalled for ever), and the quota holds the steady state plus one pod of the
        # Deployment. (A transient FailedCreate can still appear while the quota controller has
        # not yet counted a just-deleted old pod out: Kubernetes replenishes usage asynchronously,
        # and the ReplicaSet controller retries.)
        quota = gw.get("ResourceQuota", "edgeslice-quota", "slice-roll")
        assert quota is not None
        replicas = dep["spec"]["replicas"]
        assert int(quota["spec"]["hard"]["pods"]) == replicas + 1
    finally:
        kubelet.close()
    counts = controller.kube_metrics().snapshot()
    assert counts.get(("apply", "deployments", "200"), 0) >= 1
    assert counts.get(("watch", "deployments", "200"), 0) >= 1
    assert counts.get(("patch", "networkslices/status", "200"), 0) >= 1


def test_events_on_the_networkslice_and_client_metrics_on_the_registry(
    server: KubeApiServer, start: Callable[..., runtime.Controller]
) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    class Observer(NullObserver):
        registry = CollectorRegistry()

    observer = Observer()
    controller = start(observer=observer, kube_metrics_registry=observer.registry)
    # Events report what happens after a term's first list (which only rebuilds its state).
    eventually(
        "first list",
        lambda: controller.crd_source is not None and controller.crd_source._audit_seq is not None,
        timeout_s=30,
        interval_s=0.1,
    )
    _apply(server, _slice("ev-ok"))
    _apply(server, _slice("ev-bad", coverage={"sites": ["nowhere"]}))
    gw = kube_real.gateway(server)

    def reasons(name: str) -> set[str]:
        return {
            e["reason"]
            for e in kube_real.events_about(gw, "default", name)
            if e["regarding"]["kind"] == "NetworkSlice"
        }

    eventually(
        "an Admitted event on ev-ok", lambda: "Admitted" in reasons("ev-ok"), timeout_s=30, interval_s=0.1
    )
    eventually(
        "a Refused event on ev-bad", lambda: "Refused" in reasons("ev-bad"), timeout_s=30, interval_s=0.1
    )
    event = next(e for e in kube_real.events_about(gw, "default", "ev-bad") if e["reason"] == "Refused")
    assert event["type"] == "Warning" and "nowhere" in event["note"]
    assert event["reportingController"] == "edgeslice.io/controller"
    obj = _object(server, "ev-bad")
    assert obj is not None and event["regarding"]["uid"] == obj["metadata"]["uid"]
    text = generate_latest(observer.registry).decode()
    assert 'edgeslice_kube_client_requests_total{code="200",resource="networkslices",verb="list"}' in text
    assert 'resource="events",verb="create"' in text


def test_status_follows_the_spec(server: KubeApiServer, start: Callable[..., runtime.Controller]) -> None:
    first = start()
    # 1. A rejected slice says so on every condition (kubectl wait does not hang on nothing).
    _apply(server, _slice("st-bad", coverage={"sites": ["nowhere"]}))
    eventually(
        "Ready=False on st-bad",
        lambda: _condition_is(server, "st-bad", "Ready", "False", 1),
        timeout_s=30,
        interval_s=0.1,
    )
    conds = _conditions(server, "st-bad")
    assert conds["Admitted"]["status"] == "False" and conds["Admitted"]["reason"] == "InvalidSpec"
    assert "nowhere" in conds["Admitted"]["message"]
    waited = server.kubectl("wait", "--for=condition=Ready=False", "networkslice/st-bad", "--timeout=5s")
    assert "condition met" in waited.stdout

    # 2. Conditions follow each observed generation.
    _apply(server, _slice("st-good"))
    eventually(
        "st-good admitted",
        lambda: _condition_is(server, "st-good", "Admitted", "True", 1),
        timeout_s=30,
        interval_s=0.1,
    )
    _apply(server, _slice("st-good", priority=200))
    eventually(
        "every condition at generation 2",
        lambda: (
            all(c["observedGeneration"] == 2 for c in _conditions(server, "st-good").values())
            and len(_conditions(server, "st-good")) >= 4
        ),
        timeout_s=30,
        interval_s=0.1,
    )
    admitted_since = _conditions(server, "st-good")["Admitted"]["lastTransitionTime"]

    # 3. A refused update stays visible (the old generation keeps running) ...
    _apply(server, _slice("st-good", priority=200, coverage={"sites": ["nowhere"]}))
    eventually(
        "the refusal shown",
        lambda: _condition_is(server, "st-good", "Admitted", "False", 3),
        timeout_s=30,
        interval_s=0.1,
    )
    # ... through later reconcile passes and status writes (a slice applied after it is realised
    # meanwhile, which takes several passes).
    _apply(server, _slice("st-later"))
    eventually(
        "st-later admitted",
        lambda: _condition_is(server, "st-later", "Admitted", "True"),
        timeout_s=30,
        interval_s=0.1,
    )
    obj = _object(server, "st-good")
    assert obj is not None
    assert obj["status"]["observedGeneration"] == 3
    assert (
        obj["status"]["reason"] == "InvalidSpec" and "generation 2 keeps running" in obj["status"]["message"]
    )
    assert _condition_is(server, "st-good", "Admitted", "False", 3)

    # 4. Reverting the spec clears it.
    _apply(server, _slice("st-good", priority=200))
    eventually(
        "the refusal cleared",
        lambda: _condition_is(server, "st-good", "Admitted", "True", 4),
        timeout_s=30,
        interval_s=0.1,
    )
    assert _conditions(server, "st-good")["Admitted"]["lastTransitionTime"] != admitted_since  # False->True

    # 5. lastTransitionTime moves only with the status, across a restart with a fresh cache.
    before = {t: c["lastTransitionTime"] for t, c in _conditions(server, "st-good").items()}
    first.stop()
    restarted = start("op-test-2")
    eventually(
        "first list",
        lambda: restarted.crd_source is not None and restarted.crd_source._audit_seq is not None,
        timeout_s=30,
        interval_s=0.1,
    )
    assert restarted.crd_source is not None
    eventually(
        "st-good seen",
        lambda: restarted.crd_source is not None and "st-good" in restarted.crd_source._generations,
        timeout_s=30,
        interval_s=0.1,
    )
    restarted.crd_source.refresh_statuses()
    after = {t: c["lastTransitionTime"] for t, c in _conditions(server, "st-good").items()}
    assert after == before


def test_drift_in_crd_mode_is_repaired_with_an_event_on_the_networkslice(
    server: KubeApiServer, start: Callable[..., runtime.Controller]
) -> None:
    start()
    gw = kube_real.gateway(server)
    _apply(server, _slice("ev-drift"))
    ns = "slice-ev-drift"
    name = eventually(
        "the Deployment",
        lambda: next((d["metadata"]["name"] for d in gw.list("Deployment", ns)[0]), None),
        timeout_s=30,
        interval_s=0.1,
    )
    want = (gw.get("Deployment", name, ns) or {})["spec"]["replicas"]
    server.kubectl("scale", "deployment", name, "-n", ns, f"--replicas={want + 3}")
    eventually(
        "replicas restored",
        lambda: (gw.get("Deployment", name, ns) or {}).get("spec", {}).get("replicas") == want,
        timeout_s=30,
        interval_s=0.1,
    )
    note = f"Deployment {ns}/{name}: reverted spec.replicas (changed by kubectl)"
    event = eventually(
        "a DriftRepaired event on the NetworkSlice",
        lambda: next(
            (
                e
                for e in kube_real.events_about(gw, "default", "ev-drift")
                if e["reason"] == "DriftRepaired" and note in e["note"]
            ),
            None,
        ),
        timeout_s=30,
        interval_s=0.1,
    )
    assert event["regarding"]["kind"] == "NetworkSlice"


def test_a_users_namespace_survives_a_slice_with_its_name(
    server: KubeApiServer, start: Callable[..., runtime.Controller]
) -> None:
    server.kubectl("create", "namespace", "slice-theirs")
    server.kubectl("create", "configmap", "precious", "-n", "slice-theirs", "--from-literal=a=b")
    start()
    _apply(server, _slice("theirs"))
    eventually(
        "Realised=False NamespaceConflict on the object",
        lambda: _condition_is(server, "theirs", "Realised", "False", reason="NamespaceConflict"),
        timeout_s=30,
        interval_s=0.1,
    )
    message = _conditions(server, "theirs")["Realised"]["message"]
    assert "namespace slice-theirs exists and was not created by edgeslice" in message
    assert _condition_is(server, "theirs", "Ready", "False")
    gw = kube_real.gateway(server)
    ns = gw.get("Namespace", "slice-theirs")
    assert ns is not None and "app.kubernetes.io/managed-by" not in (ns["metadata"].get("labels") or {})
    assert not ns["metadata"].get("ownerReferences")
    # Deleting the slice completes (the finalizer is dropped) and leaves the user's namespace alone.
    server.kubectl("delete", "networkslice", "theirs", "--wait=false")
    eventually(
        "the NetworkSlice gone", lambda: _object(server, "theirs") is None, timeout_s=60, interval_s=0.1
    )
    ns = gw.get("Namespace", "slice-theirs")
    assert ns is not None and not ns["metadata"].get("deletionTimestamp")
    assert gw.get("ConfigMap", "precious", "slice-theirs") is not None
