"""``slicectl state check|backup|restore``: the controller's SQLite state file (wiring only; see
controller.runtime.store)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from controller.api import auth
from controller.cli import output
from controller.process import config
from controller.runtime import store
from slices import errors

_F = TypeVar("_F", bound=Callable[..., Any])


@click.group("state")
def state() -> None:
    """Check, back up and restore the controller's state file."""


def state_options(command: _F) -> _F:
    """Add --state and --state-dir, passed as ``state_file`` and ``state_dir`` (None when not
    given): the one definition of these options, for ``controller run`` and the state commands."""
    command = click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="The controller's state folder: state file, dev token, address and endpoints files, "
        f"manifests, plans (default: ${auth.STATE_DIR_ENV} or ~/.local/state/edgeslice).",
    )(command)
    return click.option(
        "--state",
        "state_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"SQLite state file (default: <state-dir>/{config.DEFAULT_STATE_FILE}).",
    )(command)


def _state_file_options(command: _F) -> _F:
    """:func:`state_options`, passing only the state file (``<state-dir>/edgeslice.db`` when
    --state is not given) as ``state_file``."""

    @state_options
    @functools.wraps(command)
    def wrapper(*args: Any, state_file: Path | None, state_dir: Path | None, **kwargs: Any) -> Any:
        if state_file is None:
            folder = state_dir if state_dir is not None else auth.default_state_dir(dict(os.environ))
            state_file = folder / config.DEFAULT_STATE_FILE
        return command(*args, state_file=state_file, **kwargs)

    return wrapper  # type: ignore[return-value]


def _summary(report: store.CheckReport) -> str:
    return f"schema {report.schema_version}, {report.slices} slices, {report.events} events"


@state.command()
@_state_file_options
def check(state_file: Path) -> None:
    """Check the state file: SQLite integrity_check and every stored slice as the controller reads
    it (document, placement, conditions). Only reads: safe while the controller runs. Exit code 0
    when sound, 6 otherwise (one line per problem)."""
    report = store.check_state(state_file)
    if not report.ok:
        for problem in report.problems[:-1]:
            click.echo(f"error: {problem}", err=True)
        output.fail(report.problems[-1], errors.StoreError.exit_code)
    click.echo(f"state file {state_file}: ok ({_summary(report)})")


@state.command()
@click.argument("backup_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@_state_file_options
def backup(backup_file: Path, force: bool, state_file: Path) -> None:
    """Copy the state file to FILE with SQLite's online backup API (one consistent snapshot, safe
    while the controller runs), then check the copy; FILE appears only once it is complete."""
    report = store.backup_state(state_file, backup_file, overwrite=force)
    click.echo(f"backed up {state_file} to {backup_file} ({_summary(report)})")


@state.command()
@click.argument("backup_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@_state_file_options
def restore(backup_file: Path, state_file: Path) -> None:
    """Replace the state file with the backup FILE, after checking FILE as `state check` does.
    Refused while a controller uses the state (stop it first); the replaced state is kept as
    <state file>.pre-restore."""
    report, kept = store.restore_state(backup_file, state_file)
    where = f"; the replaced state is kept as {kept}" if kept is not None else ""
    click.echo(f"restored {state_file} from {backup_file} ({_summary(report)}){where}")
