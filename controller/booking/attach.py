"""The booking API as one part of the controller process: its settings (``slicectl controller
run --booking-*``) and what runs once the controller's service exists: the client registry and
tokens over the state file, the booking service, the REST server, the status feed and the
notifier. The composition root (controller.cli.companions) attaches it like the agent server.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from controller.booking.app import make_app
from controller.booking.clients import ClientRegistry
from controller.booking.notifier import Notifier
from controller.booking.server import BookingServer
from controller.booking.service import BookingService
from controller.booking.sinks import SinkPolicy
from controller.booking.status_feed import StatusFeed
from controller.booking.tokens import ExternalTokens, SignedTokens
from controller.runtime.clock import Clock
from controller.runtime.service import ControllerService
from slices import errors

DEFAULT_AUDIENCE = "edgeslice-booking"
API_PATH = "/network-slice-booking/vwip"


@dataclass(frozen=True)
class BookingSettings:
    """What ``--booking-*`` set. Tokens are the controller's own unless ``jwks_url`` names an
    external issuer's keys (then ``issuer`` is required)."""

    listen: str
    dev: bool = True
    tls_cert: Path | None = None
    tls_key: Path | None = None
    sink_hosts: tuple[str, ...] = ()
    sink_ca: Path | None = None  # CA bundle for the sinks' certificates (default: the system's)
    issuer: str | None = None
    audience: str = DEFAULT_AUDIENCE
    jwks_url: str | None = None
    token_lifetime_s: int = 300
    rate_per_s: float = 10.0

    def check(self) -> None:
        """Refuse what cannot work or would be unsafe, naming the flag."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise errors.InvalidSpec("--booking-tls-cert/--booking-tls-key: give both or neither")
        host = self.listen.rpartition(":")[0].strip("[]")
        if self.tls_cert is None and not self.dev:
            raise errors.InvalidSpec(
                f"--booking-listen {self.listen}: the booking API needs --booking-tls-cert and "
                "--booking-tls-key (plain HTTP only in dev mode)"
            )
        if self.tls_cert is None and self.dev and not _loopback(host):
            raise errors.InvalidSpec(
                f"--booking-listen {self.listen}: without TLS the booking API listens on loopback only"
            )
        if self.jwks_url is not None and self.issuer is None:
            raise errors.InvalidSpec("--booking-jwks-url: needs --booking-issuer (the tokens' iss)")
        if self.token_lifetime_s <= 0:
            raise errors.InvalidSpec(f"--booking-token-lifetime: {self.token_lifetime_s} is not positive")
        if self.rate_per_s <= 0:
            raise errors.InvalidSpec(f"--booking-rate: {self.rate_per_s:g} is not positive")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RunningBooking:
    """The booking API's running parts; :meth:`close` stops them, the server last... first."""

    def __init__(
        self, server: BookingServer, notifier: Notifier, feed: StatusFeed, service: BookingService
    ) -> None:
        self.server = server
        self.notifier = notifier
        self.feed = feed
        self.service = service

    @property
    def endpoints(self) -> Mapping[str, str]:
        return self.server.endpoints

    def close(self) -> None:
        self.server.stop()  # no new requests first
        self.feed.stop()
        self.notifier.stop()


def start_booking(settings: BookingSettings, controller: ControllerService, clock: Clock) -> RunningBooking:
    """Serve the booking API for ``controller`` (its state file holds clients and bookings)."""
    store = controller.store
    clients = ClientRegistry(store, clock)
    sinks = SinkPolicy(settings.sink_hosts, dev=settings.dev)
    notifier = Notifier(
        store, sinks, clock, verify=settings.sink_ca if settings.sink_ca is not None else True
    )
    server_scheme = "https" if settings.tls_cert is not None else "http"
    source = f"{server_scheme}://{settings.listen}{API_PATH}"
    if settings.jwks_url is not None:
        assert settings.issuer is not None
        tokens: SignedTokens | ExternalTokens = ExternalTokens(
            settings.issuer, settings.audience, settings.jwks_url, clock
        )
        jwks = None
    else:
        issuer = settings.issuer or f"urn:edgeslice:booking:{store.epoch()}"
        signed = SignedTokens(store, issuer, settings.audience, settings.token_lifetime_s, clock)
        tokens, jwks = signed, signed.jwks
    bookings = BookingService(controller, store, clock, sinks=sinks, on_enqueued=notifier.wake, source=source)
    feed = StatusFeed(controller, store, clock, on_enqueued=notifier.wake, source=source)
    app = make_app(bookings, clients, tokens, rate_limit_per_s=settings.rate_per_s, jwks=jwks)
    server = BookingServer(app, settings.listen, certfile=settings.tls_cert, keyfile=settings.tls_key)
    notifier.start()
    feed.start()
    try:
        server.start()
    except BaseException:
        feed.stop()
        notifier.stop()
        raise
    return RunningBooking(server, notifier, feed, bookings)
