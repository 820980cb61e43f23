"""How the get/list commands print one kind of object in each ``-o`` (table, wide, name, json,
yaml, jsonpath=): the one dispatch ``slice get|list`` and ``agent get|list`` share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import click

from controller.cli import output, selection

T = TypeVar("T")


@dataclass(frozen=True)
class Printed(Generic[T]):
    """What one kind of object prints as: ``name`` for ``-o name`` (``slice/x``), ``data`` for
    json, yaml and jsonpath, ``text`` and ``table`` for ``-o table`` (one object, a list),
    ``wide_headers`` and ``wide_row`` for ``-o wide``."""

    name: Callable[[T], str]
    data: Callable[[T], dict[str, Any]]
    text: Callable[[T], str]
    table: Callable[[Sequence[T]], str]
    wide_headers: list[str]
    wide_row: Callable[[T], list[object]]


def echo_template(text: str) -> None:
    """A template's text, with a newline at the end unless it ends in one already."""
    click.echo(text, nl=not text.endswith("\n"))


def emit_one(printed: Printed[T], item: T, fmt: selection.Format) -> None:
    """One object (``get NAME``) in ``fmt``."""
    if fmt.kind == "table":
        click.echo(printed.text(item))
    elif fmt.kind == "wide":
        click.echo(output.table(printed.wide_headers, [printed.wide_row(item)]))
    elif fmt.kind == "name":
        click.echo(printed.name(item))
    elif fmt.kind == "jsonpath":
        assert fmt.template is not None
        echo_template(selection.render(fmt.template, printed.data(item)))
    else:
        output.emit_data(printed.data(item), fmt.kind)


def emit_many(printed: Printed[T], items: Sequence[T], fmt: selection.Format, empty: str) -> None:
    """A list (``list``, ``get`` without a name) in ``fmt``; ``empty`` is the table's line for none."""
    if fmt.kind in ("table", "wide") and not items:
        click.echo(empty)
    elif fmt.kind == "table":
        click.echo(printed.table(items))
    elif fmt.kind == "wide":
        click.echo(output.table(printed.wide_headers, [printed.wide_row(i) for i in items]))
    elif fmt.kind == "name":
        for i in items:
            click.echo(printed.name(i))
    elif fmt.kind == "jsonpath":
        assert fmt.template is not None
        data: dict[str, Any] = {"kind": "List", "items": [printed.data(i) for i in items]}
        echo_template(selection.render(fmt.template, data))
    else:
        output.emit_data([printed.data(i) for i in items], fmt.kind)
