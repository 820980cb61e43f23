"""Every level's hooks, the Kubernetes fixtures (the in-process emulator and, once per session, the
real servers of ``tests/support/envtest.py``). Fixtures one level shares are in its conftest.py
(tests/unit, tests/integration; the e2e tests share none beyond these); helpers are in tests/support
(waiting.py: ``eventually``; clock.py: ``FakeClock``; cityfixtures.py: the cities).

``state_store``: a real SQLite state file (:class:`controller.runtime.store.Store`) in the test's
folder, closed afterwards.

``emu``: a :class:`tests.support.kube_emulator.KubeEmulator` (an in-process API server that speaks
enough of Kubernetes for the gateway and realiser), fresh for each test.

``kube_apiserver``: etcd + kube-apiserver, started once per session. ``kube_controller_manager``:
the same server with kube-controller-manager running too (namespace deletion, garbage collection,
ReplicaSets, quota usage). Tests using either are marked ``real_kube`` automatically. Without the
binaries they skip with the reason, except under ``CI``, where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.runtime.store import Store
from telemetry.metrics.scrapes import configure_process
from tests.support.envtest import AssetsMissing, KubeApiServer, ci_requires_real_servers, find_assets
from tests.support.kube_emulator import KubeEmulator

_FIXTURES = {"kube_apiserver", "kube_controller_manager"}


_LEVELS = ("unit", "integration", "e2e")


def pytest_configure(config: pytest.Config) -> None:
    """The process-wide metrics switches the controller's composition root sets (no ``_created``
    samples, the collector paused during scrapes): the tests' metrics run as the controller's do."""
    configure_process()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its level (the folder it is in: ``-m unit`` runs the fast ones) and
    the real-Kubernetes ones with ``real_kube``."""
    for item in items:
        parts = item.path.parts
        for level in _LEVELS:
            if "tests" in parts and level in parts[parts.index("tests") :]:
                item.add_marker(getattr(pytest.mark, level))
        if _FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_kube)


@pytest.fixture
def state_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "state.db")
    yield store
    store.close()


@pytest.fixture
def emu() -> Iterator[KubeEmulator]:
    with KubeEmulator() as server:
        yield server


def _unavailable(reason: str) -> None:
    if ci_requires_real_servers():
        pytest.fail(f"real Kubernetes tests cannot run: {reason}; under CI they must run, not skip")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    try:
        assets = find_assets()
    except AssetsMissing as missing:
        _unavailable(str(missing))
        raise  # unreachable: _unavailable skips or fails
    server = KubeApiServer.start(tmp_path_factory.mktemp("envtest"), assets)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kube_controller_manager(kube_apiserver: KubeApiServer) -> KubeApiServer:
    try:
        kube_apiserver.start_controller_manager()
    except AssetsMissing as missing:
        _unavailable(str(missing))
    return kube_apiserver
