"""Fakes at the booking API's ports (:mod:`controller.booking.ports`), for the REST tests.

:class:`FakeBookings` keeps each tenant's bookings in a dict, enforces the tenant's booking quota
and refuses what a test arranges (:meth:`FakeBookings.refuse_next`), raising the ports' errors
as the real service does; it records the thread of each call. :class:`FakeClients` and
:class:`FakeTokens` stand for the client registry and the token signer (opaque ``tok-N``
tokens). mypy checks each against its Protocol where the tests pass them to ``make_app``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from controller.booking import camara, ports


class FakeBookings:
    """Bookings in memory, per tenant (keyed by its name)."""

    def __init__(self) -> None:
        self.by_tenant: dict[str, dict[UUID, camara.SliceInfo]] = {}
        self.threads: list[str] = []  # the thread each call ran on
        self.before_create: Callable[[], None] | None = None  # e.g. wait on an Event
        self._refusals: list[ports.BookingError] = []
        self._lock = threading.Lock()

    def refuse_next(self, error: ports.BookingError) -> None:
        """The next create raises ``error`` (e.g. ``ports.area_not_supported(...)``)."""
        self._refusals.append(error)

    def create(self, tenant: ports.Tenant, attributes: camara.SliceAttributes) -> camara.SliceInfo:
        self.threads.append(threading.current_thread().name)
        if self.before_create is not None:
            self.before_create()
        with self._lock:
            if self._refusals:
                raise self._refusals.pop(0)
            own = self.by_tenant.setdefault(tenant.name, {})
            if tenant.quota_bookings is not None and len(own) >= tenant.quota_bookings:
                raise ports.quota_exceeded(f"tenant {tenant.name} holds {len(own)} bookings, its quota")
            info = camara.SliceInfo.model_validate({**attributes.model_dump(), "sliceId": uuid.uuid4()})
            own[info.sliceId] = info
            return info

    def get(self, tenant: ports.Tenant, slice_id: UUID) -> camara.SliceInfo:
        self.threads.append(threading.current_thread().name)
        found = self.by_tenant.get(tenant.name, {}).get(slice_id)
        if found is None:
            raise ports.not_found()
        return found

    def delete(self, tenant: ports.Tenant, slice_id: UUID) -> None:
        self.threads.append(threading.current_thread().name)
        with self._lock:
            self.by_tenant.get(tenant.name, {}).pop(slice_id, None)


class FakeClients:
    """Registered clients by id, each with its secret."""

    def __init__(self) -> None:
        self.registered: dict[str, tuple[ports.Tenant, str]] = {}

    def add(
        self,
        name: str,
        scopes: frozenset[str] = frozenset(ports.SCOPES),
        *,
        quota_bookings: int | None = None,
        requests_per_s: float | None = None,
    ) -> tuple[ports.Tenant, str]:
        tenant = ports.Tenant(
            client_id=f"id-{name}",
            name=name,
            scopes=scopes,
            quota_bookings=quota_bookings,
            requests_per_s=requests_per_s,
        )
        secret = f"secret-{name}"
        self.registered[tenant.client_id] = (tenant, secret)
        return tenant, secret

    def remove(self, client_id: str) -> None:
        del self.registered[client_id]

    def authenticate(self, client_id: str, client_secret: str) -> ports.Tenant | None:
        found = self.registered.get(client_id)
        return found[0] if found is not None and found[1] == client_secret else None

    def tenant(self, client_id: str) -> ports.Tenant | None:
        found = self.registered.get(client_id)
        return found[0] if found is not None else None


class FakeTokens:
    """Opaque tokens ``tok-N`` remembered with their principal; :meth:`expire` ends one."""

    LIFETIME_S = 300

    def __init__(self) -> None:
        self.issued: dict[str, ports.Principal] = {}

    def issue(self, tenant: ports.Tenant, scopes: frozenset[str]) -> tuple[str, int]:
        token = f"tok-{len(self.issued) + 1}"
        expires = datetime.now(UTC) + timedelta(seconds=self.LIFETIME_S)
        self.issued[token] = ports.Principal(client_id=tenant.client_id, scopes=scopes, expires_at=expires)
        return token, self.LIFETIME_S

    def expire(self, token: str) -> None:
        principal = self.issued[token]
        self.issued[token] = ports.Principal(
            principal.client_id, principal.scopes, datetime.now(UTC) - timedelta(seconds=1)
        )

    def verify(self, token: str) -> ports.Principal:
        principal = self.issued.get(token)
        if principal is None:
            raise ports.unauthenticated("malformed or forged access token")
        if principal.expires_at <= datetime.now(UTC):
            raise ports.unauthenticated("the access token has expired")
        return principal
