"""``slicectl plan``: offline admission and placement of slices on a topology file."""

from __future__ import annotations

import click


@click.command()
def plan() -> None:
    """Decide admission and placement for slice files, offline."""
