"""The SQLite store on real files in temporary folders."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller import store as store_mod
from controller.store import SliceRow, Store
from slices import errors

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
    assert s.schema_version == store_mod.SCHEMA_VERSION
    s.close()
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"slices", "events", "maintenance"} <= tables
    conn.close()


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
    assert reopened.get_slice("a") == a
    assert reopened.get_slice("b") is None
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
    sqlite3.connect(path).close()  # version 0: an empty file
    s = Store.open(path)
    assert s.schema_version == 3
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
    conn.executescript(store_mod._MIGRATIONS[0] + "PRAGMA user_version = 1;")  # a version-1 file
    conn.close()
    s = Store.open(path)
    assert s.schema_version == 3 and s.agent_sites() == set()
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
