"""Pure manifest rendering, the manifest-folder realiser and `slicectl slice manifests`."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from controller.cli import manifests_cmd
from controller.kube import manifest_folder
from controller.kube import manifests as kube_manifests
from controller.kube.manifests import KubeSettings, render
from slices import errors
from slices.profiles import default_sd
from tests.support.kube_fixtures import city, intent, placement

K8S_VERSION = "1.35.0"


def _by_kind(manifests: list[kube_manifests.Manifest]) -> dict[str, list[kube_manifests.Manifest]]:
    out: dict[str, list[kube_manifests.Manifest]] = {}
    for m in manifests:
        out.setdefault(m["kind"], []).append(m)
    return out


def test_rendering_is_deterministic_and_every_object_is_labelled() -> None:
    s = intent()
    a = render(s, placement(s, "e1", "e2"), city(), KubeSettings(), 1)
    b = render(s, placement(s, "e1", "e2"), city(), KubeSettings(), 1)
    assert a == b
    for m in a:
        labels = m["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "edgeslice"
        assert labels["edgeslice.io/slice"] == "cars"
        assert labels["edgeslice.io/kind"] == "vehicle"
        assert labels["edgeslice.io/snssai"] == f"4-{default_sd('cars')}"  # no snssai.sd: the default SD
        if m["kind"] != "Namespace":
            assert m["metadata"]["namespace"] == "slice-cars"


def test_every_rendered_manifest_is_valid_for_a_current_kubernetes() -> None:
    for kind in ("vehicle", "iot", "wifi"):
        s = intent(kind=kind)
        for m in render(s, placement(s, "e1", "e2"), city(), KubeSettings(), 1):
            kubernetes_validate.validate(m, K8S_VERSION, strict=True)


def test_quota_is_the_granted_compute_plus_one_surge_pod_per_deployment_and_pods_are_pinned() -> None:
    s = intent()
    placed = placement(s, "e1", "e2")
    kinds = _by_kind(render(s, placed, city(), KubeSettings(node_label_key="example.com/rack"), 1))
    hard = kinds["ResourceQuota"][0]["spec"]["hard"]
    # Issue 12: an exact-sum quota refused the rolling update's surge pod forever. Each Deployment
    # surges by one pod and never drops below its replicas; the quota leaves room for that pod.
    (workload,) = s.workloads
    deployments = kinds["Deployment"]
    assert len(deployments) == 2
    for dep in deployments:
        assert dep["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }
    granted_cpu = sum(e.cpu_millicores for e in placed.edges)
    granted_mem = sum(e.memory_mib for e in placed.edges)
    assert hard["requests.cpu"] == f"{granted_cpu + 2 * workload.cpu_millicores}m"
    assert hard["requests.memory"] == f"{granted_mem + 2 * workload.memory_mib}Mi"
    assert hard["pods"] == "4"  # two replicas granted, one surge pod for each of the two Deployments
    pins = {}
    for dep in kinds["Deployment"]:
        term = dep["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"][0]["matchExpressions"][0]
        assert term["key"] == "example.com/rack"
        pins[dep["metadata"]["name"]] = term["values"]
    assert pins == {"v2x-edge-e1": ["north-rack"], "v2x-edge-e2": ["e2"]}


def test_network_policy_denies_by_default_and_allows_the_slice_and_controller() -> None:
    s = intent()
    policy = _by_kind(render(s, placement(s, "e1"), city(), KubeSettings(controller_namespace="ops"), 1))[
        "NetworkPolicy"
    ][0]["spec"]
    assert policy["podSelector"] == {} and policy["policyTypes"] == ["Ingress", "Egress"]
    peers = policy["ingress"][0]["from"]
    assert {"podSelector": {}} in peers
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}} in peers


def test_only_vehicle_slices_get_disruption_budgets_and_only_ported_workloads_services() -> None:
    iot = intent("meters", "iot")  # mqtt: no port
    kinds = _by_kind(render(iot, placement(iot, "e1"), city(), KubeSettings(), 1))
    assert "PodDisruptionBudget" not in kinds and "Service" not in kinds
    cars = intent()
    kinds = _by_kind(render(cars, placement(cars, "e1"), city(), KubeSettings(), 1))
    assert [p["spec"]["minAvailable"] for p in kinds["PodDisruptionBudget"]] == [1]


def test_odd_site_ids_become_valid_names() -> None:
    assert kube_manifests.dns_name("cache", "Edge_North.1") == kube_manifests.dns_name(
        "cache", "Edge_North.1"
    )
    name = kube_manifests.dns_name("a" * 40, "b" * 40)
    assert len(name) == 63 and kube_manifests.dns_name("a" * 40, "c" * 40) != name


def test_manifest_folder_is_idempotent_follows_replacement_and_removes(tmp_path: Path) -> None:
    folder = manifest_folder.ManifestFolder(tmp_path / "manifests", city())
    s = intent()
    assert folder.realise(s, placement(s, "e1"), 1).ok
    first = folder.writes
    files = sorted(p.name for p in (tmp_path / "manifests" / "cars").iterdir())
    assert files[0] == "01-namespace-slice-cars.yaml" and "05-deployment-v2x-edge-e1.yaml" in files
    assert folder.realise(s, placement(s, "e1"), 1).ok and folder.writes == first  # nothing rewritten
    assert folder.realise(s, placement(s, "e2"), 2).ok
    files = sorted(p.name for p in (tmp_path / "manifests" / "cars").iterdir())
    assert "05-deployment-v2x-edge-e2.yaml" in files and not any("e1" in f for f in files)
    other = intent("fleet")
    folder.realise(other, placement(other, "e1"), 1)
    assert folder.remove("cars").ok
    assert not (tmp_path / "manifests" / "cars").exists() and (tmp_path / "manifests" / "fleet").exists()
    assert folder.remove("cars").ok  # already gone: fine


def test_slicectl_slice_manifests_prints_what_would_be_applied(tmp_path: Path) -> None:
    folder = manifest_folder.ManifestFolder(tmp_path / "manifests", city())
    s = intent()
    folder.realise(s, placement(s, "e1"), 1)
    result = CliRunner().invoke(manifests_cmd.manifests, ["cars", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    assert [d["kind"] for d in docs][:2] == ["Namespace", "ResourceQuota"]
    assert docs == render(s, placement(s, "e1"), city(), KubeSettings(), 1)


def test_manifests_of_an_unplaced_slice_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(errors.NotFound, match="slice 'ghost': no manifests rendered in"):
        manifest_folder.read_manifests(tmp_path, "ghost")
    with pytest.raises(errors.InvalidSpec, match="not a DNS label"):
        manifest_folder.read_manifests(tmp_path, "../etc")
