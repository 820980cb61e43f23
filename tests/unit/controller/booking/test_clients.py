"""The booking client registry over a real SQLite state file: add, authenticate, list, rotate,
remove; secrets only as salted scrypt hashes; refusals naming the field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.booking import clients, ports
from controller.booking.clients import ClientRegistry
from controller.runtime.store import Store
from slices import errors
from tests.support.clock import FakeClock


@pytest.fixture
def store(state_store: Store) -> Store:
    """The tests' state file (the suite's ``state_store``)."""
    return state_store


@pytest.fixture
def registry(store: Store) -> ClientRegistry:
    return ClientRegistry(store, FakeClock())


def test_add_then_authenticate_with_the_secret_only(registry: ClientRegistry) -> None:
    tenant, secret = registry.add(
        "transport", "create,get", quota_bookings=3, quota_mbps=250, requests_per_s=5
    )
    assert tenant.scopes == {ports.SCOPE_CREATE, ports.SCOPE_GET}
    assert (tenant.quota_bookings, tenant.quota_mbps, tenant.requests_per_s) == (3, 250.0, 5.0)
    assert registry.authenticate(tenant.client_id, secret) == tenant
    assert registry.authenticate(tenant.client_id, secret + "x") is None
    assert registry.authenticate(tenant.client_id, "") is None
    assert registry.authenticate("no-such-client", secret) is None
    assert registry.tenant(tenant.client_id) == tenant


def test_secret_is_stored_only_as_a_salted_hash(registry: ClientRegistry, store: Store) -> None:
    _, secret_a = registry.add("a", ["get"])
    _, secret_b = registry.add("b", ["get"])
    rows = store.query("SELECT * FROM booking_clients ORDER BY name")
    hashes = [str(r["secret_hash"]) for r in rows]
    for row in rows:
        assert secret_a not in json.dumps(dict(row)) and secret_b not in json.dumps(dict(row))
    assert all(h.startswith("scrypt$16384$8$1$") for h in hashes)
    salts = {h.split("$")[4] for h in hashes}
    assert len(salts) == 2  # a fresh salt per secret
    assert len(secret_a) >= 43 and secret_a != secret_b  # token_urlsafe(32)


def test_unknown_client_costs_one_scrypt_like_a_known_one(
    registry: ClientRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, secret = registry.add("police", "get")
    calls: list[int] = []
    real: Callable[..., bytes] = hashlib.scrypt

    def counting(*args: Any, **kwargs: Any) -> bytes:
        calls.append(int(kwargs["n"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    assert registry.authenticate("unknown", secret) is None
    assert registry.authenticate(tenant.client_id, "wrong") is None
    assert registry.authenticate(tenant.client_id, secret) == tenant
    assert calls == [2**14, 2**14, 2**14]


def test_scopes_short_and_full_names() -> None:
    assert clients.parse_scopes("create, get,delete") == frozenset(ports.SCOPES)
    assert clients.parse_scopes([ports.SCOPE_DELETE]) == {ports.SCOPE_DELETE}
    assert clients.short_scopes([ports.SCOPE_DELETE, ports.SCOPE_CREATE]) == ["create", "delete"]
    for bad in ("", " , ", "read", "network-slice-booking:slices:update"):
        with pytest.raises(ValueError):
            clients.parse_scopes(bad)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "Bad_Name"}, "name"),
        ({"name": "-edge"}, "name"),
        ({"name": "x" * 64}, "name"),
        ({"scopes": "read"}, "scopes"),
        ({"scopes": ""}, "scopes"),
        ({"quota_bookings": 0}, "quota_bookings"),
        ({"quota_bookings": 2.5}, "quota_bookings"),
        ({"quota_bookings": True}, "quota_bookings"),
        ({"quota_mbps": -1.0}, "quota_mbps"),
        ({"quota_mbps": float("nan")}, "quota_mbps"),
        ({"requests_per_s": float("inf")}, "requests_per_s"),
        ({"requests_per_s": 0}, "requests_per_s"),
        ({"client_id": "a:b"}, "client_id"),
        ({"client_id": ""}, "client_id"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    registry: ClientRegistry, store: Store, kwargs: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {"name": "events", "scopes": "create", **kwargs}
    with pytest.raises(errors.InvalidSpec, match=rf"^{field}: "):
        registry.add(**args)
    assert store.query("SELECT COUNT(*) AS n FROM booking_clients")[0]["n"] == 0


def test_a_name_and_an_id_are_taken_once(registry: ClientRegistry) -> None:
    registry.add("events", "get", client_id="idp-client-1")
    with pytest.raises(errors.InvalidSpec, match=r"^name: a client named 'events' already exists"):
        registry.add("events", "create")
    with pytest.raises(errors.InvalidSpec, match=r"^client_id: .*'idp-client-1' already exists"):
        registry.add("other", "create", client_id="idp-client-1")
    assert [c.tenant.name for c in registry.list()] == ["events"]


def test_rotate_replaces_the_secret(store: Store) -> None:
    clock = FakeClock()
    registry = ClientRegistry(store, clock)
    tenant, old = registry.add("events", "create,get")
    clock.advance(60)
    rotated, new = registry.rotate("events")
    assert rotated == tenant and new != old
    assert registry.authenticate(tenant.client_id, old) is None
    assert registry.authenticate(tenant.client_id, new) == tenant
    (listed,) = registry.list()
    assert listed.rotated_at == clock.now() and listed.created_at < clock.now()


def test_remove_forgets_the_client(registry: ClientRegistry) -> None:
    tenant, secret = registry.add("events", "get")
    keep, _ = registry.add("agency", "get")
    assert registry.remove("events") == tenant
    assert registry.tenant(tenant.client_id) is None
    assert registry.authenticate(tenant.client_id, secret) is None
    assert [c.tenant for c in registry.list()] == [keep]
    with pytest.raises(errors.NotFound, match="no booking client named 'events'"):
        registry.remove("events")
    with pytest.raises(errors.NotFound):
        registry.rotate("events")


def test_list_is_by_name_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = Store.open(path)
    try:
        made = [ClientRegistry(first).add(name, "get")[0] for name in ("zeta", "alpha", "mid")]
    finally:
        first.close()
    again = Store.open(path)
    try:
        listed = ClientRegistry(again).list()
    finally:
        again.close()
    assert [c.tenant.name for c in listed] == ["alpha", "mid", "zeta"]
    assert {c.tenant for c in listed} == set(made)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$1$2$3$4$5",
        "scrypt$x$8$1$AAAA$AAAA",
        "scrypt$16384$8$1$!!$AAAA",
        "scrypt$3$8$1$AAAA$AAAA",
    ],
)
def test_an_unreadable_stored_hash_matches_nothing(stored: str) -> None:
    assert clients.secret_matches("secret", stored) is False


def test_secret_matches_its_own_hash_only() -> None:
    digest = clients.encode_secret_hash("s3cret")
    assert clients.secret_matches("s3cret", digest)
    assert not clients.secret_matches("s3cret ", digest)
    assert clients.encode_secret_hash("s3cret") != digest  # salted
