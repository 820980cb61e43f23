"""``slicectl topology status | drain | undrain | what-if``: the live topology of a running
controller (registered into the ``topology`` group beside the file commands)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import click

from controller.api import reports
from controller.cli import output, readable, views
from controller.cli.connect import Connection, connection_options
from controller.cli.progress import Progress
from controller.core import topology as topo
from protos.edgeslice.operator.v1 import operator_pb2 as pb

BUSIEST_LINKS = 10


KIND_ORDER = ("edge", "core", "aggregation", "cell")


def _share(reserved: int, capacity: int, shown: Callable[[int], str] = str) -> str:
    """``used/total (pct%)`` with each amount as ``shown`` writes it, or ``-`` for an element
    without that capacity.

    >>> _share(1500, 6000), _share(0, 0)
    ('1500/6000 (25%)', '-')
    """
    if capacity <= 0:
        return "-"
    return f"{shown(reserved)}/{shown(capacity)} ({100 * reserved / capacity:.0f}%)"


def mbps(kbps: int) -> str:
    """kbit/s as Mbit/s, exact (kbit/s are integers, so three decimals lose nothing).

    >>> mbps(40_000), mbps(1_250), mbps(7), mbps(10_000_000_000)
    ('40', '1.25', '0.007', '10000000')
    """
    text = f"{kbps // 1000}" if kbps % 1000 == 0 else f"{kbps / 1000:.3f}".rstrip("0")
    return text


def _mbps_share(reserved_kbps: int, capacity_kbps: int) -> str:
    """``used/total (pct%)`` in Mbit/s.

    >>> _mbps_share(75_000, 300_000), _mbps_share(0, 0)
    ('75/300 (25%)', '-')
    """
    return _share(reserved_kbps, capacity_kbps, mbps)


def _state(s: pb.SiteStatus) -> str:
    if not s.up:
        return "down"
    if s.drained:
        return "drained"
    return "cordoned" if s.cordoned else "up"


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def status_text(t: pb.TopologyStatus, all_cells: bool) -> str:
    """Edge and core sites first, then aggregation, then cells (only those out of service
    unless ``all_cells``); bandwidth in Mbit/s like ``slicectl plan``."""
    kinds = Counter(s.kind for s in t.sites)
    cells = [s for s in t.sites if s.kind == "cell"]
    down = sum(1 for s in t.sites if not s.up)
    drained = sum(1 for s in t.sites if s.up and s.drained)
    drained_names = [s.site for s in t.sites if s.up and s.drained]
    shown = sorted(
        (s for s in t.sites if s.kind != "cell" or all_cells or not s.up or s.drained or s.cordoned),
        key=lambda s: (_kind_rank(s.kind), s.site),
    )
    by_kind = ", ".join(
        f"{kinds[k]} {k}{'s' * (k == 'cell' and kinds[k] != 1)}"
        for k in (*KIND_ORDER, *sorted(set(kinds) - set(KIND_ORDER)))
        if kinds[k]
    )
    out = [
        f"Topology {t.name}: {len(t.sites)} sites ({by_kind}); {down} down, {drained} drained"
        + (
            f" ({', '.join(drained_names[:5])}{' ...' if len(drained_names) > 5 else ''})"
            if drained_names
            else ""
        )
        + f"; {sum(1 for s in cells if not s.up or s.drained)} cells out of service; {len(t.down_links)} links down",
        "",
        output.table(
            ["SITE", "KIND", "STATE", "REASON", "CPU-M", "MEMORY-MIB", "RADIO-MBPS", "SLICES"],
            [
                [
                    s.site,
                    s.kind,
                    _state(s),
                    s.reason or "-",
                    _share(s.cpu_reserved_millicores, s.cpu_capacity_millicores),
                    _share(s.memory_reserved_mib, s.memory_capacity_mib),
                    _mbps_share(s.radio_reserved_kbps, s.radio_capacity_kbps),
                    s.slices,
                ]
                for s in shown
            ],
        ),
    ]
    if not all_cells and len(shown) < len(t.sites):
        out.append(f"({len(t.sites) - len(shown)} cells in service not shown; --cells shows them)")
    if t.down_links:
        out += ["", "Links down: " + ", ".join(f"{k.a}:{k.b}" for k in t.down_links)]
    if t.link_utilisation:
        out += [
            "",
            output.table(
                ["BUSIEST LINK", "RESERVED-MBPS"],
                [
                    [f"{u.link.a}:{u.link.b}", _mbps_share(u.reserved_kbps, u.capacity_kbps)]
                    for u in t.link_utilisation[:BUSIEST_LINKS]
                ],
            ),
        ]
    return "\n".join(out)


@click.command()
@click.option("--cells", "all_cells", is_flag=True, help="List every cell, not only those out of service.")
@output.output_option
@connection_options
def status(all_cells: bool, fmt: str, conn: Connection) -> None:
    """Sites of the running controller: state, reserved and total capacity, busiest links."""
    with conn.client() as client:
        found = client.topology_status()
    if fmt == "table":
        click.echo(status_text(found, all_cells))
    else:
        output.emit_data(views.topology_data(found), fmt)


def _moved(action: str, site: str, moved: list[str], fmt: str) -> None:
    if fmt == "table":
        detail = f"; slices re-placed: {', '.join(moved)}" if moved else "; no slice had to move"
        click.echo(f"site {site} {action}{detail}")
    else:
        output.emit_data({"site": site, "action": action, "movedSlices": moved}, fmt)


#: `topology drain` exits with this when a slice could not move off the site (unless --force),
#: like `kubectl drain` when a pod cannot be evicted. The site stays drained.
NOT_ALL_MOVED = 9


def _say(message: str) -> None:
    click.echo(message, err=True)


def drain_text(site: str, r: pb.DrainSiteResponse) -> str:
    """One line per slice the drain concerned, then a summary that is true of what happened."""
    if r.already_drained:
        return f"site {site} was already drained; nothing was done"
    if not r.moves:
        return f"site {site} drained; no slice used it"
    counts = Counter(m.outcome for m in r.moves)
    lines = [output.table(["SLICE", "OUTCOME", "DETAIL"], [[m.slice, m.outcome, m.message] for m in r.moves])]
    parts = [
        f"{counts[k]} {label}"
        for k, label in (
            ("Moved", "moved"),
            ("Preempted", "preempted"),
            ("NotMoved", "could not move (still on the site, Degraded)"),
            ("CellOutOfService", "lost this covered cell"),
        )
        if counts[k]
    ]
    lines.append(f"site {site} drained: {', '.join(parts)}")
    return "\n".join(lines)


@click.command()
@click.argument("site")
@click.option(
    "--force",
    is_flag=True,
    help=f"Exit 0 even when some slice could not move off the site (else exit {NOT_ALL_MOVED}).",
)
@output.output_option
@connection_options
def drain(site: str, force: bool, fmt: str, conn: Connection) -> None:
    """Take SITE out of service for maintenance; the slices it served are re-placed.

    Lists every slice moved, preempted by a moved slice, or that could not move. Exits 9 when
    some could not move (the site stays drained; those slices are Degraded and healed when room
    appears), unless --force.
    """
    with conn.client() as client, Progress(f"draining {site}"):
        report = client.drain_report(site, on_retry=_say)
    if fmt == "table":
        click.echo(drain_text(site, report))
    else:
        output.emit_data(
            {
                "site": site,
                "action": "drained",
                "alreadyDrained": report.already_drained,
                "movedSlices": list(report.moved_slices),
                "moves": [
                    {"slice": m.slice, "outcome": m.outcome, "message": m.message} for m in report.moves
                ],
            },
            fmt,
        )
    stuck = [m.slice for m in report.moves if m.outcome == "NotMoved"]
    if stuck and not force:
        click.echo(
            f"error: {len(stuck)} slice{'s' * (len(stuck) != 1)} could not move off {site}: "
            f"{', '.join(stuck[:10])}{' ...' if len(stuck) > 10 else ''} (--force to accept)",
            err=True,
        )
        raise SystemExit(NOT_ALL_MOVED)


@click.command()
@click.argument("site")
@output.output_option
@connection_options
def cordon(site: str, fmt: str, conn: Connection) -> None:
    """No new placements on SITE (new slices, updates, re-placements avoid it); nothing is moved."""
    with conn.client() as client:
        r = client.cordon(site, on_retry=_say)
    if fmt == "table":
        head = f"site {site} cordoned" if r.changed else f"site {site} was already cordoned"
        click.echo(f"{head}; {len(r.slices_on_site)} slices stay on it (nothing moved)")
    else:
        output.emit_data(
            {"site": site, "cordoned": True, "changed": r.changed, "slicesOnSite": list(r.slices_on_site)},
            fmt,
        )


@click.command()
@click.argument("site")
@output.output_option
@connection_options
def uncordon(site: str, fmt: str, conn: Connection) -> None:
    """Allow new placements on a cordoned SITE again."""
    with conn.client() as client:
        changed = client.uncordon(site, on_retry=_say)
    if fmt == "table":
        click.echo(
            f"site {site} uncordoned" if changed else f"site {site} was not cordoned; nothing was done"
        )
    else:
        output.emit_data({"site": site, "cordoned": False, "changed": changed}, fmt)


@click.command()
@click.argument("site")
@output.output_option
@connection_options
def undrain(site: str, fmt: str, conn: Connection) -> None:
    """Put a drained SITE back into service."""
    with conn.client() as client, Progress(f"bringing {site} back"):
        moved = client.undrain(site, on_retry=_say)
    _moved("undrained", site, moved, fmt)


@click.command(name="what-if")
@click.option("--fail-site", "fail_sites", multiple=True, metavar="SITE", help="A site to fail. Repeatable.")
@click.option("--fail-link", "fail_links", multiple=True, metavar="A:B", help="A link to fail. Repeatable.")
@output.output_option
@connection_options
def what_if(fail_sites: tuple[str, ...], fail_links: tuple[str, ...], fmt: str, conn: Connection) -> None:
    """What would happen to the slices if these sites and links failed (changes nothing)."""
    if not fail_sites and not fail_links:
        raise click.UsageError("give at least one --fail-site or --fail-link")
    links = [topo.parse_link_key(text) for text in fail_links]
    with conn.client() as client, Progress("simulating failures"):
        report = client.what_if(list(fail_sites), links)
    if fmt == "table":
        click.echo(readable.what_if_text(report))
    else:
        output.emit_data(reports.what_if_data(report), fmt)
