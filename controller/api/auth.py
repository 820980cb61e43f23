"""Who may call the operator API, and over what: bearer tokens, TLS, and the dev-mode rule.

Token file (server side, ``--token-file`` or ``EDGESLICE_API_TOKENS``): one ``name: token`` per
line; ``#`` starts a comment. The name becomes the audit actor ``operator:<name>``; a token is at
least 16 characters. Clients send ``authorization: Bearer <token>`` with every call.

Dev mode is the one way to serve without TLS, and then only on loopback addresses. In dev mode
the controller also writes a generated token to ``<state-dir>/token`` (mode 0600, reused across
restarts); ``slicectl`` reads that file when it talks to a loopback server and has no token of
its own, so ``slicectl controller run`` and ``slicectl slice list`` work with no flags.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from slices import errors
from slices.addresses import is_loopback, split_address

TOKEN_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
MIN_TOKEN_LENGTH = 16
DEV_TOKEN_NAME = "dev"
DEV_TOKEN_FILE = "token"
TOKENS_ENV = "EDGESLICE_API_TOKENS"
STATE_DIR_ENV = "EDGESLICE_STATE_DIR"


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$EDGESLICE_STATE_DIR``, else ``$XDG_STATE_HOME/edgeslice``, else ``~/.local/state/edgeslice``.

    >>> str(default_state_dir({"EDGESLICE_STATE_DIR": "/var/lib/edgeslice"}))
    '/var/lib/edgeslice'
    >>> str(default_state_dir({"XDG_STATE_HOME": "/x"}))
    '/x/edgeslice'
    """
    env = os.environ if environ is None else environ
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV])
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edgeslice"


def parse_tokens(text: str, where: str) -> dict[str, str]:
    """Parse ``name: token`` lines; raise :class:`errors.InvalidSpec` naming the line.

    >>> parse_tokens("# ops team\\nalice: 0123456789abcdef0123\\n", "tokens")
    {'alice': '0123456789abcdef0123'}
    >>> parse_tokens("alice: short", "tokens")
    Traceback (most recent call last):
    ...
    slices.errors.InvalidSpec: tokens:1: token of 'alice' is 5 characters; use at least 16
    """
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, token = (part.strip() for part in line.partition(":"))
        if not sep or not name or not token:
            raise errors.InvalidSpec(f"{where}:{number}: expected 'name: token'")
        if not TOKEN_NAME.match(name) or len(name) > 63:
            raise errors.InvalidSpec(
                f"{where}:{number}: token name {name!r} must be lowercase letters, digits, '-', '_' or '.'"
            )
        if name in out:
            raise errors.InvalidSpec(f"{where}:{number}: token name {name!r} appears twice")
        if len(token) < MIN_TOKEN_LENGTH:
            raise errors.InvalidSpec(
                f"{where}:{number}: token of {name!r} is {len(token)} characters; use at least {MIN_TOKEN_LENGTH}"
            )
        if token in seen:
            raise errors.InvalidSpec(f"{where}:{number}: {name!r} has the same token as {seen[token]!r}")
        seen[token] = name
        out[name] = token
    return out


class Authenticator:
    """Maps bearer tokens to identity names; every comparison takes the same time.

    >>> auth = Authenticator({"alice": "a" * 20})
    >>> auth.identify("a" * 20), auth.identify("b" * 20), auth.identify("")
    ('alice', None, None)
    >>> auth.actor("alice")
    'operator:alice'
    """

    def __init__(self, tokens: Mapping[str, str]) -> None:
        # Compare fixed-length digests so neither the token's length nor a common prefix leaks.
        self._digests = [(name, hashlib.sha256(token.encode()).digest()) for name, token in tokens.items()]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._digests)

    def identify(self, token: str) -> str | None:
        """The name the token belongs to, or None. Checks every entry (no early exit)."""
        digest = hashlib.sha256(token.encode()).digest()
        found: str | None = None
        for name, known in self._digests:
            if hmac.compare_digest(digest, known) and token:
                found = name
        return found

    @staticmethod
    def actor(name: str) -> str:
        return f"operator:{name}"

    @classmethod
    def from_file(cls, path: Path) -> Authenticator:
        return cls(load_token_file(path))


