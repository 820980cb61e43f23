"""``slicectl booking client add|list|remove|rotate``: the booking API's clients (tenants), kept in
the state file itself, so this works with or without a running controller and a change counts at
once (wiring only; see controller.booking.clients)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from controller.booking import clients
from controller.booking.ports import Tenant
from controller.cli import output
from controller.cli.state_cmd import state_options
from controller.process import config
from controller.runtime.store import Store
from slices import errors

SECRET_NOTE = (
    "Store the secret now: it is not shown again (`slicectl booking client rotate {name}` makes a new one)."
)


@click.group("booking")
def booking() -> None:
    """The CAMARA Network Slice Booking API: its clients (tenants)."""


@booking.group("client")
def client() -> None:
    """Register, list, remove clients of the booking API and rotate their secrets."""


def _checked(check: Callable[[Any], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback running ``check`` (which raises ValueError), so a bad value is one line
    naming the flag, exit code 2."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        try:
            return check(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc

    return callback


_name_argument = click.argument("name", callback=_checked(clients.check_name))


@contextmanager
def _registry(
    state_file: Path | None, state_dir: Path | None, *, create: bool = False
) -> Iterator[clients.ClientRegistry]:
    """The registry over the state file ``controller run`` would use. Only ``add`` makes a new
    state file (and its folder): the others refuse a missing one rather than make an empty state."""
    path = config.RuntimeConfig(state_file=state_file, state_dir=state_dir).resolved_state_file()
    if not path.exists():
        if not create:
            raise errors.StoreError(f"state file {path} does not exist (see --state, --state-dir)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise errors.StoreError(f"state folder {path.parent}: cannot create: {exc.strerror}") from exc
    store = Store.open(path)
    try:
        yield clients.ClientRegistry(store)
    finally:
        store.close()


def _tenant_data(tenant: Tenant) -> dict[str, Any]:
    return {
        "name": tenant.name,
        "client_id": tenant.client_id,
        "scopes": clients.short_scopes(tenant.scopes),
        "quota_bookings": tenant.quota_bookings,
        "quota_mbps": tenant.quota_mbps,
        "requests_per_s": tenant.requests_per_s,
    }


def _emit_secret(tenant: Tenant, secret: str, fmt: str) -> None:
    if fmt != "table":
        output.emit_data({**_tenant_data(tenant), "client_secret": secret}, fmt)
        return
    click.echo(f"client_id:     {tenant.client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo(SECRET_NOTE.format(name=tenant.name))


@client.command("add")
@_name_argument
@click.option(
    "--scopes",
    required=True,
    callback=_checked(clients.parse_scopes),
    help="Comma-separated scopes: create, get, delete (or the full network-slice-booking:slices:* names).",
)
@click.option("--quota-bookings", type=click.IntRange(min=1), default=None, help="Active bookings at once.")
@click.option(
    "--quota-mbps", type=click.FloatRange(min=0, min_open=True), default=None, help="Total reserved Mbps."
)
@click.option(
    "--rate",
    "requests_per_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Requests per second (default: the service's).",
)
@click.option(
    "--client-id", default=None, help="The id an external OIDC issuer knows it by (default: random)."
)
@output.output_option
@state_options
def add(
    name: str,
    scopes: frozenset[str],
    quota_bookings: int | None,
    quota_mbps: float | None,
    requests_per_s: float | None,
    client_id: str | None,
    fmt: str,
    state_file: Path | None,
    state_dir: Path | None,
) -> None:
    """Register the client NAME (a DNS label: the tenant label of its slices) and print its
    client_id and client_secret. The secret is printed once: only a hash of it is stored."""
    with _registry(state_file, state_dir, create=True) as registry:
        tenant, secret = registry.add(name, scopes, quota_bookings, quota_mbps, requests_per_s, client_id)
    _emit_secret(tenant, secret, fmt)


@client.command("list")
@output.output_option
@state_options
def list_clients(fmt: str, state_file: Path | None, state_dir: Path | None) -> None:
    """The registered clients (never their secrets: only hashes are stored)."""
    with _registry(state_file, state_dir) as registry:
        registered = registry.list()
    if fmt != "table":
        output.emit_data(
            [
                {
                    **_tenant_data(c.tenant),
                    "created_at": c.created_at.isoformat(),
                    "rotated_at": c.rotated_at.isoformat() if c.rotated_at else None,
                }
                for c in registered
            ],
            fmt,
        )
        return
    if not registered:
        click.echo(
            "no booking clients (add one: slicectl booking client add NAME --scopes create,get,delete)"
        )
        return
    rows = [
        [
            c.tenant.name,
            c.tenant.client_id,
            ",".join(clients.short_scopes(c.tenant.scopes)),
            c.tenant.quota_bookings if c.tenant.quota_bookings is not None else "-",
            f"{c.tenant.quota_mbps:g}" if c.tenant.quota_mbps is not None else "-",
            f"{c.tenant.requests_per_s:g}" if c.tenant.requests_per_s is not None else "default",
            (c.rotated_at or c.created_at).isoformat(timespec="seconds"),
        ]
        for c in registered
    ]
    headers = ["NAME", "CLIENT_ID", "SCOPES", "QUOTA_BOOKINGS", "QUOTA_MBPS", "RATE", "SECRET_SINCE"]
    click.echo(output.table(headers, rows))


@client.command("remove")
@_name_argument
@state_options
def remove(name: str, state_file: Path | None, state_dir: Path | None) -> None:
    """Remove the client NAME: its secret and its tokens stop working at once."""
    with _registry(state_file, state_dir) as registry:
        registry.remove(name)
    click.echo(f"removed booking client {name}")


@client.command("rotate")
@_name_argument
@output.output_option
@state_options
def rotate(name: str, fmt: str, state_file: Path | None, state_dir: Path | None) -> None:
    """Give the client NAME a new secret, printed once; the old secret stops working at once
    (tokens already issued with it run out their lifetime, 5 minutes by default)."""
    with _registry(state_file, state_dir) as registry:
        tenant, secret = registry.rotate(name)
    _emit_secret(tenant, secret, fmt)
