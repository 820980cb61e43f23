"""How slicectl finds and authenticates to a controller: ``--server``, the token, TLS.

The token comes from ``--token`` / ``$EDGESLICE_TOKEN``, else ``--token-file`` /
``$EDGESLICE_TOKEN_FILE`` (a file holding just the token), else — only when the server is on
loopback — the dev token a controller in dev mode wrote to ``<state-dir>/token``. The server is
``--server`` / ``$EDGESLICE_SERVER``, else the address a local controller wrote to
``<state-dir>/controller.addr``, else 127.0.0.1:50051.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from controller.api import auth
from controller.api import client as api_client
from slices import addresses, errors

ADDRESS_FILE = "controller.addr"  # same name as controller.process.endpoints.ADDRESS_FILE

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Connection:
    server: str | None
    token: str | None
    token_file: Path | None
    ca: Path | None
    timeout_s: float
    state_dir: Path | None = None  # a context's local controller; default auth.default_state_dir()
    agents: str | None = None  # a context's agents address

    def state_folder(self) -> Path:
        return self.state_dir if self.state_dir is not None else auth.default_state_dir()

    def address(self) -> str:
        if self.server:
            return self.server
        written = self.state_folder() / ADDRESS_FILE
        try:
            text = written.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        return text or api_client.DEFAULT_SERVER

    def resolve_token(self, address: str) -> str:
        if self.token:
            return self.token.strip()
        if self.token_file is not None:
            return _read(self.token_file, "token file")
        host, _ = addresses.split_address(address)
        dev_file = self.state_folder() / auth.DEV_TOKEN_FILE
        if addresses.is_loopback(host) and dev_file.exists():
            return _read(dev_file, "dev token file")
        return ""

    def agents_address(self) -> str:
        """The controller's agent address, found like the operator address: the context's
        ``agents``, else what the local controller wrote to ``<state-dir>/controller.endpoints``."""
        if self.agents:
            return self.agents
        from controller.process.endpoints import ENDPOINTS_FILE, read_endpoints

        folder = self.state_folder()
        found = read_endpoints(folder).get("agents")
        if found:
            return found
        raise errors.Unavailable(
            f"no controller agent address: {folder / ENDPOINTS_FILE} names none (is a controller "
            "with agents running there?); give --controller HOST:PORT or a context with --agents"
        )

    def client(self) -> api_client.ApiClient:
        address = self.address()
        addresses.split_address(address)  # a malformed --server is a usage error, not "unreachable"
        ca = self.ca.read_bytes() if self.ca is not None else None
        return api_client.ApiClient(address, self.resolve_token(address), ca=ca, timeout_s=self.timeout_s)


def _read(path: Path, what: str) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise errors.InvalidSpec(f"{what} {path}: cannot read: {exc.strerror}") from exc
    if not token:
        raise errors.InvalidSpec(f"{what} {path}: is empty")
    return token


def connection_options(command: _F) -> _F:
    """Add --context, --server, --token, --token-file, --ca and --timeout; pass them as ``conn``
    (a flag or its environment variable wins over the context's field)."""

    @click.option(
        "--context",
        "context_name",
        envvar="EDGESLICE_CONTEXT",
        default=None,
        metavar="NAME",
        help="Use this named context from the slicectl config [env EDGESLICE_CONTEXT; default: the "
        "current context, see slicectl config].",
    )
    @click.option(
        "--server",
        envvar="EDGESLICE_SERVER",
        default=None,
        metavar="HOST:PORT",
        help=f"Controller API address [env EDGESLICE_SERVER; default: the local controller's, or {api_client.DEFAULT_SERVER}].",
    )
    @click.option(
        "--token", envvar="EDGESLICE_TOKEN", default=None, help="Bearer token [env EDGESLICE_TOKEN]."
    )
    @click.option(
        "--token-file",
        envvar="EDGESLICE_TOKEN_FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="File holding the bearer token [env EDGESLICE_TOKEN_FILE].",
    )
    @click.option(
        "--ca",
        envvar="EDGESLICE_CA",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="CA certificate (PEM) of the server; turns on TLS [env EDGESLICE_CA].",
    )
    @click.option(
        "--timeout",
        "timeout_s",
        type=click.FloatRange(min=0.1),
        default=30.0,
        show_default=True,
        help="Seconds to wait for an answer.",
    )
    @functools.wraps(command)
    def wrapper(
        *args: Any,
        server: str | None,
        token: str | None,
        token_file: Path | None,
        ca: Path | None,
        timeout_s: float,
        context_name: str | None,
        **kwargs: Any,
    ) -> Any:
        from controller.cli import contexts

        chosen = contexts.chosen(context_name)
        if chosen is not None and chosen.ca is not None and ca is None and not chosen.ca.is_file():
            raise errors.InvalidSpec(f"context {chosen.name!r}: ca {chosen.ca}: no such file")
        conn = Connection(
            server=server or (chosen.server if chosen else None),
            token=token,
            token_file=token_file or (chosen.token_file if chosen and not token else None),
            ca=ca or (chosen.ca if chosen else None),
            timeout_s=timeout_s,
            state_dir=chosen.state_dir if chosen else None,
            agents=chosen.agents if chosen else None,
        )
        return command(*args, conn=conn, **kwargs)

    return wrapper  # type: ignore[return-value]
