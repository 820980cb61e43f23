"""``slicectl slice manifests NAME``: print the Kubernetes manifests rendered for a slice."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("manifests")
@click.argument("name")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The controller's state folder (default: $EDGESLICE_STATE_DIR or ~/.local/state/edgeslice).",
)
def manifests(name: str, state_dir: Path | None) -> None:
    """Print the manifests the controller rendered for slice NAME (what --kube would apply)."""
    import os

    from controller.api import auth
    from controller.kube import manifest_folder

    folder = (state_dir if state_dir is not None else auth.default_state_dir(dict(os.environ))) / "manifests"
    click.echo(manifest_folder.read_manifests(folder, name).rstrip())
