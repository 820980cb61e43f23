"""slicectl as a whole: every option has help, ``--debug`` anywhere, shell completion, ``site``
beside ``topology``, ``version`` and named contexts (the last two against real controller
processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from controller.cli import contexts, main
from tests.support.cli_env import clear_client_env
from tests.support.controller_process import ControllerProcess, start_controller


def walk(
    command: click.Command, path: tuple[str, ...] = ("slicectl",)
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, (*path, name))


def test_every_option_and_command_has_help() -> None:
    missing: list[str] = []
    commands = 0
    for path, command in walk(main):
        commands += 1
        if not (command.help or command.short_help):
            missing.append(" ".join(path))
        missing += [
            f"{' '.join(path)} {param.opts[0]}"
            for param in command.params
            if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
        ]
    assert commands > 40  # the walk reached the subcommands
    assert missing == []


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No controller to find, no config file, nothing from the caller's environment."""
    clear_client_env(monkeypatch)
    values = {
        "EDGESLICE_STATE_DIR": str(tmp_path / "state"),
        "EDGESLICE_CONFIG": str(tmp_path / "cfg" / "config.yaml"),
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def cli(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="slicectl")


@pytest.mark.parametrize(
    "args",
    [
        ("--debug", "slice", "get", "x"),
        ("slice", "--debug", "get", "x"),
        ("slice", "get", "x", "--debug"),
        ("slice", "get", "--debug", "x"),
    ],
)
def test_debug_works_anywhere(env: dict[str, str], args: tuple[str, ...]) -> None:
    result = cli(*args, "--server", "127.0.0.1:1", "--timeout", "2")
    assert result.exit_code != 0
    assert "cannot reach the controller at 127.0.0.1:1" in str(result.exception)  # raised, not one line
    plain = cli(*[a for a in args if a != "--debug"], "--server", "127.0.0.1:1", "--timeout", "2")
    assert (
        plain.exit_code == 7
        and plain.stderr.startswith("error: cannot reach")
        and plain.exception is not None
    )
    assert isinstance(plain.exception, SystemExit)


def test_debug_after_double_dash_is_an_argument(env: dict[str, str], tmp_path: Path) -> None:
    result = cli("topology", "validate", "--", "--debug")
    assert result.exit_code == 2 and "--debug" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_clicks_script(env: dict[str, str], shell: str) -> None:
    result = cli("completion", shell)
    assert result.exit_code == 0
    assert "_SLICECTL_COMPLETE" in result.stdout and f"{shell}_complete" in result.stdout


def test_completion_script_completes(env: dict[str, str]) -> None:
    """What the script asks for (click's protocol) answers with slicectl's commands and flags."""
    base = {**os.environ, **env, "_SLICECTL_COMPLETE": "bash_complete"}
    cmd = [sys.executable, "-c", "from controller.cli import main; main(prog_name='slicectl')"]

    def complete(words: str, cword: int) -> list[str]:
        out = subprocess.run(
            cmd,
            env={**base, "COMP_WORDS": words, "COMP_CWORD": str(cword)},
            capture_output=True,
            text=True,
            check=True,
        )
        return [line.split(",", 1)[1] for line in out.stdout.splitlines()]

    assert {"slice", "site", "topology", "config", "version", "completion"} <= set(complete("slicectl ", 1))
    assert complete("slicectl sl", 1) == ["slice"]
    assert "--selector" in complete("slicectl slice list --", 3)
    assert complete("slicectl completion ", 2) == ["bash", "zsh", "fish"]


def test_site_commands_and_the_old_spellings(env: dict[str, str]) -> None:
    site = cli("site", "-h")
    assert site.exit_code == 0
    for name in ("status", "drain", "undrain", "what-if"):
        assert f"  {name} " in site.stdout
    topology = cli("topology", "-h").stdout
    assert "  generate " in topology and "  validate " in topology
    assert "  drain " not in topology and "  status " not in topology  # hidden aliases
    assert cli("topology", "drain", "-h").exit_code == 0  # still there for scripts
    for args in (("site", "drain", "e1"), ("topology", "drain", "e1")):
        result = cli(*args, "--server", "127.0.0.1:1", "--timeout", "2")
        assert result.exit_code == 7 and result.stderr.startswith("error: cannot reach")


def test_version_client_only(env: dict[str, str]) -> None:
    result = cli("version", "--client")
    assert result.exit_code == 0 and result.stdout.startswith("Client Version: ")
    assert yaml.safe_load(cli("version", "--client", "-o", "yaml").stdout)["clientVersion"]


def test_version_without_a_controller(env: dict[str, str]) -> None:
    result = cli("version", "--server", "127.0.0.1:1", "--timeout", "2")
    assert result.exit_code == 7
    assert result.stdout.startswith("Client Version: ")
    assert result.stderr.startswith("error: cannot reach the controller at 127.0.0.1:1")


def test_config_file_problems_are_one_line(env: dict[str, str]) -> None:
    path = Path(env["EDGESLICE_CONFIG"])
    assert cli("config", "get-contexts").stdout.startswith("no contexts in ")
    line = cli("config", "use-context", "lab")
    assert line.exit_code == 4 and "context 'lab' is not in" in line.stderr
    assert cli("config", "current-context").exit_code == 4
    path.parent.mkdir(parents=True)
    for text, says in (
        ("contexts: [a]\n", "contexts: expected a mapping of names"),
        ("contexts: {a: {server: x, colour: red}}\n", "contexts.a.colour: unknown field"),
        (
            "current-context: b\ncontexts: {a: {server: 'h:1'}}\n",
            "current-context 'b' is not one of its contexts",
        ),
        ("[\n", "not valid YAML"),
        ("users: []\n", "users: unknown field"),
    ):
        path.write_text(text)
        result = cli("slice", "list")
        assert result.exit_code == 2 and result.stdout == "", result.output
        assert result.stderr.count("\n") == 1 and says in result.stderr and str(path) in result.stderr
    path.write_text("")
    assert cli("config", "set-context", "bad name", "--address", "h:1").exit_code == 2
    assert "expected HOST:PORT" in cli("config", "set-context", "a", "--agents", "nope").stderr


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[ControllerProcess, ControllerProcess]]:
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    a = start_controller(a_dir, extra=("--cells", "20", "--no-agents"))
    try:
        b = start_controller(b_dir, extra=("--cells", "30", "--seed", "1"))
        try:
            yield a, b
        finally:
            b.terminate()
    finally:
        a.terminate()


