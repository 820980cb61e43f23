"""Where a started controller tells what it serves: the address file (one line, the operator
API's address: clients read it whole) and the endpoints file (``NAME ADDRESS`` lines: operator,
health, agents, metrics) in the state folder; and the port checks done before anything binds."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from slices import addresses, errors

ADDRESS_FILE = "controller.addr"  # where a started controller writes the address it bound
ENDPOINTS_FILE = "controller.endpoints"  # "NAME ADDRESS" lines: operator, health, agents, metrics


def read_endpoints(state_dir: Path) -> dict[str, str]:
    """What a started controller serves, from its endpoints file (``{}`` before it serves).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / ENDPOINTS_FILE).write_text("operator 127.0.0.1:1\\nagents 127.0.0.1:2\\n")
    ...     read_endpoints(Path(d))
    {'operator': '127.0.0.1:1', 'agents': '127.0.0.1:2'}
    """
    try:
        text = (state_dir / ENDPOINTS_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    pairs = (line.split(None, 1) for line in text.splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def write_endpoints(state_dir: Path, address: str, endpoints: Mapping[str, str]) -> None:
    """Write the endpoints file, then the address file, each atomically, so a reader never sees
    half an address, and whoever waits for the address file finds the endpoints too."""
    lines = "".join(f"{name} {where}\n" for name, where in endpoints.items())
    for name, text in ((ENDPOINTS_FILE, lines), (ADDRESS_FILE, address + "\n")):
        tmp = state_dir / f".{name}.{os.getpid()}"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, state_dir / name)


def port_problem(listen: str) -> str | None:
    """Why ``listen`` cannot be bound now (``"address already in use"``...), or ``None``.

    A plain bind without SO_REUSEPORT, as the servers bind: gRPC's default would otherwise let
    two processes share a port.
    """
    host, port = addresses.split_address(listen)
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host!r}: {exc.strerror}"
    family, kind, proto, _, where = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(where)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "address already in use"
            return (exc.strerror or str(exc)).lower()
    return None


def refuse_port(what: str, listen: str) -> None:
    """Raise :class:`errors.Unavailable` ``"<what>: address already in use"`` if it is."""
    problem = port_problem(listen)
    if problem:
        raise errors.Unavailable(f"{what}: {problem}")
