"""deploy/ on a real kube-apiserver: every object passes a server-side dry-run and then applies (the
Pods stay Pending: there is no kubelet); the chart applies over the plain install; the agent
resolves its site from its node as the agent's ServiceAccount; and the ValidatingAdmissionPolicy
confines the controller's ServiceAccount to what edgeslice owns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from controller.cli import agent_cmd, main
from controller.kube import manifests as kube_manifests
from tests.support import kube_fixtures
from tests.support.envtest import ControlPlaneError, Identity, KubeApiServer
from tests.support.paths import ROOT
from tests.support.waiting import eventually

DEPLOY = ROOT / "deploy"
NS = "edgeslice-system"
CONTROLLER_SA = "edgeslice-controller"
AGENT_SA = "edgeslice-agent"
OWNED = {kube_manifests.MANAGED_BY: kube_manifests.MANAGER}


def _plain_files() -> list[Path]:
    return [
        DEPLOY / "crd" / "networkslices.edgeslice.io.yaml",
        DEPLOY / "namespace.yaml",
        DEPLOY / "edgeslice.yaml",
    ]


def _documents(path: Path) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def installed(
    kube_apiserver: KubeApiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeApiServer]:
    """The plain install as deploy/README.md describes it: CRD, namespace, the Secrets made by
    `slicectl agent certs --secrets`, the topology ConfigMap, then deploy/edgeslice.yaml."""
    server = kube_apiserver
    work = tmp_path_factory.mktemp("deploy")
    # Server-side dry-run of every object first: the CRD and namespace must exist for the rest
    # to be checked for real, so they are dry-run, applied, then the others dry-run.
    crd_file, namespace_file, main_file = _plain_files()
    for path in (crd_file, namespace_file):
        server.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", str(path))
        server.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    server.kubectl("wait", "--for=condition=Established", "crd/networkslices.edgeslice.io", "--timeout=60s")
    secrets = work / "secrets.yaml"
    result = CliRunner().invoke(
        main,
        [
            "agent",
            "certs",
            "--dir",
            str(work / "pki"),
            "--all",
            "--topology",
            str(_city_file(work)),
            "--host",
            f"edgeslice-controller.{NS}.svc",
            "--secrets",
            str(secrets),
        ],
    )
    assert result.exit_code == 0, result.output
    configmap = server.kubectl(
        "create",
        "configmap",
        "edgeslice-topology",
        "-n",
        NS,
        f"--from-file=topology.yaml={_city_file(work)}",
        "--dry-run=client",
        "-o",
        "yaml",
    ).stdout
    for text in (secrets.read_text(), configmap, main_file.read_text()):
        dry = server.apply_yaml(text, "--force-conflicts", "--dry-run=server")
        assert "serverside-applied (server dry run)" in dry
        server.apply_yaml(text, "--force-conflicts")
    yield server
    # Leave the shared server as other modules expect it: no admission policy, no workloads.
    for kind, name in [
        ("validatingadmissionpolicybinding", "edgeslice-owned-objects-only"),
        ("validatingadmissionpolicy", "edgeslice-owned-objects-only"),
    ]:
        server.kubectl("delete", kind, name, "--ignore-not-found")
    server.kubectl(
        "delete",
        "-n",
        NS,
        "deployment/edgeslice-controller",
        "daemonset/edgeslice-agent",
        "--ignore-not-found",
    )


def _city_file(folder: Path) -> Path:
    path = folder / "city.yaml"
    if not path.exists():
        path.write_text(yaml.safe_dump(kube_fixtures.CITY_DOCUMENT))
    return path


def test_every_rendered_object_is_applied(installed: KubeApiServer) -> None:
    for path in _plain_files():
        for doc in _documents(path):
            meta = doc["metadata"]
            assert isinstance(meta, dict)
            where = ["-n", str(meta["namespace"])] if "namespace" in meta else []
            found = installed.kubectl(
                "get", f"{doc['kind']}/{meta['name']}", *where, "-o", "name", check=False
            )
            assert found.returncode == 0, f"{doc['kind']}/{meta['name']}: {found.stderr}"
    # The secrets the pods mount exist (no kubelet runs them, but nothing is left dangling).
    for name in ("edgeslice-tls", "edgeslice-agent-tls"):
        installed.kubectl("get", "secret", name, "-n", NS)


def test_the_chart_applies_over_the_plain_install(installed: KubeApiServer) -> None:
    """Same selectors, so a chart upgrade over a plain install is not refused as immutable."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("helm_render", DEPLOY / "helm_render.py")
    assert spec is not None and spec.loader is not None
    helm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helm)
    docs = [
        d
        for d in helm.render_chart(
            ["agent.enabled=true", "topology.existingConfigMap=edgeslice-topology", "replicas=1"]
        )
        if d["kind"] != "CustomResourceDefinition"
    ]
    out = installed.apply_yaml(yaml.safe_dump_all(docs), "--force-conflicts")
    assert "deployment.apps/edgeslice-controller serverside-applied" in out
    replicas = installed.kubectl(
        "get", "deployment", "edgeslice-controller", "-n", NS, "-o", "jsonpath={.spec.replicas}"
    ).stdout
    assert replicas == "1"
    installed.apply_yaml((DEPLOY / "edgeslice.yaml").read_text(), "--force-conflicts")


