"""Which notification sinks the controller may POST to: the guard that keeps the booking API's
``sink`` from turning the controller into a request-forgery tool (SSRF).

A sink is accepted when its URL is ``https`` (``http`` only in dev mode), carries no userinfo, its
host matches the operator's allow-list (``--booking-sink-hosts``: exact names, or ``*.suffix`` for
the subdomains of ``suffix``) and every address the host resolves to is public (in dev mode any
address is allowed, so a sink on loopback works). :meth:`SinkPolicy.check` runs when a booking is
made; :meth:`SinkPolicy.pin` runs again before every delivery attempt and returns the checked
addresses, so the notifier connects to exactly those and never asks DNS a second time (a name
that answers with a public address at check time and ``127.0.0.1`` a moment later -- DNS
rebinding -- cannot redirect the POST).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import SplitResult, urlsplit

from controller.booking import ports

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NO_HOSTS_ALLOWED = "no sink hosts are allowed; the operator sets --booking-sink-hosts"

# RFC 6598 shared address space (carrier-grade NAT): neither private nor global to ipaddress.
_SHARED = ipaddress.ip_network("100.64.0.0/10")
# RFC 6052 NAT64 well-known prefix: the last 32 bits are the IPv4 address it reaches.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Not globally reachable (IANA special-purpose registries) though Python 3.11's ipaddress says
# they are global: IETF protocol assignments, IPv6 documentation (2024) and SRv6 SIDs.
_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "3fff::/20", "5f00::/16"))
# A DNS name: dot-separated labels of letters, digits, underscores and inner hyphens (IDNs arrive
# as punycode); anything else (percent-encoding, odd IPv4 spellings aside) is refused before DNS.
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)
_DEFAULT_PORTS = {"https": 443, "http": 80}


class Resolver(Protocol):
    """``socket.getaddrinfo``'s shape, as far as the policy uses it (tests pass a fake)."""

    def __call__(self, host: str, port: int, /) -> Sequence[tuple[int, int, int, str, tuple[Any, ...]]]: ...


class SinkUnresolvable(Exception):
    """The sink's host did not resolve now (a DNS failure the notifier retries; not a refusal)."""


@dataclass(frozen=True)
class Pinned:
    """Where one delivery goes: the checked addresses and what names the request.

    ``urls[i]`` is the sink URL with its host replaced by ``addresses[i]``; the request carries
    ``host_header`` and TLS verifies (and sends as SNI) ``server_name`` -- the sink's own name.
    """

    sink: str
    host: str
    addresses: tuple[str, ...]
    urls: tuple[str, ...]
    host_header: str
    server_name: str


def address_refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not be a sink's address outside dev mode, or None when it is public.

    An IPv4 address inside an IPv6 one (IPv4-mapped, NAT64, 6to4, Teredo) is judged as the IPv4
    address it reaches; 6to4 and Teredo addresses are judged as themselves too.

    >>> address_refusal(ipaddress.ip_address("93.184.215.14")) is None
    True
    >>> address_refusal(ipaddress.ip_address("::ffff:10.0.0.1"))
    'private (10.0.0.1, IPv4-mapped)'
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = address_refusal(embedded)
            if inner is not None:
                return f"{inner} ({embedded}, {_embedding(address)})"
            if address.ipv4_mapped is not None or address in _NAT64:
                return None  # ipaddress calls these reserved or private whatever they reach
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared (carrier-grade NAT)"
    if address.is_reserved or any(address in net for net in _NOT_GLOBAL):
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def _embedding(address: ipaddress.IPv6Address) -> str:
    if address.ipv4_mapped is not None:
        return "IPv4-mapped"
    if address in _NAT64:
        return "NAT64"
    return "6to4" if address.sixtofour is not None else "Teredo"


def host_allowed(host: str, allowed_hosts: Sequence[str]) -> bool:
    """Whether ``host`` (lower case, no trailing dot) matches an allow-list entry: the same name,
    or a subdomain of ``suffix`` for an entry ``*.suffix`` (never ``suffix`` itself).

    >>> host_allowed("a.b.example.com", ["*.example.com"]), host_allowed("example.com", ["*.example.com"])
    (True, False)
    """
    for entry in allowed_hosts:
        pattern = _normalise_host(entry)
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def _normalise_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


