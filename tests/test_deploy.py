"""deploy/: every manifest and chart rendering validates against current Kubernetes schemas."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "deploy" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_validate_script_passes_on_the_committed_deploy_folder() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "validate.py")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "objects checked against Kubernetes" in result.stdout and ": 0 invalid" in result.stdout


def test_validation_catches_a_broken_manifest() -> None:
    validate = _load("validate")
    bad = yaml.safe_load((ROOT / "deploy" / "controller.yaml").read_text())
    bad["spec"]["replicas"] = "two"
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullSecret"] = "typo"
    problems = validate._check(bad, "test", "1.37.0")
    assert len(problems) == 1 and "Deployment/edgeslice-controller" in problems[0]


def test_chart_renders_both_ways() -> None:
    helm = _load("helm_render")
    default = {(d["kind"], d["metadata"]["name"]) for d in helm.render_chart()}
    assert ("DaemonSet", "edgeslice-agent") not in default
    assert ("ConfigMap", "edgeslice-topology") in default
    assert ("CustomResourceDefinition", "networkslices.edgeslice.io") in default
    docs = helm.render_chart(["agent.enabled=true", "topology.existingConfigMap=city", "replicas=3"])
    kinds = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert ("DaemonSet", "edgeslice-agent") in kinds and ("ConfigMap", "edgeslice-topology") not in kinds
    dep = kinds[("Deployment", "edgeslice-controller")]
    assert dep["spec"]["replicas"] == 3
    pod = dep["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == "city"
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    # Probes go to the plaintext health port: the kubelet's gRPC probes speak no TLS.
    assert container["readinessProbe"]["grpc"]["port"] == 8081
    assert "--health-listen=0.0.0.0:8081" in container["args"]
    assert container["resources"]["limits"]["memory"] == "1Gi"


def test_renderer_refuses_templates_beyond_its_subset() -> None:
    helm = _load("helm_render")
    with pytest.raises(helm.TemplateError, match="unsupported function 'upper'"):
        helm.render_template("{{ .Values.x | upper }}", {"Values": {"x": "a"}})
    with pytest.raises(helm.TemplateError, match="if without end"):
        helm.render_template("{{ if .Values.x }}", {"Values": {"x": True}})


def test_rbac_grants_only_what_the_gateway_uses() -> None:
    from controller import kube_gateway

    docs = list(yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text()))
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    granted = {res for rule in role["rules"] for res in rule["resources"]}
    used = {rt.plural for rt in kube_gateway.RESOURCES.values() if rt.kind != "Lease"} | {
        "networkslices/status"
    }
    assert granted == used
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
