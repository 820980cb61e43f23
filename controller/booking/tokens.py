"""The booking API's access tokens: ES256-signed JWTs (RFC 9068 shape) issued by the controller
(:class:`SignedTokens`), or tokens of an external OIDC issuer verified against its JWKS
(:class:`ExternalTokens`). Both implement the verify side of :class:`ports.Tokens`; PyJWT does
the JOSE work.

The signing key is made once per state file and kept in its ``meta`` table (key
``booking_signing_key``, PKCS#8 PEM), so every controller over that state (a restart, a standby
taking over) signs and verifies with the same key; :meth:`SignedTokens.jwks` is its public half.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from controller.booking import ports
from controller.runtime.clock import Clock, RealClock
from controller.runtime.store import Store

SIGNING_KEY_META = "booking_signing_key"
ALGORITHM = "ES256"
DEFAULT_LIFETIME_S = 300
DEFAULT_LEEWAY_S = 5.0
#: What an external issuer may sign with: asymmetric algorithms only (never ``none`` nor HS*,
#: whose "key" would be the public JWK anyone can fetch).
EXTERNAL_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_REQUIRED = ("iss", "aud", "sub", "iat", "exp", "jti", "scope")


def _signing_key(store: Store) -> ec.EllipticCurvePrivateKey:
    """The state's signing key, made on first use. Two processes racing to make it agree: each
    offers its own with INSERT OR IGNORE in a transaction and both then use the one that landed."""
    rows = store.query("SELECT value FROM meta WHERE key = ?", (SIGNING_KEY_META,))
    if not rows:
        fresh = ec.generate_private_key(ec.SECP256R1())
        pem = fresh.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        with store.transaction() as tx:
            tx.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (SIGNING_KEY_META, pem))
        rows = store.query("SELECT value FROM meta WHERE key = ?", (SIGNING_KEY_META,))
    key = serialization.load_pem_private_key(str(rows[0]["value"]).encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"meta {SIGNING_KEY_META} of {store.path} is not a P-256 private key")
    return key


def _public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    jwk: dict[str, Any] = jwt.algorithms.ECAlgorithm.to_jwk(key, as_dict=True)
    # RFC 7638 thumbprint as the key id: the required members, sorted, no whitespace.
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")
    return {**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}


def _claims(
    token: str,
    key: Any,
    algorithms: Sequence[str],
    issuer: str,
    audience: str,
    now: datetime,
    leeway_s: float,
    required: Sequence[str],
) -> dict[str, Any]:
    """The verified claims of ``token``, or :func:`ports.unauthenticated` saying why not. Time is
    checked here against ``now`` (the service's clock), not by PyJWT against the system's."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            audience=audience,
            issuer=issuer,
            options={
                "require": list(required),
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise ports.unauthenticated(f"invalid access token: {exc}") from exc
    stamp = now.timestamp()
    times: dict[str, float] = {}
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ports.unauthenticated(f"invalid access token: claim {name} is not a number")
        times[name] = float(value)
    if "exp" in times and stamp >= times["exp"] + leeway_s:
        raise ports.unauthenticated("access token expired")
    if "iat" in times and times["iat"] > stamp + leeway_s:
        raise ports.unauthenticated("invalid access token: issued in the future (iat)")
    if "nbf" in times and times["nbf"] > stamp + leeway_s:
        raise ports.unauthenticated("access token not yet valid (nbf)")
    return claims


def _principal(claims: dict[str, Any], client_id: object) -> ports.Principal:
    scope = claims.get("scope", "")
    if not isinstance(scope, str):
        raise ports.unauthenticated("invalid access token: claim scope is not a string")
    if not isinstance(client_id, str) or not client_id:
        raise ports.unauthenticated("invalid access token: no client id")
    return ports.Principal(
        client_id=client_id,
        scopes=frozenset(scope.split()),
        expires_at=datetime.fromtimestamp(float(claims["exp"]), UTC),
    )


class SignedTokens:
    """:class:`ports.Tokens` issuing the controller's own ES256 JWTs: claims ``iss``, ``aud``,
    ``sub`` and ``client_id`` (the client id), ``iat``, ``exp``, ``jti``, ``scope``
    (space-separated); header ``typ: at+jwt`` and ``kid`` (RFC 9068)."""

    def __init__(
        self,
        store: Store,
        issuer: str,
        audience: str,
        lifetime_s: int = DEFAULT_LIFETIME_S,
        clock: Clock | None = None,
        leeway_s: float = DEFAULT_LEEWAY_S,
    ) -> None:
        if lifetime_s <= 0:
            raise ValueError(f"lifetime_s: {lifetime_s} is not a positive number of seconds")
        self.issuer = issuer
        self.audience = audience
        self.lifetime_s = lifetime_s
        self._clock = clock or RealClock()
        self._leeway_s = leeway_s
        self._key = _signing_key(store)
        self._public = self._key.public_key()
        self._jwk = _public_jwk(self._public)

    @property
    def kid(self) -> str:
        return str(self._jwk["kid"])

    def jwks(self) -> dict[str, Any]:
        """The public JWK set (``{"keys": [...]}``) to serve at ``/.well-known/jwks.json``."""
        return {"keys": [dict(self._jwk)]}

    def issue(self, tenant: ports.Tenant, scopes: frozenset[str]) -> tuple[str, int]:
        """A token for ``scopes`` and its lifetime in seconds; :func:`ports.permission_denied`
        naming the scopes ``tenant`` was not granted (OAuth's ``invalid_scope``)."""
        extra = scopes - tenant.scopes
        if extra:
            raise ports.permission_denied(
                f"scope {' '.join(sorted(extra))} is not granted to client {tenant.name}"
            )
        now = int(self._clock.now().timestamp())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": tenant.client_id,
            "client_id": tenant.client_id,
            "iat": now,
            "exp": now + self.lifetime_s,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(s for s in ports.SCOPES if s in scopes),
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"typ": "at+jwt", "kid": self.kid})
        return token, self.lifetime_s

    def verify(self, token: str) -> ports.Principal:
        """The token's principal, or :func:`ports.unauthenticated`: a bad signature, any algorithm
        but ES256 (``none`` and HS* included), another issuer or audience, expired (beyond a
        leeway of a few seconds), a missing claim.

        This does not know whether the client still exists: the Principal carries its client_id
        and the API checks ``clients.tenant(client_id)``, so a removed client's tokens stop
        working at once.
        """
        claims = _claims(
            token,
            self._public,
            (ALGORITHM,),
            self.issuer,
            self.audience,
            self._clock.now(),
            self._leeway_s,
            _REQUIRED,
        )
        return _principal(claims, claims.get("sub"))


