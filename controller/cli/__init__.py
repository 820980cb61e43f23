"""``slicectl``: the operator's command line. Wiring only: each command group lives in its own
module and calls into the controller, slices and telemetry packages.
"""

from __future__ import annotations

import sys

import click

from controller.cli import output


class _Main(click.Group):
    """Turns every :class:`slices.errors.EdgesliceError` into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> object:
        from slices import errors

        try:
            return super().invoke(ctx)
        except errors.EdgesliceError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            output.fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
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
    for live in (topology_ops_cmd.status, topology_ops_cmd.drain, topology_ops_cmd.undrain):
        topology_cmd.topology.add_command(live)
    topology_cmd.topology.add_command(topology_ops_cmd.what_if)
    from controller.cli import agent_cmd

    main.add_command(agent_cmd.agent)
    from controller.cli import observe_cmd

    main.add_command(observe_cmd.top)
    topology_cmd.topology.add_command(observe_cmd.render)


_register()
