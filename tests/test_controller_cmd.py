"""``slicectl controller run``: bad flags get one clear line and the right exit code; with
``--metrics-port`` the controller serves Prometheus metrics fed by the service."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from controller.cli import main
from tests.controller_process import start_controller
from tests.runtime_helpers import doc


def test_bad_flags_fail_with_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    state = ["--state-dir", str(tmp_path / "sd"), "--listen", "127.0.0.1:0"]
    r = runner.invoke(main, ["controller", "run", "--topology", str(tmp_path / "none.yaml"), *state])
    assert r.exit_code == 2 and "none.yaml: cannot read" in r.output
    r = runner.invoke(main, ["controller", "run", "--state", str(tmp_path / "no" / "x.db"), *state])
    assert r.exit_code == 6 and "does not exist" in r.output
    r = runner.invoke(
        main,
        [
            "controller",
            "run",
            "--state",
            str(tmp_path / "x.db"),
            "--state-dir",
            str(tmp_path / "sd"),
            "--listen",
            "0.0.0.0:0",
        ],
    )
    assert r.exit_code == 2 and "only loopback" in r.output
    assert "Traceback" not in r.output


def test_metrics_port_serves_decisions(tmp_path: Path) -> None:
    proc = start_controller(tmp_path, extra=("--metrics-port", "0"))
    try:
        with proc.client() as client:
            client.apply([("s.yaml", doc("sensors", "iot", ["cell-01"]).model_dump_json(by_alias=True))])
        deadline = time.monotonic() + 20
        url = ""
        while not url and time.monotonic() < deadline:
            url = next(
                (ln.split()[-1] for ln in proc.log.read_text().splitlines() if ln.startswith("metrics on ")),
                "",
            )
            time.sleep(0.05)
        body = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "edgeslice_admission_decisions_total{" in body
    finally:
        proc.terminate()
