"""Leader-elected controller processes on a real kube-apiserver: start one, get its client, ask
whether it serves (tests/e2e/test_kube_failover.py and bench/bench_kube.py's failover)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from controller.api.client import ApiClient
from slices import errors
from tests.support.controller_process import SLICECTL


def crd_slice(name: str, kind: str = "vehicle") -> dict[str, Any]:
    """A NetworkSlice object of ``kind`` covering c1 and c2 (SD from the name)."""
    sd = hashlib.sha256(name.encode()).hexdigest()[:6]
    sst = {"iot": 3, "vehicle": 4}[kind]
    return {
        "apiVersion": "edgeslice.io/v1alpha1",
        "kind": "NetworkSlice",
        "metadata": {"name": name},
        "spec": {"kind": kind, "snssai": {"sst": sst, "sd": sd}, "coverage": {"sites": ["c1", "c2"]}},
    }


def start_leader_elected(
    workdir: Path, city: Path, kubeconfig: Path, identity: str, lease_s: int = 2, retry_s: float = 0.2
) -> subprocess.Popen[bytes]:
    """``slicectl controller run --kube --intents crd --leader-elect`` as ``identity``, in ``workdir``
    (created; its log is controller.log there), without agents."""
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
        "--no-agents",
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
        str(lease_s),
        "--lease-retry",
        str(retry_s),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(workdir / "controller.log", "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env)


def client_when_up(workdir: Path, proc: subprocess.Popen[bytes]) -> ApiClient:
    """A client of the controller started in ``workdir``, once its address file is written (fails
    with its log if it exits first or takes over 60 s)."""
    path = workdir / "state" / "controller.addr"
    deadline = time.monotonic() + 60
    while not (path.exists() and path.read_text().strip()):
        assert proc.poll() is None, (workdir / "controller.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no address file"
        time.sleep(0.05)
    token = (workdir / "state" / "token").read_text().strip()
    return ApiClient(path.read_text().strip(), token, timeout_s=10)


def serving(client: ApiClient) -> bool:
    """Whether the controller answers its health check as SERVING (it does once it leads)."""
    try:
        return client.health("edgeslice.operator.v1.OperatorService") == "SERVING"
    except errors.Unavailable:
        return False