class SinkPolicy:
    """The operator's sink rules. ``dev``: ``http`` and non-public addresses are allowed (the
    allow-list still applies)."""

    def __init__(
        self,
        allowed_hosts: Sequence[str],
        dev: bool = False,
        resolve: Resolver = socket.getaddrinfo,
    ) -> None:
        self.allowed_hosts = tuple(_normalise_host(h) for h in allowed_hosts if h.strip())
        self.dev = dev
        self._resolve = resolve

    def check(self, url: str) -> None:
        """Accept ``url`` as a booking's sink, or raise ``invalid_argument("sink: ...")``."""
        try:
            self.pin(url)
        except SinkUnresolvable as exc:
            raise ports.invalid_argument(f"sink: {exc}") from exc

    def pin(self, url: str) -> Pinned:
        """Check ``url`` now and return the addresses checked, for the delivery to connect to.

        Raises ``invalid_argument("sink: ...")`` when the sink is refused and
        :class:`SinkUnresolvable` when its host does not resolve at the moment.
        """
        parts, host, port = self._parse(url)
        addresses = self._addresses(host, port)
        if not self.dev:
            for address in addresses:
                why = address_refusal(address)
                if why is not None:
                    raise _refuse(
                        f"host {host} resolves to {address}, a {why} address (allowed only in dev mode)"
                    )
        default_port = _DEFAULT_PORTS[parts.scheme]
        host_header = _bracketed(host) if port == default_port else f"{_bracketed(host)}:{port}"
        tail = parts.path or "/"
        if parts.query:
            tail += f"?{parts.query}"
        urls = tuple(f"{parts.scheme}://{_bracketed(str(a))}:{port}{tail}" for a in addresses)
        return Pinned(
            sink=url,
            host=host,
            addresses=tuple(str(a) for a in addresses),
            urls=urls,
            host_header=host_header,
            server_name=host,
        )

    def _parse(self, url: str) -> tuple[SplitResult, str, int]:
        if not self.allowed_hosts:
            raise _refuse(NO_HOSTS_ALLOWED)
        if any(c.isspace() or ord(c) < 0x20 or c == "\\" for c in url):
            raise _refuse("the URL contains whitespace, control characters or backslashes")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise _refuse(f"not a valid URL: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.dev):
            allowed = "https (or http in dev mode)" if not self.dev else "https or http"
            raise _refuse(f"scheme {parts.scheme or '(none)'!r} is not allowed; use {allowed}")
        parts = parts._replace(scheme=scheme)
        if "@" in parts.netloc:
            raise _refuse("user information (user:password@) is not allowed in the URL")
        host = _normalise_host(parts.hostname or "")
        if not host:
            raise _refuse("the URL has no host")
        if not (_is_ip(host) or _HOSTNAME.match(host)):
            raise _refuse(f"host {host!r} is not a DNS name or an IP address")
        if not host_allowed(host, self.allowed_hosts):
            raise _refuse(f"host {host} is not on the allow-list ({', '.join(self.allowed_hosts)})")
        return parts, host, port if port is not None else _DEFAULT_PORTS[scheme]

    def _addresses(self, host: str, port: int) -> tuple[IPAddress, ...]:
        if _is_ip(host):
            return (ipaddress.ip_address(host),)
        try:
            answers = self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise SinkUnresolvable(f"host {host} does not resolve: {exc}") from exc
        found: list[IPAddress] = []
        for family, _type, _proto, _canon, sockaddr in answers:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            # A scoped IPv6 answer ("fe80::1%eth0") is link-local anyway; judge the address part.
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if address not in found:
                found.append(address)
        if not found:
            raise SinkUnresolvable(f"host {host} has no IPv4 or IPv6 address")
        return tuple(found)


def _refuse(why: str) -> ports.BookingError:
    return ports.invalid_argument(f"sink: {why}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