# --- the agent: its site from its node ------------------------------------------------------------


def _agent(installed: KubeApiServer) -> Identity:
    return installed.service_account(NS, AGENT_SA, create=False)


def test_the_agent_reads_its_site_from_its_node_as_its_service_account(
    installed: KubeApiServer, tmp_path: Path
) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "rack-7", "labels": {"edgeslice.io/site": "north-rack"}},
    }
    installed.apply_yaml(json.dumps(node))
    agent = _agent(installed)
    city = _city_file(tmp_path)
    # kube_fixtures' edge site e1 has nodeLabel north-rack; e2 has none (its id is its label).
    assert agent_cmd.site_from_node("rack-7", "edgeslice.io/site", str(agent.kubeconfig), str(city)) == "e1"
    installed.kubectl("label", "node", "rack-7", "edgeslice.io/site=e2", "--overwrite")
    assert agent_cmd.site_from_node("rack-7", "edgeslice.io/site", str(agent.kubeconfig), str(city)) == "e2"
    assert agent_cmd.site_from_node("rack-7", "edgeslice.io/site", str(agent.kubeconfig), None) == "e2"
    # That is all it may do: one node by name, no listing.
    assert (
        installed.kubectl("auth", "can-i", "list", "nodes", identity=agent, check=False).stdout.strip()
        == "no"
    )
    assert (
        installed.kubectl(
            "auth", "can-i", "get", "secrets", "-n", NS, identity=agent, check=False
        ).stdout.strip()
        == "no"
    )


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, "--site-from-node: node 'rack-8' has no label edgeslice.io/site"),
        (
            {"edgeslice.io/site": "south-rack"},
            "has edgeslice.io/site=south-rack, the nodeLabel of no edge site",
        ),
    ],
)
def test_agent_run_says_in_one_line_why_a_node_gives_no_site(
    installed: KubeApiServer, tmp_path: Path, labels: dict[str, str], expected: str
) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "rack-8", "labels": labels}}
    installed.kubectl("delete", "node", "rack-8", "--ignore-not-found")
    installed.apply_yaml(json.dumps(node))
    agent = _agent(installed)
    args = ["agent", "run", "--site-from-node", "rack-8", "--kubeconfig", str(agent.kubeconfig)]
    args += ["--topology", str(_city_file(tmp_path)), "--controller", "127.0.0.1:1", "--insecure"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert expected in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


# --- least privilege: the ValidatingAdmissionPolicy --------------------------------------------------


def _controller(installed: KubeApiServer) -> Identity:
    return installed.service_account(NS, CONTROLLER_SA, create=False)


def _deployment(namespace: str, labels: dict[str, str]) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace, "labels": labels},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        }
    )


