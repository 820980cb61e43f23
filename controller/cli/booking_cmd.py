"""``slicectl booking client add|list|remove|rotate``: the booking API's clients (tenants), kept in
the state file itself, so this works with or without a running controller and a change counts at
once (wiring only; see controller.booking.clients). ``slicectl booking list`` and ``booking
deliveries``: the operator's view of the bookings and of their notifications, read from the same
state file (controller.booking.records, controller.booking.notifier.deliveries)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import click

from controller.booking import clients, notifier, records
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
    """The CAMARA Network Slice Booking API: its clients (tenants), bookings and notifications."""


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
def _state(state_file: Path | None, state_dir: Path | None, *, create: bool = False) -> Iterator[Store]:
    """The state file ``controller run`` would use. Only ``client add`` makes a new state file
    (and its folder): the others refuse a missing one rather than make an empty state."""
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
        yield store
    finally:
        store.close()


@contextmanager
def _registry(
    state_file: Path | None, state_dir: Path | None, *, create: bool = False
) -> Iterator[clients.ClientRegistry]:
    """The client registry over the state file (see :func:`_state`)."""
    with _state(state_file, state_dir, create=create) as store:
        yield clients.ClientRegistry(store)


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


# -- the operator's views -------------------------------------------------------------------------


def _when(at: str | datetime | None) -> str:
    """A stored time for a table: to the second, ``-`` when there is none."""
    if at is None:
        return "-"
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment.isoformat(timespec="seconds")


def _slice_id(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(UUID(value))
    except ValueError:
        raise ValueError(
            f"{value!r} is not a sliceId (a UUID, e.g. 2d3c1f7e-0000-4000-8000-000000000000)"
        ) from None


BOOKING_HEADERS = ["SLICE-ID", "TENANT", "SLICE", "STATE", "START", "END", "MBPS", "SINK"]


@booking.command("list")
@click.option(
    "--tenant",
    default=None,
    callback=_checked(lambda v: None if v is None else clients.check_name(v)),
    help="Only this tenant's bookings (the booking client's name).",
)
@output.output_option
@state_options
def list_bookings(tenant: str | None, fmt: str, state_file: Path | None, state_dir: Path | None) -> None:
    """Every booking not deleted (of --tenant), oldest first, with its tenant, its NetworkSlice
    (``slicectl slice get SLICE``) and that slice's state: Scheduled until its window begins,
    then Admitted or Ready, Expired once it has ended."""
    with _state(state_file, state_dir) as store:
        found = records.operator_listing(store, records.stored_states(store).get, tenant)
        unknown = tenant is not None and not found and clients.ClientRegistry(store).named(tenant) is None
    if fmt != "table":
        output.emit_data(found, fmt)
        return
    if not found:
        what = "no bookings" + (f" of tenant {tenant}" if tenant else "")
        click.echo(what + (" (no booking client has that name)" if unknown else ""))
        return
    rows = [
        [
            b["sliceId"],
            b["tenant"],
            b["slice"],
            b["state"],
            _when(b["start"]),
            _when(b["end"]),
            f"{b['reservedMbps']:g}",
            b["sink"] or "-",
        ]
        for b in found
    ]
    click.echo(output.table(BOOKING_HEADERS, rows))


DELIVERY_STATES = (notifier.PENDING, notifier.DELIVERED, notifier.FAILED)
DELIVERY_HEADERS = [
    "SEQ",
    "CREATED",
    "SLICE-ID",
    "STATUS",
    "STATE",
    "ATTEMPTS",
    "NEXT/DONE",
    "SINK",
    "LAST-ERROR",
]


def _delivery_data(d: notifier.Delivery) -> dict[str, Any]:
    return {
        "seq": d.seq,
        "eventId": d.event_id,
        "sliceId": d.slice_id,
        "status": d.status,
        "sink": d.sink,
        "state": d.state,
        "attempts": d.attempts,
        "lastError": d.last_error,
        "nextAttemptAt": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        "deliveredAt": d.delivered_at.isoformat() if d.delivered_at else None,
        "createdAt": d.created_at.isoformat(),
    }


def _delivery_row(d: notifier.Delivery) -> list[object]:
    if d.state == notifier.DELIVERED:
        done = _when(d.delivered_at)
    elif d.state == notifier.PENDING:
        done = f"next {_when(d.next_attempt_at)}"
    else:
        done = "gave up"
    return [
        d.seq,
        _when(d.created_at),
        d.slice_id,
        d.status,
        d.state,
        d.attempts,
        done,
        d.sink,
        d.last_error or "-",
    ]


@booking.command("deliveries")
@click.option(
    "--slice-id",
    default=None,
    callback=_checked(_slice_id),
    help="Only the notifications of this booking (its sliceId).",
)
@click.option(
    "--delivery-state",
    "state",
    type=click.Choice(DELIVERY_STATES),
    default=None,
    help="Only notifications in this state: pending (to be sent or retried), delivered, failed "
    "(--state is the state file, as everywhere).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=100,
    show_default=True,
    help="The newest N of them.",
)
@output.output_option
@state_options
def list_deliveries(
    slice_id: str | None,
    state: str | None,
    limit: int,
    fmt: str,
    state_file: Path | None,
    state_dir: Path | None,
) -> None:
    """The bookings' status-change notifications (CloudEvents to their sinks) and how their
    delivery went: the newest --limit, oldest first. A pending one is sent, or retried with
    backoff, at NEXT; a failed one was refused by its sink or ran out of attempts (LAST-ERROR
    says why)."""
    with _state(state_file, state_dir) as store:
        # The outbox is read whole when filtered by state, so --limit counts the matching ones.
        everything = notifier.deliveries(store, slice_id, limit=limit if state is None else sys.maxsize)
    found = [d for d in everything if state is None or d.state == state][-limit:]
    if fmt != "table":
        output.emit_data([_delivery_data(d) for d in found], fmt)
        return
    if not found:
        click.echo(
            f"no {state + ' ' if state else ''}notifications"
            + (f" of booking {slice_id}" if slice_id else "")
        )
        return
    click.echo(output.table(DELIVERY_HEADERS, [_delivery_row(d) for d in found]))
