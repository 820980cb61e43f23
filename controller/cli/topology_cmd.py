"""``slicectl topology``: generate, validate, show, import and export city topologies."""

from __future__ import annotations

import click


@click.group()
def topology() -> None:
    """Work with city topology files."""
