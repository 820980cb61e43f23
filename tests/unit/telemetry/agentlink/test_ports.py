"""The agent link's port: the real controller service and the tests' fake implement all of it,
with the port's parameters (nothing optional, nothing probed for)."""

from __future__ import annotations

import inspect

import pytest

from controller.runtime.service import ControllerService
from telemetry.agentlink.ports import ControllerPort
from tests.support.telemetry_fakes import FakeService

MEMBERS = sorted(n for n in vars(ControllerPort) if not n.startswith("_"))


@pytest.mark.parametrize("implementation", [ControllerService, FakeService])
def test_the_whole_port_is_implemented(implementation: type) -> None:
    assert len(MEMBERS) >= 19
    for name in MEMBERS:
        wanted = vars(ControllerPort)[name]
        got = inspect.getattr_static(implementation, name, None)
        assert got is not None, f"{implementation.__name__} lacks {name}"
        if isinstance(wanted, property):
            assert isinstance(got, property), f"{implementation.__name__}.{name} is not a property"
            continue
        params = list(inspect.signature(wanted).parameters)
        assert list(inspect.signature(got).parameters) == params, f"{implementation.__name__}.{name}"
