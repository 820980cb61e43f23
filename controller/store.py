"""The durable store: slice intents, their placements and status, the audit trail and the
operator's maintenance (drained sites and links), in one SQLite file.

WAL journal, one transaction per decision (:meth:`Store.transaction`): a controller killed at any
moment restarts with either all or none of a decision. Reservations are not stored; the ledger
is rebuilt from the placements at start. The schema is versioned with ``PRAGMA user_version`` and
upgraded step by step when an older file is opened.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from slices import errors

SCHEMA_VERSION = 3

# Each entry upgrades the schema from version i to i + 1.
_MIGRATIONS: tuple[str, ...] = (
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
)


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
    seq: int
    at: datetime
    actor: str
    action: str
    slice: str | None
    site: str | None
    message: str


@dataclass(frozen=True)
class MaintenanceRow:
    kind: str
    name: str
    at: datetime
    actor: str


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _opt_dumps(value: object | None) -> str | None:
    return None if value is None else _dumps(value)


def _row_to_slice(r: sqlite3.Row) -> SliceRow:
    return SliceRow(
        name=r["name"],
        generation=r["generation"],
        document=json.loads(r["document"]),
        spec_hash=r["spec_hash"],
        state=r["state"],
        reason=r["reason"],
        message=r["message"],
        placement=json.loads(r["placement"]) if r["placement"] is not None else None,
        placed_document=json.loads(r["placed_document"]) if r["placed_document"] is not None else None,
        conditions=json.loads(r["conditions"]),
        created_at=datetime.fromisoformat(r["created_at"]),
        updated_at=datetime.fromisoformat(r["updated_at"]),
        deleted_at=datetime.fromisoformat(r["deleted_at"]) if r["deleted_at"] is not None else None,
    )


class Transaction:
    """Writes that commit together or not at all; obtained from :meth:`Store.transaction`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.events_added = 0

    def put_slice(self, row: SliceRow) -> None:
        self._conn.execute(
            "INSERT INTO slices (name, generation, document, spec_hash, state, reason, message, placement,"
            " placed_document, conditions, created_at, updated_at, deleted_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(name) DO UPDATE SET generation=excluded.generation, document=excluded.document,"
            " spec_hash=excluded.spec_hash, state=excluded.state, reason=excluded.reason,"
            " message=excluded.message, placement=excluded.placement,"
            " placed_document=excluded.placed_document, conditions=excluded.conditions,"
            " created_at=excluded.created_at, updated_at=excluded.updated_at, deleted_at=excluded.deleted_at",
            (
                row.name,
                row.generation,
                _dumps(row.document),
                row.spec_hash,
                row.state,
                row.reason,
                row.message,
                _opt_dumps(row.placement),
                _opt_dumps(row.placed_document),
                _dumps(row.conditions),
                row.created_at.isoformat(),
                row.updated_at.isoformat(),
                row.deleted_at.isoformat() if row.deleted_at else None,
            ),
        )

    def remove_slice(self, name: str) -> None:
        self._conn.execute("DELETE FROM slices WHERE name = ?", (name,))

    def add_event(
        self,
        at: datetime,
        actor: str,
        action: str,
        message: str,
        slice_name: str | None = None,
        site: str | None = None,
    ) -> None:
        self._conn.execute(
            "INSERT INTO events (at, actor, action, slice, site, message) VALUES (?,?,?,?,?,?)",
            (at.isoformat(), actor, action, slice_name, site, message),
        )
        self.events_added += 1

    def set_maintenance(self, kind: str, name: str, at: datetime, actor: str) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO maintenance (kind, name, at, actor) VALUES (?,?,?,?)",
            (kind, name, at.isoformat(), actor),
        )

    def clear_maintenance(self, kind: str, name: str) -> None:
        self._conn.execute("DELETE FROM maintenance WHERE kind = ? AND name = ?", (kind, name))

    def put_site_generations(self, rows: Iterable[tuple[str, int, str]]) -> None:
        """(site, generation, content hash) of each site whose desired config moved."""
        self._conn.executemany(
            "INSERT INTO site_generations (site, generation, content_hash) VALUES (?, ?, ?) "
            "ON CONFLICT (site) DO UPDATE SET generation = excluded.generation, "
            "content_hash = excluded.content_hash",
            list(rows),
        )

    def add_agent_sites(self, rows: Iterable[tuple[str, str]]) -> None:
        self._conn.executemany("INSERT OR IGNORE INTO agent_sites (site, first_seen) VALUES (?,?)", rows)


