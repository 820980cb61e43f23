"""What the state file holds: its schema, version by version, and the rows read from it and
written to it (JSON columns encoded and decoded here).

:mod:`controller.runtime.store` opens the file and reads and writes these rows.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic

from slices import errors

SCHEMA_VERSION = 4
#: ``PRAGMA application_id`` of an edgeslice state ("ESLC"): a SQLite file of something else is
#: refused rather than having our tables added to it.
APPLICATION_ID = 0x45534C43

# Each entry upgrades the schema from version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE slices (
        name            TEXT PRIMARY KEY,
        generation      INTEGER NOT NULL,
        document        TEXT NOT NULL,      -- the NetworkSlice as applied (JSON, camelCase)
        spec_hash       TEXT NOT NULL,
        state           TEXT NOT NULL,
        reason          TEXT NOT NULL,
        message         TEXT NOT NULL,
        placement       TEXT,               -- Placement.to_dict() JSON, NULL when nothing is held
        placed_document TEXT,               -- the document the placement was made for
        conditions      TEXT NOT NULL,      -- JSON list of Condition
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        deleted_at      TEXT                -- set while realisation backends clean up
    );
    CREATE TABLE events (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        at      TEXT NOT NULL,
        actor   TEXT NOT NULL,
        action  TEXT NOT NULL,
        slice   TEXT,
        site    TEXT,
        message TEXT NOT NULL
    );
    CREATE INDEX events_by_slice ON events (slice, seq);
    CREATE TABLE maintenance (
        kind    TEXT NOT NULL,              -- 'site' or 'link' ("a:b")
        name    TEXT NOT NULL,
        at      TEXT NOT NULL,
        actor   TEXT NOT NULL,
        PRIMARY KEY (kind, name)
    );
    """,
    # 1 -> 2: the sites whose agent has connected at some time, so that after a restart an agent
    # that does not come back is noticed (its lease runs from the restart).
    """
    CREATE TABLE agent_sites (
        site        TEXT PRIMARY KEY,
        first_seen  TEXT NOT NULL
    );
    """,
    # 2 -> 3: per-site config generations survive restarts (an agent may trust "same generation,
    # same config"), and an epoch that tells this state apart from any other controller's.
    """
    CREATE TABLE site_generations (
        site          TEXT PRIMARY KEY,
        generation    INTEGER NOT NULL,
        content_hash  TEXT NOT NULL
    );
    CREATE TABLE meta (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('epoch', lower(hex(randomblob(8))));
    """,
    # 3 -> 4: the CAMARA booking API (controller.booking): the clients the operator registers,
    # each booking (its NetworkSlice is a row of slices, written in the same transaction) and the
    # CloudEvents owed to its sink. The booking package owns the SQL of these tables.
    """
    CREATE TABLE booking_clients (
        client_id       TEXT PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,   -- DNS label: the tenant
        secret_hash     TEXT NOT NULL,          -- never the secret itself
        scopes          TEXT NOT NULL,          -- JSON list
        quota_bookings  INTEGER,
        quota_mbps      REAL,
        requests_per_s  REAL,
        created_at      TEXT NOT NULL,
        rotated_at      TEXT
    );
    CREATE TABLE bookings (
        slice_id        TEXT PRIMARY KEY,       -- the CAMARA sliceId (UUID)
        tenant          TEXT NOT NULL,          -- booking_clients.name
        slice_name      TEXT NOT NULL UNIQUE,   -- its NetworkSlice
        attributes      TEXT NOT NULL,          -- SliceAttributes as booked, without sinkCredential
        sink            TEXT,
        sink_credential TEXT,                   -- JSON; only ever sent to the sink
        reserved_mbps   REAL NOT NULL,          -- what counts against the tenant's quota
        start_at        TEXT NOT NULL,
        end_at          TEXT,
        created_at      TEXT NOT NULL,
        deleted_at      TEXT
    );
    CREATE INDEX bookings_by_tenant ON bookings (tenant, created_at);
    CREATE TABLE booking_deliveries (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id        TEXT NOT NULL UNIQUE,
        slice_id        TEXT NOT NULL,
        status          TEXT NOT NULL,          -- what changed: scheduled, active, expired, ...
        sink            TEXT NOT NULL,
        payload         TEXT NOT NULL,          -- the CloudEvent (JSON)
        state           TEXT NOT NULL,          -- pending, delivered, failed
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        next_attempt_at TEXT,
        delivered_at    TEXT,
        created_at      TEXT NOT NULL
    );
    CREATE INDEX booking_deliveries_due ON booking_deliveries (state, next_attempt_at);
    """,
)


