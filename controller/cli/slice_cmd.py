"""``slicectl slice``: apply, inspect and delete slices on a running controller.

Exit codes scripts can rely on: 0 done; 2 invalid input (nothing was stored); 3 ``apply``
stored every slice but at least one was rejected; 4 no such slice; 7 the controller cannot be
reached; 8 not authenticated.
"""

from __future__ import annotations

import itertools
import json
import sys
from datetime import timedelta
from pathlib import Path

import click

from controller.api import reports, slices_rpc
from controller.cli import diff_view, event_window, output, readable, selection, slice_get, views
from controller.cli.connect import Connection, connection_options
from controller.cli.progress import Progress
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors, intent

REJECTED = "Rejected"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# The documents ``apply`` and ``diff`` read (``delete -f`` names slices, with its own help).
filename_option = click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    required=True,
    help="YAML/JSON file of NetworkSlice documents, a folder of them, or - for stdin. Repeat for more.",
)


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
        slices_rpc.note_names(intent.load_slices(text, source), source, names)
        manifests.append((source, text))
    return manifests, len(names)


@slice_group.command()
@filename_option
@click.option(
    "--dry-run",
    type=click.Choice(["none", "client", "server"]),
    default="none",
    show_default=True,
    help="client: only validate the files here; server: the controller's real admission decision "
    "against its live state, nothing stored.",
)
@output.output_option
@connection_options
def apply(files: tuple[str, ...], dry_run: str, fmt: str, conn: Connection) -> None:
    """Create or update slices: all documents of all files, or none of them.

    Exits 3 when every slice was stored but at least one was rejected (see REASON); with
    --dry-run=server, when at least one would be rejected. If the connection drops after the
    request was sent, the same request (same request id) is sent again, which the controller
    does not do twice; stderr says "unknown, retrying" meanwhile and "committed" once answered.
    """
    paths = _manifest_paths(files)
    with Progress("reading slice files") as progress:
        manifests, count = read_manifests(paths, progress)
    if dry_run == "client":
        click.echo(f"{count} slice{'s' * (count != 1)} valid (dry run, client: nothing sent)")
        return
    retried: list[str] = []

    def on_retry(message: str) -> None:
        retried.append(message)
        click.echo(message, err=True)

    what = f"applying {count} slice{'s' * (count != 1)}" + (" (dry run)" if dry_run == "server" else "")
    with conn.client() as client, Progress(what):
        response = client.apply_response(manifests, dry_run=dry_run == "server", on_retry=on_retry)
    results = list(response.results)
    if retried:
        click.echo(
            f"committed: the controller answered the re-sent request"
            f"{' with its first answer (it was not done twice)' if response.replayed else ''}",
            err=True,
        )
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
    if dry_run == "server":
        click.echo(
            "dry run (server): the controller's decision against its live state; nothing was stored", err=True
        )
    rejected = [r.name for r in results if r.state == REJECTED]
    if rejected:
        click.echo(
            f"{'would be rejected' if dry_run == 'server' else 'rejected'}: {', '.join(rejected)}", err=True
        )
        sys.exit(errors.AdmissionRejected.exit_code)


DIFFERENT = 1  # `slice diff`: some file differs from what is stored (like `kubectl diff`)


@slice_group.command()
@filename_option
@connection_options
def diff(files: tuple[str, ...], conn: Connection) -> None:
    """What applying the files would change in the stored specs, as a unified diff (YAML).

    A slice not stored yet shows whole as added. Exits 0 when nothing would change, 1 when
    something would (like `kubectl diff`), other codes on errors.
    """
    paths = _manifest_paths(files)
    with Progress("reading slice files") as progress:
        manifests, _ = read_manifests(paths, progress)
    changed = False
    with conn.client() as client:
        for source, text in manifests:
            for doc in intent.load_slices(text, source):
                try:
                    stored: dict[str, object] | None = json.loads(client.get(doc.name).document_json)
                except errors.NotFound:
                    stored = None
                out = diff_view.document_diff(doc.name, stored, doc.to_wire())
                if out:
                    changed = True
                    click.echo(out)
    if changed:
        sys.exit(DIFFERENT)


@slice_group.command()
@click.argument("name")
@selection.get_output_option
@click.option(
    "--watch",
    "-w",
    is_flag=True,
    help="After printing the slice, print it again each time it changes, until interrupted.",
)
@connection_options
def get(name: str, fmt: selection.Format, watch: bool, conn: Connection) -> None:
    """Show one slice: state, placement and conditions."""
    with conn.client() as client:
        found = client.get(_plain_name(name))
        if not watch:
            slice_get.emit_one(found, fmt)
            return
        slice_get.watch(client, found, fmt)


@slice_group.command(name="list")
@selection.get_output_option
@selection.selector_option
@connection_options
def list_slices(fmt: selection.Format, selector: selection.Selector | None, conn: Connection) -> None:
    """List every slice with its state and where it runs (-l: only those whose labels match)."""
    with conn.client() as client:
        slices = client.list_slices()
    if selector is not None:
        slices = [s for s in slices if selector.matches(slice_get.labels_of(s))]
    slice_get.emit_many(slices, fmt, "no slices" + (" match the selector" if selector else ""))


def _plain_name(name: str) -> str:
    """``slice/cars`` (what ``-o name`` prints) or ``cars``."""
    return name.removeprefix("slice/")


