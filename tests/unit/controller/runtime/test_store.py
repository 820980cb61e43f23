"""The SQLite store on real files in temporary folders."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.runtime import store as store_mod
from controller.runtime.service import ControllerService
from controller.runtime.store import Store
from controller.runtime.store_rows import MIGRATIONS, SCHEMA_VERSION, SliceRow
from slices import errors
from tests.support.cityfixtures import small_city
from tests.support.clock import FakeClock
from tests.support.runtime_helpers import FlakyRealiser, doc

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(name: str, generation: int = 1, placement: dict[str, object] | None = None) -> SliceRow:
    return SliceRow(
        name=name,
        generation=generation,
        document={"metadata": {"name": name}},
        spec_hash="abc",
        state="Pending",
        reason="Pending",
        message="",
        placement=placement,
        placed_document=None,
        conditions=[],
        created_at=T0,
        updated_at=T0,
    )


def test_new_file_is_wal_and_current_schema(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "a.db")
    assert s.schema_version == SCHEMA_VERSION
    s.close()
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"slices", "events", "maintenance"} <= tables
    conn.close()


def stored(s: Store, name: str) -> SliceRow | None:
    """The stored row of slice ``name`` (None when there is none), read back from the file."""
    return next((r for r in s.load_slices() if r.name == name), None)


def test_one_transaction_commits_rows_and_events_together(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "a.db")
    with s.transaction() as tx:
        tx.put_slice(row("a", placement={"slice": "a"}))
        tx.add_event(T0, "operator:x", "apply", "created", slice_name="a")
    with pytest.raises(RuntimeError), s.transaction() as tx:
        tx.put_slice(row("a", generation=2))
        tx.add_event(T0, "operator:x", "apply", "changed", slice_name="a")
        raise RuntimeError("crash between the writes")
    [a] = s.load_slices()
    assert (a.generation, a.placement) == (1, {"slice": "a"})
    assert [e.message for e in s.events()] == ["created"]
    s.close()
    reopened = Store.open(tmp_path / "a.db")
    assert stored(reopened, "a") == a
    assert stored(reopened, "b") is None
    reopened.close()


def test_events_paging_and_filter(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "a.db")
    with s.transaction() as tx:
        for i in range(5):
            tx.add_event(T0, "controller", "admit", f"m{i}", slice_name="a" if i % 2 else "b", site=None)
    assert [e.seq for e in s.events(after_seq=2, limit=2)] == [3, 4]
    assert [e.message for e in s.events(slice_name="a")] == ["m1", "m3"]
    assert s.last_event_seq() == 5
    s.close()


def test_maintenance_set_and_clear(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "a.db")
    with s.transaction() as tx:
        tx.set_maintenance("site", "edge-1", T0, "operator:x")
        tx.set_maintenance("site", "edge-2", T0, "operator:x")
    with s.transaction() as tx:
        tx.clear_maintenance("site", "edge-1")
    assert [(m.kind, m.name, m.actor) for m in s.maintenance()] == [("site", "edge-2", "operator:x")]
    s.close()


def test_older_schema_is_migrated_and_newer_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("VACUUM")  # version 0: a SQLite file with nothing in it (one page)
    conn.close()
    assert path.stat().st_size > 0
    s = Store.open(path)
    assert s.schema_version == SCHEMA_VERSION
    s.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(errors.StoreError, match="schema version 99 is newer"):
        Store.open(path)


def test_bad_files_give_one_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(errors.StoreError, match=r"junk.db: file is not a database"):
        Store.open(junk)
    with pytest.raises(errors.StoreError, match="does not exist"):
        Store.open(tmp_path / "missing" / "a.db")


def test_agent_sites_are_kept_across_reopening_and_added_by_migration(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")  # a version-1 file
    conn.close()
    s = Store.open(path)
    assert s.schema_version == SCHEMA_VERSION and s.agent_sites() == set()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    s.add_agent_sites(["c1", "e1"], at)
    s.add_agent_sites(["c1"], at)  # known already: left as it is
    s.close()
    assert Store.open(path).agent_sites() == {"c1", "e1"}


def test_site_generations_and_the_epoch_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    s = Store.open(path)
    epoch = s.epoch()
    assert len(epoch) == 16 and s.site_generations() == {}
    s.save_site_generations([("c1", 3, "h3"), ("e1", 1, "h1")])
    s.save_site_generations([("c1", 4, "h4")])
    s.close()
    again = Store.open(path)
    assert again.epoch() == epoch
    assert again.site_generations() == {"c1": (4, "h4"), "e1": (1, "h1")}
    other = Store.open(tmp_path / "other.db")
    assert other.epoch() != epoch  # another state, another epoch


# -- never start empty over lost data ------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _filled(path: Path, names: tuple[str, ...] = ("cars", "meters", "wifi")) -> dict[str, SliceRow]:
    """A real state: slices applied through the service (placed, with events), then closed."""
    store = Store.open(path)
    service = ControllerService(small_city(), store, [FlakyRealiser()], FakeClock())
    kinds = {"cars": "vehicle", "meters": "iot"}
    service.apply([doc(n, kinds.get(n, "wifi"), ["c1", "c2"]) for n in names], "test")
    service.reconcile()
    rows = {r.name: r for r in store.load_slices()}
    store.close()
    return rows


def test_an_empty_file_is_refused_unchanged_and_only_init_starts_over_it(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    path.touch()
    with pytest.raises(errors.StoreError, match=r"a.db: is empty \(0 bytes\).*--init") as info:
        Store.open(path)
    assert "\n" not in str(info.value)
    assert path.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["a.db"]
    s = Store.open(path, init=True)
    assert s.schema_version == SCHEMA_VERSION and s.load_slices() == []
    s.close()
    _filled(tmp_path / "b.db")
    before = _digest(tmp_path / "b.db")
    with pytest.raises(errors.StoreError, match=r"b.db: --init starts a new state only where there is none"):
        Store.open(tmp_path / "b.db", init=True)
    assert _digest(tmp_path / "b.db") == before
    assert (
        Store.open(tmp_path / "missing.db").schema_version == SCHEMA_VERSION
    )  # a missing file needs no --init


def test_a_missing_file_beside_its_log_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.db-wal").write_bytes(b"x" * 100)
    with pytest.raises(errors.StoreError, match=r"a.db: missing, but its write-ahead log"):
        Store.open(tmp_path / "a.db")
    assert not (tmp_path / "a.db").exists()


def test_truncated_and_foreign_files_are_refused_unchanged(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    _filled(good)
    cut = tmp_path / "cut.db"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size - 4096])
    with pytest.raises(errors.StoreError, match=r"cut.db: truncated \(\d+ bytes; its header says \d+ pages"):
        Store.open(cut)
    odd = tmp_path / "odd.db"
    odd.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(errors.StoreError, match=r"odd.db: truncated"):
        Store.open(odd)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    before = _digest(other)
    with pytest.raises(
        errors.StoreError, match=r"other.db: a SQLite database of something else \(tables invoices\)"
    ):
        Store.open(other)
    assert _digest(other) == before  # none of our tables added to it
    app = tmp_path / "app.db"
    conn = sqlite3.connect(app)
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE slices (x)")
    conn.commit()
    conn.close()
    with pytest.raises(errors.StoreError, match=r"app.db: a SQLite database of another application"):
        Store.open(app)
    half = tmp_path / "half.db"
    conn = sqlite3.connect(half)
    conn.executescript(MIGRATIONS[0] + "DROP TABLE maintenance; PRAGMA user_version = 1;")
    conn.close()
    with pytest.raises(
        errors.StoreError,
        match=r"half.db: not an edgeslice state of schema version 1 \(no table maintenance\)",
    ):
        Store.open(half)


@pytest.mark.parametrize("where", [0.0, 0.3, 0.6, 0.95])
def test_garbage_inside_a_state_file_is_refused_in_one_line(tmp_path: Path, where: float) -> None:
    path = tmp_path / "a.db"
    _filled(path, tuple(f"s{i}" for i in range(40)))
    data = bytearray(path.read_bytes())
    offset = int(len(data) * where) // 4096 * 4096
    garbage = random.Random(where).randbytes(16 * 1024)
    data[offset : offset + len(garbage)] = garbage
    path.write_bytes(bytes(data[: len(data)]))
    before = _digest(path)
    with pytest.raises(errors.StoreError) as info:
        Store.open(path)
    message = str(info.value)
    assert message.startswith(f"state file {path}: ") and "\n" not in message
    assert "not a database" in message or "damaged" in message or "malformed" in message
    assert _digest(path) == before
    try:
        report = store_mod.check_state(path)
    except errors.StoreError as exc:
        assert "\n" not in str(exc)
    else:
        assert not report.ok, report  # the same damage, seen by the check


def _set_column(path: Path, name: str, column: str, value: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE slices SET {column} = ? WHERE name = ?", (value, name))
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("document", "{not json", "document is not JSON"),
        ("placement", "[1, 2", "placement is not JSON"),
        ("placement", "[1, 2]", "placement is JSON list, not dict"),
        ("document", '{"spec": {"kind": "boat"}}', "spec.kind"),
        ("placement", '{"slice": "meters"}', "specHash"),
        ("conditions", '{"a": 1}', "conditions is JSON dict, not list"),
    ],
)
def test_a_bad_row_is_named_by_the_check_and_refused_at_start(
    tmp_path: Path, column: str, value: str, problem: str
) -> None:
    path = tmp_path / "a.db"
    rows = _filled(path)
    assert rows["meters"].placement is not None
    _set_column(path, "meters", column, value)
    report = store_mod.check_state(path)
    assert report.slices == 3 and len(report.problems) == 1
    assert report.problems[0].startswith(f"state file {path}: slice 'meters' cannot be read: ")
    assert problem in report.problems[0] and "\n" not in report.problems[0]
    store = Store.open(path)
    with pytest.raises(errors.StoreError, match="slice 'meters' cannot be read") as info:
        store.load_slices()
        ControllerService(small_city(), store, [FlakyRealiser()], FakeClock())
    assert problem in str(info.value) and "\n" not in str(info.value)
    store.close()


def test_check_of_a_sound_state_counts_what_is_in_it(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    _filled(path)
    report = store_mod.check_state(path)
    assert report.ok and (report.schema_version, report.slices) == (SCHEMA_VERSION, 3)
    assert report.events > 0 and len(report.epoch) == 16


def _version(path: Path, version: int) -> None:
    """A file of an earlier schema version, with data in it."""
    conn = sqlite3.connect(path)
    script = "".join(MIGRATIONS[:version]) + f"PRAGMA user_version = {version};"
    conn.executescript(script)
    conn.close()


@pytest.mark.parametrize("version", [1, 2])
def test_migration_from_each_earlier_version_keeps_the_data(tmp_path: Path, version: int) -> None:
    source = tmp_path / "current.db"
    rows = _filled(source)
    path = tmp_path / f"v{version}.db"
    _version(path, version)
    conn = sqlite3.connect(path)
    conn.execute("ATTACH ? AS cur", (str(source),))
    conn.execute("INSERT INTO slices SELECT * FROM cur.slices")
    conn.execute("INSERT INTO events SELECT * FROM cur.events")
    conn.execute("INSERT INTO maintenance VALUES ('site', 'e2', ?, 'operator:x')", (T0.isoformat(),))
    if version >= 2:
        conn.execute("INSERT INTO agent_sites VALUES ('c1', ?)", (T0.isoformat(),))
    conn.commit()
    conn.close()
    events = Store.open(source).events()
    s = Store.open(path)
    assert s.schema_version == SCHEMA_VERSION
    assert {r.name: r for r in s.load_slices()} == rows
    assert s.events() == events
    assert [(m.kind, m.name) for m in s.maintenance()] == [("site", "e2")]
    assert s.agent_sites() == ({"c1"} if version >= 2 else set())
    assert len(s.epoch()) == 16 and s.site_generations() == {}
    s.close()
    assert store_mod.check_state(path).ok


# -- one controller per state, backup and restore --------------------------------------------------


def test_a_held_lock_names_its_holder_and_is_free_once_released(tmp_path: Path) -> None:
    path = tmp_path / "a.db.lock"
    held = store_mod.StateLock.acquire(path, "state file a.db")
    with pytest.raises(errors.StoreError) as info:
        store_mod.StateLock.acquire(path, "state file a.db")
    assert str(info.value) == (
        f"state file a.db: in use by another controller (PID {os.getpid()}, lock {path}); "
        "stop it first, or give this one its own --state-dir"
    )
    held.release()
    store_mod.StateLock.acquire(path, "state file a.db").release()
    with pytest.raises(errors.StoreError, match=r"folder .*/none does not exist"):
        store_mod.StateLock.acquire(tmp_path / "none" / "x.lock", "state file x")


def test_backup_and_restore_keep_every_row_and_refuse_what_is_unsound(tmp_path: Path) -> None:
    state = tmp_path / "a.db"
    rows = _filled(state)
    backup = tmp_path / "backup.db"
    report = store_mod.backup_state(state, backup)
    assert report.ok and report.slices == 3 and backup.exists()
    with pytest.raises(errors.StoreError, match=r"backup\.db: exists already"):
        store_mod.backup_state(state, backup)
    with pytest.raises(errors.StoreError, match=r"folder .*/none does not exist"):
        store_mod.backup_state(state, tmp_path / "none" / "b.db")
    # The state moves on; a restore brings back the backup's rows and keeps what it replaced.
    later = Store.open(state)
    with later.transaction() as tx:
        tx.remove_slice("cars")
    later.close()
    replaced = _digest(state)
    held = store_mod.StateLock.acquire(store_mod.lock_path(state), "state file")
    with pytest.raises(errors.StoreError, match=r"in use by another controller .*stop it before restoring"):
        store_mod.restore_state(backup, state)
    held.release()
    assert _digest(state) == replaced
    bad = tmp_path / "bad.db"
    store_mod.backup_state(state, bad)
    _set_column(bad, "meters", "document", "{")
    with pytest.raises(errors.StoreError, match=r"bad.db: does not check: .*slice 'meters'"):
        store_mod.restore_state(bad, state)
    assert _digest(state) == replaced
    _, kept = store_mod.restore_state(backup, state)
    assert kept == tmp_path / "a.db.pre-restore"
    assert {r.name: r for r in Store.open(state).load_slices()} == rows
    assert {r.name for r in Store.open(kept).load_slices()} == {"meters", "wifi"}
