"""``slicectl slice``: apply, inspect and delete slices on a running controller.

Exit codes scripts can rely on: 0 done; 2 invalid input (nothing was stored); 3 ``apply``
stored every slice but at least one was rejected; 4 no such slice; 7 the controller cannot be
reached; 8 not authenticated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from controller.cli import output, readable, views
from controller.cli.connect import Connection, connection_options
from controller.cli.progress import Progress
from slices import errors, intent

REJECTED = "Rejected"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@click.group(name="slice")
def slice_group() -> None:
    """Apply, inspect and delete network slices on a running controller."""


def _manifest_paths(paths: tuple[str, ...]) -> list[str]:
    """Files as given; a folder stands for its .yaml/.yml/.json files (sorted); ``-`` is stdin."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if p != "-" and path.is_dir():
            found = sorted(str(f) for f in path.iterdir() if f.suffix in MANIFEST_SUFFIXES and f.is_file())
            if not found:
                raise errors.InvalidSpec(f"{p}: folder has no .yaml, .yml or .json files")
            out += found
        else:
            out.append(p)
    return out


def read_manifests(paths: list[str], progress: Progress) -> tuple[list[tuple[str, str]], int]:
    """Read and validate every file before sending anything: a bad file fails the whole apply here,
    with the file, document and field named, and nothing reaches the controller."""
    manifests: list[tuple[str, str]] = []
    names: dict[str, str] = {}
    for i, path in enumerate(paths, 1):
        progress.step(i, len(paths))
        source = "<stdin>" if path == "-" else path
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise errors.InvalidSpec(f"{path}: cannot read: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise errors.InvalidSpec(f"{path}: not UTF-8 text") from exc
        docs = intent.load_slices(text, source)
        if not docs:
            raise errors.InvalidSpec(f"{source}: no NetworkSlice documents in it")
        for doc in docs:
            if doc.name in names:
                raise errors.InvalidSpec(
                    f"{source}: metadata.name: slice {doc.name!r} is also defined in {names[doc.name]}"
                )
            names[doc.name] = source
        manifests.append((source, text))
    return manifests, len(names)


@slice_group.command()
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    required=True,
    help="YAML/JSON file of NetworkSlice documents, a folder of them, or - for stdin. Repeat for more.",
)
@output.output_option
@connection_options
def apply(files: tuple[str, ...], fmt: str, conn: Connection) -> None:
    """Create or update slices: all documents of all files, or none of them.

    Exits 3 when every slice was stored but at least one was rejected (see REASON).
    """
    paths = _manifest_paths(files)
    with Progress("reading slice files") as progress:
        manifests, count = read_manifests(paths, progress)
    with conn.client() as client, Progress(f"applying {count} slice{'s' * (count != 1)}"):
        results = client.apply(manifests)
    if fmt == "table":
        click.echo(
            output.table(
                ["NAME", "GEN", "CHANGED", "STATE", "REASON", "MESSAGE"],
                [
                    [r.name, r.generation, "yes" if r.changed else "no", r.state, r.reason or "-", r.message]
                    for r in results
                ],
            )
        )
    else:
        output.emit_data([views.apply_result_data(r) for r in results], fmt)
    rejected = [r.name for r in results if r.state == REJECTED]
    if rejected:
        click.echo(f"rejected: {', '.join(rejected)}", err=True)
        sys.exit(errors.AdmissionRejected.exit_code)


@slice_group.command()
@click.argument("name")
@output.output_option
@connection_options
def get(name: str, fmt: str, conn: Connection) -> None:
    """Show one slice: state, placement and conditions."""
    with conn.client() as client:
        found = client.get(name)
    if fmt == "table":
        click.echo(views.slice_text(found))
    else:
        output.emit_data(views.slice_data(found), fmt)


@slice_group.command(name="list")
@output.output_option
@connection_options
def list_slices(fmt: str, conn: Connection) -> None:
    """List every slice with its state and where it runs."""
    with conn.client() as client:
        slices = client.list_slices()
    if fmt == "table":
        click.echo(views.slices_table(slices) if slices else "no slices")
    else:
        output.emit_data([views.slice_data(s) for s in slices], fmt)


@slice_group.command()
@click.argument("name")
@output.output_option
@connection_options
def delete(name: str, fmt: str, conn: Connection) -> None:
    """Delete a slice and release what it reserved."""
    with conn.client() as client:
        client.delete(name)
    if fmt == "table":
        click.echo(f"slice {name!r} deleted")
    else:
        output.emit_data({"deleted": name}, fmt)


@slice_group.command()
@click.argument("name")
@click.option("--routes", is_flag=True, help="Also list every cell's route (table output; -o json has them).")
@output.output_option
@connection_options
def explain(name: str, routes: bool, fmt: str, conn: Connection) -> None:
    """Why a slice is where it is: the decision, the binding constraint, edge sites, worst
    latency, then the conditions and checks."""
    with conn.client() as client:
        report = client.explain(name)
    if fmt == "table":
        click.echo(readable.explain_text(report, routes=routes))
    else:
        output.emit_data(report, fmt)


@slice_group.command()
@click.option("--follow", "-w", is_flag=True, help="Keep printing new events until interrupted.")
@click.option("--slice", "slice_name", default=None, help="Only events about this slice.")
@click.option(
    "--since", type=click.IntRange(min=0), default=0, show_default=True, help="Only events after this SEQ."
)
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=1000,
    show_default=True,
    help="At most this many (without --follow).",
)
@output.output_option
@connection_options
def events(follow: bool, slice_name: str | None, since: int, limit: int, fmt: str, conn: Connection) -> None:
    """The audit trail: who did what to which slice and site.

    With --follow, -o json prints one JSON object per line (JSON Lines).
    """
    with conn.client() as client:
        if not follow:
            found = client.events(after_seq=since, limit=limit, slice_name=slice_name)
            if fmt == "table":
                click.echo(
                    output.table(views.EVENT_HEADERS, [views.event_row(e) for e in found])
                    if found
                    else "no events"
                )
            else:
                output.emit_data([views.event_data(e) for e in found], fmt)
            return
        if fmt == "table":
            click.echo(views.event_line_header())
        for event in client.watch(after_seq=since, slice_name=slice_name):
            if fmt == "table":
                click.echo(views.event_line(event))
            elif fmt == "json":
                click.echo(json.dumps(views.event_data(event)))
            else:
                click.echo("---")
                output.emit_data(views.event_data(event), "yaml")
