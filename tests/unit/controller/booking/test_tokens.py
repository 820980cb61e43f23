"""Access tokens: the controller's ES256 JWTs (key kept in the state file) and an external OIDC
issuer's, verified against a JWKS served by a real local HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from controller.booking import ports, tokens
from controller.booking.tokens import ExternalTokens, SignedTokens
from controller.runtime.store import Store
from tests.support.clock import FakeClock

ISSUER = "https://edgeslice.example/booking"
AUDIENCE = "network-slice-booking"
TENANT = ports.Tenant(client_id="c-1", name="events", scopes=frozenset(ports.SCOPES))


@pytest.fixture
def store(state_store: Store) -> Store:
    """The tests' state file (the suite's ``state_store``)."""
    return state_store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def signer(store: Store, clock: FakeClock) -> SignedTokens:
    return SignedTokens(store, ISSUER, AUDIENCE, clock=clock)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    parts = [json.dumps(header).encode(), json.dumps(claims).encode()]
    return ".".join([*(_b64(p) for p in parts), _b64(signature)])


def _claims(clock: FakeClock, **changes: Any) -> dict[str, Any]:
    now = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "c-1",
        "iat": now,
        "exp": now + 300,
        "jti": "j-1",
        "scope": ports.SCOPE_GET,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signing_key_pem(store: Store) -> bytes:
    return str(store.query("SELECT value FROM meta WHERE key = ?", (tokens.SIGNING_KEY_META,))[0][0]).encode()


def _own_key(store: Store) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(_signing_key_pem(store), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


# -- SignedTokens ----------------------------------------------------------------------------------


def test_issue_then_verify(signer: SignedTokens, clock: FakeClock) -> None:
    token, lifetime = signer.issue(TENANT, frozenset({ports.SCOPE_GET, ports.SCOPE_CREATE}))
    assert lifetime == 300
    principal = signer.verify(token)
    assert principal.client_id == "c-1"
    assert principal.scopes == {ports.SCOPE_GET, ports.SCOPE_CREATE}
    assert principal.expires_at == clock.now() + timedelta(seconds=300)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": signer.kid}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"iss", "aud", "sub", "client_id", "iat", "exp", "jti", "scope"}
    assert claims["scope"] == f"{ports.SCOPE_CREATE} {ports.SCOPE_GET}"
    assert signer.issue(TENANT, frozenset({ports.SCOPE_GET}))[0] != token  # jti differs


def test_issue_refuses_scopes_not_granted(store: Store, clock: FakeClock) -> None:
    signer = SignedTokens(store, ISSUER, AUDIENCE, clock=clock)
    reader = ports.Tenant(client_id="c-2", name="reader", scopes=frozenset({ports.SCOPE_GET}))
    with pytest.raises(ports.BookingError, match="slices:delete is not granted to client reader") as info:
        signer.issue(reader, frozenset({ports.SCOPE_GET, ports.SCOPE_DELETE}))
    assert info.value.status == 403


def test_the_key_is_made_once_and_shared_by_every_instance(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "state.db"
    first, second = Store.open(path), Store.open(path)
    try:
        a = SignedTokens(first, ISSUER, AUDIENCE, clock=clock)
        b = SignedTokens(second, ISSUER, AUDIENCE, clock=clock)
        assert a.jwks() == b.jwks()
        token, _ = a.issue(TENANT, frozenset({ports.SCOPE_GET}))
        assert b.verify(token).client_id == "c-1"
        assert len(first.query("SELECT * FROM meta WHERE key = ?", (tokens.SIGNING_KEY_META,))) == 1
    finally:
        first.close()
        second.close()
    reopened = Store.open(path)
    try:
        assert SignedTokens(reopened, ISSUER, AUDIENCE, clock=clock).kid == a.kid
    finally:
        reopened.close()


def test_jwks_is_the_public_key_only(signer: SignedTokens, store: Store) -> None:
    (jwk,) = signer.jwks()["keys"]
    assert {k: jwk[k] for k in ("kty", "crv", "alg", "use", "kid")} == {
        "kty": "EC",
        "crv": "P-256",
        "alg": "ES256",
        "use": "sig",
        "kid": signer.kid,
    }
    assert "d" not in jwk
    token, _ = signer.issue(TENANT, frozenset({ports.SCOPE_GET}))
    public = jwt.PyJWK(jwk)
    claims = jwt.decode(token, public, audience=AUDIENCE, options={"verify_exp": False, "verify_iat": False})
    assert claims["sub"] == "c-1"
    assert public.key.public_numbers() == _own_key(store).public_key().public_numbers()


def test_expiry_with_a_small_leeway(signer: SignedTokens, clock: FakeClock) -> None:
    token, _ = signer.issue(TENANT, frozenset({ports.SCOPE_GET}))
    clock.advance(304)
    assert signer.verify(token).client_id == "c-1"
    clock.advance(1)
    with pytest.raises(ports.BookingError, match="access token expired") as info:
        signer.verify(token)
    assert (info.value.status, info.value.code) == (401, "UNAUTHENTICATED")


def test_refuses_another_issuer_or_audience(store: Store, clock: FakeClock, signer: SignedTokens) -> None:
    for other in (
        SignedTokens(store, "https://other.example", AUDIENCE, clock=clock),
        SignedTokens(store, ISSUER, "another-api", clock=clock),
    ):
        token, _ = other.issue(TENANT, frozenset({ports.SCOPE_GET}))
        with pytest.raises(ports.BookingError, match="invalid access token"):
            signer.verify(token)


def test_refuses_a_token_from_the_future(signer: SignedTokens, store: Store, clock: FakeClock) -> None:
    ahead = _claims(clock, iat=int(clock.now().timestamp()) + 60)
    token = jwt.encode(ahead, _own_key(store), algorithm="ES256")
    with pytest.raises(ports.BookingError, match="issued in the future"):
        signer.verify(token)


@pytest.mark.parametrize("missing", ["iss", "aud", "sub", "iat", "exp", "jti", "scope"])
def test_refuses_a_missing_claim(signer: SignedTokens, store: Store, clock: FakeClock, missing: str) -> None:
    token = jwt.encode(_claims(clock, **{missing: None}), _own_key(store), algorithm="ES256")
    with pytest.raises(ports.BookingError, match="invalid access token") as info:
        signer.verify(token)
    assert info.value.status == 401


@pytest.mark.parametrize(
    ("claim", "value"), [("scope", ["a", "b"]), ("exp", "soon"), ("sub", 7), ("iat", True)]
)
def test_refuses_claims_of_the_wrong_type(
    signer: SignedTokens, store: Store, clock: FakeClock, claim: str, value: object
) -> None:
    token = jwt.encode(_claims(clock, **{claim: value}), _own_key(store), algorithm="ES256")
    with pytest.raises(ports.BookingError, match="invalid access token"):
        signer.verify(token)


def test_refuses_a_forged_signature(signer: SignedTokens, clock: FakeClock) -> None:
    forger = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(_claims(clock), forger, algorithm="ES256", headers={"kid": signer.kid})
    with pytest.raises(ports.BookingError, match="Signature verification failed"):
        signer.verify(forged)
    token, _ = signer.issue(TENANT, frozenset({ports.SCOPE_GET}))
    head, body, sig = token.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(body + "=="))
    tampered["scope"] = " ".join(ports.SCOPES)
    with pytest.raises(ports.BookingError, match="invalid access token"):
        signer.verify(f"{head}.{_b64(json.dumps(tampered).encode())}.{sig}")


def test_refuses_alg_none_and_hmac_with_the_public_key(signer: SignedTokens, clock: FakeClock) -> None:
    none = _unsigned({"alg": "none", "typ": "JWT"}, _claims(clock))
    with pytest.raises(ports.BookingError, match="invalid access token"):
        signer.verify(none)
    # The classic confusion: HS256 "signed" with the public key everyone can fetch.
    public = jwt.PyJWK(signer.jwks()["keys"][0]).key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(clock)).encode())
    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(ports.BookingError, match="alg value is not allowed"):
        signer.verify(f"{header}.{body}.{_b64(mac)}")
    es384 = jwt.encode(_claims(clock), ec.generate_private_key(ec.SECP384R1()), algorithm="ES384")
    with pytest.raises(ports.BookingError, match="alg value is not allowed"):
        signer.verify(es384)


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "a.b", "....", "Bearer x.y.z", "é.é.é"])
def test_garbage_is_unauthenticated_not_a_crash(signer: SignedTokens, garbage: str) -> None:
    with pytest.raises(ports.BookingError) as info:
        signer.verify(garbage)
    assert info.value.code == "UNAUTHENTICATED"


def test_a_foreign_key_in_meta_is_refused(store: Store) -> None:
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    with store.transaction() as tx:
        tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (tokens.SIGNING_KEY_META, rsa_pem))
    with pytest.raises(ValueError, match="not a P-256 private key"):
        SignedTokens(store, ISSUER, AUDIENCE)


# -- ExternalTokens ----------------------------------------------------------------------------------


class _Jwks:
    """A real HTTP server on loopback serving a JWK set; ``keys`` may be replaced (key rotation)."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _rsa_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


