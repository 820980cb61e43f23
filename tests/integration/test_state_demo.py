"""The demo's fresh start never deletes the state of a demo still running in the same folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.cli import demo
from controller.process import wiring as runtime
from slices import errors
from tests.support.runtime_helpers import loopback_config


def test_a_fresh_start_is_refused_while_a_demo_controller_holds_the_folder(tmp_path: Path) -> None:
    config = loopback_config(tmp_path, sample_cells=20)
    running = runtime.Controller(config)
    running.start()
    try:
        with pytest.raises(errors.StoreError, match="another demo runs there") as info:
            demo.fresh_start(tmp_path)
        assert f"(PID {os.getpid()}" in str(info.value)
        assert (tmp_path / "edgeslice.db").exists()
    finally:
        running.stop()
    demo.fresh_start(tmp_path)  # once it stopped, the folder is the next demo's
    assert not (tmp_path / "edgeslice.db").exists()
