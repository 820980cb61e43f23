"""``slicectl booking client add|list|remove|rotate`` as real subprocesses on a real SQLite state
file: the secret is printed once and never stored, bad input is one line and an exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.booking import ports
from controller.booking.clients import ClientRegistry
from controller.runtime.store import Store
from tests.support.booking_rig import ok, ok_json, one_line_error, slicectl


def every_byte(folder: Path) -> bytes:
    """The bytes of every file in ``folder`` (the state, its WAL and shared memory, if any)."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def authenticate(state: Path, client_id: str, secret: str) -> ports.Tenant | None:
    store = Store.open(state)
    try:
        return ClientRegistry(store).authenticate(client_id, secret)
    finally:
        store.close()


def test_add_list_rotate_remove(tmp_path: Path) -> None:
    state = tmp_path / "state" / "edgeslice.db"
    state.parent.mkdir()
    where = ("--state", str(state))
    added = ok_json(
        "booking", "client", "add", "events", "--scopes", "create,get", "--quota-bookings", "3",
        "--quota-mbps", "250.5", "--rate", "10", *where,
    )  # fmt: skip
    assert added["name"] == "events"
    assert added["scopes"] == ["create", "get"]
    assert (added["quota_bookings"], added["quota_mbps"], added["requests_per_s"]) == (3, 250.5, 10.0)
    secret = added["client_secret"]
    assert len(secret) >= 43
    text = ok("booking", "client", "add", "police", "--scopes", "network-slice-booking:slices:get", *where)
    assert "not shown again" in text
    police_id = text.split("client_id:")[1].split()[0]
    police_secret = text.split("client_secret:")[1].split()[0]

    listed = ok_json("booking", "client", "list", *where)
    assert [c["name"] for c in listed] == ["events", "police"]
    assert listed[0]["client_id"] == added["client_id"]
    assert listed[1] | {"created_at": None} == {
        "name": "police",
        "client_id": police_id,
        "scopes": ["get"],
        "quota_bookings": None,
        "quota_mbps": None,
        "requests_per_s": None,
        "created_at": None,
        "rotated_at": None,
    }
    table = ok("booking", "client", "list", *where)
    assert table.splitlines()[0].split() == [
        "NAME", "CLIENT_ID", "SCOPES", "QUOTA_BOOKINGS", "QUOTA_MBPS", "RATE", "SECRET_SINCE",
    ]  # fmt: skip
    assert secret not in table and police_secret not in table

    # Printed once, never stored: no file of the state's folder holds either secret.
    stored = every_byte(state.parent)
    assert stored and secret.encode() not in stored and police_secret.encode() not in stored
    tenant = authenticate(state, added["client_id"], secret)
    assert tenant is not None and tenant.name == "events"

    rotated = ok_json("booking", "client", "rotate", "events", *where)
    assert rotated["client_id"] == added["client_id"] and rotated["client_secret"] != secret
    assert authenticate(state, added["client_id"], secret) is None
    assert authenticate(state, added["client_id"], rotated["client_secret"]) is not None
    assert rotated["client_secret"].encode() not in every_byte(state.parent)
    assert ok_json("booking", "client", "list", *where)[0]["rotated_at"] is not None

    assert ok("booking", "client", "remove", "police", *where) == "removed booking client police\n"
    assert [c["name"] for c in ok_json("booking", "client", "list", *where)] == ["events"]
    assert authenticate(state, police_id, police_secret) is None


def test_default_state_file_is_the_controllers(tmp_path: Path) -> None:
    env = {"EDGESLICE_STATE_DIR": str(tmp_path / "dir")}
    ok("booking", "client", "add", "events", "--scopes", "get", env=env)
    assert (tmp_path / "dir" / "edgeslice.db").is_file()  # <state dir>/edgeslice.db, as controller run
    listed = ok_json("booking", "client", "list", "--state-dir", str(tmp_path / "dir"))
    assert [c["name"] for c in listed] == ["events"]
    ok("booking", "client", "remove", "events", env=env)
    assert ok("booking", "client", "list", env=env).startswith("no booking clients")
    assert ok("booking", "client", "list", "-o", "json", env=env) == "[]\n"


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (["add", "Bad_Name", "--scopes", "get"], 2, ["'NAME'", "not a DNS label"]),
        (["add", "x", "--scopes", "read"], 2, ["'--scopes'", "unknown scope 'read'"]),
        (["add", "x", "--scopes", ","], 2, ["'--scopes'", "at least one scope"]),
        (["add", "x"], 2, ["'--scopes'"]),
        (["add", "x", "--scopes", "get", "--quota-bookings", "0"], 2, ["'--quota-bookings'"]),
        (["add", "x", "--scopes", "get", "--quota-bookings", "1.5"], 2, ["'--quota-bookings'"]),
        (["add", "x", "--scopes", "get", "--quota-mbps", "-5"], 2, ["'--quota-mbps'"]),
        (["add", "x", "--scopes", "get", "--rate", "nan"], 2, ["'--rate'", "finite"]),
        (["add", "x", "--scopes", "get", "--client-id", "a:b"], 2, ["client_id", "':'"]),
        (["add", "taken", "--scopes", "get"], 2, ["name", "'taken' already exists"]),
        (["remove", "nobody"], 4, ["no booking client named 'nobody'"]),
        (["rotate", "nobody"], 4, ["no booking client named 'nobody'"]),
        (["remove", "Not-A-Label!"], 2, ["'NAME'"]),
        (["list", "-o", "xml"], 2, ["'-o'"]),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], code: int, fragments: list[str]) -> None:
    state = tmp_path / "state.db"
    store = Store.open(state)
    try:
        ClientRegistry(store).add("taken", "get")
    finally:
        store.close()
    before = every_byte(tmp_path)
    one_line_error(slicectl("booking", "client", *args, "--state", str(state)), code, *fragments)
    assert every_byte(tmp_path) == before  # nothing changed


@pytest.mark.parametrize("command", [["list"], ["remove", "x"], ["rotate", "x"]])
def test_a_missing_state_file_is_not_made_but_reported(tmp_path: Path, command: list[str]) -> None:
    state = tmp_path / "typo.db"
    one_line_error(
        slicectl("booking", "client", *command, "--state", str(state)), 6, str(state), "does not exist"
    )
    assert not state.exists()


def test_a_file_that_is_not_a_state_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "notes.txt"
    state.write_text("not sqlite\n")
    one_line_error(
        slicectl("booking", "client", "add", "x", "--scopes", "get", "--state", str(state)), 6, str(state)
    )
    assert state.read_text() == "not sqlite\n"
