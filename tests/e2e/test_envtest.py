"""The envtest harness itself: a real kube-apiserver answers, RBAC applies to a ServiceAccount."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.envtest import ControlPlaneError, KubeApiServer
from tests.support.paths import ROOT


def test_namespace_created_and_listed(kube_apiserver: KubeApiServer) -> None:
    from kubernetes import client

    kube_apiserver.kubectl("create", "namespace", "envtest-harness")
    core = client.CoreV1Api(kube_apiserver.api_client())
    names = {ns.metadata.name for ns in core.list_namespace().items if ns.metadata}
    assert {"envtest-harness", "default", "kube-system"} <= names


def test_service_account_is_not_admin(kube_apiserver: KubeApiServer) -> None:
    sa = kube_apiserver.service_account("envtest-harness-sa", "nobody")
    assert sa.user == "system:serviceaccount:envtest-harness-sa:nobody"
    who = kube_apiserver.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", identity=sa)
    assert who.stdout == sa.user
    with pytest.raises(ControlPlaneError, match="forbidden"):
        kube_apiserver.kubectl("get", "namespaces", identity=sa)


def test_controller_manager_creates_default_service_accounts(kube_controller_manager: KubeApiServer) -> None:
    kube_controller_manager.kubectl("create", "namespace", "envtest-kcm")
    kube_controller_manager.kubectl(
        "wait",
        "--for=create",
        "serviceaccount/default",
        "-n",
        "envtest-kcm",
        "--timeout=60s",
    )


@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("true", "1 error")])
def test_missing_assets_skip_with_the_reason_except_under_ci(tmp_path: Path, ci: str, outcome: str) -> None:
    """Without binaries a real-Kubernetes test skips, naming what is missing; under CI it fails."""
    env = {**os.environ, "KUBEBUILDER_ASSETS": str(tmp_path), "CI": ci}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", f"{__file__}::test_namespace_created_and_listed"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode == 0) == (ci == ""), result.stdout
    assert outcome in result.stdout
    assert f"KUBEBUILDER_ASSETS={tmp_path}: no executable kube-apiserver there" in result.stdout
