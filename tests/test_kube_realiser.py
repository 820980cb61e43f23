"""KubeRealiser and KubeGateway: the official client over HTTP to the kmock-based emulator."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from controller import kube_gateway, kube_manifests
from controller.kube_realiser import KubeRealiser, build_kube_realiser
from tests.kube_emulator import KubeEmulator
from tests.kube_fixtures import city, gateway, intent, placement

NS = "slice-cars"


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    with KubeEmulator() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def realiser(emu: KubeEmulator, sleeps: list[float]) -> KubeRealiser:
    return KubeRealiser(gateway(emu.url, sleeps), city())


def _versions(emu: KubeEmulator) -> dict[tuple[str, str, str], str]:
    with emu._lock:
        return {(k[1], k[2], k[3]): v["metadata"]["resourceVersion"] for k, v in emu.objects.items()}


def test_apply_creates_every_object_with_labels_and_site_pinning(
    emu: KubeEmulator, realiser: KubeRealiser
) -> None:
    slice_ = intent()
    result = realiser.realise(slice_, placement(slice_, "e1"), generation=3)
    assert result.ok and result.reason == "Applied", result
    ns = emu.stored("namespaces")[NS]
    labels = ns["metadata"]["labels"]
    assert labels[kube_manifests.MANAGED_BY] == "edgeslice"
    assert labels[kube_manifests.SLICE_LABEL] == "cars"
    assert labels[kube_manifests.KIND_LABEL] == "vehicle"
    assert labels[kube_manifests.SNSSAI_LABEL] == "4"
    assert ns["metadata"]["annotations"][kube_manifests.GENERATION_ANNOTATION] == "3"
    assert set(emu.stored("resourcequotas", NS)) == {"edgeslice-quota"}
    assert set(emu.stored("limitranges", NS)) == {"edgeslice-limits"}
    assert set(emu.stored("networkpolicies", NS)) == {"edgeslice-isolation"}
    dep = emu.stored("deployments", NS)["v2x-edge-e1"]
    term = dep["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "edgeslice.io/site", "operator": "In", "values": ["north-rack"]}
    assert dep["spec"]["replicas"] == 2
    assert set(emu.stored("services", NS)) == {"v2x-edge-e1"}
    assert set(emu.stored("poddisruptionbudgets", NS)) == {"v2x-edge-e1"}
    quota = emu.stored("resourcequotas", NS)["edgeslice-quota"]["spec"]["hard"]
    assert quota["requests.cpu"] == "4000m" and quota["pods"] == "2"
    # Every write was a server-side apply under our own field manager.
    patches = [(m, p) for m, p in emu.requests if m == "PATCH"]
    assert len(patches) == 7
    assert {mgr for (_, mgr) in emu.applied} == {"edgeslice"}


def test_reapply_changes_nothing(emu: KubeEmulator, realiser: KubeRealiser) -> None:
    slice_ = intent()
    realiser.realise(slice_, placement(slice_, "e1"), 1)
    before = _versions(emu)
    gets = emu.count("GET")
    assert realiser.realise(slice_, placement(slice_, "e1"), 1).ok
    assert _versions(emu) == before
    assert emu.count("GET") == gets  # same desired set: nothing to list for pruning


def test_a_restarted_controller_prunes_leftovers(emu: KubeEmulator, realiser: KubeRealiser) -> None:
    slice_ = intent()
    realiser.realise(slice_, placement(slice_, "e1"), 1)
    restarted = KubeRealiser(gateway(emu.url), city())
    assert restarted.realise(slice_, placement(slice_, "e2"), 2).ok
    assert set(emu.stored("deployments", NS)) == {"v2x-edge-e2"}


def test_replacement_moves_the_workloads(emu: KubeEmulator, realiser: KubeRealiser) -> None:
    slice_ = intent()
    realiser.realise(slice_, placement(slice_, "e1"), 1)
    result = realiser.realise(slice_, placement(slice_, "e2"), 2)
    assert result.ok and "3 pruned" in result.message
    assert set(emu.stored("deployments", NS)) == {"v2x-edge-e2"}
    assert set(emu.stored("services", NS)) == {"v2x-edge-e2"}
    assert set(emu.stored("poddisruptionbudgets", NS)) == {"v2x-edge-e2"}
    dep = emu.stored("deployments", NS)["v2x-edge-e2"]
    values = dep["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
    assert values == ["e2"]  # no nodeLabel in the topology: the site id


def test_split_placement_gets_one_deployment_per_site(emu: KubeEmulator, realiser: KubeRealiser) -> None:
    slice_ = intent()
    assert realiser.realise(slice_, placement(slice_, "e1", "e2"), 1).ok
    deps = emu.stored("deployments", NS)
    assert set(deps) == {"v2x-edge-e1", "v2x-edge-e2"}
    assert [d["spec"]["replicas"] for d in deps.values()] == [1, 1]


def test_drift_is_repaired(emu: KubeEmulator, realiser: KubeRealiser) -> None:
    slice_ = intent()
    realiser.realise(slice_, placement(slice_, "e1"), 1)
    hand = gateway(emu.url)  # a person with kubectl
    assert hand.delete("NetworkPolicy", "edgeslice-isolation", NS)
    hand._request(
        "PATCH",
        kube_gateway.RESOURCES["Deployment"].path(NS, "v2x-edge-e1"),
        body={"spec": {"replicas": 9}, "metadata": {"labels": {"owner": "bob"}}},
        content_type="application/merge-patch+json",
    )
    assert emu.stored("deployments", NS)["v2x-edge-e1"]["spec"]["replicas"] == 9
    assert realiser.realise(slice_, placement(slice_, "e1"), 1).ok
    assert set(emu.stored("networkpolicies", NS)) == {"edgeslice-isolation"}
    dep = emu.stored("deployments", NS)["v2x-edge-e1"]
    assert dep["spec"]["replicas"] == 2
    assert dep["metadata"]["labels"]["owner"] == "bob"  # fields we do not own are left alone


def test_remove_deletes_exactly_what_edgeslice_created(emu: KubeEmulator, realiser: KubeRealiser) -> None:
    slice_ = intent()
    other = intent("fleet")
    realiser.realise(slice_, placement(slice_, "e1"), 1)
    realiser.realise(other, placement(other, "e2"), 1)
    hand = gateway(emu.url)
    foreign = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "debug", "namespace": NS, "labels": {"app": "debug"}},
        "spec": {"replicas": 1},
    }
    hand.create(foreign)
    # A foreign object in the namespace survives realise (not ours to prune) ...
    assert realiser.realise(slice_, placement(slice_, "e1"), 1).ok
    assert "debug" in emu.stored("deployments", NS)
    result = realiser.remove("cars")
    assert result.ok and result.message == "7 objects deleted", result
    assert set(emu.stored("deployments", NS)) == {"debug"}
    assert not emu.stored("services", NS) and not emu.stored("resourcequotas", NS)
    assert NS not in emu.stored("namespaces")
    # ... and the other slice is untouched.
    assert set(emu.stored("deployments", "slice-fleet")) == {"v2x-edge-e2"}
    # Removing again is a no-op, not an error.
    again = realiser.remove("cars")
    assert again.ok and again.message == "0 objects deleted"


def test_remove_keeps_a_namespace_edgeslice_did_not_create(emu: KubeEmulator, realiser: KubeRealiser) -> None:
    gateway(emu.url).apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    assert realiser.remove("cars").ok
    assert NS in emu.stored("namespaces")


def test_conflicts_and_throttling_are_retried_with_backoff(
    emu: KubeEmulator, realiser: KubeRealiser, sleeps: list[float]
) -> None:
    slice_ = intent()
    emu.fail("PATCH", "/deployments/", 409, times=2, message="conflict")
    emu.fail("PATCH", "/resourcequotas/", 429, times=1, message="slow down", retry_after="1")
    emu.fail("PATCH", "/limitranges/", 503, times=1, message="etcd leader changed")
    result = realiser.realise(slice_, placement(slice_, "e1"), 1)
    assert result.ok, result
    assert sleeps == [1.0, 0.1, 0.1, 0.2]  # Retry-After honoured; exponential otherwise
    assert "v2x-edge-e1" in emu.stored("deployments", NS)


def test_persistent_throttling_gives_up_with_the_reason(emu: KubeEmulator, realiser: KubeRealiser) -> None:
    slice_ = intent()
    emu.fail("PATCH", "/namespaces/slice-cars", 429, times=10, message="too many requests, try later")
    result = realiser.realise(slice_, placement(slice_, "e1"), 1)
    assert (result.ok, result.reason) == (False, "Throttled")
    assert "too many requests" in result.message


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        (403, "Forbidden", 'deployments.apps is forbidden: User "edgeslice" cannot patch resource'),
        (422, "Invalid", 'Deployment.apps "v2x-edge-e1" is invalid: spec.replicas: Invalid value: -1'),
    ],
)
def test_forbidden_and_invalid_surface_the_server_message(
    emu: KubeEmulator, realiser: KubeRealiser, status: int, reason: str, message: str
) -> None:
    slice_ = intent()
    emu.fail("PATCH", "/deployments/", status, times=1, message=message)
    result = realiser.realise(slice_, placement(slice_, "e1"), 1)
    assert (result.ok, result.reason, result.message) == (False, reason, message)
    assert emu.count("PATCH") == 5  # not retried: namespace, quota, limits, policy, deployment


def test_not_found_is_an_answer_not_an_error(emu: KubeEmulator) -> None:
    gw = gateway(emu.url)
    assert gw.get("Deployment", "nope", "nowhere") is None
    assert gw.delete("Deployment", "nope", "nowhere") is False
    with pytest.raises(kube_gateway.KubeApiError) as info:
        gw.replace(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "y"}}
        )
    assert info.value.reason == "NotFound"


def test_unreachable_api_server_is_reported_and_nothing_is_lost(sleeps: list[float]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    realiser = KubeRealiser(gateway(f"http://127.0.0.1:{port}", sleeps), city())
    slice_ = intent()
    result = realiser.realise(slice_, placement(slice_, "e1"), 1)
    assert (result.ok, result.reason) == (False, "Unreachable")
    assert f"127.0.0.1:{port}" in result.message
    assert len(sleeps) == 3  # retried with backoff before giving up
    # The same realiser works once a server is there (the service retries on the next reconcile).
    with KubeEmulator() as emu:
        realiser.gateway = gateway(emu.url)
        assert realiser.realise(slice_, placement(slice_, "e1"), 1).ok


def test_build_kube_realiser_from_a_kubeconfig(emu: KubeEmulator, tmp_path: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: other\n"
        f"clusters: [{{name: emu, cluster: {{server: '{emu.url}'}}}}]\n"
        "users: [{name: me, user: {token: secret-token}}]\n"
        "contexts: [{name: emu, context: {cluster: emu, user: me}}, {name: other, context: {cluster: emu, user: me}}]\n"
    )
    realiser = build_kube_realiser(city(), str(cfg), "emu", node_label_key="topology.example.com/site")
    slice_ = intent()
    assert realiser.realise(slice_, placement(slice_, "e1"), 1).ok
    dep = emu.stored("deployments", NS)["v2x-edge-e1"]
    key = dep["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"][0]["matchExpressions"][0]["key"]
    assert key == "topology.example.com/site"


def test_a_missing_kubeconfig_is_one_clear_error(tmp_path: object) -> None:
    from slices import errors

    with pytest.raises(errors.InvalidSpec, match="--kube: cannot load kubeconfig /nonexistent"):
        build_kube_realiser(city(), "/nonexistent/kubeconfig")
