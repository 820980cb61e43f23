"""``slicectl plan`` through click's CliRunner: outputs, what-if flags, and one-line errors; slices
with a schedule and ``--at`` through the real ``slicectl`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from controller.cli import main
from controller.core import citygen
from controller.core import topology_file as tf
from tests.support import cityfixtures as cf
from tests.support.paths import ROOT

EXAMPLES = sorted((ROOT / "slices" / "examples").glob("*.yaml"))

SLICES = """
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: hotspot}
spec:
  kind: wifi
  snssai: {sst: 1, sd: "0000a1"}
  coverage: {sites: [c1]}
  sla: {dlMbpsPerCell: 100, ulMbpsPerCell: 0}
---
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: cars}
spec:
  kind: vehicle
  coverage: {zones: [town]}
---
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: sensors}
spec:
  kind: iot
  coverage: {zones: [nowhere]}
"""


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["plan", *map(str, args)])


def one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    city = tmp_path / "city.yaml"
    # c1 has 150 Mbps of radio: the Wi-Fi hotspot (100) and the cars (75 per cell) cannot share it.
    tf.write_topology_file(cf.two_edge_file(cells=2, radio_mbps=150), city)
    slices = tmp_path / "slices.yaml"
    slices.write_text(SLICES, encoding="utf-8")
    return city, slices


def test_table_output_shows_decisions_reasons_and_utilisation(files: tuple[Path, Path]) -> None:
    city, slices = files
    # The offline batch order (the default before issue 13 made it the controller's order).
    result = run("--topology", city, slices, "--order", "priority")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "note: --order priority is not the controller's order" in out
    assert "cars     vehicle  100   admitted  near   1.5/5" in out
    assert (
        "hotspot: RadioCapacityExceeded: cell c1 has 75 Mbps free, needs 100 Mbps (short by 25 Mbps)" in out
    )
    assert (
        "sensors: UnknownZone: spec.coverage.zones: no cell of topology 'two-edge' has zone 'nowhere'" in out
    )
    assert "1 admitted, 2 rejected, 0 preempted" in out
    assert "Busiest links:" in out and "a1:near" in out
    assert "Radio: 150 of 300 Mbps reserved over 2 of 2 cells" in out


def test_given_order_admits_first_come_and_preempts(files: tuple[Path, Path]) -> None:
    city, slices = files
    result = run("--topology", city, slices, "--order", "given", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rows = {r["slice"]: r for r in doc["slices"]}
    assert rows["hotspot"]["outcome"] == "preempted"
    assert "preempted by slice 'cars'" in rows["hotspot"]["message"]
    assert rows["cars"]["preempts"] == ["hotspot"]
    assert doc["summary"] == {"admitted": 1, "rejected": 1, "preempted": 1}


def test_revenue_order_sets_priority_aside(files: tuple[Path, Path]) -> None:
    city, slices = files
    doc = json.loads(run("--topology", city, slices, "--order", "revenue", "-o", "json").stdout)
    rows = {r["slice"]: r["outcome"] for r in doc["slices"]}
    # Both need c1: the cars sell 150 Mbps (two cells), the hotspot 100, so the cars win.
    assert doc["order"] == "revenue"
    assert rows == {"hotspot": "rejected", "cars": "admitted", "sensors": "rejected"}


def test_json_and_yaml_carry_the_same_plan(files: tuple[Path, Path]) -> None:
    city, slices = files
    as_json = json.loads(run("--topology", city, slices, "-o", "json").stdout)
    as_yaml = yaml.safe_load(run("--topology", city, slices, "-o", "yaml").stdout)
    assert as_json == as_yaml
    cars = next(r for r in as_json["slices"] if r["slice"] == "cars")
    assert cars["edges"] == [{"site": "near", "cells": 2, "cpuMillicores": 4000, "memoryMib": 4096}]
    assert (cars["worstLatencyMs"], cars["latencyBoundMs"], cars["kbpsPerCell"]) == (1.5, 5.0, 75_000)
    assert as_json["utilisation"]["edgeSites"][0]["cpuMillicores"] == 4000


def test_fail_site_and_link_show_what_if(files: tuple[Path, Path]) -> None:
    city, slices = files
    doc = json.loads(run("--topology", city, slices, "--fail-site", "near", "-o", "json").stdout)
    (impact,) = doc["whatIf"]["affected"]
    assert impact["slice"] == "cars" and impact["lostEdges"] == ["near"]
    assert impact["recovered"] is True and impact["edges"] == ["far"]
    result = run("--topology", city, slices, "--fail-link", "near:a1")
    assert result.exit_code == 0
    assert "What if a1:near failed: 1 slices affected, 0 unaffected" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--fail-site", "mars"], 4, "error: --fail-site: site 'mars' is not in topology 'two-edge'"),
        (["--fail-link", "a1:c9"], 4, "error: --fail-link: link a1:c9 is not in topology 'two-edge'"),
        (["--fail-link", "a1"], 2, "error: link 'a1': expected A:B, two site ids joined by a colon"),
    ],
)
def test_bad_failure_flags(files: tuple[Path, Path], args: list[str], code: int, message: str) -> None:
    city, slices = files
    assert one_line_error(run("--topology", city, slices, *args), code) == message


def test_bad_files(files: tuple[Path, Path], tmp_path: Path) -> None:
    city, slices = files
    missing = tmp_path / "nope.yaml"
    assert "nope.yaml: cannot read" in one_line_error(run("--topology", city, missing), 2)
    assert "nope.yaml: cannot read" in one_line_error(run("--topology", missing, slices), 2)
    broken = tmp_path / "broken.yaml"
    broken.write_text("metadata: [unclosed\n", encoding="utf-8")
    assert "broken.yaml: not valid YAML" in one_line_error(run("--topology", city, broken), 2)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(SLICES.replace("kind: vehicle", "kind: tram"), encoding="utf-8")
    assert "spec.kind" in one_line_error(run("--topology", city, wrong), 2)


def test_bad_option_is_a_usage_error(files: tuple[Path, Path]) -> None:
    city, slices = files
    result = run("--topology", city, slices, "--order", "random")
    assert result.exit_code == 2
    assert "Invalid value for '--order'" in result.stderr
    assert run("--topology", city).exit_code == 2  # no slice files


def test_examples_plan_on_a_generated_city(tmp_path: Path) -> None:
    city = tmp_path / "city.yaml"
    tf.write_topology_file(citygen.generate_city(500, seed=0), city)
    result = run("--topology", city, *EXAMPLES, "--fail-site", "edge-1", "-o", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert len(doc["slices"]) == 7
    assert {r["outcome"] for r in doc["slices"]} == {"admitted"}
    assert {r["kind"] for r in doc["slices"]} == {"iot", "vehicle", "wifi"}
    assert doc["whatIf"]["affected"]


# -- slices with a schedule, through the real ``slicectl`` -----------------------------------

SLICECTL = Path(sys.executable).parent / "slicectl"


def hotspot(name: str, sd: str, start: str | None = None, end: str | None = None) -> str:
    """A 100 Mbps Wi-Fi slice on c1 (150 Mbps of radio: two at once do not fit)."""
    doc = (
        f"apiVersion: edgeslice.io/v1alpha1\nkind: NetworkSlice\nmetadata: {{name: {name}}}\nspec:\n"
        f"  kind: wifi\n  snssai: {{sst: 1, sd: '{sd}'}}\n  coverage: {{sites: [c1]}}\n"
        "  sla: {dlMbpsPerCell: 100, ulMbpsPerCell: 0}\n"
    )
    if start is not None:
        doc += f"  schedule: {{start: '{start}'" + (f", end: '{end}'" if end else "") + "}\n"
    return doc


def slicectl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "EDGESLICE_DEBUG"}
    return subprocess.run(
        [str(SLICECTL), "plan", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        check=False,
    )


def plan_json(*args: str | Path) -> Any:
    done = slicectl(*args, "-o", "json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return json.loads(done.stdout)


@pytest.fixture
def weekend(tmp_path: Path) -> tuple[Path, Path]:
    """Saturday and Sunday afternoon bookings on c1, one on Saturday evening that overlaps
    Saturday's (16:00+02:00 is 14:00 UTC), and an IoT slice without a schedule."""
    city = tmp_path / "city.yaml"
    tf.write_topology_file(cf.two_edge_file(cells=2, radio_mbps=150), city)
    slices = tmp_path / "weekend.yaml"
    docs = [
        hotspot("sat", "0000b1", "2030-07-06T14:00:00Z", "2030-07-06T18:00:00Z"),
        hotspot("sun", "0000b2", "2030-07-07T14:00:00Z", "2030-07-07T18:00:00Z"),
        hotspot("eve", "0000b3", "2030-07-06T16:00:00+02:00", "2030-07-06T20:00:00Z"),
        "apiVersion: edgeslice.io/v1alpha1\nkind: NetworkSlice\nmetadata: {name: meters}\n"
        "spec:\n  kind: iot\n  coverage: {sites: [c2]}\n",
    ]
    slices.write_text("---\n".join(docs), encoding="utf-8")
    return city, slices


