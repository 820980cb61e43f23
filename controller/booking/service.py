"""The bookings of every tenant, over the controller's slices (:class:`ports.Bookings`).

A booking is a NetworkSlice named ``bk-<tenant>-<id>``, labelled with its tenant, whose spec is
the QoS profile mapped over the cells its area covers (:mod:`controller.booking.qos`,
:mod:`controller.booking.areas`) with the service time as ``spec.schedule``. It is admitted over
the capacity calendar or not stored at all (:meth:`ControllerService.book`); its row in
``bookings`` (the request as booked, the sink and its credential) commits in the same
transaction; the table is read through :mod:`controller.booking.records`. Tenants see only their
own bookings: another tenant's ``sliceId`` is answered as if it did not exist.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from controller.booking import areas, camara, notifier, ports, qos, records
from controller.booking.sinks import SinkPolicy
from controller.runtime.clock import Clock
from controller.runtime.service import ControllerService
from controller.runtime.store import Store, Transaction
from slices import errors
from slices.intent import NetworkSlice, ObjectMeta, Schedule

#: A ``startDate`` this far in the past is taken as "now" (clocks differ); further is refused.
START_SKEW_S = 300.0
#: How far ahead a booking may start.
HORIZON_DAYS = 366
#: The tenant part of a slice name is cut to this, so ``bk-<tenant>-<12 hex>`` is a DNS label.
_TENANT_CHARS = 40


def slice_name(tenant: str, slice_id: UUID) -> str:
    """The booking's NetworkSlice name.

    >>> slice_name("events-office", UUID("2d3c1f7e-0000-4000-8000-000000000000"))
    'bk-events-office-2d3c1f7e0000'
    """
    return f"bk-{tenant[:_TENANT_CHARS].rstrip('-')}-{slice_id.hex[:12]}"


class BookingService:
    """:class:`ports.Bookings` over a :class:`ControllerService` and its state file.

    ``sinks``: the operator's sink policy; None refuses every ``sink`` (no notifications).
    ``on_enqueued``: called after a notification commits (wakes the notifier).
    """

    def __init__(
        self,
        controller: ControllerService,
        store: Store,
        clock: Clock,
        *,
        sinks: SinkPolicy | None = None,
        on_enqueued: Callable[[], None] = lambda: None,
        source: str = notifier.DEFAULT_SOURCE,
    ) -> None:
        self.controller = controller
        self.store = store
        self.clock = clock
        self.sinks = sinks
        self.on_enqueued = on_enqueued
        self.source = source
        # Quotas are checked and the booking stored under one lock, so two requests of one
        # tenant cannot both pass the check on the same headroom.
        self._lock = threading.Lock()

    # -- ports.Bookings ---------------------------------------------------------------------------

    def create(self, tenant: ports.Tenant, attributes: camara.SliceAttributes) -> camara.SliceInfo:
        now = self.clock.now()
        start, end = self._window(attributes.serviceTime, now)
        if attributes.sinkCredential is not None and attributes.sink is None:
            raise ports.invalid_argument("sinkCredential: given without a sink")
        if attributes.sink is not None:
            if self.sinks is None:
                raise ports.invalid_argument(
                    "sink: this controller sends no notifications (the operator sets --booking-sink-hosts)"
                )
            self.sinks.check(attributes.sink)
        cells = areas.covered_cells(attributes.serviceArea, self.controller.city())
        mapping = qos.to_spec(attributes.sliceQosProfile, cells)
        slice_id = uuid.uuid4()
        name = slice_name(tenant.name, slice_id)
        document = NetworkSlice(
            metadata=ObjectMeta(
                name=name,
                labels={ports.TENANT_LABEL: tenant.name},
                annotations={ports.SLICE_ID_ANNOTATION: str(slice_id)},
            ),
            spec=mapping.spec.model_copy(update={"schedule": Schedule(start=start, end=end)}),
        )
        info = camara.SliceInfo.model_validate(
            {**attributes.model_dump(exclude={"sinkCredential"}), "sliceId": slice_id}
        )
        credential = attributes.sinkCredential

        def write(tx: Transaction) -> None:
            tx.execute(
                "INSERT INTO bookings (slice_id, tenant, slice_name, attributes, sink, sink_credential,"
                " reserved_mbps, start_at, end_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(slice_id),
                    tenant.name,
                    name,
                    attributes.model_dump_json(exclude={"sinkCredential"}, exclude_none=True),
                    attributes.sink,
                    credential.model_dump_json() if credential is not None else None,
                    mapping.reserved_mbps,
                    records.stored_time(start),
                    records.stored_time(end) if end is not None else None,
                    records.stored_time(now),
                ),
            )
            if attributes.sink is not None:
                notifier.enqueue(tx, now, slice_id, "created", attributes.sink, info, source=self.source)

        with self._lock:
            self._check_quota(tenant, mapping.reserved_mbps, now)
            try:
                self.controller.book(document, f"tenant:{tenant.name}", write)
            except errors.AdmissionRejected as exc:
                raise ports.resources_insufficient(exc.message) from exc
            except errors.InvalidSpec as exc:
                raise ports.invalid_argument(str(exc)) from exc
        if attributes.sink is not None:
            self.on_enqueued()
        return info

    def get(self, tenant: ports.Tenant, slice_id: UUID) -> camara.SliceInfo:
        record = records.find(self.store, tenant.name, slice_id)
        if record is None:
            raise ports.not_found(f"no slice {slice_id}")
        return record.slice_info()

    def delete(self, tenant: ports.Tenant, slice_id: UUID) -> None:
        record = records.find(self.store, tenant.name, slice_id)
        if record is None:
            return  # idempotent; and another tenant's booking is not the caller's to know of
        now = self.clock.now()
        info = record.slice_info()
        sink = record.sink

        def write(tx: Transaction) -> None:
            tx.execute(
                "UPDATE bookings SET deleted_at = ? WHERE slice_id = ? AND deleted_at IS NULL",
                (records.stored_time(now), str(slice_id)),
            )
            if sink is not None:
                notifier.enqueue(tx, now, slice_id, "deleted", sink, info, source=self.source)

        try:
            self.controller.delete(record.slice_name, f"tenant:{tenant.name}", write)
        except errors.NotFound:  # the operator deleted its slice already: the booking goes too
            with self.store.transaction() as tx:
                write(tx)
        if sink is not None:
            self.on_enqueued()

    # -- for the operator -------------------------------------------------------------------------

    def bookings(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every booking not deleted (of ``tenant``), oldest first, with its slice's state."""
        return records.operator_listing(self.store, self._state_of, tenant)

    # -- internals --------------------------------------------------------------------------------

    def _window(self, period: camara.TimePeriod, now: datetime) -> tuple[datetime, datetime | None]:
        start, end = period.startDate, period.endDate
        if start < now - timedelta(seconds=START_SKEW_S):
            raise ports.out_of_range(
                f"serviceTime.startDate: {start.isoformat()} is in the past (now {now.isoformat(timespec='seconds')})"
            )
        if start > now + timedelta(days=HORIZON_DAYS):
            raise ports.out_of_range(f"serviceTime.startDate: more than {HORIZON_DAYS} days ahead")
        if end is not None and end <= now:
            raise ports.out_of_range(f"serviceTime.endDate: {end.isoformat()} is in the past")
        return max(start, now), end

    def _state_of(self, name: str) -> str | None:
        try:
            return self.controller.get(name).state.value
        except errors.NotFound:
            return None

    def _check_quota(self, tenant: ports.Tenant, mbps: float, now: datetime) -> None:
        if tenant.quota_bookings is None and tenant.quota_mbps is None:
            return
        holding = records.held(self.store, tenant.name, now)
        held, held_mbps = holding.bookings, holding.mbps
        if tenant.quota_bookings is not None and held + 1 > tenant.quota_bookings:
            raise ports.quota_exceeded(
                f"tenant {tenant.name} holds {held} bookings; its quota is {tenant.quota_bookings}"
            )
        if tenant.quota_mbps is not None and held_mbps + mbps > tenant.quota_mbps:
            raise ports.quota_exceeded(
                f"tenant {tenant.name} holds {held_mbps:g} Mbps and asks {mbps:g} more; "
                f"its quota is {tenant.quota_mbps:g} Mbps"
            )