def load_token_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.InvalidSpec(f"token file {path}: cannot read: {exc.strerror}") from exc
    tokens = parse_tokens(text, str(path))
    if not tokens:
        raise errors.InvalidSpec(f"token file {path}: has no 'name: token' lines")
    return tokens


def bearer_token(metadata: Mapping[str, str] | tuple[tuple[str, str | bytes], ...]) -> str:
    """The token of an ``authorization: Bearer ...`` header ("" when missing or another scheme).

    >>> bearer_token((("authorization", "Bearer abc"),))
    'abc'
    >>> bearer_token((("authorization", "Basic abc"),)), bearer_token(())
    ('', '')
    """
    items = metadata.items() if isinstance(metadata, Mapping) else metadata
    for key, value in items:
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


def ensure_dev_token(state_dir: Path) -> str:
    """The dev token in ``<state_dir>/token``, created (mode 0600) if missing, reused otherwise."""
    path = state_dir / DEV_TOKEN_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if len(existing) >= MIN_TOKEN_LENGTH:
        os.chmod(path, 0o600)
        return existing
    token = secrets.token_urlsafe(32)
    # Created with 0600 from the start: the token is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def build_authenticator(
    token_file: Path | None,
    environ: Mapping[str, str],
    dev: bool,
    state_dir: Path,
) -> Authenticator:
    """Tokens from the file and ``$EDGESLICE_API_TOKENS``, plus the dev token in dev mode.

    Outside dev mode at least one token must be configured: a server nobody can call is a
    misconfiguration, not a secure default.
    """
    tokens: dict[str, str] = {}
    if token_file is not None:
        tokens.update(load_token_file(token_file))
    # The environment form also takes commas between entries: one line is easier to set there.
    env_text = environ.get(TOKENS_ENV, "").replace(",", "\n")
    if env_text.strip():
        for name, token in parse_tokens(env_text, f"${TOKENS_ENV}").items():
            if name in tokens:
                raise errors.InvalidSpec(f"${TOKENS_ENV}: token name {name!r} is also in {token_file}")
            tokens[name] = token
    if dev:
        tokens.setdefault(DEV_TOKEN_NAME, ensure_dev_token(state_dir))
    if not tokens:
        raise errors.InvalidSpec(
            f"no API tokens: give a token file (name: token lines) or ${TOKENS_ENV}, or run in dev mode"
        )
    return Authenticator(tokens)


# ---- TLS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsConfig:
    """PEM bytes of the server's certificate chain and key, and optionally the CA of clients (mTLS)."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None

    @classmethod
    def load(cls, cert_file: Path, key_file: Path, client_ca_file: Path | None = None) -> TlsConfig:
        def read(path: Path, what: str) -> bytes:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise errors.InvalidSpec(f"{what} {path}: cannot read: {exc.strerror}") from exc
            if b"-----BEGIN " not in data:
                raise errors.InvalidSpec(f"{what} {path}: not a PEM file")
            return data

        return cls(
            cert_chain=read(cert_file, "TLS certificate"),
            private_key=read(key_file, "TLS key"),
            client_ca=read(client_ca_file, "client CA") if client_ca_file is not None else None,
        )


# ---- the dev-mode rule ----------------------------------------------------------------------


def check_listen(listen: str, tls: TlsConfig | None, dev: bool) -> None:
    """Refuse plaintext unless in dev mode on a loopback address.

    >>> check_listen("127.0.0.1:0", None, dev=True)
    >>> check_listen("0.0.0.0:50051", None, dev=True)
    Traceback (most recent call last):
    ...
    slices.errors.InvalidSpec: listen 0.0.0.0:50051: without TLS the API serves only loopback addresses (127.0.0.1, ::1, localhost); give a TLS certificate and key to listen on 0.0.0.0
    """
    host, _ = split_address(listen)
    if tls is not None:
        return
    if not dev:
        raise errors.InvalidSpec(
            f"listen {listen}: no TLS certificate given; plaintext is allowed only in dev mode on loopback"
        )
    if not is_loopback(host):
        raise errors.InvalidSpec(
            f"listen {listen}: without TLS the API serves only loopback addresses "
            f"(127.0.0.1, ::1, localhost); give a TLS certificate and key to listen on {host}"
        )
