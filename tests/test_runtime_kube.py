"""The controller process in its Kubernetes modes: manifests rendered by default, ``--kube``
through a kubeconfig to the emulator, NetworkSlice intents with status written back, and leader
election with two real controller processes handing over after a SIGKILL."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from controller import kube_gateway, runtime
from controller.api_client import ApiClient
from controller.cli import controller_cmd, main
from controller.plan_recorder import PlanRecorder
from slices import errors
from tests import kube_fixtures
from tests.controller_process import SLICECTL
from tests.kube_emulator import KubeEmulator
from tests.kube_fixtures import gateway

ROOT = Path(__file__).resolve().parent.parent

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


def _wait(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    with KubeEmulator() as server:
        yield server


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


def _config(tmp_path: Path, city: Path, **kw: Any) -> runtime.RuntimeConfig:
    return runtime.RuntimeConfig(
        topology=str(city),
        state_file=tmp_path / "state.db",
        state_dir=tmp_path / "state",
        listen="127.0.0.1:0",
        reconcile_interval_s=0.2,
        environ={},
        **kw,
    )


@pytest.fixture
def started() -> Iterator[Callable[[runtime.RuntimeConfig], runtime.Controller]]:
    controllers: list[runtime.Controller] = []

    def start(config: runtime.RuntimeConfig) -> runtime.Controller:
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
    tmp_path: Path, city_file: Path, started: Callable[[runtime.RuntimeConfig], runtime.Controller]
) -> None:
    controller = started(_config(tmp_path, city_file))
    with _client(controller) as client:
        client.apply([("cars.yaml", yaml.safe_dump(_slice("cars")))])
    folder = tmp_path / "state" / "manifests" / "cars"
    _wait(lambda: any(folder.glob("*deployment*.yaml")), "rendered deployments")
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
    emu: KubeEmulator,
    tmp_path: Path,
    city_file: Path,
    started: Callable[[runtime.RuntimeConfig], runtime.Controller],
) -> None:
    config = _config(tmp_path, city_file, kube=True, kubeconfig=str(_kubeconfig(tmp_path, emu.url)))
    controller = started(config)
    with _client(controller) as client:
        client.apply([("cars.yaml", yaml.safe_dump(_slice("cars")))])
        _wait(lambda: bool(emu.stored("deployments", "slice-cars")), "deployments in the cluster")
        _wait(lambda: client.get("cars").state == "Ready", "cars Ready")
        assert "slice-cars" in emu.stored("namespaces")
        # Nothing rendered locally: the cluster is the realisation.
        assert not (tmp_path / "state" / "manifests").exists()
        client.delete("cars")
    _wait(lambda: "slice-cars" not in emu.stored("namespaces"), "namespace removed")


def test_crd_intents_are_realised_and_their_status_written_back(
    emu: KubeEmulator,
    tmp_path: Path,
    city_file: Path,
    started: Callable[[runtime.RuntimeConfig], runtime.Controller],
) -> None:
    # A stale cache from an earlier run must not resurrect what it held.
    (tmp_path / "state.db").write_bytes(b"stale")
    config = _config(tmp_path, city_file, kube=True, kube_host=emu.url, intents="crd", watch_timeout_s=2)
    started(config)
    kubectl = gateway(emu.url)
    kubectl.apply(_slice("cars"))

    def status() -> dict[str, Any]:
        found: dict[str, Any] = emu.stored("networkslices").get("cars", {}).get("status") or {}
        return found

    _wait(lambda: status().get("state") == "Ready", "cars Ready on the object")
    assert {c["type"]: c["status"] for c in status()["conditions"]}["Realised"] == "True"
    assert emu.stored("deployments", "slice-cars")
    kubectl.delete("NetworkSlice", "cars")
    _wait(lambda: "slice-cars" not in emu.stored("namespaces"), "namespace removed")


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
        for d in yaml.safe_load_all((ROOT / "deploy" / "controller.yaml").read_text(encoding="utf-8"))
        if d and d["kind"] == "Deployment"
    ]
    return [d["spec"]["template"]["spec"]["containers"][0]["args"] for d in (*rendered, *plain)]


def test_deploy_args_are_flags_the_controller_accepts() -> None:
    for args in _chart_args():
        assert args[:2] == ["controller", "run"]
        ctx = controller_cmd.run.make_context("run", list(args[2:]))
        # Two replicas with one active: leader election on the shared NetworkSlice intents.
        assert ctx.params["leader_elect"] and ctx.params["intents"] == "crd" and ctx.params["kube"]


# -- two real controller processes -------------------------------------------------------------


def _start(workdir: Path, city: Path, kubeconfig: Path, identity: str) -> subprocess.Popen[bytes]:
    workdir.mkdir()
    args = [
        *SLICECTL,
        "controller",
        "run",
        "--topology",
        str(city),
        "--state",
        str(workdir / "edgeslice.db"),
        "--state-dir",
        str(workdir / "state"),
        "--listen",
        "127.0.0.1:0",
        "--reconcile-interval",
        "0.3",
        "--kube",
        "--kubeconfig",
        str(kubeconfig),
        "--intents",
        "crd",
        "--leader-elect",
        "--identity",
        identity,
        "--lease-namespace",
        "edgeslice-system",
        "--lease-duration",
        "2",
        "--lease-retry",
        "0.2",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(workdir / "controller.log", "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env)


def _address(workdir: Path, proc: subprocess.Popen[bytes]) -> str:
    path = workdir / "state" / "controller.addr"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, (workdir / "controller.log").read_text()[-3000:]
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"no address: {(workdir / 'controller.log').read_text()[-3000:]}")


def _realised(emu: KubeEmulator) -> dict[str, Any]:
    """What the cluster holds for the slices: every object in a slice namespace (and the namespace),
    with its spec (replicas, node affinity, quota: where and how much)."""
    with emu._lock:
        objects = dict(emu.objects)
    return {
        f"{plural}/{namespace}/{name}": obj.get("spec")
        for (_, plural, namespace, name), obj in objects.items()
        if (namespace or name).startswith("slice-")
    }


def _reserved(client: ApiClient) -> dict[str, tuple[int, int, int]]:
    return {
        s.site: (s.cpu_reserved_millicores, s.memory_reserved_mib, s.radio_reserved_kbps)
        for s in client.topology_status().sites
    }


def test_two_controller_processes_hand_over_after_a_sigkill(
    emu: KubeEmulator, tmp_path: Path, city_file: Path
) -> None:
    kubeconfig = _kubeconfig(tmp_path, emu.url)
    kubectl = gateway(emu.url)
    names = ("cars", "fleet", "meters")
    for name in names:
        kubectl.apply(_slice(name, "iot" if name == "meters" else "vehicle"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        a_dir, b_dir = tmp_path / "a", tmp_path / "b"
        procs.append(_start(a_dir, city_file, kubeconfig, "controller-a"))
        a_address = _address(a_dir, procs[0])

        def holder() -> str:
            lease = emu.stored("leases", "edgeslice-system").get("edgeslice-controller") or {}
            return str((lease.get("spec") or {}).get("holderIdentity", ""))

        _wait(lambda: holder() == "controller-a", "A leads", 30)
        procs.append(_start(b_dir, city_file, kubeconfig, "controller-b"))
        b_address = _address(b_dir, procs[1])

        def states() -> dict[str, str]:
            return {
                n: (o.get("status") or {}).get("state", "") for n, o in emu.stored("networkslices").items()
            }

        _wait(lambda: states() == dict.fromkeys(names, "Ready"), "A realised every slice", 30)
        # B is a standby: alive, not serving the operator API, refusing calls with a clear reason.
        b_token = (b_dir / "state" / "token").read_text().strip()
        with ApiClient(b_address, b_token, timeout_s=5) as b:
            assert b.health() == "SERVING"
            assert b.health("edgeslice.operator.v1.OperatorService") == "NOT_SERVING"
            with pytest.raises(errors.Unavailable, match="controller-b is a standby replica"):
                b.list_slices()
        a_token = (a_dir / "state" / "token").read_text().strip()
        with ApiClient(a_address, a_token, timeout_s=5) as a:
            assert a.health("edgeslice.operator.v1.OperatorService") == "SERVING"
            reserved_by_a = _reserved(a)
        before = _realised(emu)
        assert sum(k.startswith("deployments/") for k in before) >= len(names)
        transitions = emu.stored("leases", "edgeslice-system")["edgeslice-controller"]["spec"][
            "leaseTransitions"
        ]

        procs[0].kill()  # SIGKILL: A cannot release the lease
        procs[0].wait(10)
        killed_at = time.monotonic()
        requests_at_kill = len(emu.requests)
        _wait(lambda: holder() == "controller-b", "B takes the lease", 20)
        took_lease_s = time.monotonic() - killed_at
        print(f"B took the lease {took_lease_s:.2f} s after A was killed (lease 2 s)")
        assert took_lease_s < 2 + 2.0  # the lease duration, plus retries and process slack

        with ApiClient(b_address, b_token, timeout_s=5) as b:

            def serving() -> bool:
                try:  # the standby server stops a moment before the full API starts on its port
                    return b.health("edgeslice.operator.v1.OperatorService") == "SERVING"
                except errors.Unavailable:
                    return False

            _wait(serving, "B serves", 20)
            _wait(lambda: sorted(s.name for s in b.list_slices()) == sorted(names), "B has the slices")
            _wait(lambda: all(s.state == "Ready" for s in b.list_slices()), "B's slices Ready")
            # Same reservations as A held: each slice booked once, none lost.
            assert _reserved(b) == reserved_by_a

            # B wrote every slice's status (A was dead by then).
            def status_writes() -> set[str]:
                return {
                    path.split("/")[-2]
                    for method, path in emu.requests[requests_at_kill:]
                    if method == "PATCH" and path.endswith("/status")
                }

            _wait(lambda: status_writes() >= set(names), "B's status writes")
            for name in names:
                assert emu.stored("networkslices")[name]["status"]["state"] == "Ready"
            # The cluster holds exactly what it held: nothing recreated elsewhere, nothing lost.
            assert _realised(emu) == before
            lease = emu.stored("leases", "edgeslice-system")["edgeslice-controller"]["spec"]
            assert lease["holderIdentity"] == "controller-b" and lease["leaseTransitions"] == transitions + 1
            # And B keeps reconciling: a slice created now is realised by B.
            kubectl.apply(_slice("trams"))
            _wait(lambda: states().get("trams") == "Ready", "B realised a new slice", 20)
            assert emu.stored("deployments", "slice-trams")
        procs[1].terminate()
        assert procs[1].wait(20) == 0
        assert holder() == ""  # released at shutdown
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_a_leader_that_loses_the_lease_stops_writing_and_stops(
    emu: KubeEmulator,
    tmp_path: Path,
    city_file: Path,
    started: Callable[[runtime.RuntimeConfig], runtime.Controller],
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
    gate = runtime.LeaderGate(
        PlanRecorder(tmp_path / "plans", runtime.load_city(config)), controller._is_leading
    )
    assert gate.remove("cars").reason == "NotLeader"
