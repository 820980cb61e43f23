"""Fixtures shared by the unit tests (one module each, no processes, loopback at most).

``clock``: a :class:`tests.support.clock.FakeClock` at its start (moves only on ``advance``).
``city``: :func:`tests.support.cityfixtures.small_city` (four cells, two aggregation sites, two
edge sites); a module that needs another city defines its own ``city`` fixture, which takes
precedence there. ``emu``: see tests/conftest.py.
"""

from __future__ import annotations

import pytest

from controller.core.topology import Topology
from tests.support.cityfixtures import small_city
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def city() -> Topology:
    return small_city()
