"""``slicectl demo`` tells the whole story on embedded defaults and exits by itself."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from controller.cli import main
from controller.demo import run_demo
from controller.placement_model import Placement
from controller.store import Store


def test_demo_story(tmp_path: Path) -> None:
    lines: list[str] = []
    outcome = run_demo(tmp_path, cells=60, echo=lines.append)
    text = "\n".join(lines)
    assert outcome.rejected == {"robot-control": "LatencyUnreachable"}
    assert "bound is 0.01 ms" in text
    assert "preempted by slice 'ambulance-video'" in outcome.preempted["stadium-wifi"]
    assert outcome.states["stadium-wifi"] == "Preempted"
    assert outcome.drained and outcome.moved
    assert all(outcome.states[n] == "Ready" for n in ("city-sensors", "metro-cars", "ambulance-video"))
    # What the demo printed is what the store holds: nothing placed uses the drained site.
    store = Store.open(tmp_path / "edgeslice.db")
    try:
        rows = store.load_slices()
        assert [m.name for m in store.maintenance()] == [outcome.drained]
        actions = [e.action for e in store.events()]
    finally:
        store.close()
    for row in rows:
        if row.placement is not None:
            assert not Placement.from_dict(row.placement).uses_site(outcome.drained), row.name
    assert {"apply", "admit", "reject", "preempt", "drain", "heal"} <= set(actions)
    plans = {p.stem for p in (tmp_path / "state" / "realisation").glob("*.yaml")}
    assert plans == {"city-sensors", "metro-cars", "ambulance-video"}


def test_demo_command_exits_by_itself(tmp_path: Path) -> None:
    outputs = []
    for _ in range(2):  # a second run in the same folder starts from scratch and tells the same story
        result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path / "w"), "--cells", "40"])
        assert result.exit_code == 0, result.output
        assert "Audit trail" in result.output and "Draining edge site" in result.output
        outputs.append([ln for ln in result.output.splitlines() if "serving on" not in ln and "#" not in ln])
    assert outputs[0] == outputs[1]