def test_contexts_pick_one_of_several_controllers(
    two: tuple[ControllerProcess, ControllerProcess], env: dict[str, str], tmp_path: Path
) -> None:
    a, b = two
    token_file = tmp_path / "b.token"
    token_file.write_text(b.token + "\n")
    assert cli("config", "set-context", "a", "--state-dir", tmp_path / "a" / "state").exit_code == 0
    made = cli("config", "set-context", "b", "--address", b.address, "--token-file", token_file, "--use")
    assert made.exit_code == 0 and "now current" in made.stdout
    listed = cli("config", "get-contexts").stdout.splitlines()
    assert listed[0].split()[:3] == ["CURRENT", "NAME", "SERVER"]
    assert [line.split()[:2] for line in listed[1:]] == [["a", "-"], ["*", "b"]]  # a: no server, b current

    def status_name(*args: str) -> str:
        result = cli("site", "status", "-o", "yaml", *args)
        assert result.exit_code == 0, result.output
        return str(yaml.safe_load(result.stdout)["name"])

    b_name = status_name()  # the current context: b
    a_name = status_name("--context", "a")
    assert a_name != b_name and "20" in a_name and "30" in b_name
    assert cli("config", "current-context").stdout.strip() == "b"
    assert cli("config", "use-context", "a").exit_code == 0
    assert status_name() == a_name
    assert status_name("--server", b.address, "--token", b.token) == b_name  # flags win over the context
    assert status_name("--context", "b") == b_name
    version = cli("version", "--context", "b")
    assert version.exit_code == 0, version.output
    client, server = version.stdout.splitlines()
    assert client.split(": ")[1] == server.split(": ")[1].split(" (")[0] != "unknown"
    assert server.endswith(f"({b.address})")
    via_state_dir = cli("version", "--context", "a")  # its address and dev token from its state folder
    assert via_state_dir.exit_code == 0 and via_state_dir.stdout.rstrip().endswith(f"({a.address})")
    gone = cli("slice", "list", "--context", "c")
    assert (
        gone.exit_code == 4 and "context 'c' is not in" in gone.stderr and "(contexts: a, b)" in gone.stderr
    )
    assert cli("config", "delete-context", "a").exit_code == 0
    assert contexts.Config.load().current is None
