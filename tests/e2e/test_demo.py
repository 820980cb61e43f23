"""``slicectl demo`` tells the whole story on embedded defaults and exits by itself: slices
applied (one rejected, one preempted), agents' config acks, a drain, a killed edge agent whose
missed lease heals the slices, a slice booked through the CAMARA REST API for a short window
(scheduled, active, expired, its sink notified), rendered manifests and the controller's own
metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.booking.camara import STATUS_CHANGED
from controller.cli import main
from controller.cli.demo import DemoOutcome, run_demo
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
    _check_booking(outcome, text, store_path=tmp_path / "edgeslice.db")


def _check_booking(outcome: DemoOutcome, text: str, store_path: Path) -> None:
    """The booking step: booked over HTTP, seen Scheduled, then live, then Expired, deleted; the
    tenant is the actor of what it did; the sink received each change, delivered, in order."""
    booked = outcome.booking
    assert booked is not None and (booked.created, booked.deleted) == (201, 204), text
    assert booked.slice == f"bk-events-office-{booked.slice_id.replace('-', '')[:12]}"
    assert f"-> 201 Created, sliceId {booked.slice_id} (x-correlator demo-booking-1)" in text
    # Each change once, in order: booked for later, realised in its window, released at its end.
    assert booked.states[0] == "Scheduled" and booked.states[-1] == "Expired", booked.states
    assert booked.states[1:-1] in (["Ready"], ["Admitted", "Ready"]), booked.states
    for state in booked.states:
        assert f"  {state:<10}" in text, state
    assert booked.actors["apply"] == booked.actors["delete"] == "tenant:events-office"
    assert (booked.actors["activate"], booked.actors["expire"]) == ("controller", "controller")
    statuses = ["created", "scheduled", "active", "expired", "deleted"]
    assert booked.delivered == statuses
    assert booked.received == [(STATUS_CHANGED, s) for s in statuses]
    assert f"{STATUS_CHANGED}  expired      delivered after 1 attempt, bearer token" in text
    # The store agrees: the tenant's slice is gone, its booking deleted, the trail names the tenant.
    store = Store.open(store_path)
    try:
        assert booked.slice not in {r.name for r in store.load_slices()}
        [row] = store.query("SELECT tenant, deleted_at FROM bookings WHERE slice_id = ?", [booked.slice_id])
        trail = [(e.actor, e.action) for e in store.events() if e.slice == booked.slice]
    finally:
        store.close()
    assert row["tenant"] == "events-office" and row["deleted_at"] is not None
    assert trail[0] == ("tenant:events-office", "apply") and trail[-1] == ("tenant:events-office", "delete")
    assert [a for _, a in trail if a in ("book", "activate", "expire")] == ["book", "activate", "expire"]


def test_demo_command_exits_by_itself(tmp_path: Path) -> None:
    outputs = []
    for _ in range(2):  # a second run in the same folder starts from scratch and tells the same story
        result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path / "w"), "--cells", "40"])
        assert result.exit_code == 0, result.output
        for step in ("Audit trail", "Draining edge site", "LeaseExpired", "acked", "/metrics:"):
            assert step in result.output, step
        # The booking over REST: 201, Scheduled then Expired, and the sink heard the deletion.
        booking = result.output.split("CAMARA Network Slice Booking API", 1)[-1].split("Audit trail (")[0]
        for step in ("-> 201 Created, sliceId", "Scheduled", "Expired", "-> 204", "deleted      delivered"):
            assert step in booking, step
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
