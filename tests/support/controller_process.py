"""Start and stop a real ``slicectl controller run`` process for integration tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from controller.api.client import ApiClient
from slices import errors

SLICECTL = [sys.executable, "-c", "from controller.cli import main; main()"]


@dataclass
class ControllerProcess:
    proc: subprocess.Popen[bytes]
    address: str
    token: str
    log: Path

    def client(self, timeout_s: float = 30.0) -> ApiClient:
        return ApiClient(self.address, self.token, timeout_s=timeout_s)

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash or an OOM kill."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout_s: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)


def start_controller(
    workdir: Path, topology: Path | None = None, extra: tuple[str, ...] = (), timeout_s: float = 60.0
) -> ControllerProcess:
    """Run the controller in ``workdir`` (state file and state folder inside it) on a free port."""
    state_dir = workdir / "state"
    address_file = state_dir / "controller.addr"
    address_file.unlink(missing_ok=True)
    args = [
        *SLICECTL,
        "controller",
        "run",
        "--state",
        str(workdir / "edgeslice.db"),
        "--state-dir",
        str(state_dir),
        "--listen",
        "127.0.0.1:0",
        "--reconcile-interval",
        "0.5",
        *(["--topology", str(topology)] if topology else []),
        *extra,
    ]
    log = workdir / "controller.log"
    env = {**os.environ, "EDGESLICE_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"controller exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if address_file.exists():
            address = address_file.read_text().strip()
            if address:
                token = (state_dir / "token").read_text().strip()
                return ControllerProcess(proc, address, token, log)
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise errors.Unavailable(f"controller did not start within {timeout_s} s:\n{log.read_text()[-3000:]}")


def start_agent(site: str, target: str, record_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """The reference agent (``slicectl agent run --insecure``) of ``site``, recording the config it
    acks in ``record_dir``, its output in ``log``."""
    args = [*SLICECTL, "agent", "run", "--site", site, "--controller", target, "--insecure"]
    with open(log, "wb") as out:
        return subprocess.Popen(
            [*args, "--record-dir", str(record_dir)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
