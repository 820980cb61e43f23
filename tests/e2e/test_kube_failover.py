"""Two real ``slicectl controller run --kube --intents crd --leader-elect`` processes on a real
kube-apiserver (+ controller-manager): A leads, realises the slices and is told to drain a site;
A is SIGKILLed; B takes the Lease, keeps the drain (it lives in the cluster, not in A's cache),
holds the same placements, rewrites no condition's lastTransitionTime and leaves the cluster's
objects as they were."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.kube import manifests as kube_manifests
from controller.kube.crd_source import MAINTENANCE_CONFIGMAP
from slices import errors
from tests.support import kube_real
from tests.support.envtest import KubeApiServer
from tests.support.kube_failover import client_when_up, crd_slice, serving, start_leader_elected
from tests.support.kube_fixtures import CITY_DOCUMENT
from tests.support.waiting import eventually

NAMES = ("fo-cars", "fo-fleet", "fo-meters")


@pytest.fixture(scope="module")
def server(kube_controller_manager: KubeApiServer) -> KubeApiServer:
    kube_real.install_crd(kube_controller_manager)
    if kube_controller_manager.kubectl("get", "ns", "edgeslice-system", check=False).returncode != 0:
        kube_controller_manager.kubectl("create", "namespace", "edgeslice-system")
    return kube_controller_manager


def _sites(s: Any) -> list[str]:
    return [e.site for e in s.placement.edges]


def _realised(server: KubeApiServer) -> dict[str, Any]:
    """Every object edgeslice made for the slices, with its spec (where and how much)."""
    gw = kube_real.gateway(server)
    out: dict[str, Any] = {}
    for kind in kube_manifests.KIND_ORDER:
        items, _ = gw.list(kind, selector=f"{kube_manifests.MANAGED_BY}={kube_manifests.MANAGER}")
        for item in items:
            meta = item["metadata"]
            if meta["labels"].get(kube_manifests.SLICE_LABEL) in NAMES:
                out[f"{kind}/{meta.get('namespace', '')}/{meta['name']}"] = (meta["uid"], item.get("spec"))
    return out


def _statuses(server: KubeApiServer) -> dict[str, Any]:
    gw = kube_real.gateway(server)
    return {n: ((gw.get("NetworkSlice", n) or {}).get("status") or {}) for n in NAMES}


def test_a_drain_survives_a_sigkill_fail_over(server: KubeApiServer, tmp_path: Path) -> None:
    city = tmp_path / "city.yaml"
    city.write_text(yaml.safe_dump({"name": "two-edges", **CITY_DOCUMENT}), encoding="utf-8")
    kubeconfig = server.admin.kubeconfig
    for name in NAMES:
        server.apply_yaml(yaml.safe_dump(crd_slice(name, "iot" if name == "fo-meters" else "vehicle")))
    kubelet = kube_real.FakeKubelet(server, *(f"slice-{n}" for n in NAMES))
    gw = kube_real.gateway(server)
    procs: list[subprocess.Popen[bytes]] = []

    def holder() -> str:
        lease = gw.get("Lease", "edgeslice-controller", "edgeslice-system") or {}
        return str((lease.get("spec") or {}).get("holderIdentity", ""))

    try:
        a_dir, b_dir = tmp_path / "a", tmp_path / "b"
        procs.append(start_leader_elected(a_dir, city, kubeconfig, "fo-a"))
        a = client_when_up(a_dir, procs[0])
        eventually("A leads", lambda: holder() == "fo-a", timeout_s=60, interval_s=0.1)
        procs.append(start_leader_elected(b_dir, city, kubeconfig, "fo-b"))
        b = client_when_up(b_dir, procs[1])
        eventually("A serves", lambda: serving(a), timeout_s=60, interval_s=0.1)
        eventually(
            "A made every slice Ready",
            lambda: all(s.get("state") == "Ready" for s in _statuses(server).values()),
            timeout_s=90,
            interval_s=0.1,
        )
        # B is a standby: alive, not serving the operator API, refusing calls with a clear reason.
        assert b.health() == "SERVING"
        assert b.health("edgeslice.operator.v1.OperatorService") == "NOT_SERVING"
        with pytest.raises(errors.Unavailable, match="fo-b is a standby replica"):
            b.list_slices()
        placed_before = {s.name: _sites(s) for s in a.list_slices()}
        used = {site for sites in placed_before.values() for site in sites}
        drained = "e1" if "e1" in used else "e2"
        a.drain(drained)
        eventually(
            f"slices moved off {drained}",
            lambda: all(drained not in _sites(s) for s in a.list_slices()),
            timeout_s=30,
            interval_s=0.1,
        )
        eventually(
            "the objects show the move",
            lambda: all(
                drained not in (s.get("edgeSites") or []) and s.get("state") == "Ready"
                for s in _statuses(server).values()
            ),
            timeout_s=90,
            interval_s=0.1,
        )
        # The moves are Events on the NetworkSlices (from the audit trail's heal decisions).
        moved = [n for n in NAMES if drained in placed_before[n]]
        assert moved
        for name in moved:
            eventually(
                f"a Healed event on {name}",
                lambda n=name: [  # type: ignore[misc]
                    e for e in kube_real.events_about(gw, "default", n) if e["reason"] == "Healed"
                ],
                timeout_s=30,
                interval_s=0.1,
            )
        cm = gw.get("ConfigMap", MAINTENANCE_CONFIGMAP, "edgeslice-system")
        assert cm is not None and f"site.{drained}" in cm["data"]
        placed_by_a = {s.name: sorted(_sites(s)) for s in a.list_slices()}
        before = _realised(server)
        times = {
            n: {c["type"]: c["lastTransitionTime"] for c in s["conditions"]}
            for n, s in _statuses(server).items()
        }

        lease = gw.get("Lease", "edgeslice-controller", "edgeslice-system")
        assert lease is not None
        transitions = lease["spec"]["leaseTransitions"]

        procs[0].kill()  # SIGKILL: A releases nothing
        procs[0].wait(10)
        eventually("B takes the lease", lambda: holder() == "fo-b", timeout_s=30, interval_s=0.1)
        eventually("B serves", lambda: serving(b), timeout_s=30, interval_s=0.1)
        eventually(
            "B has the slices",
            lambda: sorted(s.name for s in b.list_slices()) == sorted(NAMES),
            timeout_s=30,
            interval_s=0.1,
        )
        sites = {s.site: s for s in b.topology_status().sites}
        assert sites[drained].drained, "B keeps the drain"
        eventually(
            "B's slices Ready",
            lambda: all(s.state == "Ready" for s in b.list_slices()),
            timeout_s=60,
            interval_s=0.1,
        )
        assert {s.name: sorted(_sites(s)) for s in b.list_slices()} == placed_by_a
        # The cluster holds what it held: nothing recreated, nothing moved back onto the drained site.
        assert _realised(server) == before
        after = {
            n: {c["type"]: c["lastTransitionTime"] for c in s["conditions"]}
            for n, s in _statuses(server).items()
        }
        assert after == times, "a hand-over rewrites no lastTransitionTime"
        lease = gw.get("Lease", "edgeslice-controller", "edgeslice-system")
        assert lease is not None and lease["spec"]["leaseTransitions"] == transitions + 1
        b.undrain(drained)
        eventually(
            "the undrain recorded in the cluster",
            lambda: (
                f"site.{drained}"
                not in (
                    (gw.get("ConfigMap", MAINTENANCE_CONFIGMAP, "edgeslice-system") or {}).get("data") or {}
                )
            ),
            timeout_s=30,
            interval_s=0.1,
        )
        # B keeps reconciling: a slice created now is realised by B.
        server.apply_yaml(yaml.safe_dump(crd_slice("fo-trams")))
        eventually(
            "B realised a new slice",
            lambda: (
                gw.get("Deployment", "v2x-edge-e1", "slice-fo-trams")
                or gw.get("Deployment", "v2x-edge-e2", "slice-fo-trams")
            ),
            timeout_s=30,
            interval_s=0.1,
        )
        procs[1].terminate()
        assert procs[1].wait(30) == 0
        assert holder() == ""  # released at shutdown
    finally:
        kubelet.close()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        kube_real.delete_slices(server, *NAMES, "fo-trams")
