"""Fixtures shared by the integration tests (real gRPC, HTTP and SQLite on loopback, in one process).

``running``: the operator API over the real ControllerService on a SQLite file in ``tmp_path``
(:class:`tests.support.api_service_rig.Running`; its token is ``api_service_rig.TOKEN``).
``rig``: the operator API over the in-memory service fake with a directory of four agents
(:class:`tests.support.agents_rig.Rig`). A test module that means something else by ``rig`` or
``running`` (the agent end-to-end rig, a realiser on a real kube-apiserver) defines its own
fixture of that name, which takes precedence in that module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import operator_fake
from tests.support.agents_rig import AGENTS, FakeDirectory, Rig
from tests.support.api_service_rig import Running


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(tmp_path)
    yield r
    r.stop()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig(operator_fake.FakeService(), FakeDirectory(AGENTS))
    yield r
    r.close()
