"""How ``slicectl slice get|list`` print (``-o table|wide|name|json|yaml|jsonpath=``) and how
``slice get --watch`` follows one slice through the events watch."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from controller.api import client as api_client
from controller.cli import event_window, listing, output, selection, views
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors


def labels_of(s: pb.Slice) -> dict[str, str]:
    """The slice's ``metadata.labels`` (from the document it was applied with)."""
    return views.labels_of(s)


#: ``-o wide``: TENANT is the booking tenant (``-`` for the operator's own slices), WINDOW its
#: ``spec.schedule`` as ``START/END`` (``START/..`` without an end).
WIDE_HEADERS = [
    *views.SLICE_HEADERS,
    "TENANT",
    "WINDOW",
    "GEN",
    "UNSERVED",
    "KBPS/CELL",
    "UPDATED",
    "LABELS",
]


def wide_row(s: pb.Slice) -> list[object]:
    placed = s.HasField("placement")
    labels = labels_of(s)
    return [
        *views.slice_row(s),
        views.tenant_of(s) or "-",
        views.window_column(s),
        s.generation,
        len(s.placement.unserved_cells) if placed else 0,
        s.placement.kbps_per_cell if placed else "-",
        views.when(s.updated_at),
        ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-",
    ]


SLICES: listing.Printed[pb.Slice] = listing.Printed(
    name=lambda s: f"slice/{s.name}",
    data=views.slice_data,
    text=views.slice_text,
    table=views.slices_table,
    wide_headers=WIDE_HEADERS,
    wide_row=wide_row,
)


def emit_one(s: pb.Slice, fmt: selection.Format) -> None:
    listing.emit_one(SLICES, s, fmt)


def emit_many(slices: Sequence[pb.Slice], fmt: selection.Format, empty: str) -> None:
    listing.emit_many(SLICES, slices, fmt, empty)


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
    return wide_row(s) if fmt.kind == "wide" else views.slice_row(s)


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
