"""``slicectl demo`` tells the whole story on embedded defaults and exits by itself: slices
applied (one rejected, one preempted), agents' config acks, a drain, a killed edge agent whose
missed lease heals the slices, rendered manifests and the controller's own metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import main
from controller.cli.demo import run_demo
from controller.cli.demo_cmd import TelemetryWorld
from controller.core.placement_model import Placement
from controller.runtime.store import Store

ACTIVE = ("city-sensors", "metro-cars", "ambulance-video")


@pytest.mark.timeout(120)  # the demo exits by itself; a hang fails here instead of at the suite's 300 s
def test_demo_story(tmp_path: Path) -> None:
    lines: list[str] = []
    outcome = run_demo(tmp_path, cells=60, echo=lines.append, world=TelemetryWorld())
    text = "\n".join(lines)
    assert outcome.rejected == {"robot-control": "LatencyUnreachable"}
    assert "bound is 0.01 ms" in text
    assert "preempted by slice 'ambulance-video'" in outcome.preempted["stadium-wifi"]
    assert outcome.states["stadium-wifi"] == "Preempted"
    assert outcome.drained and outcome.moved
    assert all(outcome.states[n] == "Ready" for n in ACTIVE)
    # Agents: every site but the core connected, and every transport site acked a config.
    assert outcome.agents == 67
    assert set(outcome.acked) >= {"edge-1", "agg-1"} and all(g > 0 for g in outcome.acked.values())
    assert set(outcome.sla) == set(ACTIVE) and "SLAMet=" in text
    # The killed edge's missed lease was detected and every slice it served was healed.
    assert outcome.killed and outcome.killed != outcome.drained
    assert "LeaseExpired" in outcome.lease_expired
    assert outcome.healed and set(outcome.healed) <= set(ACTIVE)
    assert f"slicectl slice manifests {outcome.manifests[0]}" in text
    assert set(outcome.manifests) == set(ACTIVE)
    assert any(ln.startswith('edgeslice_agents{kind="cell",state="connected"} 60') for ln in outcome.metrics)
    assert any(ln.startswith("edgeslice_healings_total{") for ln in outcome.metrics)
    assert any(ln.startswith('edgeslice_grpc_server_started_total{api="agent"') for ln in outcome.metrics)
    # What the demo printed is what the store holds: nothing placed uses the failed site, the
    # drained site is back in service, and the audit trail has every step.
    store = Store.open(tmp_path / "edgeslice.db")
    try:
        rows = store.load_slices()
        assert store.maintenance() == []
        events = store.events()
    finally:
        store.close()
    for row in rows:
        if row.placement is not None:
            assert not Placement.from_dict(row.placement).uses_site(outcome.killed), row.name
    actions = [e.action for e in events]
    assert {"apply", "admit", "reject", "preempt", "drain", "undrain", "heal", "site-down"} <= set(actions)
    # An SLA violation in the trail is an SLA violation on screen.
    for e in events:
        if e.action == "sla-violation":
            assert e.slice in outcome.sla_violations and f"{e.slice:<16} SLAMet=False ({e.message})" in text
    down = next(e for e in events if e.action == "site-down")
    assert down.site == outcome.killed and down.actor == f"agent:{outcome.killed}"
    assert [e.slice for e in events if e.action == "heal" and e.seq > down.seq] == outcome.healed
    plans = {p.stem for p in (tmp_path / "state" / "realisation").glob("*.yaml")}
    assert plans == set(ACTIVE)


def test_demo_command_exits_by_itself(tmp_path: Path) -> None:
    outputs = []
    for _ in range(2):  # a second run in the same folder starts from scratch and tells the same story
        result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path / "w"), "--cells", "40"])
        assert result.exit_code == 0, result.output
        for step in ("Audit trail", "Draining edge site", "LeaseExpired", "acked", "/metrics:"):
            assert step in result.output, step
        # The decisions (not the timings, ports or acks) are the same both times.
        outputs.append([ln for ln in result.output.splitlines() if ln.startswith("    apply ")])
    assert outputs[0] == outputs[1] and len(outputs[0]) == 5


def test_demo_forever_stops_on_sigterm(tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-c",
        "from controller.cli import main; main()",
        "demo",
        "--forever",
        "--no-agents",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*args, "--workdir", str(tmp_path / "w"), "--cells", "40"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while "Running until" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert log.read_text().rstrip().endswith("stopping")
