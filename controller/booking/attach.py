"""The booking API as one part of the controller process: its settings (``slicectl controller
run --booking-*``) and what runs once the controller's service exists: the client registry and
tokens over the state file, the booking service, the REST server, the status feed and the
notifier. The composition root (controller.cli.companions) attaches it like the agent server.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.booking.app import make_app
from controller.booking.clients import ClientRegistry
from controller.booking.notifier import Notifier
from controller.booking.server import BookingServer
from controller.booking.service import BookingService
from controller.booking.settings import BookingSettings
from controller.booking.sinks import SinkPolicy
from controller.booking.status_feed import StatusFeed
from controller.booking.tokens import ExternalTokens, SignedTokens
from controller.runtime.clock import Clock
from controller.runtime.service import ControllerService

API_PATH = "/network-slice-booking/vwip"


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
    # The events' source is the API as bound (port 0 picks one at start).
    bookings.source = feed.source = f"{server.url}{API_PATH}"
    return RunningBooking(server, notifier, feed, bookings)
