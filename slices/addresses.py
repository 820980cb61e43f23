"""``HOST:PORT`` listen addresses, as every server of the controller takes them (the operator
API, the agent server, the booking API): split, and whether a host is loopback (where dev mode
may serve without TLS)."""

from __future__ import annotations

import ipaddress

from slices import errors


def split_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port``.

    >>> split_address("127.0.0.1:50051"), split_address("[::1]:0")
    (('127.0.0.1', 50051), ('::1', 0))
    >>> split_address("nohost")
    Traceback (most recent call last):
    ...
    slices.errors.InvalidSpec: address 'nohost': expected HOST:PORT
    """
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise errors.InvalidSpec(f"address {address!r}: expected HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``.

    >>> is_loopback("localhost"), is_loopback("127.0.0.2"), is_loopback("0.0.0.0"), is_loopback("::1")
    (True, True, False, True)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