def _as(installed: KubeApiServer, who: Identity, *args: str, input: str | None = None) -> tuple[bool, str]:
    result = installed.kubectl(*args, identity=who, input=input, check=False)
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def _create_deployment(
    installed: KubeApiServer, who: Identity, namespace: str, labels: dict[str, str]
) -> tuple[bool, str]:
    """Whether ``who`` may create a Deployment with ``labels`` in ``namespace`` (server dry run)."""
    return _as(installed, who, "create", "--dry-run=server", "-f", "-", input=_deployment(namespace, labels))


@pytest.fixture(scope="module")
def policy_active(installed: KubeApiServer) -> Identity:
    """The controller's identity once the policy is enforced (the apiserver loads a new policy
    asynchronously: wait until it refuses the first thing it must refuse)."""
    installed.kubectl("create", "namespace", "team-a")
    controller = _controller(installed)
    deadline = time.monotonic() + 60
    while True:
        ok, said = _as(installed, controller, "delete", "namespace", "team-a", "--dry-run=server")
        if not ok and "edgeslice-owned-objects-only" in said:
            return controller
        assert time.monotonic() < deadline, f"the admission policy never took effect: {said}"
        time.sleep(0.2)


def test_rbac_alone_would_let_the_controller_delete_a_users_namespace(installed: KubeApiServer) -> None:
    """Why the policy is needed: RBAC cannot name 'namespaces edgeslice created'."""
    controller = _controller(installed)
    out = installed.kubectl("auth", "can-i", "delete", "namespaces", identity=controller, check=False)
    assert out.stdout.strip() == "yes"


def test_the_controller_cannot_delete_a_namespace_it_did_not_create(
    installed: KubeApiServer, policy_active: Identity
) -> None:
    ok, said = _as(installed, policy_active, "delete", "namespace", "team-a", "--dry-run=server")
    assert not ok
    assert "may not modify or delete an object it did not create" in said
    installed.kubectl("get", "namespace", "team-a")  # still there


def test_the_controller_cannot_create_a_deployment_in_a_users_namespace(
    installed: KubeApiServer, policy_active: Identity
) -> None:
    # Labelled as edgeslice's or not, a Deployment in team-a is refused: team-a is not edgeslice's.
    for labels in ({}, OWNED):
        ok, said = _create_deployment(installed, policy_active, "team-a", labels)
        assert not ok, labels
        assert "edgeslice-owned-objects-only" in said


def test_the_controller_cannot_adopt_a_users_namespace_by_labelling_it(
    installed: KubeApiServer, policy_active: Identity
) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": OWNED}}
    ok, said = _as(
        installed,
        policy_active,
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=edgeslice",
        "-f",
        "-",
        input=json.dumps(namespace),
    )
    assert not ok
    assert "may not modify or delete an object it did not create" in said
    labels = installed.kubectl("get", "namespace", "team-a", "-o", "jsonpath={.metadata.labels}").stdout
    assert kube_manifests.MANAGED_BY not in labels