class ExternalTokens:
    """:class:`ports.Tokens` verifying the access tokens of an external OIDC issuer: its keys come
    from ``jwks_url`` (:class:`jwt.PyJWKClient`, cached; a token with an unknown ``kid`` fetches
    them again, at most once per ``refetch_cooldown_s``). The client id is the ``client_id`` claim (RFC 9068), else ``azp``, else ``sub``:
    register the client under that id (``slicectl booking client add --client-id``). Required
    claims: ``iss``, ``aud``, ``exp``; the scopes are the ``scope`` claim (space-separated).

    As with :class:`SignedTokens`, the API checks ``clients.tenant(principal.client_id)``.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str,
        clock: Clock | None = None,
        leeway_s: float = DEFAULT_LEEWAY_S,
        algorithms: Sequence[str] = EXTERNAL_ALGORITHMS,
        timeout_s: float = 10.0,
        refetch_cooldown_s: float = 30.0,
    ) -> None:
        refused = [a for a in algorithms if a not in EXTERNAL_ALGORITHMS]
        if refused:
            raise ValueError(
                f"algorithms: {', '.join(refused)} not allowed (only {', '.join(EXTERNAL_ALGORITHMS)})"
            )
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self._algorithms = tuple(algorithms)
        self._clock = clock or RealClock()
        self._leeway_s = leeway_s
        # An unknown kid fetches the keys again at most once per cooldown, so tokens with made-up
        # kids cannot make this service flood the issuer.
        self._keys = jwt.PyJWKClient(
            jwks_url, cache_keys=True, timeout=timeout_s, cooldown_duration=refetch_cooldown_s
        )

    def issue(self, tenant: ports.Tenant, scopes: frozenset[str]) -> tuple[str, int]:
        """Refused: the external issuer issues the tokens."""
        raise ports.invalid_argument(f"this service issues no tokens: ask {self.issuer} for one")

    def verify(self, token: str) -> ports.Principal:
        """The token's principal, or :func:`ports.unauthenticated` (also when the issuer's keys
        cannot be fetched: the token cannot be checked)."""
        try:
            key = self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWTError as exc:
            raise ports.unauthenticated(f"invalid access token: {exc}") from exc
        if key.algorithm_name not in self._algorithms:
            raise ports.unauthenticated(f"invalid access token: algorithm {key.algorithm_name} not allowed")
        claims = _claims(
            token,
            key,
            (key.algorithm_name,),
            self.issuer,
            self.audience,
            self._clock.now(),
            self._leeway_s,
            ("iss", "aud", "exp"),
        )
        client_id = claims.get("client_id") or claims.get("azp") or claims.get("sub")
        return _principal(claims, client_id)
