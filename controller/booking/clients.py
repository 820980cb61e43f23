"""The operator's registry of booking clients (table ``booking_clients``): each client is a tenant
with scopes, optional quotas and a request-rate limit, authenticated by a secret of which only a
salted scrypt hash is stored.

Every call reads or writes the state file, so a client the operator adds, rotates or removes with
``slicectl booking client ...`` counts at once in a running controller.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from controller.booking import ports
from controller.runtime.clock import Clock, RealClock
from controller.runtime.store import Store
from slices import errors
from slices.intent import is_dns_label

#: Short scope names the operator may type instead of the full scope strings.
SHORT_SCOPES: dict[str, str] = {scope.rsplit(":", 1)[1]: scope for scope in ports.SCOPES}

# scrypt cost: 16 MiB of memory and some tens of milliseconds per check (RFC 7914 §2's
# interactive-login figures); the stored hash names its parameters so they can be raised later.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32

_COLUMNS = "client_id, name, scopes, quota_bookings, quota_mbps, requests_per_s, created_at, rotated_at"


@dataclass(frozen=True)
class RegisteredClient:
    """A client as the operator lists it: the tenant and when its secret was made."""

    tenant: ports.Tenant
    created_at: datetime
    rotated_at: datetime | None


def parse_scopes(value: str | Iterable[str]) -> frozenset[str]:
    """The full scope strings of ``value``: short names (``create``, ``get``, ``delete``) or full
    ones, comma- or space-separated or as a list; :class:`ValueError` for an empty or unknown one.

    >>> sorted(parse_scopes("get, network-slice-booking:slices:create"))
    ['network-slice-booking:slices:create', 'network-slice-booking:slices:get']
    """
    items = value.replace(",", " ").split() if isinstance(value, str) else [v.strip() for v in value]
    if not items:
        raise ValueError(f"give at least one scope of {', '.join(SHORT_SCOPES)}")
    out: set[str] = set()
    for item in items:
        scope = SHORT_SCOPES.get(item, item)
        if scope not in ports.SCOPES:
            raise ValueError(
                f"unknown scope {item!r} (known: {', '.join(SHORT_SCOPES)} or {', '.join(ports.SCOPES)})"
            )
        out.add(scope)
    return frozenset(out)


def short_scopes(scopes: Iterable[str]) -> list[str]:
    """The short names of ``scopes`` in the order of :data:`ports.SCOPES`."""
    given = set(scopes)
    return [short for short, full in SHORT_SCOPES.items() if full in given]


def check_name(name: str) -> str:
    """``name`` if it is a DNS label (it becomes the tenant label of the client's slices)."""
    if not is_dns_label(name):
        raise ValueError(
            f"{name!r} is not a DNS label (lower-case letters, digits and '-', starting and ending "
            "with a letter or digit, at most 63 characters)"
        )
    return name


def check_positive(value: float | None, *, integer: bool = False) -> float | None:
    """``value`` if it is None or a positive finite number (a positive int when ``integer``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    if integer and not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{value!r} is not a positive number")
    return value


def _field(name: str, check: object) -> errors.InvalidSpec:
    return errors.InvalidSpec(f"{name}: {check}")


def _hash_secret(
    secret: str, salt: bytes, n: int = _SCRYPT_N, r: int = _SCRYPT_R, p: int = _SCRYPT_P
) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=2 * 128 * n * r * p, dklen=_HASH_BYTES
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_secret_hash(secret: str) -> str:
    """``scrypt$N$r$p$salt$hash`` of ``secret`` with a fresh random salt (what the table keeps)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _hash_secret(secret, salt)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def secret_matches(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored`` (compared in constant time); False for a stored
    value this code cannot read."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _hash_secret(secret, _unb64(salt), int(n), int(r), int(p))
    except ValueError:  # malformed field, bad base64 (binascii.Error is a ValueError), bad cost
        return False
    return hmac.compare_digest(actual, expected)


class ClientRegistry:
    """:class:`ports.Clients` over the state file's ``booking_clients`` table, plus the operator's
    add, list, remove and rotate."""

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or RealClock()
        # Unknown clients are checked against this, so they take as long as a wrong secret.
        self._dummy_hash = encode_secret_hash(secrets.token_urlsafe(32))

    # -- ports.Clients -------------------------------------------------------------------------

    def authenticate(self, client_id: str, client_secret: str) -> ports.Tenant | None:
        """The tenant whose secret this is, or None; an unknown client costs one scrypt too."""
        rows = self._store.query(
            f"SELECT {_COLUMNS}, secret_hash FROM booking_clients WHERE client_id = ?", (client_id,)
        )
        stored = str(rows[0]["secret_hash"]) if rows else self._dummy_hash
        ok = secret_matches(client_secret, stored)
        return _row_to_client(rows[0]).tenant if rows and ok else None

    def tenant(self, client_id: str) -> ports.Tenant | None:
        """The registered client, or None (never registered or since removed)."""
        rows = self._store.query(f"SELECT {_COLUMNS} FROM booking_clients WHERE client_id = ?", (client_id,))
        return _row_to_client(rows[0]).tenant if rows else None

    # -- the operator's side --------------------------------------------------------------------

    def named(self, name: str) -> RegisteredClient | None:
        rows = self._store.query(f"SELECT {_COLUMNS} FROM booking_clients WHERE name = ?", (name,))
        return _row_to_client(rows[0]) if rows else None

    def add(
        self,
        name: str,
        scopes: str | Iterable[str],
        quota_bookings: int | None = None,
        quota_mbps: float | None = None,
        requests_per_s: float | None = None,
        client_id: str | None = None,
    ) -> tuple[ports.Tenant, str]:
        """Register a client; returns its tenant and its secret, which is not kept (only a hash).

        ``client_id`` defaults to a new random id; give one to register a client an external OIDC
        issuer knows by that id (:class:`controller.booking.tokens.ExternalTokens`).
        :class:`errors.InvalidSpec` naming the field for a bad value or a name already taken.
        """
        try:
            check_name(name)
        except ValueError as exc:
            raise _field("name", exc) from exc
        try:
            granted = parse_scopes(scopes)
        except ValueError as exc:
            raise _field("scopes", exc) from exc
        for field, value, integer in (
            ("quota_bookings", quota_bookings, True),
            ("quota_mbps", quota_mbps, False),
            ("requests_per_s", requests_per_s, False),
        ):
            try:
                check_positive(value, integer=integer)
            except ValueError as exc:
                raise _field(field, exc) from exc
        if client_id is not None and (not client_id or not client_id.isprintable() or ":" in client_id):
            # RFC 6749 §2.3.1: client_secret_basic cannot carry a ':' in the id.
            raise _field("client_id", f"{client_id!r} must be printable, non-empty and without ':'")
        tenant = ports.Tenant(
            client_id=client_id or secrets.token_hex(16),
            name=name,
            scopes=granted,
            quota_bookings=quota_bookings,
            quota_mbps=float(quota_mbps) if quota_mbps is not None else None,
            requests_per_s=float(requests_per_s) if requests_per_s is not None else None,
        )
        secret = secrets.token_urlsafe(32)
        digest = encode_secret_hash(secret)
        try:
            with self._store.transaction() as tx:
                tx.execute(
                    "INSERT INTO booking_clients (client_id, name, secret_hash, scopes, quota_bookings, "
                    "quota_mbps, requests_per_s, created_at) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        tenant.client_id,
                        name,
                        digest,
                        json.dumps([s for s in ports.SCOPES if s in granted]),
                        tenant.quota_bookings,
                        tenant.quota_mbps,
                        tenant.requests_per_s,
                        self._clock.now().isoformat(),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            if self.named(name) is not None:
                raise _field("name", f"a client named {name!r} already exists") from exc
            raise _field("client_id", f"a client with id {tenant.client_id!r} already exists") from exc
        return tenant, secret

    def list(self) -> tuple[RegisteredClient, ...]:
        """Every registered client, by name (no secrets: the table has none)."""
        rows = self._store.query(f"SELECT {_COLUMNS} FROM booking_clients ORDER BY name")
        return tuple(_row_to_client(r) for r in rows)

    def remove(self, name: str) -> ports.Tenant:
        """Remove the client ``name``; its tokens stop working at once (the API checks
        :meth:`tenant`). :class:`errors.NotFound` if there is none."""
        client = self._require(name)
        with self._store.transaction() as tx:
            tx.execute("DELETE FROM booking_clients WHERE client_id = ?", (client.tenant.client_id,))
        return client.tenant

    def rotate(self, name: str) -> tuple[ports.Tenant, str]:
        """A new secret for ``name``, returned once; the old one stops working at once (tokens
        already issued run out their lifetime). :class:`errors.NotFound` if there is none."""
        client = self._require(name)
        secret = secrets.token_urlsafe(32)
        digest = encode_secret_hash(secret)
        with self._store.transaction() as tx:
            changed = tx.execute(
                "UPDATE booking_clients SET secret_hash = ?, rotated_at = ? WHERE client_id = ?",
                (digest, self._clock.now().isoformat(), client.tenant.client_id),
            )
        if not changed:  # removed between the read and the write
            raise errors.NotFound(f"no booking client named {name!r}")
        return client.tenant, secret

    def _require(self, name: str) -> RegisteredClient:
        client = self.named(name)
        if client is None:
            raise errors.NotFound(f"no booking client named {name!r}")
        return client


def _row_to_client(row: sqlite3.Row) -> RegisteredClient:
    rotated = row["rotated_at"]
    return RegisteredClient(
        tenant=ports.Tenant(
            client_id=str(row["client_id"]),
            name=str(row["name"]),
            scopes=frozenset(json.loads(row["scopes"])),
            quota_bookings=row["quota_bookings"],
            quota_mbps=row["quota_mbps"],
            requests_per_s=row["requests_per_s"],
        ),
        created_at=datetime.fromisoformat(row["created_at"]),
        rotated_at=datetime.fromisoformat(rotated) if rotated is not None else None,
    )
