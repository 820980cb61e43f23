"""The read model of the ``bookings`` table (controller.booking.records), over bookings made by the
real BookingService on a real SQLite state file and the real reconciler, time from the fake clock."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.booking import camara, ports, records
from controller.booking.service import BookingService
from controller.booking.sinks import SinkPolicy
from controller.runtime.service import ControllerService, SliceState
from controller.runtime.store import Store
from tests.support.booking_rig import SINK_TOKEN, slice_attributes
from tests.support.clock import FakeClock
from tests.support.runtime_helpers import make_service

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
POLICE = ports.Tenant("id-police", "police", frozenset(ports.SCOPES))
EVENTS = ports.Tenant("id-events", "events-office", frozenset(ports.SCOPES))
SINK = "http://127.0.0.1:9/events"


def attributes(
    start: datetime, end: datetime | None, devices: int = 5, sink: bool = False
) -> camara.SliceAttributes:
    """A booking over the small city's cells (all at 48.85, 2.35): ``devices`` × 2 Mbps down."""
    body = slice_attributes(
        start, end, center=(48.85, 2.35), radius=50, devices=devices, mbps=(2, 1), sink=SINK if sink else None
    )
    return camara.SliceAttributes.model_validate(body)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def parts(tmp_path: Path, clock: FakeClock) -> tuple[ControllerService, Store, BookingService]:
    svc, store = make_service(tmp_path, clock=clock)
    bookings = BookingService(svc, store, clock, sinks=SinkPolicy(["127.0.0.1"], dev=True))
    return svc, store, bookings


def test_find_answers_only_the_tenants_own_booking_and_never_its_credential(
    parts: tuple[ControllerService, Store, BookingService],
) -> None:
    _, store, bookings = parts
    info = bookings.create(POLICE, attributes(T0 + HOUR, T0 + 3 * HOUR, sink=True))
    record = records.find(store, "police", info.sliceId)
    assert record is not None
    assert record.slice_id == str(info.sliceId) and record.tenant == "police"
    assert record.slice_name.startswith("bk-police-") and record.sink == SINK
    assert (record.start_at, record.end_at) == (T0 + HOUR, T0 + 3 * HOUR)
    assert record.slice_info() == info
    # The sink's token is read by the notifier alone: no record carries it.
    assert "sink_credential" not in {f.name for f in dataclasses.fields(record)}
    assert SINK_TOKEN not in repr(record) and SINK_TOKEN not in record.attributes
    # Another tenant's, an unknown one and a deleted one are alike: None.
    assert records.find(store, "events-office", info.sliceId) is None
    assert records.find(store, "police", uuid.uuid4()) is None
    bookings.delete(POLICE, info.sliceId)
    assert records.find(store, "police", str(info.sliceId)) is None


def test_held_counts_the_windows_not_ended_of_one_tenant(
    parts: tuple[ControllerService, Store, BookingService],
) -> None:
    _, store, bookings = parts
    short = bookings.create(POLICE, attributes(T0 + HOUR, T0 + 2 * HOUR, devices=5))
    bookings.create(POLICE, attributes(T0 + HOUR, None, devices=10))
    bookings.create(EVENTS, attributes(T0 + HOUR, T0 + 2 * HOUR, devices=20))
    first = records.held(store, "police", T0)
    assert first.bookings == 2 and first.mbps > 0
    mbps_short = next(r.reserved_mbps for r in records.listing(store) if r.slice_id == str(short.sliceId))
    # A window ending exactly now holds nothing any more; the open-ended one holds on.
    at_end = records.held(store, "police", T0 + 2 * HOUR)
    assert at_end.bookings == 1 and at_end.mbps == pytest.approx(first.mbps - mbps_short)
    assert records.held(store, "nobody", T0) == records.Held(0, 0.0)
    bookings.delete(POLICE, short.sliceId)
    assert records.held(store, "police", T0).bookings == 1


def test_the_quota_check_reads_what_records_holds(
    parts: tuple[ControllerService, Store, BookingService],
) -> None:
    _, store, bookings = parts
    capped = dataclasses.replace(POLICE, quota_bookings=2, quota_mbps=1000)
    bookings.create(capped, attributes(T0 + HOUR, T0 + 2 * HOUR))
    bookings.create(capped, attributes(T0 + HOUR, T0 + 2 * HOUR))
    with pytest.raises(ports.BookingError) as refused:
        bookings.create(capped, attributes(T0 + HOUR, T0 + 2 * HOUR))
    assert refused.value.code == "QUOTA_EXCEEDED" and "holds 2 bookings" in refused.value.message
    assert records.held(store, "police", T0).bookings == 2


def test_the_operators_listing_by_tenant_follows_each_slice_through_its_states(
    parts: tuple[ControllerService, Store, BookingService], clock: FakeClock
) -> None:
    svc, store, bookings = parts
    a = bookings.create(POLICE, attributes(T0 + HOUR, T0 + 2 * HOUR))
    clock.advance(1)
    b = bookings.create(EVENTS, attributes(T0 + 4 * HOUR, T0 + 5 * HOUR))
    clock.advance(1)
    c = bookings.create(POLICE, attributes(T0 + 24 * HOUR, None))

    def states(tenant: str | None = None) -> list[tuple[str, str]]:
        return [(str(b["sliceId"]), str(b["state"])) for b in bookings.bookings(tenant)]

    ids = [str(x.sliceId) for x in (a, b, c)]
    assert states() == [(i, "Scheduled") for i in ids]  # oldest first
    assert [x for x, _ in states("police")] == [ids[0], ids[2]]
    assert states("nobody") == []
    [first] = bookings.bookings("events-office")
    assert first["tenant"] == "events-office" and first["slice"].startswith("bk-events-office-")
    assert (first["start"], first["end"]) == (
        (T0 + 4 * HOUR).isoformat(timespec="microseconds"),
        (T0 + 5 * HOUR).isoformat(timespec="microseconds"),
    )
    assert first["reservedMbps"] > 0 and first["sink"] is None

    clock.advance(HOUR.total_seconds())
    svc.reconcile()
    assert dict(states())[ids[0]] in (SliceState.READY.value, SliceState.ADMITTED.value)
    clock.advance(HOUR.total_seconds())
    svc.reconcile()
    assert dict(states()) == {ids[0]: "Expired", ids[1]: "Scheduled", ids[2]: "Scheduled"}
    # The state file says the same to a reader without the controller.
    assert records.operator_listing(store, records.stored_states(store).get) == bookings.bookings()
    # The operator deletes a booking's slice: the booking lists as Deleted until its tenant deletes it.
    svc.delete(str(first["slice"]), "operator:a")
    assert dict(states())[ids[1]] == records.DELETED
    assert str(first["slice"]) not in records.stored_states(store)
    bookings.delete(EVENTS, b.sliceId)
    assert [x for x, _ in states()] == [ids[0], ids[2]]
