"""The booking API of a real ``slicectl controller run`` process: a client registered with
``slicectl booking client add`` while it runs, bookings over HTTP, a crash (SIGKILL) and a
restart that keeps the future booking, honours the old token (the signing key is in the state)
and activates and expires the short one on time."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from controller.process.endpoints import read_endpoints
from tests.support.booking_rig import slice_attributes
from tests.support.controller_process import SLICECTL, ControllerProcess, start_controller
from tests.support.waiting import eventually

API = "/network-slice-booking/vwip/slices"
BOOKING = ("--booking-listen", "127.0.0.1:0")


def _slicectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SLICECTL, *args], check=False, capture_output=True, text=True, timeout=60)


def _body(start: datetime, end: datetime) -> dict[str, Any]:
    # The generated sample city's centre (citygen): a few cells around it.
    return slice_attributes(
        start, end, center=(48.8566, 2.3522), devices=4, mbps=(2, 1), budgets_ms=(40, None)
    )


def _state(proc: ControllerProcess, slice_id: str) -> str:
    with proc.client() as client:
        for s in client.list_slices():
            if s.name.endswith(slice_id.replace("-", "")[:12]):
                return str(s.state)
    return "missing"


def test_bookings_survive_a_crash_and_start_and_end_on_time(tmp_path: Path) -> None:
    proc = start_controller(tmp_path, extra=BOOKING)
    try:
        base = read_endpoints(tmp_path / "state")["booking"]
        added = _slicectl(
            "booking", "client", "add", "transport", "--scopes", "create,get,delete",
            "--state", str(tmp_path / "edgeslice.db"), "-o", "json",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        client = json.loads(added.stdout)
        token = httpx.post(
            f"{base}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
            timeout=10,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        now = datetime.now(UTC)
        later = httpx.post(
            f"{base}{API}",
            json=_body(now + timedelta(days=2), now + timedelta(days=2, hours=3)),
            headers=headers,
            timeout=10,
        )
        soon = httpx.post(
            f"{base}{API}",
            json=_body(now + timedelta(seconds=12), now + timedelta(seconds=16)),
            headers=headers,
            timeout=10,
        )
        assert (later.status_code, soon.status_code) == (201, 201), (later.text, soon.text)
        later_id, soon_id = later.json()["sliceId"], soon.json()["sliceId"]
        assert _state(proc, later_id) == _state(proc, soon_id) == "Scheduled"
    finally:
        proc.kill()  # a crash: nothing flushed, nothing cleaned up

    proc = start_controller(tmp_path, extra=BOOKING)
    try:
        base = read_endpoints(tmp_path / "state")["booking"]  # a new port
        got = httpx.get(f"{base}{API}/{later_id}", headers=headers, timeout=10)
        assert got.status_code == 200, got.text  # the old token: same signing key, same issuer
        assert got.json()["serviceTime"] == later.json()["serviceTime"]
        assert _state(proc, later_id) == "Scheduled"
        eventually(
            "the short booking activates",
            lambda: _state(proc, soon_id) in ("Ready", "Admitted"),
            timeout_s=30,
        )
        eventually("the short booking expires", lambda: _state(proc, soon_id) == "Expired", timeout_s=30)
        assert _state(proc, later_id) == "Scheduled"
        assert httpx.delete(f"{base}{API}/{later_id}", headers=headers, timeout=10).status_code == 204
        assert _state(proc, later_id) == "missing"
    finally:
        assert proc.terminate() == 0
