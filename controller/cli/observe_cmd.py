"""``slicectl top`` and ``slicectl topology render``: looking at a city without Grafana.

Wiring only: the view and the picture live in :mod:`controller.cli.top` and :mod:`controller.cli.render`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from controller.cli.connect import Connection, connection_options
from controller.core import citygen
from controller.core import topology as topo
from controller.core.topology_file import parse_topology
from slices import errors


@click.command()
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.2),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option("--once", is_flag=True, help="Print one screen and exit (for scripts; no screen clearing).")
@click.option("--iterations", type=click.IntRange(min=1), default=None, help="Stop after this many screens.")
@click.option(
    "--metrics-url",
    envvar="EDGESLICE_METRICS_URL",
    default=None,
    metavar="URL",
    help="The controller's /metrics URL: adds each slice's KPIs against its targets [env EDGESLICE_METRICS_URL; "
    "default: the one the local controller wrote to its endpoints file, when it is the controller shown].",
)
@connection_options
def top(
    interval_s: float, once: bool, iterations: int | None, metrics_url: str | None, conn: Connection
) -> None:
    """Live view of slices and their SLA state, worst first (q or Ctrl-C quits).

    While the controller cannot be reached (a restart), it says so and keeps trying; --once
    fails instead (exit 7).
    """
    from controller.cli import top as top_view

    clients = [conn.client()]

    def reconnect() -> top_view.TopSource:
        clients[-1].close()
        clients.append(conn.client())  # the address and token files may have moved
        return clients[-1]

    live = not once and iterations is None
    try:
        with top_view.Keys(sys.stdin) as keys:
            top_view.run_top(
                clients[0],
                write=lambda text: click.echo(text, nl=False),
                interval_s=interval_s,
                iterations=1 if once else iterations,
                metrics_url=metrics_url or (lambda: discovered_metrics_url(conn)),
                clear=not once,
                width=lambda: shutil.get_terminal_size((160, 40)).columns,
                keys=keys.wait if not once else None,
                reconnect=reconnect if live else None,
            )
    except KeyboardInterrupt:
        pass  # Ctrl-C quits like q
    finally:
        clients[-1].close()


def discovered_metrics_url(conn: Connection) -> str | None:
    """The ``metrics`` line of the local controller's endpoints file, when that controller is
    the one ``conn`` talks to (``--server`` elsewhere: none)."""
    from controller.process.endpoints import read_endpoints

    try:
        found = read_endpoints(conn.state_folder())
    except (OSError, UnicodeDecodeError):
        return None
    if conn.server and found.get("operator") != conn.server:
        return None
    return found.get("metrics")


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Picture to write: city.png or city.svg.",
)
@click.option(
    "--topology",
    "topology_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Topology file (YAML or JSON) to draw.",
)
@click.option(
    "--cells",
    type=click.IntRange(min=1),
    default=None,
    help="Draw a generated city of this many cells instead (the controller's default sample city: 60).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated city.")
@click.option(
    "--live",
    is_flag=True,
    help="Colour links by what the running controller reserved and mark what is down; alone "
    "(no --topology or --cells), draw the running controller's own topology.",
)
@click.option(
    "--slice",
    "slice_names",
    multiple=True,
    metavar="NAME",
    help="Highlight this slice's routes (needs --live; repeatable).",
)
@connection_options
def render(
    out: Path,
    topology_file: str | None,
    cells: int | None,
    seed: int,
    live: bool,
    slice_names: tuple[str, ...],
    conn: Connection,
) -> None:
    """Draw the city: sites by kind (edge and core sites named), links by utilisation, chosen
    slices' routes. `--live` alone draws the running controller's topology as it is now."""
    from controller.api import reports
    from controller.cli import render as picture

    picture.output_format(out)  # a bad --out fails before any work
    if not out.parent.is_dir():  # no `mkdir -p` outside what the user named
        problem = "is not a directory" if out.parent.exists() else "does not exist"
        raise errors.InvalidSpec(f"--out: directory {str(out.parent)!r} {problem}")
    from_controller = live and topology_file is None and cells is None
    if (topology_file is None) == (cells is None) and not from_controller:
        raise errors.InvalidSpec(
            "give exactly one of --topology FILE or --cells N (or --live alone: the controller's topology)"
        )
    if slice_names and not live:
        raise errors.InvalidSpec("--slice: slices' routes come from a running controller; add --live")
    if from_controller:
        with conn.client() as client:
            _, document = client.topology_file()
        city = topo.Topology.from_file(parse_topology(document, "the controller's topology"))
    elif topology_file is not None:
        city = topo.load_topology(topology_file)
    else:
        city = topo.Topology.from_file(citygen.generate_city(cells or 1, seed=seed))
    utilisation: dict[topo.LinkKey, float] = {}
    highlights: list[picture.Highlight] = []
    title = None
    if live:
        with conn.client() as client:
            status = client.topology_status()
            theirs = {s.site for s in status.sites}
            differ = sorted(theirs ^ set(city.sites))
            if differ:
                where = "the controller's" if differ[0] in theirs else "the drawn"
                raise errors.TopologyError(
                    f"the controller runs topology {status.name!r}, a different city from "
                    f"{topology_file or f'the generated {cells}-cell city'} (site {differ[0]!r} is only in "
                    f"{where} one); draw the controller's topology file"
                )
            down_sites = [s.site for s in status.sites if not s.up or s.drained]
            city = city.with_down(down_sites, [(ln.a, ln.b) for ln in status.down_links])
            utilisation = picture.utilisation_of(
                ((u.link.a, u.link.b), u.reserved_kbps, u.capacity_kbps) for u in status.link_utilisation
            )
            for name in slice_names:
                highlights.append(
                    picture.Highlight.from_explain(name, reports.explanation_data(client.explain(name)))
                )
            title = f"{status.name} (live)"
    written = picture.render_city(city, out, utilisation, highlights, title)
    click.echo(f"wrote {written}")
