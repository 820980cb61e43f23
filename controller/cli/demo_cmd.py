"""``slicectl demo``: generate a city, run a controller and show slicing end to end (controller.demo)."""

from __future__ import annotations

from pathlib import Path

import click

from controller import demo as demo_mod


@click.command()
@click.option("--forever", is_flag=True, help="Keep the controller running after the story, for exploration.")
@click.option(
    "--cells",
    type=click.IntRange(20, 5000),
    default=60,
    show_default=True,
    help="Cells of the generated city.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the city, state and plans; the demo's own files there are replaced.",
    default=Path("edgeslice-demo"),
    show_default=True,
)
def demo(forever: bool, cells: int, workdir: Path) -> None:
    """Generate a city, start the controller, apply IoT, vehicle and Wi-Fi slices, drain a site."""
    demo_mod.run_demo(workdir, cells=cells, forever=forever, echo=click.echo)
