"""``slicectl config`` (named contexts, see :mod:`controller.cli.contexts`), ``slicectl version``
(client and server) and ``slicectl completion bash|zsh|fish`` (click's shell completion)."""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import get_completion_class

from controller.cli import contexts, output
from controller.cli.connect import Connection, connection_options
from slices import addresses, errors

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_SLICECTL_COMPLETE"


@click.group()
def config() -> None:
    """Named contexts for several controllers, kept in a small file like kubeconfig
    ($EDGESLICE_CONFIG, else ~/.config/edgeslice/config.yaml)."""


def _name(name: str) -> str:
    if not name or any(c.isspace() for c in name) or len(name) > 100:
        raise errors.InvalidSpec(f"NAME {name!r}: a context name is 1 to 100 characters without spaces")
    return name


@config.command("set-context")
@click.argument("name")
@click.option(
    "--address", "--server", "server", metavar="HOST:PORT", help="The controller's operator API address."
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the bearer token (read when a command runs).",
)
@click.option(
    "--ca",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CA certificate (PEM) of the server; turns on TLS.",
)
@click.option("--agents", metavar="HOST:PORT", help="The controller's agent address (for agent simulate).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="A local controller's state folder: its address, endpoints and dev token are read from there.",
)
@click.option("--use", "use_it", is_flag=True, help="Also make it the current context.")
def set_context(
    name: str,
    server: str | None,
    token_file: Path | None,
    ca: Path | None,
    agents: str | None,
    state_dir: Path | None,
    use_it: bool,
) -> None:
    """Create context NAME, or change the fields given of an existing one."""

    for flag, address in (("--address", server), ("--agents", agents)):
        if address is not None:
            try:
                addresses.split_address(address)
            except errors.InvalidSpec as exc:
                raise errors.InvalidSpec(f"{flag} {address!r}: {exc}") from exc
    cfg = contexts.Config.load()
    existed = _name(name) in cfg.contexts
    old = cfg.contexts.get(name, contexts.Context(name))
    absolute = {
        k: (v.absolute() if v is not None else None)
        for k, v in (("t", token_file), ("c", ca), ("s", state_dir))
    }
    new = contexts.Context(
        name,
        server=server if server is not None else old.server,
        token_file=absolute["t"] or old.token_file,
        ca=absolute["c"] or old.ca,
        agents=agents if agents is not None else old.agents,
        state_dir=absolute["s"] or old.state_dir,
    )
    cfg.contexts[name] = new
    if use_it:
        cfg.current = name
    cfg.save()
    click.echo(
        f"context {name!r} {'modified' if existed else 'created'} in {cfg.path}"
        + ("; now current" if use_it else "")
    )


@config.command("use-context")
@click.argument("name")
def use_context(name: str) -> None:
    """Make NAME the context commands use without --context."""
    cfg = contexts.Config.load()
    cfg.get(name)
    cfg.current = name
    cfg.save()
    click.echo(f"switched to context {name!r}")


@config.command("get-contexts")
@output.output_option
def get_contexts(fmt: str) -> None:
    """Every context; the current one is marked with *."""
    cfg = contexts.Config.load()
    if fmt != "table":
        output.emit_data(
            {
                "currentContext": cfg.current,
                "contexts": {n: c.data() for n, c in sorted(cfg.contexts.items())},
            },
            fmt,
        )
        return
    if not cfg.contexts:
        click.echo(
            f"no contexts in {cfg.path} (add one with slicectl config set-context NAME --address HOST:PORT)"
        )
        return
    rows = [
        [
            "*" if n == cfg.current else "",
            n,
            c.server or "-",
            c.token_file or "-",
            c.ca or "-",
            c.agents or "-",
            c.state_dir or "-",
        ]
        for n, c in sorted(cfg.contexts.items())
    ]
    click.echo(output.table(["CURRENT", "NAME", "SERVER", "TOKEN-FILE", "CA", "AGENTS", "STATE-DIR"], rows))


@config.command("current-context")
def current_context() -> None:
    """The current context's name (exit 4 when none is set)."""
    cfg = contexts.Config.load()
    if cfg.current is None:
        raise errors.NotFound(f"no current context in {cfg.path} (slicectl config use-context NAME)")
    click.echo(cfg.current)


@config.command("delete-context")
@click.argument("name")
def delete_context(name: str) -> None:
    """Remove context NAME (and unset it if it was current)."""
    cfg = contexts.Config.load()
    cfg.get(name)
    del cfg.contexts[name]
    if cfg.current == name:
        cfg.current = None
    cfg.save()
    click.echo(f"context {name!r} deleted")


def client_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("edgeslice")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a bare tree
        return "unknown"


@click.command()
@click.option(
    "--client", "client_only", is_flag=True, help="Only the client's version (no controller needed)."
)
@output.output_option
@connection_options
def version(client_only: bool, fmt: str, conn: Connection) -> None:
    """The client's version and the controller's (exit 7 after the client's when the controller
    cannot be reached)."""
    mine = client_version()
    if client_only:
        if fmt == "table":
            click.echo(f"Client Version: {mine}")
        else:
            output.emit_data({"clientVersion": mine}, fmt)
        return
    if fmt == "table":
        click.echo(f"Client Version: {mine}")
    with conn.client() as client:
        theirs = client.server_version() or "unknown (the controller does not say)"
        address = client.address
    if fmt == "table":
        click.echo(f"Server Version: {theirs} ({address})")
    else:
        output.emit_data({"clientVersion": mine, "serverVersion": theirs, "server": address}, fmt)


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash:  source <(slicectl completion bash)      (or save it in /etc/bash_completion.d/)
    zsh:   source <(slicectl completion zsh)
    fish:  slicectl completion fish > ~/.config/fish/completions/slicectl.fish
    """
    cls = get_completion_class(shell)
    assert cls is not None  # every name in SHELLS is one of click's
    script = cls(ctx.find_root().command, {}, "slicectl", COMPLETE_VAR).source()
    click.echo(script)