class Store:
    """One SQLite file. Thread-safe: one connection behind a lock (the service serialises
    decisions anyway; readers of the audit trail share the lock briefly).
    """

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self.path = path

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) and migrate the store; raise :class:`errors.StoreError`."""
        path = str(path)
        if path != ":memory:":
            parent = Path(path).resolve().parent
            if not parent.is_dir():
                raise errors.StoreError(f"state file {path}: folder {parent} does not exist")
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
            conn.row_factory = sqlite3.Row
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if path != ":memory:" and str(mode).lower() != "wal":
                raise errors.StoreError(f"state file {path}: cannot switch to WAL journal (got {mode})")
            # NORMAL is durable across a process crash in WAL mode (only power loss can lose the
            # last commits), and keeps one-transaction-per-decision cheap.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(conn, path)
            store._migrate()
        except sqlite3.DatabaseError as exc:
            raise errors.StoreError(f"state file {path}: {exc}") from exc
        return store

    def _migrate(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise errors.StoreError(
                f"state file {self.path}: schema version {version} is newer than this edgeslice "
                f"understands ({SCHEMA_VERSION}); upgrade edgeslice"
            )
        while version < SCHEMA_VERSION:
            # executescript commits first, so run each step inside an explicit transaction.
            self._conn.executescript(
                f"BEGIN IMMEDIATE; {_MIGRATIONS[version]} PRAGMA user_version = {version + 1}; COMMIT;"
            )
            version += 1

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """All writes inside commit together; any exception rolls them all back."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise errors.StoreError(f"state file {self.path}: cannot start a transaction: {exc}") from exc
            tx = Transaction(self._conn)
            try:
                yield tx
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise errors.StoreError(f"state file {self.path}: commit failed: {exc}") from exc

    # -- reads --------------------------------------------------------------------------------

    def load_slices(self) -> list[SliceRow]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM slices ORDER BY created_at, name").fetchall()
        return [_row_to_slice(r) for r in rows]

    def get_slice(self, name: str) -> SliceRow | None:
        with self._lock:
            r = self._conn.execute("SELECT * FROM slices WHERE name = ?", (name,)).fetchone()
        return _row_to_slice(r) if r is not None else None

    def events(self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None) -> list[EventRow]:
        sql = "SELECT * FROM events WHERE seq > ?"
        args: list[object] = [after_seq]
        if slice_name is not None:
            sql += " AND slice = ?"
            args.append(slice_name)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [
            EventRow(
                seq=r["seq"],
                at=datetime.fromisoformat(r["at"]),
                actor=r["actor"],
                action=r["action"],
                slice=r["slice"],
                site=r["site"],
                message=r["message"],
            )
            for r in rows
        ]

    def last_event_seq(self) -> int:
        with self._lock:
            r = self._conn.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(r[0] or 0)

    def agent_sites(self) -> set[str]:
        """The sites whose agent has connected at some time."""
        with self._lock:
            return {r[0] for r in self._conn.execute("SELECT site FROM agent_sites")}

    def add_agent_sites(self, sites: Iterable[str], at: datetime) -> None:
        """Remember sites whose agent connected (one transaction; known sites are left as they are)."""
        rows = [(site, at.isoformat()) for site in sites]
        with self.transaction() as tx:
            tx.add_agent_sites(rows)

    def epoch(self) -> str:
        """This state's epoch: made once with the file, never reused by another state."""
        with self._lock:
            r = self._conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        return str(r[0])

    def site_generations(self) -> dict[str, tuple[int, str]]:
        """site → (its last config generation, that config's content hash)."""
        with self._lock:
            rows = self._conn.execute("SELECT site, generation, content_hash FROM site_generations")
            return {r[0]: (int(r[1]), str(r[2])) for r in rows}

    def save_site_generations(self, rows: Iterable[tuple[str, int, str]]) -> None:
        """Record (site, generation, content hash) rows in one transaction."""
        with self.transaction() as tx:
            tx.put_site_generations(rows)

    def maintenance(self) -> list[MaintenanceRow]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM maintenance ORDER BY kind, name").fetchall()
        return [
            MaintenanceRow(r["kind"], r["name"], datetime.fromisoformat(r["at"]), r["actor"]) for r in rows
        ]
