"""The controller process in its Kubernetes modes: manifests rendered by default, ``--kube``
through a kubeconfig to the emulator, NetworkSlice intents with status written back, and leader
election with two real controller processes handing over after a SIGKILL."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from controller.api.client import ApiClient
from controller.cli import controller_cmd, main
from controller.kube import gateway as kube_gateway
from controller.process import wiring as runtime
from controller.process.config import RuntimeConfig, load_city
from controller.process.leadership import LeaderGate
from controller.runtime.plan_recorder import PlanRecorder
from tests.support import kube_fixtures, kube_real
from tests.support.envtest import KubeApiServer
from tests.support.kube_emulator import KubeEmulator
from tests.support.kube_fixtures import gateway
from tests.support.paths import ROOT
from tests.support.waiting import eventually

CITY = {"name": "two-edges", **kube_fixtures.CITY_DOCUMENT}


def _slice(name: str, kind: str = "vehicle", cells: tuple[str, ...] = ("c1", "c2")) -> dict[str, Any]:
    # Each slice its own S-NSSAI (SD from the name), so slices of one kind do not clash.
    snssai = {
        "sst": {"iot": 3, "vehicle": 4, "wifi": 1}[kind],
        "sd": hashlib.sha256(name.encode()).hexdigest()[:6],
    }
    return {
        "apiVersion": "edgeslice.io/v1alpha1",
        "kind": "NetworkSlice",
        "metadata": {"name": name},
        "spec": {"kind": kind, "snssai": snssai, "coverage": {"sites": list(cells)}},
    }


@pytest.fixture
def city_file(tmp_path: Path) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(CITY), encoding="utf-8")
    return path


def _kubeconfig(tmp_path: Path, url: str) -> Path:
    """A real kubeconfig file whose current context points at the emulator."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emu", "cluster": {"server": url}}],
                "users": [{"name": "tester", "user": {"token": "test-token"}}],
                "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "tester"}}],
                "current-context": "emu",
            }
        ),
        encoding="utf-8",
    )
    return path


def _config(tmp_path: Path, city: Path, **kw: Any) -> RuntimeConfig:
    return RuntimeConfig(
        topology=str(city),
        state_file=tmp_path / "state.db",
        state_dir=tmp_path / "state",
        listen="127.0.0.1:0",
        reconcile_interval_s=0.2,
        environ={},
        **kw,
    )


@pytest.fixture
def started() -> Iterator[Callable[[RuntimeConfig], runtime.Controller]]:
    controllers: list[runtime.Controller] = []

    def start(config: RuntimeConfig) -> runtime.Controller:
        controller = runtime.Controller(config)
        controller.start()
        controllers.append(controller)
        return controller

    yield start
    for controller in controllers:
        controller.stop()


def _client(controller: runtime.Controller) -> ApiClient:
    token = (controller.config.resolved_state_dir() / "token").read_text().strip()
    return ApiClient(controller.address, token, timeout_s=10)


