"""The durable store: slice intents, their placements and status, the audit trail and the
operator's maintenance (drained sites and links), in one SQLite file.

WAL journal, one transaction per decision (:meth:`Store.transaction`): a controller killed at any
moment restarts with either all or none of a decision. Reservations are not stored; the ledger
is rebuilt from the placements at start. The schema is versioned with ``PRAGMA user_version`` and
upgraded step by step when an older file is opened.

A state is never started over lost data: :meth:`Store.open` refuses an empty (0-byte), truncated,
foreign or damaged file (``PRAGMA quick_check``) with one line naming the problem, and a row that
cannot be decoded names its slice. Only a missing file, or ``init=True`` over a 0-byte one, makes
a new state. :class:`StateLock` keeps a second controller off a state; :func:`check_state`,
:func:`backup_state` and :func:`restore_state` are ``slicectl state check|backup|restore``.
The schema and the rows (their JSON columns) are :mod:`controller.runtime.store_rows`.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pydantic

from controller.runtime.store_rows import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
    EventRow,
    MaintenanceRow,
    SliceRow,
    bad_row,
    dumps,
    opt_dumps,
    row_to_slice,
)
from slices import errors

SQLITE_MAGIC = b"SQLite format 3\x00"
LOCK_SUFFIX = ".lock"  # <state file>.lock: held (flock) by the controller using that file


class Transaction:
    """Writes that commit together or not at all; obtained from :meth:`Store.transaction`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.events_added = 0

    def execute(self, sql: str, args: Sequence[object] = ()) -> int:
        """One statement of a table another package owns (the booking tables); rows changed."""
        return self._conn.execute(sql, args).rowcount

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
                dumps(row.document),
                row.spec_hash,
                row.state,
                row.reason,
                row.message,
                opt_dumps(row.placement),
                opt_dumps(row.placed_document),
                dumps(row.conditions),
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
    def open(cls, path: str | Path, init: bool = False) -> Store:
        """Open (creating if missing) and migrate the store; raise :class:`errors.StoreError`.

        An existing file must be an edgeslice state in good order (:func:`inspect_file`, then
        ``PRAGMA quick_check`` and the tables of its schema version); a 0-byte file is refused
        unless ``init`` (it is more likely lost data than a new state), and ``init`` over a file
        that holds anything is refused too.
        """
        path = str(path)
        new = path == ":memory:"
        if not new:
            parent = Path(path).resolve().parent
            if not parent.is_dir():
                raise errors.StoreError(f"state file {path}: folder {parent} does not exist")
            new = _admit_file(Path(path), init)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as exc:
            raise errors.StoreError(f"state file {path}: cannot open: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            if not new:
                _check_contents(conn, path, quick=True)
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
            conn.close()
            raise errors.StoreError(f"state file {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
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
                f"BEGIN IMMEDIATE; {MIGRATIONS[version]} PRAGMA user_version = {version + 1}; "
                f"PRAGMA application_id = {APPLICATION_ID}; COMMIT;"
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

    def query(self, sql: str, args: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Rows of a table another package owns (the booking tables), read under the store's lock."""
        with self._lock:
            return list(self._conn.execute(sql, args).fetchall())

    def load_slices(self) -> list[SliceRow]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM slices ORDER BY created_at, name").fetchall()
        return [row_to_slice(r, self.path) for r in rows]

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


# -- the file before SQLite reads it ----------------------------------------------------------


def inspect_file(path: Path) -> str | None:
    """What is wrong with an existing non-empty state file's header, or ``None``.

    Catches what SQLite would take for a new or a shorter database: a file that is not SQLite at
    all, a damaged header, a file shorter than its header says (cut by a failed copy; checked
    only when there is no write-ahead log, which may hold the rest).
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return "file is not a database (no SQLite header): not an edgeslice state"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"damaged header (page size {page_size})"
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return None
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96]  # the in-header size is current
    if size % page_size or (valid and pages and size < pages * page_size):
        return f"truncated ({size} bytes; its header says {pages} pages of {page_size} bytes)"
    return None


def _admit_file(path: Path, init: bool) -> bool:
    """Whether ``path`` is to become a new state; refuse what must not be opened or overwritten."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if Path(f"{path}-wal").exists():
            raise errors.StoreError(
                f"state file {path}: missing, but its write-ahead log {path}-wal is there "
                "(the file was moved or deleted?); refusing to start a new state beside it"
            ) from None
        return True
    except OSError as exc:
        raise errors.StoreError(f"state file {path}: cannot read: {exc.strerror}") from exc
    if size == 0:
        if not init:
            raise errors.StoreError(
                f"state file {path}: is empty (0 bytes), which is lost data more often than a new "
                "state; restore a backup (slicectl state restore) or give --init to start empty"
            )
        return True
    if init:
        raise errors.StoreError(
            f"state file {path}: --init starts a new state only where there is none, and this file "
            f"holds {size} bytes; move it away first"
        )
    try:
        problem = inspect_file(path)
    except OSError as exc:
        raise errors.StoreError(f"state file {path}: cannot read: {exc.strerror}") from exc
    if problem:
        raise errors.StoreError(f"state file {path}: {problem}")
    return False


def _check_contents(conn: sqlite3.Connection, path: str, quick: bool) -> int:
    """Refuse a foreign or damaged database; its schema version otherwise."""
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    if app_id not in (0, APPLICATION_ID):
        raise errors.StoreError(
            f"state file {path}: a SQLite database of another application (application_id "
            f"{app_id:#x}), not an edgeslice state"
        )
    check = "quick_check" if quick else "integrity_check"
    problems = [str(r[0]) for r in conn.execute(f"PRAGMA {check}(20)").fetchall()]
    if problems != ["ok"]:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise errors.StoreError(
            f"state file {path}: damaged ({check}: {problems[0]}){more}; restore a backup "
            "(slicectl state restore)"
        )
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {
        str(r[0])
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not str(r[0]).startswith("sqlite_")
    }
    if version == 0 and tables:
        raise errors.StoreError(
            f"state file {path}: a SQLite database of something else (tables "
            f"{', '.join(sorted(tables))}), not an edgeslice state"
        )
    if version < len(TABLES) and not TABLES[version] <= tables:
        missing = ", ".join(sorted(TABLES[version] - tables))
        raise errors.StoreError(
            f"state file {path}: not an edgeslice state of schema version {version} (no table {missing})"
        )
    return version


# -- one controller per state -------------------------------------------------------------------


class StateLock:
    """An exclusive ``flock`` on a lock file, held for the life of the process (the kernel
    releases it when the process dies, however it dies). The holder's PID is written inside,
    so a refused second controller can name it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(
        cls, path: Path, subject: str, hint: str = "stop it first, or give this one its own --state-dir"
    ) -> StateLock:
        """Take the lock or raise :class:`errors.StoreError` naming ``subject`` and the holder."""
        if not path.parent.is_dir():
            raise errors.StoreError(f"{subject}: folder {path.parent} does not exist")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise errors.StoreError(f"{subject}: cannot create the lock file {path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = holder_pid(path)
            raise errors.StoreError(
                f"{subject}: in use by another controller (PID {pid if pid else 'unknown'}, lock {path}); {hint}"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise errors.StoreError(f"{subject}: cannot lock {path}: {exc.strerror}") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor drops the flock


def holder_pid(path: Path) -> int | None:
    """The PID written in a lock file (the last holder's; it may have ended)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def lock_path(state_file: Path) -> Path:
    return Path(f"{state_file}{LOCK_SUFFIX}")


# -- check, backup, restore -------------------------------------------------------------------


@dataclass
class CheckReport:
    """What :func:`check_state` found: counts, and every problem as one line."""

    path: Path
    schema_version: int = 0
    slices: int = 0
    events: int = 0
    epoch: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _connect_existing(path: Path) -> sqlite3.Connection:
    """A connection to an existing, non-empty state file whose header is sound (no migration)."""
    if not path.exists():
        raise errors.StoreError(f"state file {path}: does not exist")
    if path.stat().st_size == 0:
        raise errors.StoreError(f"state file {path}: is empty (0 bytes)")
    problem = inspect_file(path)
    if problem:
        raise errors.StoreError(f"state file {path}: {problem}")
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    conn.row_factory = sqlite3.Row
    return conn


def check_state(path: Path, max_problems: int = 20) -> CheckReport:
    """``PRAGMA integrity_check``, the tables of the schema version, and every stored slice
    decoded and parsed as the controller parses it at start (document as a NetworkSlice,
    placement, conditions). Only reads: safe while a controller runs. A file that cannot be
    checked at all raises :class:`errors.StoreError`."""
    from controller.runtime.world import Slot  # the controller's own parse (world imports this module)

    report = CheckReport(path)
    try:
        conn = _connect_existing(path)
        try:
            conn.execute("BEGIN")  # one read snapshot, whatever a running controller writes
            report.schema_version = _check_contents(conn, str(path), quick=False)
            if report.schema_version > SCHEMA_VERSION:
                raise errors.StoreError(
                    f"state file {path}: schema version {report.schema_version} is newer than this "
                    f"edgeslice understands ({SCHEMA_VERSION})"
                )
            if report.schema_version == 0:
                raise errors.StoreError(f"state file {path}: holds no edgeslice state yet (schema 0)")
            report.events = int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            if report.schema_version >= 3:
                r = conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
                report.epoch = str(r[0]) if r is not None else ""
                if not report.epoch:
                    report.problems.append(f"state file {path}: table meta has no epoch")
            for r in conn.execute("SELECT * FROM slices ORDER BY name"):
                report.slices += 1
                try:
                    row = row_to_slice(r, str(path))
                    if row.deleted_at is None:
                        Slot.from_row(row)
                except errors.StoreError as exc:
                    report.problems.append(str(exc))
                except (
                    errors.EdgesliceError,
                    pydantic.ValidationError,
                    KeyError,
                    ValueError,
                    TypeError,
                ) as exc:
                    report.problems.append(str(bad_row(str(path), str(r["name"]), exc)))
                if len(report.problems) >= max_problems:
                    report.problems.append(f"state file {path}: stopped after {max_problems} problems")
                    break
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise errors.StoreError(f"state file {path}: {exc}") from exc
    return report


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """The whole of ``source`` into a new file ``target`` in one step of the online backup API
    (one consistent snapshot; a running controller keeps writing meanwhile), left in WAL mode."""
    dest = sqlite3.connect(target, isolation_level=None)
    try:
        source.backup(dest)
        dest.execute("PRAGMA journal_mode=WAL")
    finally:
        dest.close()


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def _copying(tmp: Path, read: str, written: str) -> Iterator[None]:
    """Around copying one database to another through the temporary ``tmp``: an unsound database
    is the fault of the one ``read``, any other OS error that of the file ``written``; ``tmp`` is
    removed in any case."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise errors.StoreError(f"{read}: {exc}") from exc
    except OSError as exc:
        raise errors.StoreError(f"{written}: cannot write: {exc.strerror}") from exc
    finally:
        _remove_db(tmp)


def backup_state(source: Path, target: Path, overwrite: bool = False) -> CheckReport:
    """Copy the state ``source`` to ``target`` with SQLite's online backup API (safe while the
    controller runs), then check the copy; ``target`` appears only once it is complete and sound."""
    if target.exists() and not overwrite:
        raise errors.StoreError(f"backup file {target}: exists already (give --force to replace it)")
    if not target.parent.is_dir():
        raise errors.StoreError(f"backup file {target}: folder {target.parent} does not exist")
    if target.exists() and target.resolve() == source.resolve():
        raise errors.StoreError(f"backup file {target}: is the state file itself")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with _copying(tmp, read=f"state file {source}", written=f"backup file {target}"):
        conn = _connect_existing(source)
        try:
            _check_contents(conn, str(source), quick=True)
            _copy(conn, tmp)
        finally:
            conn.close()
        report = check_state(tmp)
        report.path = target
        if not report.ok:
            raise errors.StoreError(f"backup of {source}: the copy does not check: {report.problems[0]}")
        os.replace(tmp, target)
    return report


def restore_state(backup: Path, state_file: Path) -> tuple[CheckReport, Path | None]:
    """Replace ``state_file`` with the checked contents of ``backup``, refused while a
    controller holds the state. The replaced state (with its log) is kept beside it as
    ``<state>.pre-restore``; returns the backup's report and that path (``None`` if there was none).
    """
    report = check_state(backup)
    if not report.ok:
        raise errors.StoreError(f"backup file {backup}: does not check: {report.problems[0]}")
    if not state_file.parent.is_dir():
        raise errors.StoreError(f"state file {state_file}: folder {state_file.parent} does not exist")
    lock = StateLock.acquire(lock_path(state_file), f"state file {state_file}", "stop it before restoring")
    try:
        tmp = state_file.with_name(f".{state_file.name}.restore.{os.getpid()}.tmp")
        kept: Path | None = None
        with _copying(tmp, read=f"backup file {backup}", written=f"state file {state_file}"):
            conn = _connect_existing(backup)
            try:
                _copy(conn, tmp)
            finally:
                conn.close()
            if state_file.exists():
                kept = Path(f"{state_file}.pre-restore")
                _remove_db(kept)
                Path(f"{state_file}-shm").unlink(missing_ok=True)
                wal = Path(f"{state_file}-wal")
                if wal.exists():  # the pair stays one database under its new name
                    os.replace(wal, f"{kept}-wal")
                os.replace(state_file, kept)
            os.replace(tmp, state_file)
    finally:
        lock.release()
    return report, kept
