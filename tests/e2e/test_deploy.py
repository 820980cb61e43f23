"""deploy/: every manifest and chart rendering validates against current Kubernetes schemas."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import ROOT


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
    bad = _plain()[("Deployment", "edgeslice-controller")]
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


def _plain() -> dict[tuple[str, str], dict[str, Any]]:
    docs = yaml.safe_load_all((ROOT / "deploy" / "edgeslice.yaml").read_text())
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}


def _rules(role: dict[str, Any]) -> dict[str, set[str]]:
    """resource (group/plural) -> verbs."""
    out: dict[str, set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault(f"{group}/{resource}", set()).update(rule["verbs"])
    return out


def _applied_kinds() -> set[str]:
    """group/plural of every kind the controller renders for a slice (kube_manifests.render)."""
    import inspect

    from controller.kube import gateway as kube_gateway
    from controller.kube import manifests as kube_manifests
    from tests.support import kube_fixtures

    intent = kube_fixtures.intent()
    # render() grows arguments (generation, owners) as the realiser does; pass what it asks for.
    extra: dict[str, Any] = (
        {"generation": 1} if "generation" in inspect.signature(kube_manifests.render).parameters else {}
    )
    objects = kube_manifests.render(
        intent,
        kube_fixtures.placement(intent, "e1", "e2"),
        kube_fixtures.city(),
        kube_manifests.KubeSettings(),
        **extra,
    )
    out = set()
    for obj in objects:
        group = obj["apiVersion"].rsplit("/", 1)[0] if "/" in obj["apiVersion"] else ""
        out.add(f"{group}/{kube_gateway.RESOURCES[obj['kind']].plural}")
    return out


def test_controller_rbac_covers_what_it_applies_and_nothing_wider() -> None:
    plain = _plain()
    granted = _rules(plain[("ClusterRole", "edgeslice-controller")])
    owned = _applied_kinds()
    assert "/namespaces" in owned and "apps/deployments" in owned
    for kind in owned:
        assert granted[kind] == {"get", "list", "watch", "create", "patch", "delete"}, kind
    assert granted.pop("edgeslice.io/networkslices") == {"get", "list", "watch", "patch"}
    assert granted.pop("edgeslice.io/networkslices/status") == {"patch"}
    assert granted.pop("edgeslice.io/networkslices/finalizers") == {"update"}
    assert granted.pop("events.k8s.io/events") == {"create", "patch"}
    assert set(granted) == owned  # nothing else, cluster-wide
    from controller.kube import crd_source

    own = plain[("Role", "edgeslice-controller")]
    assert _rules(own) == {
        "coordination.k8s.io/leases": {"get", "create", "update"},
        "/configmaps": {"get", "patch", "create"},
    }
    named = [r for r in own["rules"] if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [crd_source.MAINTENANCE_CONFIGMAP],
            "verbs": ["get", "patch"],
        }
    ]
    assert _rules(plain[("ClusterRole", "edgeslice-agent")]) == {"/nodes": {"get"}}


def test_admission_policy_guards_exactly_the_kinds_the_controller_writes() -> None:
    from controller.kube import manifests as kube_manifests

    plain = _plain()
    policy = plain[("ValidatingAdmissionPolicy", "edgeslice-owned-objects-only")]
    guarded = {
        f"{group}/{resource}"
        for rule in policy["spec"]["matchConstraints"]["resourceRules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert guarded == _applied_kinds()
    text = yaml.safe_dump(policy)
    assert kube_manifests.MANAGED_BY in text and f"== '{kube_manifests.MANAGER}'" in text
    assert "system:serviceaccount:edgeslice-system:edgeslice-controller" in text
    binding = plain[("ValidatingAdmissionPolicyBinding", "edgeslice-owned-objects-only")]
    assert binding["spec"] == {"policyName": "edgeslice-owned-objects-only", "validationActions": ["Deny"]}


def test_plain_manifests_are_the_rendered_chart_and_check_catches_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = _load("gen_manifests")
    assert gen.main(["--check"]) == 0, "run python deploy/gen_manifests.py"
    stale = tmp_path / "edgeslice.yaml"
    stale.write_text(gen.render().replace("replicas: 2", "replicas: 3"))
    monkeypatch.setattr(gen, "TARGET", stale)
    assert gen.main(["--check"]) == 1
    assert "differs from the chart" in capsys.readouterr().err
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0


def test_selectors_are_identical_in_the_chart_and_the_plain_manifests() -> None:
    helm = _load("helm_render")
    chart = {(d["kind"], d["metadata"]["name"]): d for d in helm.render_chart(["agent.enabled=true"])}
    plain = _plain()
    for key in [("Deployment", "edgeslice-controller"), ("DaemonSet", "edgeslice-agent")]:
        assert plain[key]["spec"]["selector"] == chart[key]["spec"]["selector"], key
        labels = plain[key]["spec"]["template"]["metadata"]["labels"]
        assert plain[key]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = plain[("Service", "edgeslice-controller")]
    assert service["spec"]["selector"] == chart[("Service", "edgeslice-controller")]["spec"]["selector"]
    assert (
        service["spec"]["selector"]
        == plain[("Deployment", "edgeslice-controller")]["spec"]["selector"]["matchLabels"]
    )


def _container_args(kind: str, name: str, root: Path) -> list[str]:
    """The container's args as the kubelet passes them ($(VAR) from env), with every file they
    name created under ``root`` (click checks that files exist)."""
    container = _plain()[(kind, name)]["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in container  # the image's entry point: slicectl (deploy/Dockerfile)
    env = {e["name"]: f"<{e['name']}>" for e in container.get("env", [])}
    out: list[str] = []
    for raw in container["args"]:
        arg = raw
        for key, substitute in env.items():
            arg = arg.replace(f"$({key})", substitute)
        flag, _, value = arg.partition("=")
        if value.startswith("/etc/edgeslice/") and "{site}" not in value:
            path = root / value.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            arg = f"{flag}={path}"
        out.append(arg)
    return out


def test_the_agent_daemonset_runs_slicectl_agent_run_with_flags_it_takes(tmp_path: Path) -> None:
    import click

    from controller.cli import main

    assert 'ENTRYPOINT ["slicectl"]' in (ROOT / "deploy" / "Dockerfile").read_text()
    args = _container_args("DaemonSet", "edgeslice-agent", tmp_path)
    assert args[:2] == ["agent", "run"]
    assert "--site-from-node=<NODE_NAME>" in args and f"--tls-ca={tmp_path}/etc/edgeslice/tls/ca.crt" in args
    agent_group = main.commands["agent"]
    assert isinstance(agent_group, click.Group)
    run = agent_group.commands["run"]
    ctx = run.make_context("run", args[2:])  # parses, so every flag exists and takes its value
    assert ctx.params["node_name"] == "<NODE_NAME>" and ctx.params["site"] is None
    assert ctx.params["tls_cert"] == "/etc/edgeslice/tls/site-{site}.crt"
    assert ctx.params["target"] == "edgeslice-controller.edgeslice-system.svc:50052"


def test_the_controller_deployment_args_parse(tmp_path: Path) -> None:
    import click

    from controller.cli import main

    args = _container_args("Deployment", "edgeslice-controller", tmp_path)
    assert args[:2] == ["controller", "run"]
    group = main.commands["controller"]
    assert isinstance(group, click.Group)
    group.commands["run"].make_context("run", args[2:])


def test_the_secrets_the_pods_mount_are_the_ones_agent_certs_writes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from controller.cli import main

    out = tmp_path / "secrets.yaml"
    result = CliRunner().invoke(
        main,
        [
            "agent",
            "certs",
            "--dir",
            str(tmp_path / "pki"),
            "--site",
            "e1",
            "--site",
            "e2",
            "--secrets",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    secrets = {d["metadata"]["name"]: d for d in yaml.safe_load_all(out.read_text())}
    plain = _plain()
    mounted = {
        v["secret"]["secretName"]
        for key in [("Deployment", "edgeslice-controller"), ("DaemonSet", "edgeslice-agent")]
        for v in plain[key]["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
    }
    assert mounted == set(secrets)
    assert set(secrets["edgeslice-tls"]["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert set(secrets["edgeslice-agent-tls"]["data"]) == {
        "ca.crt",
        "site-e1.crt",
        "site-e1.key",
        "site-e2.crt",
        "site-e2.key",
    }
    assert all(d["metadata"]["namespace"] == "edgeslice-system" for d in secrets.values())
