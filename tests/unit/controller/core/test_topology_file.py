"""The topology file format: schema validation, reading YAML/JSON, writing, JSON Schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.core import topology_file as tf
from slices import errors
from tests.support.paths import ROOT


def file_document() -> dict[str, Any]:
    """A topology file as read from YAML (camelCase, a link by length, a node label): the raw
    document the format tests edit; tests that want a city use tests/support/cityfixtures.py."""
    return {
        "name": "tiny",
        "sites": [
            {
                "id": "c1",
                "kind": "cell",
                "location": {"lat": 48.85, "lon": 2.35},
                "capacity": {"radioMbps": 1000},
            },
            {
                "id": "a1",
                "kind": "aggregation",
                "location": {"lat": 48.86, "lon": 2.35},
                "zones": ["district-01"],
            },
            {
                "id": "e1",
                "kind": "edge",
                "location": {"lat": 48.87, "lon": 2.35},
                "capacity": {"cpuMillicores": 64000, "memoryMib": 262144},
                "nodeLabel": "paris-edge-1",
            },
        ],
        "links": [
            {"a": "c1", "b": "a1", "bandwidthMbps": 10000, "lengthKm": 1.2},
            {"a": "a1", "b": "e1", "bandwidthMbps": 100000, "latencyMs": 0.2},
        ],
    }


def problem(document: dict[str, Any]) -> str:
    with pytest.raises(errors.TopologyError) as caught:
        tf.parse_topology(document, "city.yaml")
    return str(caught.value)


def edited(path: str, value: Any) -> dict[str, Any]:
    """file_document() with one field set (``sites.0.capacity.radioMbps``); ``...`` deletes it."""
    doc = file_document()
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return doc


def test_valid_file_parses_with_both_spellings() -> None:
    city = tf.parse_topology(file_document())
    assert [s.id for s in city.sites] == ["c1", "a1", "e1"]
    assert city.sites[0].capacity.radio_mbps == 1000
    snake = copy.deepcopy(file_document())
    snake["sites"][0]["capacity"] = {"radio_mbps": 1000}
    assert tf.parse_topology(snake) == city


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("sites.0.colour", "red", "city.yaml: sites[0].colour: unknown field"),
        ("links.0.speed", 1, "city.yaml: links[0].speed: unknown field"),
        ("colour", "red", "city.yaml: colour: unknown field"),
        (
            "sites.0.capacity.radioMbps",
            -5,
            "city.yaml: sites[0].capacity.radioMbps: Input should be greater than 0",
        ),
        (
            "sites.2.capacity.cpuMillicores",
            -1,
            "city.yaml: sites[2].capacity.cpuMillicores: Input should be greater than or equal to 0",
        ),
        (
            "sites.2.capacity.memoryMib",
            -1,
            "city.yaml: sites[2].capacity.memoryMib: Input should be greater than or equal to 0",
        ),
        ("sites.0.capacity", {}, "city.yaml: sites[0]: a cell needs capacity.radioMbps"),
        (
            "sites.2.capacity",
            {"cpuMillicores": 1000},
            "city.yaml: sites[2]: an edge site needs capacity.cpuMillicores and capacity.memoryMib",
        ),
        (
            "sites.1.capacity",
            {"radioMbps": 10},
            "city.yaml: sites[1]: capacity.radioMbps is for cells, not aggregation sites",
        ),
        (
            "sites.1.kind",
            "tower",
            "city.yaml: sites[1].kind: Input should be 'cell', 'aggregation', 'edge' or 'core'",
        ),
        (
            "sites.1.nodeLabel",
            "rack-1",
            "city.yaml: sites[1]: nodeLabel is for edge sites, not aggregation sites",
        ),
        ("sites.1.zones", ["ok", "not ok"], "city.yaml: sites[1].zones[1]: String should match pattern"),
        ("sites.1.zones", [""], "city.yaml: sites[1].zones[0]: String should match pattern"),
        ("sites.1.id", "bad id!", "city.yaml: sites[1].id: String should match pattern"),
        ("sites.1.id", "x" * 64, "city.yaml: sites[1].id: String should have at most 63 characters"),
        (
            "sites.1.location.lat",
            91,
            "city.yaml: sites[1].location.lat: Input should be less than or equal to 90",
        ),
        ("sites.1.location", ..., "city.yaml: sites[1].location: Field required"),
        ("links.0.bandwidthMbps", 0, "city.yaml: links[0].bandwidthMbps: Input should be greater than 0"),
        (
            "links.1.latencyMs",
            -0.1,
            "city.yaml: links[1].latencyMs: Input should be greater than or equal to 0",
        ),
        ("links.0.lengthKm", ..., "city.yaml: links[0]: give exactly one of latencyMs or lengthKm"),
        ("links.1.lengthKm", 3, "city.yaml: links[1]: give exactly one of latencyMs or lengthKm"),
        ("links.0.b", "c1", "city.yaml: links[0]: link joins 'c1' to itself"),
        ("hopLatencyMs", 11, "city.yaml: hopLatencyMs: Input should be less than or equal to 10"),
        ("sites", ..., "city.yaml: sites: Field required"),
    ],
)
def test_schema_problems_name_the_field(path: str, value: Any, message: str) -> None:
    assert problem(edited(path, value)).startswith(message)


def test_every_problem_is_reported_one_per_line() -> None:
    doc = edited("sites.0.capacity.radioMbps", -1)
    doc["links"][0]["bandwidthMbps"] = -3
    lines = problem(doc).splitlines()
    assert lines == [
        "city.yaml: sites[0].capacity.radioMbps: Input should be greater than 0",
        "city.yaml: links[0].bandwidthMbps: Input should be greater than 0",
    ]


def test_link_latency_from_fibre_length_adds_the_hop_cost() -> None:
    city = tf.parse_topology(file_document())
    assert city.link_latency_ms(city.links[0]) == pytest.approx(1.2 * 0.005 + 0.05)
    assert city.link_latency_ms(city.links[1]) == 0.2
    cheaper = tf.parse_topology(file_document() | {"hopLatencyMs": 0})
    assert cheaper.link_latency_ms(cheaper.links[0]) == pytest.approx(0.006)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_write_then_read_gives_the_same_file(tmp_path: Path, suffix: str) -> None:
    city = tf.parse_topology(file_document())
    path = tmp_path / f"city{suffix}"
    tf.write_topology_file(city, path)
    assert tf.read_topology_file(path) == city
    text = path.read_text()
    loaded = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    assert loaded["sites"][0]["capacity"] == {"radioMbps": 1000.0}  # camelCase, no nulls


def test_json_is_read_as_yaml_too(tmp_path: Path) -> None:
    path = tmp_path / "city.yml"
    path.write_text(json.dumps(file_document()))
    assert tf.read_topology_file(path).name == "tiny"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.yaml", "sites: [\n  {id: c1", "bad.yaml: not valid YAML at line 3, column 1: "),
        ("bad.json", '{"sites": [', "bad.json: not valid JSON:"),
        ("list.yaml", "- a\n- b\n", "list.yaml: expected a mapping with sites and links"),
        ("empty.yaml", "", "empty.yaml: expected a mapping with sites and links"),
    ],
)
def test_unreadable_documents(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(errors.TopologyError) as caught:
        tf.read_topology_file(path)
    assert str(caught.value).startswith(f"{tmp_path / message}")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(errors.TopologyError, match=r"nope\.yaml: cannot read: No such file"):
        tf.read_topology_file(tmp_path / "nope.yaml")


def test_unknown_field_in_file_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(edited("links.1.colour", "blue")))
    with pytest.raises(errors.TopologyError) as caught:
        tf.read_topology_file(path)
    assert str(caught.value) == f"{path}: links[1].colour: unknown field"


def test_json_schema_describes_the_format() -> None:
    schema = tf.json_schema()
    assert schema["required"] == ["sites", "links"]
    defs: Any = schema["$defs"]
    assert set(defs["SiteSpec"]["properties"]) == {"id", "kind", "location", "zones", "capacity", "nodeLabel"}
    assert defs["SiteSpec"]["additionalProperties"] is False
    assert defs["SiteKind"]["enum"] == ["cell", "aggregation", "edge", "core"]
    assert set(defs["Capacity"]["properties"]) == {"radioMbps", "cpuMillicores", "memoryMib"}
    assert set(defs["LinkSpec"]["properties"]) == {"a", "b", "bandwidthMbps", "latencyMs", "lengthKm"}


def test_the_documented_example_is_valid() -> None:
    from controller.core.topology import Topology

    doc = (ROOT / "docs" / "topology.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    city = Topology.from_file(tf.parse_topology(yaml.safe_load(example), "docs/topology.md"))
    assert city.edge_sites == ("edge-1",)
    assert city.link(("cell-001", "agg-01")).latency_ms == pytest.approx(1.4 * 0.005 + 0.05)
