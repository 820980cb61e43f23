"""How ``slicectl slice get|list`` print (``-o table|wide|name|json|yaml|jsonpath=``) and how
``slice get --watch`` follows one slice through the events watch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from controller.api import client as api_client
from controller.cli import event_window, output, selection, views
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors


def labels_of(s: pb.Slice) -> dict[str, str]:
    """The slice's ``metadata.labels`` (from the document it was applied with)."""
    if not s.document_json:
        return {}
    try:
        document = json.loads(s.document_json)
    except json.JSONDecodeError:
        return {}
    labels = (document.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


WIDE_HEADERS = [
    "NAME", "KIND", "S-NSSAI", "PRIO", "STATE", "REASON", "EDGES", "CELLS", "WORST-MS",
    "GEN", "UNSERVED", "KBPS/CELL", "UPDATED", "LABELS",
]  # fmt: skip


def wide_row(s: pb.Slice) -> list[object]:
    placed = s.HasField("placement")
    labels = labels_of(s)
    return [
        s.name,
        s.kind,
        s.snssai,
        s.priority,
        s.state,
        s.reason or "-",
        views.edges_text(s),
        s.placement.cells_served if placed else 0,
        f"{s.placement.worst_latency_ms:.2f}" if placed else "-",
        s.generation,
        len(s.placement.unserved_cells) if placed else 0,
        s.placement.kbps_per_cell if placed else "-",
        views.when(s.updated_at),
        ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-",
    ]


def _echo_template(text: str) -> None:
    """A template's text, with a newline at the end unless it ends in one already."""
    click.echo(text, nl=not text.endswith("\n"))


def emit_one(s: pb.Slice, fmt: selection.Format) -> None:
    if fmt.kind == "table":
        click.echo(views.slice_text(s))
    elif fmt.kind == "wide":
        click.echo(output.table(WIDE_HEADERS, [wide_row(s)]))
    elif fmt.kind == "name":
        click.echo(f"slice/{s.name}")
    elif fmt.kind == "jsonpath":
        assert fmt.template is not None
        _echo_template(selection.render(fmt.template, views.slice_data(s)))
    else:
        output.emit_data(views.slice_data(s), fmt.kind)


def emit_many(slices: Sequence[pb.Slice], fmt: selection.Format, empty: str) -> None:
    if fmt.kind in ("table", "wide") and not slices:
        click.echo(empty)
    elif fmt.kind == "table":
        click.echo(views.slices_table(slices))
    elif fmt.kind == "wide":
        click.echo(output.table(WIDE_HEADERS, [wide_row(s) for s in slices]))
    elif fmt.kind == "name":
        for s in slices:
            click.echo(f"slice/{s.name}")
    elif fmt.kind == "jsonpath":
        assert fmt.template is not None
        data: dict[str, Any] = {"kind": "List", "items": [views.slice_data(s) for s in slices]}
        _echo_template(selection.render(fmt.template, data))
    else:
        output.emit_data([views.slice_data(s) for s in slices], fmt.kind)


class _Rows:
    """Table rows printed one at a time, in columns as wide as the header and first row."""

    def __init__(self, headers: list[str], first: list[object]) -> None:
        self.widths = [max(len(h), len(str(v))) for h, v in zip(headers, first, strict=True)]
        click.echo(self._line(headers))

    def _line(self, values: Sequence[object]) -> str:
        return "  ".join(str(v).ljust(w) for v, w in zip(values, self.widths, strict=True)).rstrip()

    def echo(self, values: list[object]) -> None:
        click.echo(self._line(values))


def _row(s: pb.Slice, fmt: selection.Format) -> list[object]:
    return wide_row(s) if fmt.kind == "wide" else wide_row(s)[:9]


def _print_change(s: pb.Slice | None, name: str, fmt: selection.Format, rows: _Rows | None) -> None:
    """One change: a row for table/wide (in the first row's columns), one JSON object per line
    for json, a YAML document for yaml."""
    if s is None:
        click.echo(f"slice {name!r} deleted")
    elif rows is not None:
        rows.echo(_row(s, fmt))
    elif fmt.kind == "json":
        click.echo(json.dumps(views.slice_data(s), default=str))
    elif fmt.kind == "yaml":
        click.echo("---")
        output.emit_data(views.slice_data(s), "yaml")
    else:
        emit_one(s, fmt)


def _same(a: pb.Slice | None, b: pb.Slice | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


def watch(client: api_client.ApiClient, current: pb.Slice, fmt: selection.Format) -> None:
    """Print the slice, then again after each event about it that changed it, until interrupted
    (the controller's WatchEvents stream; a deleted slice is said so and watched on)."""
    name = current.name
    after = event_window.last_seq(client, name)
    rows = None
    if fmt.kind in ("table", "wide"):
        rows = _Rows(WIDE_HEADERS[: len(_row(current, fmt))], _row(current, fmt))
    _print_change(current, name, fmt, rows)
    shown: pb.Slice | None = current
    for _event in client.watch(after_seq=after, slice_name=name):
        try:
            now: pb.Slice | None = client.get(name)
        except errors.NotFound:
            now = None
        if not _same(now, shown):
            _print_change(now, name, fmt, rows)
            shown = now
