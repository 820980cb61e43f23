"""``slicectl``: the operator's command line. Wiring only: each command group lives in its own
module and calls into the controller, slices and telemetry packages.
"""

from __future__ import annotations

import math
import sys
from typing import Any, NoReturn

import click

from controller.cli import output

EXIT_CODES = """\b
Exit codes:
  0  done
  1  any other error
  2  invalid input: a file, document, field, flag or path (nothing was changed)
  3  a slice was rejected (apply stored every slice, at least one was rejected)
  4  no such slice, site or link
  5  Kubernetes or a site agent failed to realise a slice
  6  the state (store) cannot be read or written
  7  the controller or another server cannot be reached
  8  not authenticated
  9  topology drain: a slice could not move off the site (the site is drained; --force exits 0)
  130  interrupted
Every error is reported as one line on stderr starting with "error: "; --debug adds the traceback.
"""


def _usage_line(exc: click.ClickException) -> NoReturn:
    """A bad flag or argument as one line (click prints usage, a hint and the error on three)."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} -h')" if isinstance(exc, click.UsageError) and ctx else ""
    output.fail(f"{message}{hint}", exc.exit_code)


class _FiniteFloat(click.types.FloatParamType):
    """A float flag that refuses NaN and infinity (one line naming the flag, exit code 2)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        out = super().convert(value, param, ctx)
        if not math.isfinite(out):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return out


class _FiniteFloatRange(click.FloatRange):
    """:class:`click.FloatRange` without NaN: NaN compares false with every bound, so click lets it
    through ``--lease nan`` to fail later with a wrong message."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        out = super().convert(value, param, ctx)
        if not math.isfinite(out):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return out


def _finite_floats(command: click.Command) -> None:
    """Every float option and argument of every command takes finite numbers only."""
    for param in command.params:
        kind = param.type
        if isinstance(kind, click.FloatRange) and not isinstance(kind, _FiniteFloatRange):
            param.type = _FiniteFloatRange(kind.min, kind.max, kind.min_open, kind.max_open, kind.clamp)
        elif type(kind) is click.types.FloatParamType:
            param.type = _FiniteFloat()
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _finite_floats(sub)


def debug_anywhere(args: list[str]) -> list[str]:
    """``--debug`` works after the subcommand too (``slicectl slice get x --debug``): moved to the
    front, where the top-level option is; an argument after ``--`` is left alone.

    >>> debug_anywhere(["slice", "get", "x", "--debug"])
    ['--debug', 'slice', 'get', 'x']
    >>> debug_anywhere(["slice", "get", "--", "--debug"])
    ['slice', 'get', '--', '--debug']
    """
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    rest = [a for a in args[:end] if a != "--debug"]
    return ["--debug", *rest, *args[end:]]


class _Main(click.Group):
    """Turns every :class:`slices.errors.EdgesliceError` into one line on stderr and its exit code;
    click's usage errors (unknown flags, bad values) into one line too, with click's exit code 2."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        if parent is None:
            args = debug_anywhere(args)
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # click prints the help
        except click.ClickException as exc:
            _usage_line(exc)

    def invoke(self, ctx: click.Context) -> object:
        from slices import errors

        try:
            return super().invoke(ctx)
        except errors.EdgesliceError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            output.fail(str(exc), exc.exit_code)
        except click.exceptions.NoArgsIsHelpError:
            raise  # click prints the help
        except click.ClickException as exc:
            _usage_line(exc)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(
    cls=_Main,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog=EXIT_CODES,
)
@click.option("--debug", is_flag=True, envvar="EDGESLICE_DEBUG", help="Show tracebacks for errors.")
@click.version_option(package_name="edgeslice", prog_name="slicectl")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Plan, run and operate edgeslice, the 5G edge network-slicing controller."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    # Imported here, not at the top, so `slicectl --help` stays fast and each group is one module.
    from controller.cli import plan_cmd, topology_cmd

    main.add_command(topology_cmd.topology)
    main.add_command(plan_cmd.plan)
    from controller.cli import controller_cmd

    main.add_command(controller_cmd.controller)
    from controller.cli import demo_cmd

    main.add_command(demo_cmd.demo)
    from controller.cli import manifests_cmd, slice_cmd, topology_ops_cmd

    main.add_command(slice_cmd.slice_group)
    slice_cmd.slice_group.add_command(manifests_cmd.manifests)
    for live in (
        topology_ops_cmd.status,
        topology_ops_cmd.drain,
        topology_ops_cmd.undrain,
        topology_ops_cmd.cordon,
        topology_ops_cmd.uncordon,
    ):
        topology_cmd.topology.add_command(live)
    topology_cmd.topology.add_command(topology_ops_cmd.what_if)
    from controller.cli import agent_cmd

    main.add_command(agent_cmd.agent)
    from controller.cli import observe_cmd

    main.add_command(observe_cmd.top)
    topology_cmd.topology.add_command(observe_cmd.render)
    from controller.cli import state_cmd

    main.add_command(state_cmd.state)
    from controller.cli import config_cmd

    main.add_command(config_cmd.config)
    main.add_command(config_cmd.version)
    main.add_command(config_cmd.completion)
    from controller.cli import booking_cmd

    main.add_command(booking_cmd.booking)
    _site_group()


LIVE_SITE_COMMANDS = ("status", "drain", "undrain", "cordon", "uncordon", "what-if")


def _site_group() -> None:
    """``slicectl site status|drain|undrain|cordon|uncordon|what-if``: the live site operations of a
    running controller, apart from the offline topology-file commands. ``slicectl topology
    drain`` and the others keep working as hidden aliases."""
    import copy

    from controller.cli import topology_cmd

    @click.group()
    def site() -> None:
        """Live sites of a running controller: status, drain, cordon, what-if."""

    for name in LIVE_SITE_COMMANDS:
        command = topology_cmd.topology.commands.get(name)
        if command is None:
            continue
        site.add_command(command, name)
        alias = copy.copy(command)
        alias.hidden = True
        topology_cmd.topology.add_command(alias, name)
    main.add_command(site)


_register()
_finite_floats(main)
