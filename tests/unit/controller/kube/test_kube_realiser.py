"""KubeRealiser and KubeGateway against the kmock-based emulator, for what it does faithfully and
the real server cannot be made to do: injected 409/429/5xx/403/422 answers, an unreachable
server, kubeconfig loading. What the realiser does to a cluster (apply, prune, remove, ownership,
drift) is tested on the real kube-apiserver in ``tests/e2e/test_kube_realiser_real.py`` and
``tests/integration/test_kube_drift.py``."""

from __future__ import annotations

import socket

import pytest

from controller.kube import gateway as kube_gateway
from controller.kube import manifests as kube_manifests
from controller.kube.realiser import KubeRealiser, build_kube_realiser
from tests.support.kube_emulator import KubeEmulator
from tests.support.kube_fixtures import city, gateway, intent, placement

NS = "slice-cars"


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _namespace_made_earlier(emu: KubeEmulator, name: str = "cars") -> None:
    """The slice's namespace as an earlier edgeslice term created it (the emulator cannot serve a
    plain create of a namespace, which is how the realiser makes new ones)."""
    gateway(emu.url).apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": f"slice-{name}",
                "labels": {kube_manifests.MANAGED_BY: "edgeslice", kube_manifests.SLICE_LABEL: name},
            },
        }
    )


@pytest.fixture
def realiser(emu: KubeEmulator, sleeps: list[float]) -> KubeRealiser:
    _namespace_made_earlier(emu)
    return KubeRealiser(gateway(emu.url, sleeps), city())


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
    assert (
        emu.count("PATCH") == 6
    )  # not retried: earlier namespace, then namespace, quota, limits, policy, deployment


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
        _namespace_made_earlier(emu)
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
    _namespace_made_earlier(emu)
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