def test_embedded_default_renders_manifests_shown_by_slice_manifests(
    tmp_path: Path, city_file: Path, started: Callable[[RuntimeConfig], runtime.Controller]
) -> None:
    controller = started(_config(tmp_path, city_file))
    with _client(controller) as client:
        client.apply([("cars.yaml", yaml.safe_dump(_slice("cars")))])
    folder = tmp_path / "state" / "manifests" / "cars"
    eventually("rendered deployments", lambda: any(folder.glob("*deployment*.yaml")))
    result = CliRunner().invoke(main, ["slice", "manifests", "cars", "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.output) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds[0] == "Namespace" and "Deployment" in kinds and "ResourceQuota" in kinds
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    terms = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    term = terms["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchExpressions"
    ][0]
    assert term["key"] == "edgeslice.io/site" and set(term["values"]) <= {"north-rack", "e2"}
    missing = CliRunner().invoke(
        main, ["slice", "manifests", "trams", "--state-dir", str(tmp_path / "state")]
    )
    assert missing.exit_code != 0 and "slice 'trams': no manifests rendered" in missing.output


def test_kube_mode_realises_through_a_kubeconfig(
    kube_controller_manager: KubeApiServer,
    tmp_path: Path,
    city_file: Path,
    started: Callable[[RuntimeConfig], runtime.Controller],
) -> None:
    server = kube_controller_manager
    config = _config(tmp_path, city_file, kube=True, kubeconfig=str(server.admin.kubeconfig))
    controller = started(config)
    gw = kube_real.gateway(server)
    kubelet = kube_real.FakeKubelet(server, "slice-rk-cars")
    try:
        with _client(controller) as client:
            client.apply([("cars.yaml", yaml.safe_dump(_slice("rk-cars")))])
            eventually("deployments in the cluster", lambda: bool(gw.list("Deployment", "slice-rk-cars")[0]))
            eventually("rk-cars Ready", lambda: client.get("rk-cars").state == "Ready", timeout_s=60)
            # Nothing rendered locally: the cluster is the realisation.
            assert not (tmp_path / "state" / "manifests").exists()
            client.delete("rk-cars")
        eventually("namespace removed", lambda: gw.get("Namespace", "slice-rk-cars") is None, timeout_s=60)
    finally:
        kubelet.close()


def test_crd_intents_are_realised_and_their_status_written_back(
    kube_controller_manager: KubeApiServer,
    tmp_path: Path,
    city_file: Path,
    started: Callable[[RuntimeConfig], runtime.Controller],
) -> None:
    server = kube_controller_manager
    kube_real.install_crd(server)
    # A stale cache from an earlier run must not resurrect what it held.
    (tmp_path / "state.db").write_bytes(b"stale")
    config = _config(
        tmp_path,
        city_file,
        kube=True,
        kubeconfig=str(server.admin.kubeconfig),
        intents="crd",
        watch_timeout_s=2,
    )
    started(config)
    kubectl = kube_real.gateway(server, "kubectl")
    kubelet = kube_real.FakeKubelet(server, "slice-rk-crd")
    try:
        kubectl.apply(_slice("rk-crd"))

        def status() -> dict[str, Any]:
            found: dict[str, Any] = (kubectl.get("NetworkSlice", "rk-crd") or {}).get("status") or {}
            return found

        eventually("rk-crd Ready on the object", lambda: status().get("state") == "Ready", timeout_s=60)
        assert {c["type"]: c["status"] for c in status()["conditions"]}["Realised"] == "True"
        assert kubectl.list("Deployment", "slice-rk-crd")[0]
        kubectl.delete("NetworkSlice", "rk-crd")
        eventually(
            "namespace removed", lambda: kubectl.get("Namespace", "slice-rk-crd") is None, timeout_s=60
        )
        eventually(
            "the object gone (finalizer dropped)", lambda: kubectl.get("NetworkSlice", "rk-crd") is None
        )
    finally:
        kubelet.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--leader-elect"], "--leader-elect: needs --intents crd"),
        (["--kubeconfig", "x"], "--kubeconfig/--context/--in-cluster: used only with --kube"),
        (["--kube", "--in-cluster", "--context", "c"], "--in-cluster: give either it or"),
        (
            ["--intents", "crd", "--leader-elect", "--lease-duration", "2", "--lease-retry", "3"],
            "--lease-retry",
        ),
    ],
)
def test_bad_combinations_are_refused_in_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["controller", "run", "--state", str(tmp_path / "s.db"), *args])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s.db").exists()


def _chart_args() -> list[list[str]]:
    spec = importlib.util.spec_from_file_location("helm_render", ROOT / "deploy" / "helm_render.py")
    assert spec is not None and spec.loader is not None
    helm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helm)
    rendered = [
        d
        for d in helm.render_chart()
        if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("controller")
    ]
    plain = [
        d
        for d in yaml.safe_load_all((ROOT / "deploy" / "edgeslice.yaml").read_text(encoding="utf-8"))
        if d and d["kind"] == "Deployment"
    ]
    return [d["spec"]["template"]["spec"]["containers"][0]["args"] for d in (*rendered, *plain)]


def test_deploy_args_are_flags_the_controller_accepts() -> None:
    for args in _chart_args():
        assert args[:2] == ["controller", "run"]
        ctx = controller_cmd.run.make_context("run", list(args[2:]))
        # Two replicas with one active: leader election on the shared NetworkSlice intents.
        assert ctx.params["leader_elect"] and ctx.params["intents"] == "crd" and ctx.params["kube"]


# Two real controller processes handing over after a SIGKILL: tests/e2e/test_kube_failover.py (real server).


def test_a_leader_that_loses_the_lease_stops_writing_and_stops(
    emu: KubeEmulator,
    tmp_path: Path,
    city_file: Path,
    started: Callable[[RuntimeConfig], runtime.Controller],
) -> None:
    config = _config(
        tmp_path,
        city_file,
        kube=True,
        kube_host=emu.url,
        intents="crd",
        leader_elect=True,
        identity="a",
        lease_duration_s=2,
        lease_retry_s=0.1,
    )
    controller = started(config)
    assert controller.leading.wait(10) and controller.role == "leader"
    # Another replica took the lease (e.g. this one was partitioned away past its lease).
    leases = gateway(emu.url)
    for _ in range(50):  # the leader renews every 0.1 s: a write may race with it (409)
        lease = leases.get("Lease", "edgeslice-controller", "edgeslice-system")
        assert lease is not None
        lease["spec"]["holderIdentity"] = "b"
        try:
            leases.replace(lease)
            break
        except kube_gateway.KubeApiError as exc:
            assert exc.status == 409
    assert controller.wait(5), "the controller should stop after losing the lease"
    assert controller.lost_leadership
    gate = LeaderGate(PlanRecorder(tmp_path / "plans", load_city(config)), controller.is_leading)
    assert gate.remove("cars").reason == "NotLeader"
