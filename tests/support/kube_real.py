"""Helpers for tests against the real kube-apiserver of ``tests/support/envtest.py``: gateways, the
CRD, and what a kubelet would do (there is none: Pods are marked Running and Ready through pods/status,
and the controller-manager computes the Deployment's Available from them)."""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import UTC, datetime
from typing import Any

from controller.kube import crd
from controller.kube import gateway as kube_gateway
from slices.status import ConditionStatus
from tests.support.envtest import KubeApiServer


def gateway(server: KubeApiServer, manager: str = "edgeslice") -> kube_gateway.KubeGateway:
    return kube_gateway.KubeGateway(server.api_client(), field_manager=manager, timeout_s=10)


def install_crd(server: KubeApiServer) -> None:
    """The NetworkSlice CRD, installed once per session and waited for (Established)."""
    server.apply_yaml(json.dumps(crd.crd()), "--force-conflicts")
    server.kubectl("wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}", "--timeout=60s")


def mark_pods_ready(server: KubeApiServer, namespace: str, selector: str = "") -> int:
    """Do what a kubelet would: every Pending Pod of ``namespace`` becomes Running and Ready."""
    gw = gateway(server, "fake-kubelet")
    pods, _ = gw.list("Pod", namespace, selector or None)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    marked = 0
    for pod in pods:
        status = pod.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        if ready or (pod["metadata"].get("deletionTimestamp")):
            continue
        containers = pod["spec"]["containers"]
        gw.patch(
            "Pod",
            pod["metadata"]["name"],
            {
                "status": {
                    "phase": "Running",
                    "conditions": [
                        {"type": t, "status": "True", "lastTransitionTime": now}
                        for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                    ],
                    "containerStatuses": [
                        {
                            "name": c["name"],
                            "image": c["image"],
                            "imageID": "",
                            "ready": True,
                            "started": True,
                            "restartCount": 0,
                            "state": {"running": {"startedAt": now}},
                        }
                        for c in containers
                    ],
                    "startTime": now,
                }
            },
            namespace,
            sub="status",
        )
        marked += 1
    return marked


def finish_terminating_pods(server: KubeApiServer, namespace: str) -> int:
    """Do what a kubelet does once a deleted Pod's containers stopped: remove it for good. Without
    this a deleted Pod stays Terminating for its grace period and still counts against the
    namespace's ResourceQuota, which no real cluster would show for that long."""
    gw = gateway(server, "fake-kubelet")
    pods, _ = gw.list("Pod", namespace)
    gone = 0
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            name = pod["metadata"]["name"]
            server.kubectl("delete", "pod", name, "-n", namespace, "--grace-period=0", "--force", check=False)
            gone += 1
    return gone


class FakeKubelet:
    """Marks every new Pod of some namespaces Ready, and removes deleted ones, in a thread, until
    closed (rollouts need their surge pods Ready for the deployment controller to go on)."""

    def __init__(self, server: KubeApiServer, *namespaces: str) -> None:
        self.server = server
        self.namespaces = list(namespaces)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for ns in list(self.namespaces):
                with contextlib.suppress(kube_gateway.KubeApiError):
                    mark_pods_ready(self.server, ns)
                    finish_terminating_pods(self.server, ns)
            self._stop.wait(0.3)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


class RecordingSink:
    """A stand-in for ControllerService.record_workloads: what the realiser reported, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, ConditionStatus, str, str]] = []

    def record_workloads(self, name: str, status: ConditionStatus, reason: str, message: str) -> None:
        with self.lock:
            self.calls.append((name, status, reason, message))

    def last(self, name: str) -> tuple[ConditionStatus, str, str] | None:
        with self.lock:
            for call in reversed(self.calls):
                if call[0] == name:
                    return call[1:]
        return None


def events_about(gw: kube_gateway.KubeGateway, namespace: str, name: str) -> list[dict[str, Any]]:
    items, _ = gw.list("Event", namespace)
    return [e for e in items if (e.get("regarding") or {}).get("name") == name]


def delete_slices(server: KubeApiServer, *names: str) -> None:
    """Remove test NetworkSlices for good, finalizers included (no controller may be running)."""
    for name in names:
        server.kubectl(
            "patch",
            "networkslice",
            name,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
        )
        server.kubectl("delete", "networkslice", name, "--wait=false", "--ignore-not-found", check=False)