def test_schedules_are_decided_over_their_windows(weekend: tuple[Path, Path]) -> None:
    city, slices = weekend
    doc = plan_json("--topology", city, slices)
    rows = {r["slice"]: r for r in doc["slices"]}
    assert {n: r["outcome"] for n, r in rows.items()} == {
        "sat": "admitted",
        "sun": "admitted",  # another day: Saturday's booking does not count
        "eve": "rejected",  # the same afternoon: 100 + 100 > 150
        "meters": "admitted",
    }
    assert rows["sat"]["window"] == {"start": "2030-07-06T14:00:00Z", "end": "2030-07-06T18:00:00Z"}
    assert rows["eve"]["window"] == {"start": "2030-07-06T14:00:00Z", "end": "2030-07-06T20:00:00Z"}
    assert rows["meters"]["window"] is None
    assert "active" not in rows["sat"] and "at" not in doc
    assert rows["eve"]["message"] == (
        "cell c1 has 50 Mbps free, needs 100 Mbps (short by 50 Mbps), at 2030-07-06 14:00 UTC "
        "(bookings then hold the most of it; window 2030-07-06 14:00 UTC to 2030-07-06 20:00 UTC)"
    )
    # Without --at: the most held at once over every window (one booking on c1 at a time).
    cells = {c["cell"]: c["reservedMbps"] for c in doc["utilisation"]["radio"]["busiestCells"]}
    assert cells["c1"] == 100
    assert any("decided as bookings" in note for note in doc["caveats"])


