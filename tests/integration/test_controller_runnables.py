"""The controller process as runnables: what runs, in which order, and that a stop (or a start
that fails half way) leaves nothing running and the state free for the next controller."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from controller.process.config import RuntimeConfig
from controller.process.endpoints import read_endpoints
from controller.process.wiring import Controller
from slices import errors


def _config(tmp_path: Path, **kw: Any) -> RuntimeConfig:
    return RuntimeConfig(
        state_file=tmp_path / "edgeslice.db",
        state_dir=tmp_path / "state",
        listen="127.0.0.1:0",
        reconcile_interval_s=60,
        environ={},
        **kw,
    )


def test_one_start_order_and_the_reverse_stop(tmp_path: Path) -> None:
    controller = Controller(_config(tmp_path, health_listen="127.0.0.1:0"))
    controller.start()
    try:
        assert [r.name for r in controller._manager.running()] == [
            "state-locks",
            "ports",
            "health",
            "topology",
            "service",
            "gc-freeze",
            "reconcile",
            "operator-api",
            "endpoints",
            "ready",
        ]
        assert controller.role == "leader" and controller.leading.is_set()
        assert read_endpoints(tmp_path / "state") == controller.endpoints
        assert set(controller.endpoints) == {"operator", "health"}
    finally:
        controller.stop()
    assert controller._manager.running() == []
    again = Controller(_config(tmp_path))  # the state's locks were released
    again.start()
    again.stop()


def test_a_start_that_fails_half_way_leaves_nothing_running(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        controller = Controller(_config(tmp_path, health_listen=f"127.0.0.1:{port}"))
        with pytest.raises(
            errors.Unavailable, match=f"--health-listen 127.0.0.1:{port}: address already in use"
        ):
            controller.start()
    assert controller._manager.running() == []
    again = Controller(_config(tmp_path))
    again.start()
    again.stop()
