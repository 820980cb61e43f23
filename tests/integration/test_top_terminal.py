"""``slicectl top`` in a real terminal (tmux): it finds the metrics URL in the endpoints file,
shows the KPI legend, survives a controller restart (saying so while it retries), and quits with
exit 0 on q. A real controller process, a real pty; every wait is for something on the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controller.cli import top
from tests.support.api_service_rig import slice_yaml
from tests.support.controller_process import SLICECTL, ControllerProcess, start_controller
from tests.support.paths import ROOT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
WAIT_S = 60.0


class Terminal:
    """One tmux server on its own socket, one 200x50 window running a command."""

    def __init__(self, folder: Path, command: str, env: dict[str, str]) -> None:
        self.socket = folder / "tmux.sock"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self._tmux("new-session", "-d", "-x", "200", "-y", "50", f"env {exports} {command}")

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args], check=True, capture_output=True, text=True, timeout=30
        ).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", *keys)

    def wait_for(self, what: str, ok: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            screen = self.screen()
            if ok(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"screen never showed {what}:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], check=False, capture_output=True, timeout=30
        )


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[list[ControllerProcess]]:
    procs = [start_controller(tmp_path, extra=("--no-agents", "--metrics-port", "0"))]
    yield procs
    for p in procs:
        if p.proc.poll() is None:
            p.terminate()


def test_top_finds_metrics_survives_a_restart_and_quits_on_q(
    tmp_path: Path, controller: list[ControllerProcess]
) -> None:
    with controller[0].client() as client:
        zone = "downtown"
        client.apply([("cars.yaml", slice_yaml("cars", cells="[]").replace("sites: []", f"zones: [{zone}]"))])
    exit_file = tmp_path / "top.exit"
    command = " ".join(shlex.quote(a) for a in [*SLICECTL, "top", "--interval", "0.3"])
    env = {
        "EDGESLICE_STATE_DIR": str(tmp_path / "state"),
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
    }
    term = Terminal(tmp_path, f"sh -c {shlex.quote(command + f'; echo $? > {exit_file}; sleep 600')}", env)
    try:
        # No --metrics-url: the KPI columns come from the endpoints file's metrics line.
        first = term.wait_for("the slice with KPI columns", lambda s: "cars" in s and "LAT" in s)
        header = next(line for line in first.splitlines() if line.startswith("NAME"))
        assert header.split()[7:11] == ["LAT", "THR", "LOSS", "DEV"]
        assert all(line in first.splitlines() for line in top.KPI_LEGEND), first
        # The controller stops: top says so and keeps trying.
        assert controller[0].terminate() == 0
        gone = term.wait_for("the retry message", lambda s: "cannot reach the controller" in s)
        assert "retrying every 0.3 s (q quits); last screen at " in gone
        # It comes back (another port: the address and endpoints files moved): top follows.
        controller.append(start_controller(tmp_path, extra=("--no-agents", "--metrics-port", "0")))
        back = term.wait_for(
            "the slice again", lambda s: "cars" in s and "LAT" in s and "cannot reach" not in s
        )
        assert "slices 1:" in back
        assert not exit_file.exists()  # it never died
        term.keys("q")
        deadline = time.monotonic() + WAIT_S
        while not (exit_file.exists() and exit_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert exit_file.read_text().strip() == "0"
        assert "Traceback" not in term.screen()
    finally:
        term.close()