@slice_group.command()
@click.argument("names", nargs=-1)
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    help="Delete the slices named in this file of NetworkSlice documents (or folder, or - for stdin). Repeatable.",
)
@selection.selector_option
@click.option("--all", "all_slices", is_flag=True, help="Delete every slice (explicit; no prompt).")
@output.output_option
@connection_options
def delete(
    names: tuple[str, ...],
    files: tuple[str, ...],
    selector: selection.Selector | None,
    all_slices: bool,
    fmt: str,
    conn: Connection,
) -> None:
    """Delete slices and release what they reserved: NAME..., the slices of -f FILE, those
    matching -l SELECTOR, or --all. Exits 4 when a named slice does not exist."""
    ways = sum((bool(names), bool(files), selector is not None, all_slices))
    if ways != 1:
        raise click.UsageError("give exactly one of NAME..., -f FILE, -l SELECTOR or --all")
    wanted = [_plain_name(n) for n in names]
    if files:
        with Progress("reading slice files") as progress:
            manifests, _ = read_manifests(_manifest_paths(files), progress)
        wanted = [doc.name for source, text in manifests for doc in intent.load_slices(text, source)]
    with conn.client() as client:
        if selector is not None or all_slices:
            wanted = [
                s.name
                for s in client.list_slices()
                if selector is None or selector.matches(slice_get.labels_of(s))
            ]
        deleted: list[str] = []
        with Progress(f"deleting {len(wanted)} slice{'s' * (len(wanted) != 1)}"):
            for name in wanted:
                try:
                    client.delete(name)
                except errors.NotFound:
                    if names:  # a name the user typed: say so (after deleting the others)
                        if deleted:
                            _deleted(deleted, fmt)
                        raise
                    continue  # gone meanwhile, or never applied from the file: nothing to release
                deleted.append(name)
    _deleted(deleted, fmt)


def _deleted(names: list[str], fmt: str) -> None:
    if fmt == "table":
        click.echo("\n".join(f"slice {n!r} deleted" for n in names) if names else "no slices deleted")
    else:
        output.emit_data({"deleted": names}, fmt)


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
        output.emit_data(reports.explanation_data(report), fmt)


DEFAULT_TAIL = 1000


@slice_group.command()
@click.option("--follow", "-w", is_flag=True, help="Keep printing new events until interrupted.")
@click.option("--slice", "slice_name", default=None, help="Only events about this slice.")
@click.option(
    "--tail",
    type=click.IntRange(1, 100_000),
    default=None,
    help=f"The newest N events, newest first [default without --after-seq: {DEFAULT_TAIL}]; with "
    "--follow, those N (oldest first), then new ones.",
)
@click.option(
    "--since",
    type=event_window.DurationType(),
    default=None,
    help="Only events of the last DURATION: 30s, 10m, 2h, 1d, 1h30m.",
)
@click.option(
    "--after-seq",
    type=click.IntRange(min=0),
    default=None,
    help="Only events after this SEQ, oldest first, at most --limit (for scripts reading on from "
    "where they stopped).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=1000,
    show_default=True,
    help="With --after-seq: at most this many.",
)
@output.output_option
@connection_options
def events(
    follow: bool,
    slice_name: str | None,
    tail: int | None,
    since: timedelta | None,
    after_seq: int | None,
    limit: int,
    fmt: str,
    conn: Connection,
) -> None:
    """The audit trail: who did what to which slice and site.

    Without --after-seq it shows the newest events first (the newest 1000, or --tail N) and says
    on stderr when older ones exist. With --follow, -o json prints one JSON object per line (JSON
    Lines), from --after-seq / --since (default: the whole trail) on, or the newest --tail N
    (oldest of them first) and on.
    """
    with conn.client() as client:
        floor = after_seq or 0
        if since is not None:
            floor = event_window.since_floor(client, since, slice_name, floor)
        if not follow:
            if after_seq is not None and tail is None:
                found = client.events(after_seq=floor, limit=limit, slice_name=slice_name)
                more = len(found) == limit and bool(
                    client.events(after_seq=found[-1].seq, limit=1, slice_name=slice_name)
                )
                note = f"more events follow: --after-seq {found[-1].seq}" if more else ""
            else:
                count = tail or DEFAULT_TAIL
                window = event_window.tail(client, count, slice_name, floor)
                found = window.events
                note = (
                    f"the newest {len(found)} events shown; older ones exist (--tail N, --since DURATION, --after-seq SEQ)"
                    if window.older
                    else ""
                )
            if fmt == "table":
                click.echo(
                    output.table(views.EVENT_HEADERS, [views.event_row(e) for e in found])
                    if found
                    else "no events"
                )
            else:
                output.emit_data([views.event_data(e) for e in found], fmt)
            if note:
                click.echo(f"({note})", err=True)
            return
        backlog: list[pb.Event] = []
        if tail is not None:  # like `kubectl logs -f --tail N`: the newest N (oldest of them first), then on
            backlog = list(reversed(event_window.tail(client, tail, slice_name, floor).events))
            floor = backlog[-1].seq if backlog else floor
        if fmt == "table":
            click.echo(views.event_line_header())
        for event in itertools.chain(backlog, client.watch(after_seq=floor, slice_name=slice_name)):
            if fmt == "table":
                click.echo(views.event_line(event))
            elif fmt == "json":
                click.echo(json.dumps(views.event_data(event)))
            else:
                click.echo("---")
                output.emit_data(views.event_data(event), "yaml")
