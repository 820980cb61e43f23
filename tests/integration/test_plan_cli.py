"""``slicectl plan`` through click's CliRunner: outputs, what-if flags, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

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
