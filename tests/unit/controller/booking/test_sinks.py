"""The sink policy: URL shape, the allow-list and every class of address it refuses, with a fake
resolver (no DNS)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

import pytest

from controller.booking import ports
from controller.booking.sinks import (
    NO_HOSTS_ALLOWED,
    SinkPolicy,
    SinkUnresolvable,
    address_refusal,
    host_allowed,
)

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


class FakeResolver:
    """Answers from a table; records each question; a name not in the table does not resolve."""

    def __init__(self, answers: dict[str, Sequence[str]]) -> None:
        self.answers = dict(answers)
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int, /) -> list[tuple[int, int, int, str, tuple[Any, ...]]]:
        self.asked.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        found: list[tuple[int, int, int, str, tuple[Any, ...]]] = []
        for address in self.answers[host]:
            if ":" in address:
                found.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                found.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return found


def policy(
    answers: dict[str, Sequence[str]] | None = None,
    hosts: Sequence[str] = ("sink.example.com", "*.hooks.example.net"),
    dev: bool = False,
) -> SinkPolicy:
    return SinkPolicy(hosts, dev=dev, resolve=FakeResolver(answers or {}))


def refusal(p: SinkPolicy, url: str) -> str:
    with pytest.raises(ports.BookingError) as caught:
        p.check(url)
    assert caught.value.status == 400 and caught.value.code == "INVALID_ARGUMENT"
    assert caught.value.message.startswith("sink: ")
    assert "\n" not in caught.value.message
    return caught.value.message


def test_a_public_https_sink_on_the_allow_list_is_accepted() -> None:
    p = policy({"sink.example.com": [PUBLIC_V4, PUBLIC_V6]})
    p.check("https://sink.example.com/notify?x=1")
    pinned = p.pin("https://sink.example.com/notify?x=1")
    assert pinned.addresses == (PUBLIC_V4, PUBLIC_V6)
    assert pinned.urls == (
        f"https://{PUBLIC_V4}:443/notify?x=1",
        f"https://[{PUBLIC_V6}]:443/notify?x=1",
    )
    assert pinned.host_header == "sink.example.com"
    assert pinned.server_name == "sink.example.com"


def test_the_pinned_urls_keep_a_non_default_port_in_the_host_header() -> None:
    pinned = policy({"sink.example.com": [PUBLIC_V4]}).pin("https://SINK.example.com.:8443")
    assert pinned.urls == (f"https://{PUBLIC_V4}:8443/",)
    assert pinned.host_header == "sink.example.com:8443"


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("sink.example.com", True),
        ("SINK.Example.COM", True),
        ("a.hooks.example.net", True),
        ("b.a.hooks.example.net", True),
        ("hooks.example.net", False),  # the wildcard covers subdomains only
        ("evilhooks.example.net", False),
        ("hooks.example.net.evil.org", False),
        ("other.example.com", False),
        ("sink.example.com.evil.org", False),
        ("xsink.example.com", False),
    ],
)
def test_allow_list_matching(host: str, allowed: bool) -> None:
    p = policy({host.lower(): [PUBLIC_V4]})
    if allowed:
        p.check(f"https://{host}/")
    else:
        assert "is not on the allow-list" in refusal(p, f"https://{host}/")
    assert host_allowed(host.lower(), p.allowed_hosts) is allowed


def test_an_empty_allow_list_refuses_every_sink_and_says_who_sets_it() -> None:
    for hosts in ((), ("", "  ")):
        p = SinkPolicy(hosts, dev=True, resolve=FakeResolver({"sink.example.com": [PUBLIC_V4]}))
        assert refusal(p, "https://sink.example.com/") == f"sink: {NO_HOSTS_ALLOWED}"
    assert "--booking-sink-hosts" in NO_HOSTS_ALLOWED


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://sink.example.com/", "scheme 'http' is not allowed; use https (or http in dev mode)"),
        ("ftp://sink.example.com/", "scheme 'ftp' is not allowed"),
        ("sink.example.com/notify", "scheme '(none)' is not allowed"),
        ("https://user:pw@sink.example.com/", "user information"),
        ("https://user@sink.example.com/", "user information"),
        ("https://evil.org\\@sink.example.com/", "backslashes"),
        ("https://sink.example.com /", "whitespace"),
        ("https://sink.example.com:99999/", "not a valid URL"),
        ("https:///notify", "the URL has no host"),
        ("https://%73ink.example.com/", "is not a DNS name or an IP address"),
    ],
)
def test_malformed_or_unsafe_urls_are_refused(url: str, why: str) -> None:
    assert why in refusal(policy({"sink.example.com": [PUBLIC_V4]}), url)


def test_dev_mode_allows_http_but_not_other_schemes() -> None:
    p = policy({"sink.example.com": ["127.0.0.1"]}, dev=True)
    p.check("http://sink.example.com:8080/")
    assert "scheme 'ftp' is not allowed; use https or http" in refusal(p, "ftp://sink.example.com/")


# Each class the brief names, in IPv4 and IPv6 where both exist, plus IPv4 inside IPv6.
REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("fe80::1", "link-local"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),
    ("100.64.0.1", "shared (carrier-grade NAT)"),
    ("100.127.255.254", "shared (carrier-grade NAT)"),
    ("224.0.0.251", "multicast"),
    ("239.1.2.3", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.0.8", "reserved"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("::ffff:127.0.0.1", "loopback (127.0.0.1, IPv4-mapped)"),
    ("::ffff:10.0.0.1", "private (10.0.0.1, IPv4-mapped)"),
    ("::ffff:169.254.169.254", "link-local (169.254.169.254, IPv4-mapped)"),
    ("64:ff9b::a9fe:a9fe", "link-local (169.254.169.254, NAT64)"),
    ("2002:7f00:1::1", "loopback (127.0.0.1, 6to4)"),
]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_every_non_public_address_class_is_refused_outside_dev_mode(address: str, why: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == why
    p = policy({"sink.example.com": [PUBLIC_V4, address]})
    message = refusal(p, "https://sink.example.com/")
    # One bad answer among good ones is enough: the delivery might pick it.
    assert message == (
        f"sink: host sink.example.com resolves to {ipaddress.ip_address(address)}, a {why} address "
        "(allowed only in dev mode)"
    )
    policy({"sink.example.com": [PUBLIC_V4, address]}, dev=True).check("https://sink.example.com/")


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.1"])
def test_an_ip_literal_host_is_judged_without_dns(address: str) -> None:
    literal = f"[{address}]" if ":" in address else address
    resolver = FakeResolver({})
    p = SinkPolicy([address], dev=False, resolve=resolver)
    assert "allowed only in dev mode" in refusal(p, f"https://{literal}:8443/")
    dev = SinkPolicy([address], dev=True, resolve=resolver)
    assert dev.pin(f"http://{literal}:8080/x").urls == (f"http://{literal}:8080/x",)
    assert resolver.asked == []


@pytest.mark.parametrize("address", [PUBLIC_V4, PUBLIC_V6, "8.8.8.8", "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None
    policy({"sink.example.com": [address]}).check("https://sink.example.com/")


def test_a_host_that_does_not_resolve_is_refused_at_booking_and_retried_at_delivery() -> None:
    p = policy({})
    assert "host sink.example.com does not resolve" in refusal(p, "https://sink.example.com/")
    with pytest.raises(SinkUnresolvable):
        p.pin("https://sink.example.com/")


def test_pin_asks_dns_once_and_judges_the_answer_it_got() -> None:
    """DNS rebinding: the name answers public at booking, loopback at delivery; the delivery is
    refused, and the addresses a delivery connects to are those of its own check."""
    resolver = FakeResolver({"sink.example.com": [PUBLIC_V4]})
    p = SinkPolicy(["sink.example.com"], resolve=resolver)
    p.check("https://sink.example.com/")
    resolver.answers["sink.example.com"] = ["127.0.0.1"]
    with pytest.raises(ports.BookingError, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        p.pin("https://sink.example.com/")
    resolver.answers["sink.example.com"] = [PUBLIC_V6]
    assert p.pin("https://sink.example.com/").addresses == (PUBLIC_V6,)
    assert resolver.asked == [("sink.example.com", 443)] * 3


def test_answers_of_other_families_are_ignored_and_duplicates_dropped() -> None:
    def resolve(host: str, port: int, /) -> list[tuple[int, int, int, str, tuple[Any, ...]]]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, port)),
            (socket.AF_INET, socket.SOCK_DGRAM, 17, "", (PUBLIC_V4, port)),
            (socket.AF_UNIX, socket.SOCK_STREAM, 0, "", ("/tmp/x",)),
        ]

    assert SinkPolicy(["sink.example.com"], resolve=resolve).pin("https://sink.example.com/").addresses == (
        PUBLIC_V4,
    )


def test_a_scoped_ipv6_answer_is_judged_by_its_address() -> None:
    def resolve(host: str, port: int, /) -> list[tuple[int, int, int, str, tuple[Any, ...]]]:
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%eth0", port, 0, 2))]

    p = SinkPolicy(["sink.example.com"], resolve=resolve)
    assert "fe80::1, a link-local address" in refusal(p, "https://sink.example.com/")
