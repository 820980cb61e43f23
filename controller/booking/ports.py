"""What the booking API's parts promise each other: the REST app calls these, the runtime and the
client registry implement them. Errors carry the CAMARA envelope's status and code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from controller.booking import camara

SCOPE_CREATE = "network-slice-booking:slices:create"
SCOPE_GET = "network-slice-booking:slices:get"
SCOPE_DELETE = "network-slice-booking:slices:delete"
SCOPES = (SCOPE_CREATE, SCOPE_GET, SCOPE_DELETE)

#: The label every booking's NetworkSlice carries: the tenant (client name) it belongs to.
TENANT_LABEL = "booking.edgeslice.io/tenant"
#: The annotation naming the booking (its CAMARA ``sliceId``) on its NetworkSlice.
SLICE_ID_ANNOTATION = "booking.edgeslice.io/slice-id"


class BookingError(Exception):
    """A refusal the API answers in the CAMARA error envelope ``{status, code, message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid_argument(message: str) -> BookingError:
    return BookingError(400, "INVALID_ARGUMENT", message)


def out_of_range(message: str) -> BookingError:
    return BookingError(400, "OUT_OF_RANGE", message)


def unauthenticated(message: str = "a valid access token is required") -> BookingError:
    return BookingError(401, "UNAUTHENTICATED", message)


def permission_denied(message: str) -> BookingError:
    return BookingError(403, "PERMISSION_DENIED", message)


def not_found(message: str = "no such slice") -> BookingError:
    return BookingError(404, "NOT_FOUND", message)


def area_not_supported(message: str) -> BookingError:
    return BookingError(422, "NETWORK_SLICE_BOOKING.SERVICEAREA_NOT_SUPPORTED", message)


def resources_insufficient(message: str) -> BookingError:
    return BookingError(422, "NETWORK_SLICE_BOOKING.RESOURCES_INSUFFICIENT", message)


def quota_exceeded(message: str) -> BookingError:
    return BookingError(429, "QUOTA_EXCEEDED", message)


def too_many_requests(message: str) -> BookingError:
    return BookingError(429, "TOO_MANY_REQUESTS", message)


@dataclass(frozen=True)
class Tenant:
    """A registered client: who books, what it may do, and how much it may hold."""

    client_id: str
    name: str  # DNS label; the tenant label on its slices and the audit trail's actor
    scopes: frozenset[str]
    quota_bookings: int | None = None  # active (not expired, not deleted) bookings at once
    quota_mbps: float | None = None  # total reserved Mbps over its active bookings
    requests_per_s: float | None = None  # request-rate limit (None: the service default)


@dataclass(frozen=True)
class Principal:
    """Who presented a verified access token, and the scopes it grants."""

    client_id: str
    scopes: frozenset[str]
    expires_at: datetime


class Clients(Protocol):
    """The operator's registry of booking clients."""

    def authenticate(self, client_id: str, client_secret: str) -> Tenant | None:
        """The tenant whose secret this is, or None (unknown client or wrong secret, alike)."""
        ...

    def tenant(self, client_id: str) -> Tenant | None:
        """The registered client, or None once removed (its tokens stop working)."""
        ...


class Tokens(Protocol):
    """Issues and verifies the API's access tokens."""

    def issue(self, tenant: Tenant, scopes: frozenset[str]) -> tuple[str, int]:
        """A signed access token for ``scopes`` (a subset of the tenant's) and its lifetime in s."""
        ...

    def verify(self, token: str) -> Principal:
        """The token's principal; :func:`unauthenticated` if it is malformed, forged or expired."""
        ...


class Bookings(Protocol):
    """The bookings of every tenant; each call sees only the caller's own."""

    def create(self, tenant: Tenant, attributes: camara.SliceAttributes) -> camara.SliceInfo: ...

    def get(self, tenant: Tenant, slice_id: UUID) -> camara.SliceInfo:
        """:func:`not_found` for a missing slice and for another tenant's alike."""
        ...

    def delete(self, tenant: Tenant, slice_id: UUID) -> None:
        """Idempotent: deleting what is gone (or never was the caller's) is not an error."""
        ...
