"""The one read model of the ``bookings`` table: a tenant's booking by its ``sliceId``, what a
tenant holds against its quotas, and the operator's listing. :mod:`controller.booking.service`
writes the table and reads it only through here; ``slicectl booking list`` reads it here too,
offline on the state file.

A record never carries the ``sinkCredential``: only the notifier reads that column, at each
attempt (:mod:`controller.booking.notifier`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

from controller.booking import camara
from controller.runtime.store import Store

#: The state a listing shows for a booking whose NetworkSlice is gone (the operator deleted it).
DELETED: Final = "Deleted"

_COLUMNS: Final = (
    "slice_id, tenant, slice_name, attributes, sink, reserved_mbps, start_at, end_at, created_at"
)


def stored_time(at: datetime) -> str:
    """The stored form of a time in the booking tables: UTC, microseconds, so that text order is
    time order in SQL."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class BookingRecord:
    """One booking not deleted, as stored (without its sink's credential)."""

    slice_id: str  # the CAMARA sliceId (a UUID)
    tenant: str
    slice_name: str  # its NetworkSlice
    attributes: str  # the SliceAttributes as booked (JSON, without sinkCredential)
    sink: str | None
    reserved_mbps: float  # what counts against the tenant's quota
    start_at: datetime
    end_at: datetime | None
    created_at: datetime

    def slice_info(self) -> camara.SliceInfo:
        """The booking as the CAMARA API answers it."""
        return camara.SliceInfo.model_validate({**json.loads(self.attributes), "sliceId": self.slice_id})

    def operator_data(self, state: str) -> dict[str, Any]:
        """The operator's view of the booking, its NetworkSlice in ``state``."""
        return {
            "sliceId": self.slice_id,
            "tenant": self.tenant,
            "slice": self.slice_name,
            "state": state,
            "start": stored_time(self.start_at),
            "end": stored_time(self.end_at) if self.end_at is not None else None,
            "reservedMbps": self.reserved_mbps,
            "sink": self.sink,
        }


def _record(row: sqlite3.Row) -> BookingRecord:
    return BookingRecord(
        slice_id=row["slice_id"],
        tenant=row["tenant"],
        slice_name=row["slice_name"],
        attributes=row["attributes"],
        sink=row["sink"],
        reserved_mbps=float(row["reserved_mbps"]),
        start_at=datetime.fromisoformat(row["start_at"]),
        end_at=datetime.fromisoformat(row["end_at"]) if row["end_at"] else None,
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def find(store: Store, tenant: str, slice_id: UUID | str) -> BookingRecord | None:
    """``tenant``'s booking ``slice_id``, or None: missing, deleted, or another tenant's alike."""
    rows = store.query(
        f"SELECT {_COLUMNS} FROM bookings WHERE slice_id = ? AND tenant = ? AND deleted_at IS NULL",
        (str(slice_id), tenant),
    )
    return _record(rows[0]) if rows else None


def of_slice(store: Store, slice_name: str) -> BookingRecord | None:
    """The booking whose NetworkSlice is ``slice_name``, or None (not a booking, or deleted)."""
    rows = store.query(
        f"SELECT {_COLUMNS} FROM bookings WHERE slice_name = ? AND deleted_at IS NULL", (slice_name,)
    )
    return _record(rows[0]) if rows else None


@dataclass(frozen=True)
class Held:
    """What a tenant holds against its quotas: bookings not deleted whose window has not ended."""

    bookings: int
    mbps: float


def held(store: Store, tenant: str, now: datetime) -> Held:
    """What ``tenant`` holds at ``now`` (a booking ending exactly at ``now`` holds nothing)."""
    [row] = store.query(
        "SELECT count(*) AS n, coalesce(sum(reserved_mbps), 0) AS mbps FROM bookings"
        " WHERE tenant = ? AND deleted_at IS NULL AND (end_at IS NULL OR end_at > ?)",
        (tenant, stored_time(now)),
    )
    return Held(int(row["n"]), float(row["mbps"]))


def listing(store: Store, tenant: str | None = None) -> list[BookingRecord]:
    """Every booking not deleted (of ``tenant``), oldest first."""
    sql = f"SELECT {_COLUMNS} FROM bookings WHERE deleted_at IS NULL"
    args: tuple[object, ...] = ()
    if tenant is not None:
        sql += " AND tenant = ?"
        args = (tenant,)
    return [_record(r) for r in store.query(sql + " ORDER BY created_at, slice_id", args)]


def operator_listing(
    store: Store, state_of: Callable[[str], str | None], tenant: str | None = None
) -> list[dict[str, Any]]:
    """:func:`listing` as the operator reads it, each with its NetworkSlice's state: ``state_of``
    gives a slice name's state (None: the slice is gone, :data:`DELETED`)."""
    return [r.operator_data(state_of(r.slice_name) or DELETED) for r in listing(store, tenant)]


def stored_states(store: Store) -> dict[str, str]:
    """Each stored slice's state by name, as the state file holds it, for readers without a
    running controller (a slice being deleted is left out: it is gone for the operator)."""
    return {row.name: row.state for row in store.load_slices() if row.deleted_at is None}