#: The tables a state of each schema version has (version 0 has none: a new file).
TABLES: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset({"slices", "events", "maintenance"}),
    frozenset({"slices", "events", "maintenance", "agent_sites"}),
    frozenset({"slices", "events", "maintenance", "agent_sites", "site_generations", "meta"}),
    frozenset(
        {
            "slices",
            "events",
            "maintenance",
            "agent_sites",
            "site_generations",
            "meta",
            "booking_clients",
            "bookings",
            "booking_deliveries",
        }
    ),
)


def one_line(exc: BaseException) -> str:
    """An exception as one line: pydantic's per-field lines joined with "; ".

    >>> one_line(ValueError("a\\nb"))
    'a; b'
    """
    text = errors.describe_validation_error(exc) if isinstance(exc, pydantic.ValidationError) else str(exc)
    return "; ".join(part.strip() for part in text.splitlines() if part.strip()) or type(exc).__name__


def bad_row(path: str, name: str, exc: BaseException) -> errors.StoreError:
    """The error for a stored slice that cannot be read: names the file and the slice."""
    return errors.StoreError(f"state file {path}: slice {name!r} cannot be read: {one_line(exc)}")


@dataclass(frozen=True)
class SliceRow:
    """One slice as stored; JSON columns decoded."""

    name: str
    generation: int
    document: dict[str, Any]
    spec_hash: str
    state: str
    reason: str
    message: str
    placement: dict[str, Any] | None
    placed_document: dict[str, Any] | None
    conditions: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class EventRow:
    """One line of the audit trail; the service reads it as :data:`controller.runtime.views.Event`."""

    seq: int
    at: datetime
    actor: str  # "operator:<token name>", "controller", "agent:<site>", "kubernetes"
    action: str  # apply, delete, admit, reject, preempt, readmit, heal, degrade, drain, undrain, site-down, site-up, link-down, link-up, sla-violation
    slice: str | None
    site: str | None
    message: str


@dataclass(frozen=True)
class MaintenanceRow:
    kind: str
    name: str
    at: datetime
    actor: str


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def opt_dumps(value: object | None) -> str | None:
    return None if value is None else dumps(value)


def _json(r: sqlite3.Row, column: str, kind: type) -> Any:
    text = r[column]
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{column} is not JSON ({exc})") from exc
    if not isinstance(value, kind):
        raise ValueError(f"{column} is JSON {type(value).__name__}, not {kind.__name__}")
    return value


def _time(r: sqlite3.Row, column: str) -> datetime | None:
    text = r[column]
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{column} is not a time ({text!r})") from exc


def row_to_slice(r: sqlite3.Row, path: str = "") -> SliceRow:
    """Decode one stored slice; a column that is not what it should be is a
    :class:`errors.StoreError` naming the slice."""
    try:
        document = _json(r, "document", dict)
        conditions = _json(r, "conditions", list)
        created_at, updated_at = _time(r, "created_at"), _time(r, "updated_at")
        if document is None or conditions is None or created_at is None or updated_at is None:
            raise ValueError("a required column is NULL")
        return SliceRow(
            name=r["name"],
            generation=int(r["generation"]),
            document=document,
            spec_hash=r["spec_hash"],
            state=r["state"],
            reason=r["reason"],
            message=r["message"],
            placement=_json(r, "placement", dict),
            placed_document=_json(r, "placed_document", dict),
            conditions=conditions,
            created_at=created_at,
            updated_at=updated_at,
            deleted_at=_time(r, "deleted_at"),
        )
    except (ValueError, TypeError) as exc:
        raise bad_row(path, str(r["name"]), exc) from exc