def test_at_shows_the_plan_at_that_instant(weekend: tuple[Path, Path]) -> None:
    city, slices = weekend
    doc = plan_json("--topology", city, slices, "--at", "2030-07-07T17:30:00+02:00")
    assert doc["at"] == {"time": "2030-07-07T15:30:00Z", "holding": ["sun", "meters"], "notActive": ["sat"]}
    assert {r["slice"]: r["active"] for r in doc["slices"]} == {
        "sat": False,
        "sun": True,
        "eve": False,
        "meters": True,
    }
    radio = doc["utilisation"]["radio"]
    assert radio["cellsWithReservations"] == 2  # c1 (Sunday's hotspot) and c2 (the meters)
    # Before the weekend only the slice without a schedule holds anything.
    before = plan_json("--topology", city, slices, "--at", "2030-07-01T00:00:00Z")
    assert before["at"]["holding"] == ["meters"]
    assert [c["cell"] for c in before["utilisation"]["radio"]["busiestCells"]] == ["c2"]


def test_at_in_the_table(weekend: tuple[Path, Path]) -> None:
    city, slices = weekend
    done = slicectl("--topology", city, slices, "--at", "2030-07-06T15:00:00Z")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "At 2030-07-06T15:00:00Z: 2 slices hold capacity (sat, meters)" in out
    assert "not active then: sun (window 2030-07-07 14:00 UTC to 2030-07-07 18:00 UTC)" in out
    assert "Utilisation at 2030-07-06T15:00:00Z:" in out
    assert "Busiest cell: c1 100/150 Mbps (66.7%)" in out


def test_at_relative_to_now(tmp_path: Path) -> None:
    city = tmp_path / "city.yaml"
    tf.write_topology_file(cf.two_edge_file(cells=2, radio_mbps=150), city)
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = now + timedelta(hours=1), now + timedelta(hours=5)
    slices = tmp_path / "soon.yaml"
    slices.write_text(hotspot("soon", "0000c1", start.isoformat(), end.isoformat()), encoding="utf-8")
    assert plan_json("--topology", city, slices, "--at", "now")["at"]["notActive"] == ["soon"]
    assert plan_json("--topology", city, slices, "--at", "+2h")["at"]["holding"] == ["soon"]
    assert plan_json("--topology", city, slices, "--at", "+1d")["at"]["notActive"] == ["soon"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--at", "2030-07-06T15:00:00"],
            "error: Invalid value for '--at': '2030-07-06T15:00:00': give a time zone "
            "(e.g. 2026-07-04T18:00:00Z, or now, +2h, +3d) (see 'slicectl plan -h')",
        ),
        (
            ["--at", "saturday"],
            "error: Invalid value for '--at': 'saturday': not an RFC 3339 time "
            "(e.g. 2026-07-04T18:00:00Z, or now, +2h, +3d) (see 'slicectl plan -h')",
        ),
        (
            ["--at", "+2weeks"],
            "error: Invalid value for '--at': '+2weeks': not a duration (e.g. 30s, 10m, 2h, 1d, 1h30m) "
            "(see 'slicectl plan -h')",
        ),
        (
            ["--order", "priority"],
            "error: --order priority: slice 'sat' has spec.schedule, and windows are planned in the "
            "controller's order only (use --order controller)",
        ),
    ],
)
def test_bad_at_and_batch_orders_with_schedules(
    weekend: tuple[Path, Path], args: list[str], message: str
) -> None:
    city, slices = weekend
    done = slicectl("--topology", city, slices, *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [message]


def test_what_if_at_a_time_sees_the_bookings_active_then(weekend: tuple[Path, Path]) -> None:
    city, slices = weekend
    during = json.loads(
        run(
            "--topology", city, slices, "--at", "2030-07-06T15:00:00Z", "--fail-site", "near", "-o", "json"
        ).stdout
    )
    assert [i["slice"] for i in during["whatIf"]["affected"]] == ["sat"]
    # Without --at only the slices without a schedule are in the what-if (the meters use far).
    timeless = json.loads(run("--topology", city, slices, "--fail-site", "near", "-o", "json").stdout)
    assert timeless["whatIf"]["affected"] == []


def test_at_with_a_batch_order_and_no_schedule(files: tuple[Path, Path]) -> None:
    city, slices = files
    doc = json.loads(
        run("--topology", city, slices, "--order", "priority", "--at", "now", "-o", "json").stdout
    )
    assert {r["slice"]: (r["outcome"], r["active"], r["window"]) for r in doc["slices"]} == {
        "hotspot": ("rejected", False, None),
        "cars": ("admitted", True, None),
        "sensors": ("rejected", False, None),
    }
    assert doc["at"]["holding"] == ["cars"] and doc["at"]["notActive"] == []