def test_the_controller_may_do_its_work_in_what_it_owns(
    installed: KubeApiServer, policy_active: Identity
) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "slice-vap-check", "labels": OWNED}}
    apply = ("apply", "--server-side", "--field-manager=edgeslice", "-f", "-")
    ok, said = _as(installed, policy_active, *apply, input=json.dumps(ns))
    assert ok, said
    ok, said = _as(installed, policy_active, *apply, input=_deployment("slice-vap-check", OWNED))
    assert ok, said
    ok, said = _as(
        installed,
        policy_active,
        "patch",
        "deployment",
        "web",
        "-n",
        "slice-vap-check",
        "--type=merge",
        "-p",
        '{"spec": {"replicas": 2}}',
    )
    assert ok, said
    ok, said = _as(
        installed, policy_active, "label", "namespace", "slice-vap-check", "edgeslice.io/slice=vap-check"
    )
    assert ok, said
    # Not even in its own namespace may it write an object without its label.
    ok, said = _create_deployment(installed, policy_active, "slice-vap-check", {})
    assert not ok and "may only create or modify objects labelled" in said
    # Nor strip its label from an object (the object would leave its control unseen).
    ok, said = _as(
        installed,
        policy_active,
        "label",
        "deployment",
        "web",
        "-n",
        "slice-vap-check",
        f"{kube_manifests.MANAGED_BY}-",
    )
    assert not ok and "may only create or modify objects labelled" in said
    ok, said = _as(installed, policy_active, "delete", "deployment", "web", "-n", "slice-vap-check")
    assert ok, said
    ok, said = _as(installed, policy_active, "delete", "namespace", "slice-vap-check", "--dry-run=server")
    assert ok, said


def test_the_policy_leaves_other_users_alone(installed: KubeApiServer, policy_active: Identity) -> None:
    """It matches the controller's ServiceAccount only: the admin still writes in team-a."""
    installed.kubectl("create", "--dry-run=server", "-f", "-", input=_deployment("team-a", {}))
    with pytest.raises(ControlPlaneError, match="forbidden"):
        # And the controller's ServiceAccount has no RBAC for what it does not manage at all.
        installed.kubectl("get", "secrets", "-n", "team-a", identity=policy_active)


def test_the_realiser_works_as_the_deployed_service_account_with_no_403(
    installed: KubeApiServer, policy_active: Identity
) -> None:
    """What deploy/ grants is enough: realise, repair drift through the watch, and remove a slice
    as the controller's ServiceAccount, under the admission policy, without one refusal."""
    import threading

    from controller.kube import crd_source
    from controller.kube import gateway as kube_gateway
    from controller.kube.realiser import KubeRealiser
    from tests.support import kube_real

    gw = kube_gateway.KubeGateway(installed.api_client(policy_active), timeout_s=10)
    realiser = KubeRealiser(
        gw, kube_fixtures.city(), events=kube_gateway.EventRecorder(gw, "test"), resync_s=5
    )
    stop = threading.Event()
    realiser.start(stop)
    try:
        slice_ = kube_fixtures.intent("vap-run")
        result = realiser.realise(slice_, kube_fixtures.placement(slice_, "e1"), 1)
        assert result.ok, result
        ns = "slice-vap-run"
        admin = kube_real.gateway(installed, "someone-else")
        before = admin.get("Deployment", "v2x-edge-e1", ns)
        assert before is not None
        installed.kubectl("delete", "deployment", "v2x-edge-e1", "-n", ns)
        eventually(
            "the Deployment recreated by the controller's ServiceAccount",
            lambda: (
                (d := admin.get("Deployment", "v2x-edge-e1", ns)) is not None
                and d["metadata"]["uid"] != before["metadata"]["uid"]
            ),
            timeout_s=30,
            interval_s=0.1,
        )
        assert realiser.remove(slice_.name).ok
        # Drains are kept in the controller's namespace (ConfigMap edgeslice-maintenance).
        maintenance = crd_source.ClusterMaintenance(gw, NS)
        maintenance.record("site", "e1", True, "test")
        maintenance.record("site", "e2", True, "test")
        maintenance.record("site", "e1", False, "test")
        assert set(maintenance.drained()) == {"site.e2"}
    finally:
        stop.set()
        realiser.stop()
        # Other modules' controllers use this namespace: leave no drain behind.
        installed.kubectl(
            "delete", "configmap", crd_source.MAINTENANCE_CONFIGMAP, "-n", NS, "--ignore-not-found"
        )
    codes = {code for (_verb, _resource, code) in gw.metrics.snapshot()}
    assert gw.metrics.snapshot() and "403" not in codes, gw.metrics.snapshot()
