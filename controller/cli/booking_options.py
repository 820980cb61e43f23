"""``slicectl controller run``'s ``--booking-*`` flags: the CAMARA booking API's settings,
gathered into one :class:`controller.booking.attach.BookingSettings` (None without
``--booking-listen``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from controller.booking.settings import DEFAULT_AUDIENCE, BookingSettings
from slices import errors

_FILE = click.Path(dir_okay=False, path_type=Path)

_OPTIONS = (
    click.option(
        "--booking-listen",
        default=None,
        metavar="HOST:PORT",
        help="Serve the CAMARA Network Slice Booking API (REST) here; off when not given.",
    ),
    click.option(
        "--booking-tls-cert", type=_FILE, default=None, help="The booking API's TLS certificate chain (PEM)."
    ),
    click.option(
        "--booking-tls-key", type=_FILE, default=None, help="The booking API's TLS private key (PEM)."
    ),
    click.option(
        "--booking-sink-hosts",
        multiple=True,
        metavar="HOST[,HOST...]",
        help="Hosts bookings may name as their notification sink (exact, or *.example.org); none: no sinks.",
    ),
    click.option(
        "--booking-sink-ca",
        type=_FILE,
        default=None,
        help="CA bundle for the sinks' TLS (default: the system's).",
    ),
    click.option(
        "--booking-issuer", default=None, help="The access tokens' issuer (iss); default: this state's own."
    ),
    click.option(
        "--booking-audience",
        default=DEFAULT_AUDIENCE,
        show_default=True,
        help="The access tokens' audience (aud).",
    ),
    click.option(
        "--booking-jwks-url",
        default=None,
        help="Accept the tokens of an external OIDC issuer whose keys are here (needs --booking-issuer).",
    ),
    click.option(
        "--booking-token-lifetime",
        type=click.IntRange(10, 86400),
        default=300,
        show_default=True,
        help="Seconds an access token of this controller's is valid.",
    ),
    click.option(
        "--booking-rate",
        type=click.FloatRange(0.01, 100000),
        default=10.0,
        show_default=True,
        help="Requests a second per tenant whose registration sets no rate.",
    ),
)


def booking_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the flags to ``command``, which receives them as ``booking`` (dev mode is set by the caller)."""

    @functools.wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        kwargs["booking"] = settings(
            listen=kwargs.pop("booking_listen"),
            tls_cert=kwargs.pop("booking_tls_cert"),
            tls_key=kwargs.pop("booking_tls_key"),
            sink_hosts=kwargs.pop("booking_sink_hosts"),
            sink_ca=kwargs.pop("booking_sink_ca"),
            issuer=kwargs.pop("booking_issuer"),
            audience=kwargs.pop("booking_audience"),
            jwks_url=kwargs.pop("booking_jwks_url"),
            token_lifetime_s=kwargs.pop("booking_token_lifetime"),
            rate_per_s=kwargs.pop("booking_rate"),
        )
        return command(*args, **kwargs)

    for option in reversed(_OPTIONS):
        wrapped = option(wrapped)
    return wrapped


def settings(listen: str | None, sink_hosts: tuple[str, ...], **given: Any) -> BookingSettings | None:
    hosts = tuple(h.strip() for value in sink_hosts for h in value.split(",") if h.strip())
    if listen is None:
        set_flags = [
            name for name, value in given.items() if value not in (None, DEFAULT_AUDIENCE, 300, 10.0)
        ]
        if hosts or set_flags:
            raise errors.InvalidSpec("--booking-*: used only with --booking-listen")
        return None
    return BookingSettings(listen=listen, sink_hosts=hosts, **given)
