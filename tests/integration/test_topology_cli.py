"""``slicectl topology ...`` through click's CliRunner: every subcommand, good and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from controller.cli import main
from controller.core import citygen, graphml
from controller.core import topology_file as tf
from tests.support.paths import DATA

ABILENE = DATA / "abilene.graphml"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["topology", *map(str, args)])


def one_line_error(result: Result, code: int = 2) -> str:
    """A user error: exit code, nothing on stdout, one ``error:`` line on stderr, no traceback."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ")
    return result.stderr.strip()


@pytest.fixture
def city_file(tmp_path: Path) -> Path:
    path = tmp_path / "city.yaml"
    assert run("generate", "--cells", "300", "--seed", "4", "--out", path).exit_code == 0
    return path


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_generate_writes_the_generators_city(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"city{suffix}"
    result = run(
        "generate", "--cells", "250", "--seed", "9", "--edge-sites", "3", "--layout", "poisson",
        "--capacity-scale", "0.5", "--name", "test-city", "--out", path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {path}: ")
    assert "250 cell" in result.stdout and "3 edge" in result.stdout
    expected = citygen.generate_city(
        250, 9, edge_sites=3, layout="poisson", capacity_scale=0.5, name="test-city"
    )
    assert tf.read_topology_file(path) == expected
    assert (path.stat().st_mode & 0o777) != 0o600  # an ordinary file, not mkstemp's private one
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_generate_rejects_bad_options(tmp_path: Path) -> None:
    out = tmp_path / "city.txt"
    assert one_line_error(run("generate", "--cells", "5", "--out", out)) == (
        f"error: --out: {str(out)!r} must end in .yaml, .yml or .json"
    )
    assert not out.exists()
    assert one_line_error(
        run("generate", "--cells", "5", "--capacity-scale", "-1", "--out", tmp_path / "c.yaml")
    ) == ("error: capacityScale: must be a positive number, got -1.0")
    assert "does not exist" in one_line_error(
        run("generate", "--cells", "5", "--out", tmp_path / "no" / "c.yaml")
    )
    usage = run("generate", "--cells", "0", "--out", tmp_path / "c.yaml")
    assert usage.exit_code == 2 and "Invalid value for '--cells'" in usage.stderr
    assert list(tmp_path.iterdir()) == []


def test_validate_valid(city_file: Path) -> None:
    result = run("validate", city_file)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{city_file}: valid: ")
    assert "300 cell" in result.stdout


def test_validate_reports_each_problem(tmp_path: Path, city_file: Path) -> None:
    doc = yaml.load(city_file.read_text(), Loader=yaml.CSafeLoader)
    doc["links"][0]["b"] = "agg-99"
    doc["sites"].append(dict(doc["sites"][0]))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.dump(doc, Dumper=yaml.CSafeDumper))
    assert one_line_error(run("validate", bad)).splitlines() == [
        f"error: {bad}: sites[{len(doc['sites']) - 1}].id: duplicate site id 'cell-001'",
        f"{bad}: links[0]: unknown endpoint 'agg-99'",
    ]


def test_validate_bad_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert one_line_error(run("validate", missing)).startswith(f"error: {missing}: cannot read: No such file")
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("sites: [\n  {id: c1\n")
    assert one_line_error(run("validate", malformed)).startswith(f"error: {malformed}: not valid YAML")
    unknown = tmp_path / "unknown.yaml"
    doc = tf.parse_topology(citygen.generate_city(3)).to_wire()
    doc["sites"][0]["colour"] = "red"  # type: ignore[index]
    unknown.write_text(yaml.safe_dump(doc))
    assert one_line_error(run("validate", unknown)) == f"error: {unknown}: sites[0].colour: unknown field"


def test_show_table(city_file: Path) -> None:
    result = run("show", city_file)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("topology city-300-s4: ")
    for heading in ("KIND", "EDGE SITE", "LINK CLASS", "ZONE GROUP", "cell to nearest edge (ms):"):
        assert heading in out
    assert "cell-aggregation" in out and "edge-core" in out
    assert "district" in out and "corridor" in out


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_show_data(city_file: Path, fmt: str) -> None:
    result = run("show", city_file, "-o", fmt)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
    assert data["sites"] == {"cell": 300, "aggregation": 25, "edge": 2, "core": 1}
    assert sum(e["cellsNearest"] for e in data["edgeSites"]) == 300
    assert all(e["cpuMillicores"] >= 64000 for e in data["edgeSites"])
    classes = {c["class"]: c for c in data["linkClasses"]}
    assert classes["cell-aggregation"]["links"] == 600
    assert classes["cell-aggregation"]["bandwidthMbps"] == "10000"
    assert classes["edge-core"]["bandwidthMbps"] == "400000"
    lat = data["cellToNearestEdgeMs"]
    assert 0 < lat["min"] <= lat["median"] <= lat["p95"] <= lat["max"] < 5
    assert data["zones"]["downtown"] > 0


def test_show_bad_format_and_file(city_file: Path, tmp_path: Path) -> None:
    assert run("show", city_file, "-o", "xml").exit_code == 2
    assert one_line_error(run("show", tmp_path / "nope.json")).startswith("error: ")


def test_import_graphml(tmp_path: Path) -> None:
    out = tmp_path / "us.yaml"
    result = run(
        "import-graphml", ABILENE, "--out", out, "--edge-sites", "3", "--cells-per-node", "2", "--seed", "3"
    )
    assert result.exit_code == 0, result.output
    assert "22 cell" in result.stdout and "3 edge" in result.stdout
    assert tf.read_topology_file(out) == graphml.import_graphml(
        ABILENE, seed=3, edge_sites=3, cells_per_node=2
    )
    assert run("validate", out).exit_code == 0


def test_import_graphml_mapping_options(tmp_path: Path) -> None:
    out = tmp_path / "us.json"
    result = run(
        "import-graphml", ABILENE, "--out", out, "--map-name", "id", "--map-speed", "LinkSpeed",
        "--edge-node", "4", "--edge-node", "9",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    city = tf.read_topology_file(out)
    assert sorted(s.id for s in city.sites if s.kind == tf.SiteKind.EDGE) == ["4", "9"]
    assert {ln.bandwidth_mbps for ln in city.links if not ln.a.startswith("cell")} == {10_000}


def test_import_graphml_errors(tmp_path: Path) -> None:
    out = tmp_path / "x.yaml"
    message = one_line_error(run("import-graphml", ABILENE, "--out", out, "--map-lat", "lat"))
    assert message.startswith(
        f"error: {ABILENE}: mapping.lat: no node has attribute 'lat'; node attributes are: "
    )
    assert one_line_error(run("import-graphml", tmp_path / "none.graphml", "--out", out)).endswith(
        "cannot read: no such file"
    )
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["yaml", "json", "graphml"])
def test_export_round_trips(city_file: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"out.{fmt}"
    result = run("export", city_file, "--format", fmt, "--out", out)
    assert result.exit_code == 0, result.output
    original = tf.read_topology_file(city_file)
    if fmt == "graphml":
        assert graphml.import_graphml(out) == original
        back = tmp_path / "back.yaml"
        assert run("import-graphml", out, "--out", back).exit_code == 0
        assert back.read_text() == city_file.read_text()
    else:
        assert tf.read_topology_file(out) == original


def test_export_refuses_an_invalid_city(tmp_path: Path) -> None:
    doc = tf.parse_topology(citygen.generate_city(3)).to_wire()
    doc["links"] = doc["links"][:1]  # type: ignore[index]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.dump(doc, Dumper=yaml.CSafeDumper))
    out = tmp_path / "out.graphml"
    assert "has no path to any edge site" in one_line_error(
        run("export", bad, "--format", "graphml", "--out", out)
    )
    assert not out.exists()


def test_schema(tmp_path: Path) -> None:
    result = run("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == tf.json_schema()
    out = tmp_path / "schema.json"
    assert run("schema", "--out", out).exit_code == 0
    assert json.loads(out.read_text())["$defs"]["SiteKind"]["enum"] == ["cell", "aggregation", "edge", "core"]


def test_help_lists_every_subcommand() -> None:
    result = run("--help")
    for name in ("generate", "validate", "show", "import-graphml", "export", "schema"):
        assert name in result.stdout
