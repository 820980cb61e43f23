"""KubeRealiser on a real kube-apiserver: every object applied with labels and site pinning, a
no-op re-apply changes no resourceVersion, re-placement prunes, removal deletes exactly what
edgeslice created (formerly tested against the emulator, which cannot do server-side apply merges
or namespace creation the way a real server does)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from controller.kube import gateway as kube_gateway
from controller.kube import manifests as kube_manifests
from controller.kube.realiser import KubeRealiser
from tests.support import kube_real
from tests.support.envtest import KubeApiServer
from tests.support.kube_fixtures import city, intent, placement


@pytest.fixture
def realiser(kube_apiserver: KubeApiServer) -> KubeRealiser:
    return KubeRealiser(kube_real.gateway(kube_apiserver), city())


def _ours(item: dict[str, Any]) -> str:
    """What edgeslice wrote of an object: its generation and edgeslice's managed fields (with
    their time). Not the resourceVersion: other controllers (deployment, quota) write the status."""
    meta = item["metadata"]
    mine = [
        m
        for m in meta.get("managedFields") or []
        if m.get("manager") == kube_gateway.FIELD_MANAGER and not m.get("subresource")
    ]
    return json.dumps([meta.get("generation"), mine], sort_keys=True)


def _versions(gw: kube_gateway.KubeGateway, ns: str) -> dict[tuple[str, str], str]:
    out = {}
    for kind in kube_manifests.KIND_ORDER[1:]:
        items, _ = gw.list(kind, ns, kube_manifests.slice_selector(ns.removeprefix("slice-")))
        for item in items:
            out[(kind, item["metadata"]["name"])] = _ours(item)
    namespace = gw.get("Namespace", ns)
    assert namespace is not None
    out[("Namespace", ns)] = _ours(namespace)
    return out


def _names(gw: kube_gateway.KubeGateway, kind: str, ns: str) -> set[str]:
    return {i["metadata"]["name"] for i in gw.list(kind, ns)[0]}


def test_apply_creates_every_object_with_labels_and_site_pinning(
    kube_apiserver: KubeApiServer, realiser: KubeRealiser
) -> None:
    slice_ = intent("r-apply")
    ns = "slice-r-apply"
    result = realiser.realise(slice_, placement(slice_, "e1"), generation=3)
    assert result.ok and result.reason == "Applied", result
    gw = kube_real.gateway(kube_apiserver)
    namespace = gw.get("Namespace", ns)
    assert namespace is not None
    labels = namespace["metadata"]["labels"]
    assert labels[kube_manifests.MANAGED_BY] == "edgeslice"
    assert labels[kube_manifests.SLICE_LABEL] == "r-apply"
    assert labels[kube_manifests.KIND_LABEL] == "vehicle"
    assert namespace["metadata"]["annotations"][kube_manifests.GENERATION_ANNOTATION] == "3"
    assert _names(gw, "ResourceQuota", ns) == {"edgeslice-quota"}
    assert _names(gw, "LimitRange", ns) == {"edgeslice-limits"}
    assert _names(gw, "NetworkPolicy", ns) == {"edgeslice-isolation"}
    dep = gw.get("Deployment", "v2x-edge-e1", ns)
    assert dep is not None
    term = dep["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "edgeslice.io/site", "operator": "In", "values": ["north-rack"]}
    assert dep["spec"]["replicas"] == 2
    assert _names(gw, "Service", ns) == {"v2x-edge-e1"}
    assert _names(gw, "PodDisruptionBudget", ns) == {"v2x-edge-e1"}
    quota = gw.get("ResourceQuota", "edgeslice-quota", ns)
    assert quota is not None
    # Two granted pods plus one surge pod; 4000m granted plus the surge pod's 2000m (the server
    # writes quantities in canonical form).
    assert quota["spec"]["hard"]["pods"] == "3"
    assert quota["spec"]["hard"]["requests.cpu"] == "6"
    # Every write of ours was a server-side apply under our own field manager.
    managers = {(e["manager"], e["operation"]) for e in dep["metadata"]["managedFields"]}
    assert ("edgeslice", "Apply") in managers


def test_reapply_changes_nothing(kube_apiserver: KubeApiServer, realiser: KubeRealiser) -> None:
    slice_ = intent("r-noop")
    assert realiser.realise(slice_, placement(slice_, "e1"), 1).ok
    gw = kube_real.gateway(kube_apiserver)
    before = _versions(gw, "slice-r-noop")
    sent = realiser.gateway.requests
    assert realiser.realise(slice_, placement(slice_, "e1"), 1).ok
    assert _versions(gw, "slice-r-noop") == before
    # Same desired set: one namespace read and one apply per object, nothing listed for pruning.
    assert realiser.gateway.requests - sent == 1 + len(before)


def test_replacement_moves_the_workloads_and_a_restarted_controller_prunes_leftovers(
    kube_apiserver: KubeApiServer, realiser: KubeRealiser
) -> None:
    slice_ = intent("r-move")
    ns = "slice-r-move"
    gw = kube_real.gateway(kube_apiserver)
    assert realiser.realise(slice_, placement(slice_, "e1"), 1).ok
    result = realiser.realise(slice_, placement(slice_, "e2"), 2)
    assert result.ok and "3 pruned" in result.message, result
    assert _names(gw, "Deployment", ns) == {"v2x-edge-e2"}
    assert _names(gw, "Service", ns) == {"v2x-edge-e2"}
    assert _names(gw, "PodDisruptionBudget", ns) == {"v2x-edge-e2"}
    restarted = KubeRealiser(kube_real.gateway(kube_apiserver), city())
    assert restarted.realise(slice_, placement(slice_, "e1", "e2"), 3).ok
    deps = {i["metadata"]["name"]: i["spec"]["replicas"] for i in gw.list("Deployment", ns)[0]}
    assert deps == {"v2x-edge-e1": 1, "v2x-edge-e2": 1}
    assert restarted.realise(slice_, placement(slice_, "e1"), 4).ok
    assert _names(gw, "Deployment", ns) == {"v2x-edge-e1"}


def test_remove_deletes_exactly_what_edgeslice_created(
    kube_apiserver: KubeApiServer, realiser: KubeRealiser
) -> None:
    slice_, other = intent("r-gone"), intent("r-stays")
    gw = kube_real.gateway(kube_apiserver)
    assert realiser.realise(slice_, placement(slice_, "e1"), 1).ok
    assert realiser.realise(other, placement(other, "e2"), 1).ok
    result = realiser.remove("r-gone")
    assert result.ok and result.message == "7 objects deleted", result
    # Without a controller-manager the namespace stays Terminating; it is being deleted.
    ns = gw.get("Namespace", "slice-r-gone")
    assert ns is None or ns["metadata"].get("deletionTimestamp")
    assert not gw.list("Deployment", "slice-r-gone")[0]
    assert _names(gw, "Deployment", "slice-r-stays") == {"v2x-edge-e2"}
    again = realiser.remove("r-gone")
    assert again.ok


def test_remove_keeps_a_namespace_edgeslice_did_not_create(
    kube_apiserver: KubeApiServer, realiser: KubeRealiser
) -> None:
    kube_apiserver.kubectl("create", "namespace", "slice-r-theirs")
    assert realiser.remove("r-theirs").ok
    gw = kube_real.gateway(kube_apiserver)
    ns = gw.get("Namespace", "slice-r-theirs")
    assert ns is not None and not ns["metadata"].get("deletionTimestamp")
