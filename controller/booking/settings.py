"""The booking API's settings, as ``slicectl controller run --booking-*`` sets them: light to
import (the CLI reads them before it decides to start anything heavy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slices import errors
from slices.addresses import is_loopback

DEFAULT_AUDIENCE = "edgeslice-booking"


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
        if self.tls_cert is None and self.dev and not is_loopback(host):
            raise errors.InvalidSpec(
                f"--booking-listen {self.listen}: without TLS the booking API listens on loopback only"
            )
        if self.jwks_url is not None and self.issuer is None:
            raise errors.InvalidSpec("--booking-jwks-url: needs --booking-issuer (the tokens' iss)")
        if self.token_lifetime_s <= 0:
            raise errors.InvalidSpec(f"--booking-token-lifetime: {self.token_lifetime_s} is not positive")
        if self.rate_per_s <= 0:
            raise errors.InvalidSpec(f"--booking-rate: {self.rate_per_s:g} is not positive")
