"""Tokens, the dev token file, TLS loading and the dev-mode rule (controller.api.auth)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from controller.api import auth
from controller.api import client as api_client
from controller.api import server as api_server
from slices import errors
from tests.support import operator_fake, tls_certs

ALICE = "alice-token-0123456789"
BOB = "bob-token-9876543210xx"


def test_token_file_names_identities(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# operators\nalice: {ALICE}\n\nbob:{BOB}   # on call\n")
    a = auth.Authenticator.from_file(path)
    assert a.names == ("alice", "bob")
    assert a.identify(ALICE) == "alice"
    assert a.identify(BOB) == "bob"
    assert a.identify(ALICE + "x") is None
    assert a.identify(ALICE[:-1]) is None
    assert a.identify("") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice", "tokens:1: expected 'name: token'"),
        (f"Alice: {ALICE}", "tokens:1: token name 'Alice' must be lowercase"),
        (f"alice: {ALICE}\nalice: {BOB}", "tokens:2: token name 'alice' appears twice"),
        (f"alice: {ALICE}\nbob: {ALICE}", "tokens:2: 'bob' has the same token as 'alice'"),
        ("alice: 123", "tokens:1: token of 'alice' is 3 characters; use at least 16"),
    ],
)
def test_bad_token_lines_are_named(text: str, message: str) -> None:
    with pytest.raises(errors.InvalidSpec) as err:
        auth.parse_tokens(text, "tokens")
    assert str(err.value).startswith(message)


def test_empty_or_missing_token_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("# nobody\n")
    with pytest.raises(errors.InvalidSpec, match="has no 'name: token' lines"):
        auth.Authenticator.from_file(tmp_path / "empty")
    with pytest.raises(errors.InvalidSpec, match="cannot read"):
        auth.Authenticator.from_file(tmp_path / "missing")


def test_dev_token_is_private_and_reused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = auth.ensure_dev_token(state)
    path = state / auth.DEV_TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= auth.MIN_TOKEN_LENGTH
    assert auth.ensure_dev_token(state) == first
    path.chmod(0o644)  # loosened by hand: tightened again on the next start
    assert auth.ensure_dev_token(state) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_build_authenticator_sources(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"alice: {ALICE}\n")
    a = auth.build_authenticator(path, {auth.TOKENS_ENV: f"bob: {BOB}"}, dev=False, state_dir=tmp_path)
    assert a.names == ("alice", "bob")
    assert not (tmp_path / auth.DEV_TOKEN_FILE).exists()  # no dev token outside dev mode
    dev = auth.build_authenticator(None, {}, dev=True, state_dir=tmp_path)
    assert dev.identify((tmp_path / auth.DEV_TOKEN_FILE).read_text().strip()) == "dev"
    with pytest.raises(errors.InvalidSpec, match="no API tokens"):
        auth.build_authenticator(None, {}, dev=False, state_dir=tmp_path)
    with pytest.raises(errors.InvalidSpec, match="'alice' is also in"):
        auth.build_authenticator(path, {auth.TOKENS_ENV: f"alice: {BOB}"}, dev=False, state_dir=tmp_path)
    both = auth.build_authenticator(None, {auth.TOKENS_ENV: f"alice: {ALICE},bob: {BOB}"}, False, tmp_path)
    assert both.names == ("alice", "bob")


def test_tls_config_loading(tmp_path: Path) -> None:
    ca, cert, key = tls_certs.make_pki().write(tmp_path)
    tls = auth.TlsConfig.load(cert, key, ca)
    assert tls.client_ca is not None and b"BEGIN CERTIFICATE" in tls.cert_chain
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(errors.InvalidSpec, match=r"TLS key .*junk.pem: not a PEM file"):
        auth.TlsConfig.load(cert, tmp_path / "junk.pem")
    with pytest.raises(errors.InvalidSpec, match=r"TLS certificate .*nope.pem: cannot read"):
        auth.TlsConfig.load(tmp_path / "nope.pem", key)


@pytest.mark.parametrize(
    ("listen", "dev", "message"),
    [
        ("127.0.0.1:0", False, "plaintext is allowed only in dev mode on loopback"),
        ("0.0.0.0:0", True, "without TLS the API serves only loopback addresses"),
        ("[::]:0", True, "without TLS the API serves only loopback addresses"),
        ("nonsense", True, "expected HOST:PORT"),
    ],
)
def test_serve_refuses_plaintext_outside_dev_loopback(listen: str, dev: bool, message: str) -> None:
    authenticator = auth.Authenticator({"alice": ALICE})
    fake = operator_fake.FakeService()
    with pytest.raises(errors.InvalidSpec, match=message):
        api_server.serve(fake, listen, authenticator, None, dev=dev)


def _serve_tls(tls: auth.TlsConfig) -> api_server.ApiServer:
    """The operator API over ``tls`` on a free loopback port, with Alice's token."""
    return api_server.serve(
        operator_fake.FakeService(),
        "127.0.0.1:0",
        auth.Authenticator({"alice": ALICE}),
        tls,
        dev=False,
    )


def test_tls_server_with_token(tmp_path: Path) -> None:
    pki = tls_certs.make_pki()
    tls = auth.TlsConfig(cert_chain=pki.cert_pem, private_key=pki.key_pem)
    server = _serve_tls(tls)
    try:
        with api_client.ApiClient(server.address, ALICE, ca=pki.ca_pem, timeout_s=10) as client:
            assert client.list_slices() == []
            assert client.health() == "SERVING"
        # A plaintext client cannot talk to the TLS port; the error names the server.
        with (
            api_client.ApiClient(server.address, ALICE, timeout_s=5) as plain,
            pytest.raises(errors.Unavailable, match=f"cannot reach the controller at {server.address}"),
        ):
            plain.list_slices()
        # A client that does not trust the server's CA is refused too.
        other = tls_certs.make_pki()
        with (
            api_client.ApiClient(server.address, ALICE, ca=other.ca_pem, timeout_s=5) as untrusting,
            pytest.raises(errors.Unavailable),
        ):
            untrusting.list_slices()
    finally:
        server.stop(0)


def test_mutual_tls_needs_a_client_certificate(tmp_path: Path) -> None:
    pki = tls_certs.make_pki()
    # The same CA signs the server and the client certificate in this test.
    tls = auth.TlsConfig(cert_chain=pki.cert_pem, private_key=pki.key_pem, client_ca=pki.ca_pem)
    server = _serve_tls(tls)
    try:
        with (
            api_client.ApiClient(server.address, ALICE, ca=pki.ca_pem, timeout_s=5) as anonymous,
            pytest.raises(errors.Unavailable),
        ):
            anonymous.list_slices()
        with api_client.ApiClient(
            server.address,
            ALICE,
            ca=pki.ca_pem,
            client_cert=pki.cert_pem,
            client_key=pki.key_pem,
            timeout_s=10,
        ) as client:
            assert client.list_slices() == []
    finally:
        server.stop(0)