@pytest.fixture(scope="module")
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks(idp_key: rsa.RSAPrivateKey) -> Iterator[_Jwks]:
    server = _Jwks([_rsa_jwk(idp_key, "k1")])
    yield server
    server.close()


IDP = "https://idp.example/realms/city"


def _idp_token(key: Any, clock: FakeClock, kid: str = "k1", alg: str = "RS256", **changes: Any) -> str:
    claims = _claims(clock, **{"iss": IDP, "sub": "user-9", "jti": None, **changes})
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def test_external_token_verified_against_the_jwks(
    jwks: _Jwks, idp_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    external = ExternalTokens(IDP, AUDIENCE, jwks.url, clock=clock)
    principal = external.verify(_idp_token(idp_key, clock, client_id="idp-client", azp="other"))
    assert principal.client_id == "idp-client"
    assert principal.scopes == {ports.SCOPE_GET}
    assert external.verify(_idp_token(idp_key, clock, azp="azp-client")).client_id == "azp-client"
    assert external.verify(_idp_token(idp_key, clock)).client_id == "user-9"
    assert external.verify(_idp_token(idp_key, clock, scope=None)).scopes == frozenset()
    assert jwks.requests == 1  # the keys are cached


def test_external_refusals(jwks: _Jwks, idp_key: rsa.RSAPrivateKey, clock: FakeClock) -> None:
    external = ExternalTokens(IDP, AUDIENCE, jwks.url, clock=clock)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "forged": _idp_token(stranger, clock),
        "other issuer": _idp_token(idp_key, clock, iss="https://evil.example"),
        "other audience": _idp_token(idp_key, clock, aud="another-api"),
        "no exp": _idp_token(idp_key, clock, exp=None),
        "unknown kid": _idp_token(stranger, clock, kid="k2"),
        "alg none": _unsigned({"alg": "none", "kid": "k1"}, _claims(clock, iss=IDP)),
        "HS256": jwt.encode(_claims(clock, iss=IDP), "k" * 32, algorithm="HS256", headers={"kid": "k1"}),
    }
    for what, token in cases.items():
        with pytest.raises(ports.BookingError) as info:
            external.verify(token)
        assert info.value.code == "UNAUTHENTICATED", what
    token = _idp_token(idp_key, clock)
    clock.advance(306)
    with pytest.raises(ports.BookingError, match="access token expired"):
        external.verify(token)


