"""How slicectl prints: readable tables for people, JSON or YAML for scripts, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click
import yaml

FORMATS = ("table", "json", "yaml")
output_option = click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def emit_data(data: Any, fmt: str) -> None:
    """Print structured data as JSON or YAML."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=120).rstrip())


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table.

    >>> print(table(["NAME", "KIND"], [["cars", "vehicle"], ["s", "iot"]]))
    NAME  KIND
    cars  vehicle
    s     iot
    """
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
