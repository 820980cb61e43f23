"""``edgeslice_slices`` counts every state, the booked windows' too: Scheduled until a window
begins, Expired once it has ended (a real service on a real state file, time from the fake clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from controller.runtime.service import ControllerService, SliceState
from slices.intent import NetworkSlice
from telemetry.metrics.observer import build_metrics
from tests.support.clock import FakeClock
from tests.support.runtime_helpers import doc, make_service

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
HOUR = 3600.0


def wifi(name: str, start_h: float, end_h: float) -> NetworkSlice:
    schedule = {
        "start": (T0 + timedelta(hours=start_h)).isoformat(),
        "end": (T0 + timedelta(hours=end_h)).isoformat(),
    }
    return doc(name, "wifi", ["c1"], sla={"dlMbpsPerCell": 40, "ulMbpsPerCell": 0}, schedule=schedule)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock) -> Iterator[ControllerService]:
    svc, store = make_service(tmp_path, clock=clock)
    try:
        yield svc
    finally:
        store.close()


def test_scheduled_and_expired_slices_are_counted_by_kind(
    service: ControllerService, clock: FakeClock
) -> None:
    registry = CollectorRegistry()
    build_metrics(service, None, registry)

    def count(state: SliceState, kind: str = "wifi") -> float | None:
        return registry.get_sample_value("edgeslice_slices", {"kind": kind, "state": state.value})

    [family] = [m for m in registry.collect() if m.name == "edgeslice_slices"]
    assert "Scheduled" in family.documentation and "Expired" in family.documentation
    # Present at zero before any slice, so a dashboard never sees a gap.
    assert (count(SliceState.SCHEDULED), count(SliceState.EXPIRED)) == (0, 0)
    service.apply([wifi("match", 1, 2), wifi("concert", 1, 3), wifi("market", 24, 26)], "operator:a")
    assert count(SliceState.SCHEDULED) == 3 and count(SliceState.EXPIRED) == 0
    assert count(SliceState.SCHEDULED, "iot") == 0

    clock.advance(1 * HOUR)
    service.reconcile()
    live = (count(SliceState.READY) or 0) + (count(SliceState.ADMITTED) or 0)
    assert (count(SliceState.SCHEDULED), live, count(SliceState.EXPIRED)) == (1, 2, 0)

    clock.advance(1 * HOUR)
    service.reconcile()
    live = (count(SliceState.READY) or 0) + (count(SliceState.ADMITTED) or 0)
    assert (count(SliceState.SCHEDULED), live, count(SliceState.EXPIRED)) == (1, 1, 1)
    # The counts add up to the slices there are.
    total = sum(count(state) or 0 for state in SliceState)
    assert total == len(service.list_slices()) == 3