def test_external_picks_up_a_rotated_key(jwks: _Jwks, idp_key: rsa.RSAPrivateKey, clock: FakeClock) -> None:
    external = ExternalTokens(IDP, AUDIENCE, jwks.url, clock=clock, refetch_cooldown_s=0)
    assert external.verify(_idp_token(idp_key, clock)).client_id == "user-9"
    fresh = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, Any] = jwt.algorithms.ECAlgorithm.to_jwk(fresh.public_key(), as_dict=True)
    jwks.keys = [_rsa_jwk(idp_key, "k1"), {**jwk, "kid": "k2", "alg": "ES256"}]
    assert external.verify(_idp_token(fresh, clock, kid="k2", alg="ES256")).client_id == "user-9"


def test_external_refuses_an_hmac_key_in_the_jwks(jwks: _Jwks, clock: FakeClock) -> None:
    secret = b"s" * 32
    jwks.keys = [{"kty": "oct", "k": _b64(secret), "kid": "h1", "alg": "HS256"}]
    external = ExternalTokens(IDP, AUDIENCE, jwks.url, clock=clock)
    token = jwt.encode(_claims(clock, iss=IDP), secret, algorithm="HS256", headers={"kid": "h1"})
    with pytest.raises(ports.BookingError, match="HS256 not allowed"):
        external.verify(token)


def test_external_issuer_unreachable_is_unauthenticated(
    jwks: _Jwks, idp_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    url = jwks.url
    jwks.close()
    external = ExternalTokens(IDP, AUDIENCE, url, clock=clock, timeout_s=2)
    with pytest.raises(ports.BookingError, match="invalid access token") as info:
        external.verify(_idp_token(idp_key, clock))
    assert info.value.status == 401


def test_external_issues_nothing_and_takes_asymmetric_algorithms_only(jwks: _Jwks) -> None:
    external = ExternalTokens(IDP, AUDIENCE, jwks.url)
    with pytest.raises(ports.BookingError, match=r"ask https://idp\.example/realms/city") as info:
        external.issue(TENANT, frozenset({ports.SCOPE_GET}))
    assert info.value.status == 400
    with pytest.raises(ValueError, match="HS256, none not allowed"):
        ExternalTokens(IDP, AUDIENCE, jwks.url, algorithms=("RS256", "HS256", "none"))
