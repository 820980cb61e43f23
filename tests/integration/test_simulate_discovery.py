"""``slicectl agent simulate`` finds the controller like every other client: no ``--controller``,
the agent address from the local controller's endpoints file or from the context (a real
controller process, real simulated agents over gRPC)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import main
from controller.process.endpoints import read_endpoints
from tests.support.controller_process import SLICECTL, ControllerProcess, start_controller

SITES = 2


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ControllerProcess]:
    work = tmp_path / "ctl"
    work.mkdir()
    c = start_controller(work, extra=("--cells", "20"))
    try:
        yield c
    finally:
        c.terminate()


def _connected(c: ControllerProcess) -> set[str]:
    with c.client() as client:
        return {a.site for a in client.agents(state="Connected")}


def _simulate_until_connected(c: ControllerProcess, env: dict[str, str], *extra: str) -> str:
    """Run the simulator with no --controller until the controller sees its agents connected."""
    cmd = [*SLICECTL, "agent", "simulate", "--sites", str(SITES), *extra]
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 60
            while len(_connected(c)) < SITES:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the simulated agents never connected"
                time.sleep(0.1)
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=30)
    return out


def test_simulate_finds_the_local_controller(controller: ControllerProcess, tmp_path: Path) -> None:
    state = tmp_path / "ctl" / "state"
    agents = read_endpoints(state)["agents"]
    env = {**os.environ, "EDGESLICE_STATE_DIR": str(state), "EDGESLICE_CONFIG": str(tmp_path / "none.yaml")}
    for name in ("EDGESLICE_SERVER", "EDGESLICE_TOKEN", "EDGESLICE_CONTEXT"):
        env.pop(name, None)
    out = _simulate_until_connected(controller, env)
    assert f"simulating {SITES} sites of " in out and f" against {agents} " in out


def test_simulate_uses_the_contexts_agents_address(controller: ControllerProcess, tmp_path: Path) -> None:
    state = tmp_path / "ctl" / "state"
    agents = read_endpoints(state)["agents"]
    config = tmp_path / "config.yaml"
    env = {**os.environ, "EDGESLICE_STATE_DIR": str(tmp_path / "elsewhere"), "EDGESLICE_CONFIG": str(config)}
    for name in ("EDGESLICE_SERVER", "EDGESLICE_TOKEN", "EDGESLICE_CONTEXT"):
        env.pop(name, None)
    token = tmp_path / "token"
    token.write_text(controller.token)
    made = CliRunner().invoke(
        main,
        ["config", "set-context", "lab", "--address", controller.address, "--token-file", str(token),
         "--agents", agents, "--use"],
        env={"EDGESLICE_CONFIG": str(config)},
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    out = _simulate_until_connected(controller, env)
    assert f" against {agents} " in out


def test_simulate_without_a_controller_to_find(tmp_path: Path) -> None:
    env = {"EDGESLICE_STATE_DIR": str(tmp_path / "state"), "EDGESLICE_CONFIG": str(tmp_path / "none.yaml")}
    result = CliRunner().invoke(main, ["agent", "simulate", "--sites", "1"], env=env)
    assert result.exit_code == 7 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "no controller agent address" in result.stderr
    assert "give --controller HOST:PORT or a context with --agents" in result.stderr


def test_agent_list_and_get_take_the_get_output_formats(
    controller: ControllerProcess, tmp_path: Path
) -> None:
    env = {
        "EDGESLICE_STATE_DIR": str(tmp_path / "ctl" / "state"),
        "EDGESLICE_CONFIG": str(tmp_path / "none.yaml"),
    }

    def out(*args: str) -> str:
        result = CliRunner().invoke(main, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.stdout

    with controller.client() as client:
        sites = [a.site for a in client.agents()]
    assert len(sites) > 20
    assert out("agent", "list", "-o", "name").split() == [f"agent/{s}" for s in sites]
    assert out("agent", "list", "-o", "jsonpath={.items[*].site}").split() == sites
    never = out(
        "agent", "list", "--state", "Never", "-o", "jsonpath={range .items[*]}{.site}={.state}{'\\n'}{end}"
    )
    assert never.splitlines() == [f"{s}=Never" for s in sites]
    wide = out("agent", "list", "-o", "wide").splitlines()
    assert (
        wide[0].split()[-4:] == ["LAST-SEEN", "INSTANCE", "EPOCH", "REJECTIONS"]
        and len(wide) == len(sites) + 1
    )
    assert (
        out("agent", "get", f"agent/{sites[0]}", "-o", "jsonpath={.site} {.lastRefusal}")
        == f"{sites[0]} null\n"
    )
    assert out("agent", "get", sites[0], "-o", "name") == f"agent/{sites[0]}\n"
