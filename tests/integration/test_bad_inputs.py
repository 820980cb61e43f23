"""The bad-input corpus (issue #13): every user error is one line, an exit code, no traceback.

Each case writes its input files into an empty folder, runs the real ``slicectl`` command there
through click's CliRunner (a handful also as real subprocesses, which must answer byte for byte
the same) and asserts:

* the exit code (2: invalid input, flag or path; 4: no such site; 7: cannot reach);
* exactly one line on stderr, ``error: ...``, containing every fragment the case names: the
  file, flag or field and the problem;
* nothing on stdout and no traceback anywhere (CliRunner also reports no exception escaped);
* state unchanged: every file in the folder has the same bytes as before and no file was added
  (no partial output); paths outside the folder the case names stay absent.

Cases are data: the tables below, grouped by what is wrong. Topology files are edits of one small
valid city (:data:`CITY`), slice documents edits of one valid slice (:data:`SLICE`).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from controller.cli import main
from tests.support.cli_env import clear_client_env

SLICECTL = Path(sys.executable).parent / "slicectl"
NOWHERE = "127.0.0.1:1"  # a slice command that got past validation would fail to connect here
DELETE = object()  # an edit that removes the key
HUGE = "9" * 5001  # beyond Python's 4300-digit int conversion limit

CITY: dict[str, Any] = {
    "name": "corpus",
    "sites": [
        {"id": "c1", "kind": "cell", "location": {"lat": 48.85, "lon": 2.35}, "zones": ["z"],
         "capacity": {"radioMbps": 1000}},
        {"id": "c2", "kind": "cell", "location": {"lat": 48.86, "lon": 2.35}, "zones": ["z"],
         "capacity": {"radioMbps": 1000}},
        {"id": "a1", "kind": "aggregation", "location": {"lat": 48.855, "lon": 2.36}},
        {"id": "e1", "kind": "edge", "location": {"lat": 48.87, "lon": 2.36},
         "capacity": {"cpuMillicores": 16000, "memoryMib": 32768}},
        {"id": "k1", "kind": "core", "location": {"lat": 48.88, "lon": 2.37},
         "capacity": {"cpuMillicores": 1000, "memoryMib": 1024}},
    ],
    "links": [
        {"a": "c1", "b": "a1", "bandwidthMbps": 10000, "latencyMs": 0.5},
        {"a": "c2", "b": "a1", "bandwidthMbps": 10000, "lengthKm": 1.0},
        {"a": "a1", "b": "e1", "bandwidthMbps": 100000, "latencyMs": 0.2},
        {"a": "e1", "b": "k1", "bandwidthMbps": 100000, "latencyMs": 0.2},
    ],
}  # fmt: skip

SLICE: dict[str, Any] = {
    "apiVersion": "edgeslice.io/v1alpha1",
    "kind": "NetworkSlice",
    "metadata": {"name": "cars"},
    "spec": {
        "kind": "vehicle",
        "coverage": {"zones": ["z"]},
        "sla": {"latencyMs": 5, "dlMbpsPerCell": 40},
        "workloads": [{"name": "app", "image": "nginx", "cpuMillicores": 500, "memoryMib": 256}],
    },
}


def edited(doc: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``doc`` with ``value`` at the dotted ``path`` (``DELETE`` removes it)."""
    out = copy.deepcopy(dict(doc))
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out


def as_yaml(doc: object) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


CITY_YAML = as_yaml(CITY)
SLICE_YAML = as_yaml(SLICE)


@dataclass(frozen=True)
class Case:
    """One bad input: the command, the files it needs, and what the one error line must say."""

    id: str
    args: tuple[str, ...]
    says: tuple[str, ...]
    code: int = 2
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # paths outside the folder that must not appear
    state_dir: bool = False  # a `controller run`: lock files in ./state are allowed to appear
    state_db: bool = False  # ./state holds a real state file (an empty store) before the run


CASES: list[Case] = []
# The tables' loop variables, typed once for all of them.
value: Any
says: tuple[str, ...]
args: tuple[str, ...]
extra: tuple[str, ...]


def case(id: str, args: tuple[str, ...], *says: str, **kw: Any) -> None:
    CASES.append(Case(id, args, says, **kw))


# -- topology files: one bad field each, through `topology validate` ------------------------

VALIDATE = ("topology", "validate", "city.yaml")


def bad_city(id: str, path: str, value: Any, *says: str, cmd: tuple[str, ...] = VALIDATE) -> None:
    case(id, cmd, "city.yaml", *says, files={"city.yaml": as_yaml(edited(CITY, path, value))})


RADIO = "sites.0.capacity.radioMbps"
CPU = "sites.3.capacity.cpuMillicores"
MEMORY = "sites.3.capacity.memoryMib"
BANDWIDTH = "links.0.bandwidthMbps"
LATENCY = "links.0.latencyMs"
LENGTH = "links.1.lengthKm"
FINITE = "not a finite number"

for name, value in (("inf", float("inf")), ("nan", float("nan")), ("-inf", float("-inf"))):
    bad_city(f"radio-{name}", RADIO, value, "sites[0].capacity.radioMbps", FINITE)
    bad_city(f"bandwidth-{name}", BANDWIDTH, value, "links[0].bandwidthMbps", FINITE)
    bad_city(f"latency-{name}", LATENCY, value, "links[0].latencyMs", FINITE)
    bad_city(f"length-{name}", LENGTH, value, "links[1].lengthKm", FINITE)
    bad_city(f"cpu-{name}", CPU, value, "sites[3].capacity.cpuMillicores", FINITE)
    bad_city(f"memory-{name}", MEMORY, value, "sites[3].capacity.memoryMib", FINITE)
    bad_city(f"lat-{name}", "sites.2.location.lat", value, "sites[2].location.lat", FINITE)
    bad_city(f"lon-{name}", "sites.2.location.lon", value, "sites[2].location.lon", FINITE)
bad_city("hop-latency-nan", "hopLatencyMs", float("nan"), "hopLatencyMs", FINITE)
bad_city("hop-latency-inf", "hopLatencyMs", float("inf"), "hopLatencyMs", FINITE)

for id, path, value, where, problem in (
    ("radio-zero", RADIO, 0, "sites[0].capacity.radioMbps", "greater than 0"),
    ("radio-negative", RADIO, -5, "sites[0].capacity.radioMbps", "greater than 0"),
    ("radio-1e300", RADIO, 1e300, "sites[0].capacity.radioMbps", "less than or equal to 100000"),
    ("radio-above-100-gbps", RADIO, 100_001, "sites[0].capacity.radioMbps", "less than or equal to 100000"),
    ("radio-text", RADIO, "fast", "sites[0].capacity.radioMbps", "valid number"),
    ("radio-list", RADIO, [1000], "sites[0].capacity.radioMbps", "valid number"),
    ("cpu-1e30", CPU, 10**30, "sites[3].capacity.cpuMillicores", "less than or equal to 10000000"),
    ("cpu-2-63", CPU, 2**63, "sites[3].capacity.cpuMillicores", "less than or equal to 10000000"),
    ("cpu-2-64", CPU, 2**64, "sites[3].capacity.cpuMillicores", "less than or equal to 10000000"),
    ("cpu-negative", CPU, -1, "sites[3].capacity.cpuMillicores", "greater than or equal to 0"),
    ("cpu-fraction", CPU, 1.5, "sites[3].capacity.cpuMillicores", "fractional part"),
    ("cpu-text", CPU, "lots", "sites[3].capacity.cpuMillicores", "valid integer"),
    ("cpu-float-1e30", CPU, 1e30, "sites[3].capacity.cpuMillicores", "sites[3].capacity.cpuMillicores"),
    ("memory-1e9", MEMORY, 10**9, "sites[3].capacity.memoryMib", "less than or equal to 100000000"),
    ("memory-negative", MEMORY, -1, "sites[3].capacity.memoryMib", "greater than or equal to 0"),
    (
        "core-cpu-2-63",
        "sites.4.capacity.cpuMillicores",
        2**63,
        "sites[4].capacity.cpuMillicores",
        "less than",
    ),
    ("bandwidth-zero", BANDWIDTH, 0, "links[0].bandwidthMbps", "greater than 0"),
    ("bandwidth-negative", BANDWIDTH, -1, "links[0].bandwidthMbps", "greater than 0"),
    ("bandwidth-1e300", BANDWIDTH, 1e300, "links[0].bandwidthMbps", "less than or equal to 10000000"),
    ("bandwidth-above-10-tbps", BANDWIDTH, 10_000_001, "links[0].bandwidthMbps", "less than or equal"),
    ("bandwidth-text", BANDWIDTH, "10G", "links[0].bandwidthMbps", "valid number"),
    ("bandwidth-missing", BANDWIDTH, DELETE, "links[0].bandwidthMbps", "Field required"),
    ("latency-negative", LATENCY, -1, "links[0].latencyMs", "greater than or equal to 0"),
    ("latency-a-million", LATENCY, 1e6, "links[0].latencyMs", "less than or equal to 1000"),
    ("length-negative", LENGTH, -1, "links[1].lengthKm", "greater than or equal to 0"),
    ("length-1e9", LENGTH, 1e9, "links[1].lengthKm", "less than or equal to 40000"),
    ("latency-and-length", "links.0.lengthKm", 1.0, "links[0]", "exactly one of latencyMs or lengthKm"),
    ("no-latency-nor-length", LATENCY, DELETE, "links[0]", "exactly one of latencyMs or lengthKm"),
    ("link-to-itself", "links.0.b", "c1", "links[0]", "joins 'c1' to itself"),
    ("link-unknown-end", "links.0.b", "nowhere", "links[0]", "unknown endpoint 'nowhere'"),
    ("link-end-not-text", "links.0.b", ["a1"], "links[0].b", "valid string"),
    ("link-between-cells", "links.0.b", "c2", "links[0]", "cell"),
    ("link-unknown-field", "links.0.colour", "red", "links[0].colour", "unknown field"),
    ("hop-latency-11", "hopLatencyMs", 11, "hopLatencyMs", "less than or equal to 10"),
    ("hop-latency-negative", "hopLatencyMs", -0.1, "hopLatencyMs", "greater than or equal to 0"),
    ("lat-91", "sites.2.location.lat", 91, "sites[2].location.lat", "less than or equal to 90"),
    ("lon-minus-181", "sites.2.location.lon", -181, "sites[2].location.lon", "greater than or equal to -180"),
    ("location-missing", "sites.2.location", DELETE, "sites[2].location", "Field required"),
    ("kind-unknown", "sites.2.kind", "tower", "sites[2].kind", "'cell', 'aggregation', 'edge' or 'core'"),
    ("site-id-spaces", "sites.2.id", "bad id!", "sites[2].id", "should match pattern"),
    ("site-id-64-chars", "sites.2.id", "x" * 64, "sites[2].id", "at most 63 characters"),
    ("zone-with-space", "sites.0.zones", ["not ok"], "sites[0].zones[0]", "should match pattern"),
    ("zones-not-a-list", "sites.0.zones", 7, "sites[0].zones", "valid tuple"),
    ("site-unknown-field", "sites.2.colour", "red", "sites[2].colour", "unknown field"),
    ("capacity-unknown-field", "sites.3.capacity.gpus", 4, "sites[3].capacity.gpus", "unknown field"),
    ("capacity-a-list", "sites.3.capacity", [1], "sites[3].capacity", "valid dictionary"),
    ("radio-on-an-edge", "sites.3.capacity.radioMbps", 100, "sites[3]", "radioMbps is for cells"),
    ("node-label-on-aggregation", "sites.2.nodeLabel", "rack", "sites[2]", "nodeLabel is for edge sites"),
    ("cell-without-radio", RADIO, DELETE, "sites[0]", "a cell needs capacity.radioMbps"),
    ("edge-without-memory", MEMORY, DELETE, "sites[3]", "an edge site needs"),
    ("name-empty", "name", "", "name", "at least 1 character"),
    ("name-121-chars", "name", "n" * 121, "name", "at most 120 characters"),
    ("top-level-unknown-field", "region", "north", "region", "unknown field"),
    ("sites-not-a-list", "sites", 5, "sites", "valid tuple"),
    ("sites-missing", "sites", DELETE, "sites", "Field required"),
    ("links-missing", "links", DELETE, "links", "Field required"),
):
    bad_city(id, path, value, where, problem)

case(
    "no-edge-at-all", VALIDATE, "city.yaml: sites: no edge site",
    files={"city.yaml": as_yaml(edited(edited(CITY, "sites.3", CITY["sites"][2] | {"id": "e1"}), "sites.4",
                                       CITY["sites"][2] | {"id": "k1"}))},
)  # fmt: skip
case(
    "cell-cut-off", VALIDATE, "city.yaml: sites: cell 'c1'", "no path to any edge site",
    files={"city.yaml": as_yaml(CITY | {"links": CITY["links"][1:]})},
)  # fmt: skip
case(
    "site-id-duplicate", VALIDATE, "city.yaml: sites[5].id", "duplicate site id 'a1'",
    files={"city.yaml": as_yaml(CITY | {"sites": [*CITY["sites"], CITY["sites"][2]]})},
)  # fmt: skip
case(
    "two-edges-one-node-label", VALIDATE, "city.yaml: sites[5].nodeLabel", "'x' already pins workloads",
    files={"city.yaml": as_yaml(
        edited(CITY, "sites.3.nodeLabel", "x")
        | {"sites": [*edited(CITY, "sites.3.nodeLabel", "x")["sites"], CITY["sites"][3] | {"id": "e2", "nodeLabel": "x"}]}
    )},
)  # fmt: skip

# The whole document is wrong: text, encoding, structure.
for id, text, says in (
    ("duplicate-top-level-key", CITY_YAML.replace("name: corpus\n", "name: corpus\nname: again\n"),
     ("city.yaml", "line 2", "key 'name' is given twice (first at line 1)")),
    ("duplicate-key-in-a-site", CITY_YAML.replace("  kind: aggregation\n", "  kind: aggregation\n  kind: edge\n"),
     ("city.yaml", "key 'kind' is given twice")),
    ("duplicate-key-in-a-link", CITY_YAML.replace("  latencyMs: 0.5\n", "  latencyMs: 0.5\n  latencyMs: 9\n"),
     ("city.yaml", "key 'latencyMs' is given twice")),
    ("duplicate-key-flow-style", "{sites: [], sites: [], links: []}", ("city.yaml", "key 'sites' is given twice")),
    ("5001-digit-integer", CITY_YAML.replace("cpuMillicores: 16000", f"cpuMillicores: {HUGE}"),
     ("city.yaml", "integer of 5001 digits is too large")),
    ("unclosed-bracket", "sites: [\n  {id: c1\n", ("city.yaml", "not valid YAML at line 3")),
    ("tab-indentation", "sites:\n\t- id: c1\n", ("city.yaml", "not valid YAML at line 2")),
    ("python-object-tag", "sites: !!python/object:os.system {}\nlinks: []\n", ("city.yaml", "not valid YAML")),
    ("two-documents", CITY_YAML + "---\n" + CITY_YAML, ("city.yaml", "line 59", "expected a single document in the stream, but found another document")),
    ("a-list", "- a\n- b\n", ("city.yaml", "expected a mapping with sites and links")),
    ("a-number", "42\n", ("city.yaml", "expected a mapping with sites and links")),
    ("empty", "", ("city.yaml", "expected a mapping with sites and links")),
    ("only-a-comment", "# nothing here\n", ("city.yaml", "expected a mapping with sites and links")),
    ("nul-byte", "name: a\x00b\n", ("city.yaml", "not valid YAML")),
):  # fmt: skip
    case(f"yaml-{id}", VALIDATE, *says, files={"city.yaml": text})

for id, data, says in (
    ("random-bytes", bytes(range(128, 256)) * 8, ("city.yaml", "not UTF-8 text")),
    ("utf16", CITY_YAML.encode("utf-16"), ("city.yaml", "not UTF-8 text")),
    ("gzip", b"\x1f\x8b\x08\x00" + bytes(200), ("city.yaml", "not UTF-8 text")),
    ("png", b"\x89PNG\r\n\x1a\n" + bytes(64), ("city.yaml", "not UTF-8 text")),
):
    case(f"binary-{id}", VALIDATE, *says, files={"city.yaml": data})

CITY_JSON = json.dumps(CITY)
for id, text, says in (
    ("radio-nan", CITY_JSON.replace('"radioMbps": 1000', '"radioMbps": NaN', 1),
     ("city.json", "sites[0].capacity.radioMbps", FINITE)),
    ("bandwidth-infinity", CITY_JSON.replace('"bandwidthMbps": 10000', '"bandwidthMbps": Infinity', 1),
     ("city.json", "links[0].bandwidthMbps", FINITE)),
    ("latency-minus-infinity", CITY_JSON.replace('"latencyMs": 0.5', '"latencyMs": -Infinity'),
     ("city.json", "links[0].latencyMs", FINITE)),
    ("duplicate-key", CITY_JSON.replace('"name": "corpus"', '"name": "corpus", "name": "again"'),
     ("city.json", "key 'name' is given twice")),
    ("5001-digit-integer", CITY_JSON.replace('"cpuMillicores": 16000', f'"cpuMillicores": {HUGE}'),
     ("city.json", "integer is too large")),
    ("cpu-1e30-as-float", CITY_JSON.replace('"cpuMillicores": 16000', '"cpuMillicores": 1e30'),
     ("city.json", "sites[3].capacity.cpuMillicores")),
    ("truncated", CITY_JSON[: len(CITY_JSON) // 2], ("city.json", "not valid JSON")),
    ("trailing-comma", '{"sites": [], "links": [],}', ("city.json", "not valid JSON")),
    ("yaml-in-a-json-file", CITY_YAML, ("city.json", "not valid JSON")),
    ("an-array", "[1, 2]", ("city.json", "expected a mapping with sites and links")),
    ("null", "null", ("city.json", "expected a mapping with sites and links")),
):  # fmt: skip
    case(f"json-{id}", ("topology", "validate", "city.json"), *says, files={"city.json": text})
# JSON content in a .yaml file is read as JSON first: the same strictness.
case(
    "json-in-yaml-duplicate-key", VALIDATE, "city.yaml", "key 'links' is given twice",
    files={"city.yaml": '{"sites": [], "links": [], "links": []}'},
)  # fmt: skip
case(
    "json-in-yaml-5001-digits", VALIDATE, "city.yaml", "integer is too large",
    files={"city.yaml": CITY_JSON.replace('"memoryMib": 32768', f'"memoryMib": {HUGE}')},
)  # fmt: skip

# The same faults through every command that reads a topology file.
INF_CITY = {"city.yaml": as_yaml(edited(CITY, RADIO, float("inf")))}
BIG_CPU_CITY = {"city.yaml": as_yaml(edited(CITY, CPU, 2**63))}
for id, args in (
    ("show", ("topology", "show", "city.yaml")),
    ("show-json", ("topology", "show", "city.yaml", "-o", "json")),
    ("export-yaml", ("topology", "export", "city.yaml", "--format", "yaml", "--out", "out.yaml")),
    ("export-graphml", ("topology", "export", "city.yaml", "--format", "graphml", "--out", "out.graphml")),
    ("plan", ("plan", "--topology", "city.yaml", "slice.yaml")),
    ("render", ("topology", "render", "--topology", "city.yaml", "--out", "city.png")),
    ("controller-run", ("controller", "run", "--topology", "city.yaml", "--state-dir", "state",
                        "--listen", "127.0.0.1:0", "--no-agents")),
):  # fmt: skip
    state = id == "controller-run"
    case(f"{id}-radio-inf", args, "city.yaml", "sites[0].capacity.radioMbps", FINITE,
         files=INF_CITY | {"slice.yaml": SLICE_YAML}, state_dir=state)  # fmt: skip
    case(f"{id}-cpu-2-63", args, "city.yaml", "sites[3].capacity.cpuMillicores", "less than or equal",
         files=BIG_CPU_CITY | {"slice.yaml": SLICE_YAML}, state_dir=state)  # fmt: skip
# A controller with a state file from an earlier run: a bad topology leaves it byte for byte.
RUN = (
    "controller",
    "run",
    "--topology",
    "city.yaml",
    "--state-dir",
    "state",
    "--listen",
    "127.0.0.1:0",
    "--no-agents",
)
for id, files, says in (
    ("radio-inf", INF_CITY, ("city.yaml", "sites[0].capacity.radioMbps", FINITE)),
    ("cpu-2-63", BIG_CPU_CITY, ("city.yaml", "sites[3].capacity.cpuMillicores", "less than or equal")),
    ("binary", {"city.yaml": bytes(range(128, 256))}, ("city.yaml", "not UTF-8 text")),
    ("duplicate-key", {"city.yaml": CITY_YAML.replace("name: corpus\n", "name: corpus\nname: b\n")},
     ("city.yaml", "key 'name' is given twice")),
):  # fmt: skip
    case(f"controller-run-over-a-state-file-{id}", RUN, *says, files=files, state_dir=True, state_db=True)
case(
    "export-keeps-the-old-output", ("topology", "export", "city.yaml", "--format", "json", "--out", "out.json"),
    "city.yaml", FINITE, files=INF_CITY | {"out.json": "the previous export\n"},
)  # fmt: skip

# Paths given for a topology file.
for id, args, says in (
    ("validate-missing", ("topology", "validate", "nope.yaml"), ("nope.yaml", "cannot read", "No such file")),
    ("validate-a-folder", ("topology", "validate", "folder"), ("folder", "cannot read", "directory")),
    ("validate-empty-path", ("topology", "validate", ""), ("cannot read",)),
    ("show-missing", ("topology", "show", "nope.yaml"), ("nope.yaml", "cannot read")),
    ("plan-missing", ("plan", "--topology", "nope.yaml", "slice.yaml"), ("nope.yaml", "cannot read")),
    ("controller-run-missing", ("controller", "run", "--topology", "nope.yaml", "--state-dir", "state",
                                "--listen", "127.0.0.1:0", "--no-agents"), ("nope.yaml", "cannot read")),
    ("render-missing", ("topology", "render", "--topology", "nope.yaml", "--out", "x.png"),
     ("'--topology'", "nope.yaml", "does not exist")),
):  # fmt: skip
    case(f"path-{id}", args, *says, files={"folder/keep": "", "slice.yaml": SLICE_YAML},
         state_dir=id.startswith("controller"))  # fmt: skip

# -- GraphML imports ---------------------------------------------------------------------------


def graphml(nodes: str, edges: str, keys: str = "") -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key attr.name="Latitude" attr.type="double" for="node" id="d0"/>
  <key attr.name="Longitude" attr.type="double" for="node" id="d1"/>
  <key attr.name="label" attr.type="string" for="node" id="d2"/>
  <key attr.name="LinkSpeedRaw" attr.type="double" for="edge" id="d3"/>
  <key attr.name="LinkSpeed" attr.type="string" for="edge" id="d4"/>
  <key attr.name="LinkSpeedUnits" attr.type="string" for="edge" id="d5"/>
  <key attr.name="Delay" attr.type="string" for="edge" id="d6"/>
  {keys}
  <graph edgedefault="undirected">{nodes}{edges}</graph>
</graphml>
"""


def node(n: str, label: str, lat: object = 40.0, lon: object = -74.0) -> str:
    return f'<node id="{n}"><data key="d0">{lat}</data><data key="d1">{lon}</data><data key="d2">{label}</data></node>'


def edge(a: str, b: str, data: str = '<data key="d3">1e10</data>') -> str:
    return f'<edge source="{a}" target="{b}">{data}</edge>'


NODES = node("0", "A") + node("1", "B", 41.0, -75.0) + node("2", "C", 42.0, -76.0)
EDGES = edge("0", "1") + edge("1", "2")
GOOD_GRAPHML = graphml(NODES, EDGES)
IMPORT = ("topology", "import-graphml", "net.graphml", "--out", "city.yaml")

for id, text, says, extra in (
    ("lat-nan", graphml(node("0", "A", "nan") + node("1", "B"), edge("0", "1")),
     ("net.graphml", "node '0'", "Latitude/Longitude are not finite numbers"), ()),
    ("lon-inf", graphml(node("0", "A", 40, "inf") + node("1", "B"), edge("0", "1")),
     ("net.graphml", "node '0'", "not finite numbers"), ()),
    ("lat-text", graphml(node("0", "A", "north") + node("1", "B"), edge("0", "1")),
     ("net.graphml", "not valid GraphML"), ()),
    ("lat-91", graphml(node("0", "A", 91) + node("1", "B"), edge("0", "1")),
     ("net.graphml", "node '0'", "Latitude=91", "not a latitude in [-90, 90]"), ()),
    ("no-latitude", graphml('<node id="0"><data key="d1">1</data><data key="d2">A</data></node>' + node("1", "B"),
                            edge("0", "1")), ("net.graphml", "node '0'", "no Latitude attribute"), ()),
    ("speed-1e20", graphml(NODES, edge("0", "1", '<data key="d3">1e20</data>')),
     ("net.graphml", "edge 0-1", "LinkSpeedRaw", "above the 10 Tbit/s"), ()),
    ("speed-inf", graphml(NODES, edge("0", "1", '<data key="d3">inf</data>')),
     ("net.graphml", "edge 0-1", "LinkSpeedRaw", FINITE), ()),
    ("speed-nan", graphml(NODES, edge("0", "1", '<data key="d3">nan</data>')),
     ("net.graphml", "edge 0-1", FINITE), ()),
    ("speed-negative", graphml(NODES, edge("0", "1", '<data key="d3">-5</data>')),
     ("net.graphml", "edge 0-1", "not a positive speed"), ()),
    ("speed-unit-unknown", graphml(NODES, edge("0", "1", '<data key="d4">10</data><data key="d5">Q</data>')),
     ("net.graphml", "edge 0-1", "unknown speed unit 'Q'"), ("--map-speed", "LinkSpeed")),
    ("speed-in-tbps-too-fast", graphml(NODES, edge("0", "1", '<data key="d4">11</data><data key="d5">T</data>')),
     ("net.graphml", "edge 0-1", "above the 10 Tbit/s"), ("--map-speed", "LinkSpeed")),
    ("latency-inf", graphml(NODES, edge("0", "1", '<data key="d6">inf</data>')),
     ("net.graphml", "edge 0-1", "Delay='inf' is not a latency in ms"), ("--map-latency", "Delay")),
    ("latency-a-day", graphml(NODES, edge("0", "1", '<data key="d6">86400000</data>')),
     ("net.graphml", "edge 0-1", "not a latency in ms"), ("--map-latency", "Delay")),
    ("5001-digit-integer", graphml(NODES, edge("0", "1", f'<data key="d7">{HUGE}</data>'),
                                   '<key attr.name="Cost" attr.type="int" for="edge" id="d7"/>'),
     ("net.graphml", "not valid GraphML", "an integer attribute has more than 4300 digits"), ()),
    ("no-nodes", graphml("", ""), ("net.graphml", "the graph has no nodes"), ()),
    ("map-lat-unknown", GOOD_GRAPHML, ("net.graphml", "mapping.lat", "no node has attribute 'Lat'"),
     ("--map-lat", "Lat")),
    ("map-speed-unknown", GOOD_GRAPHML, ("net.graphml", "mapping.speed", "no edge has attribute 'Capacity'"),
     ("--map-speed", "Capacity")),
    ("edge-node-unknown", GOOD_GRAPHML, ("net.graphml", "edgeNodes", "no node named 'Boston'"),
     ("--edge-node", "Boston")),
    ("not-xml", "this is not xml at all\n", ("net.graphml", "not valid GraphML"), ()),
    ("xml-not-graphml", "<?xml version='1.0'?><html><body/></html>", ("net.graphml", "not valid GraphML"), ()),
    ("truncated", GOOD_GRAPHML[: len(GOOD_GRAPHML) // 2], ("net.graphml", "not valid GraphML"), ()),
    ("export-bad-zones", GOOD_GRAPHML.replace('<graph edgedefault="undirected">',
                                              '<graph edgedefault="undirected"><data key="g0">edgeslice-topology/v1</data>')
     .replace("{keys}", "").replace('<key attr.name="Latitude"',
                                    '<key attr.name="edgesliceFormat" attr.type="string" for="graph" id="g0"/>'
                                    '<key attr.name="zones" attr.type="string" for="node" id="z"/>'
                                    '<key attr.name="Latitude"', 1)
     .replace('<data key="d2">A</data>', '<data key="d2">A</data><data key="z">[not json</data>'),
     ("net.graphml", "node '0'", "zones", "not a JSON list"), ()),
    ("export-other-format", GOOD_GRAPHML.replace('<graph edgedefault="undirected">',
                                                 '<graph edgedefault="undirected"><data key="g0">v9</data>')
     .replace('<key attr.name="Latitude"',
              '<key attr.name="edgesliceFormat" attr.type="string" for="graph" id="g0"/><key attr.name="Latitude"', 1),
     ("net.graphml", "edgesliceFormat 'v9'"), ()),
):  # fmt: skip
    case(f"graphml-{id}", IMPORT + extra, *says, files={"net.graphml": text})
for id, data in (("random-bytes", bytes(range(256)) * 4), ("utf16", GOOD_GRAPHML.encode("utf-16")[:-40])):
    case(f"graphml-binary-{id}", IMPORT, "net.graphml", "not valid GraphML", files={"net.graphml": data})
for id, extra, says in (
    ("cells-per-node-5000", ("--cells-per-node", "5000"), ("cellsPerNode", "between 0 and 1000")),
    ("cells-per-node-negative", ("--cells-per-node", "-1"), ("'--cells-per-node'", "-1")),
    ("capacity-scale-nan", ("--capacity-scale", "nan"), ("'--capacity-scale'", "'nan'", FINITE)),
    ("capacity-scale-inf", ("--capacity-scale", "inf"), ("'--capacity-scale'", "'inf'", FINITE)),
    ("capacity-scale-1e300", ("--capacity-scale", "1e300"), ("capacityScale", "between")),
    ("capacity-scale-zero", ("--capacity-scale", "0"), ("capacityScale", "positive number")),
    ("seed-negative", ("--seed", "-1"), ("seed", "0 or more")),
    ("edge-sites-zero", ("--edge-sites", "0"), ("'--edge-sites'", "0")),
    ("out-suffix", ("--out", "city.txt"), ("--out", "city.txt", "must end in .yaml, .yml or .json")),
    ("out-in-proc", ("--out", "/proc/city.yaml"), ("--out", "'/proc'", "cannot create a file")),
    ("out-in-sys", ("--out", "/sys/city.yaml"), ("--out", "'/sys'", "cannot create a file")),
    ("out-missing-folder", ("--out", "no/such/city.yaml"), ("--out", "'no/such'", "does not exist")),
    ("out-under-a-file", ("--out", "net.graphml/city.yaml"), ("--out", "'net.graphml'", "not a directory")),
    ("out-a-folder", ("--out", "folder"), ("'--out'", "folder", "directory")),
):  # fmt: skip
    case(f"graphml-flag-{id}", IMPORT + extra, *says, files={"net.graphml": GOOD_GRAPHML, "folder/keep": ""},
         absent=("/proc/city.yaml", "/sys/city.yaml"))  # fmt: skip
case("graphml-missing", ("topology", "import-graphml", "none.graphml", "--out", "c.yaml"),
     "none.graphml", "cannot read: no such file")  # fmt: skip
case("graphml-a-folder", ("topology", "import-graphml", "folder", "--out", "c.yaml"),
     "folder", "cannot read: is a directory", files={"folder/keep": ""})  # fmt: skip

# -- CLI flags and output paths ----------------------------------------------------------------

GENERATE = ("topology", "generate", "--cells", "5")
for id, args, says in (
    ("cells-zero", ("topology", "generate", "--cells", "0", "--out", "c.yaml"), ("'--cells'", "0 is not in the range")),
    ("cells-text", ("topology", "generate", "--cells", "many", "--out", "c.yaml"), ("'--cells'", "'many'")),
    ("cells-a-million", ("topology", "generate", "--cells", "1000000", "--out", "c.yaml"),
     ("cells", "at most 200,000")),
    ("cells-20-digits", ("topology", "generate", "--cells", "9" * 20, "--out", "c.yaml"), ("cells", "at most")),
    ("cells-missing", ("topology", "generate", "--out", "c.yaml"), ("Missing option", "'--cells'")),
    ("capacity-scale-nan", (*GENERATE, "--capacity-scale", "nan", "--out", "c.yaml"), ("'--capacity-scale'", FINITE)),
    ("capacity-scale-inf", (*GENERATE, "--capacity-scale", "inf", "--out", "c.yaml"), ("'--capacity-scale'", FINITE)),
    ("capacity-scale-1e300", (*GENERATE, "--capacity-scale", "1e300", "--out", "c.yaml"),
     ("capacityScale", "between 0.0001 and 8")),
    ("capacity-scale-1e-300", (*GENERATE, "--capacity-scale", "1e-300", "--out", "c.yaml"),
     ("capacityScale", "between 0.0001 and 8")),
    ("capacity-scale-zero", (*GENERATE, "--capacity-scale", "0", "--out", "c.yaml"), ("capacityScale", "positive")),
    ("capacity-scale-text", (*GENERATE, "--capacity-scale", "big", "--out", "c.yaml"), ("'--capacity-scale'", "'big'")),
    ("seed-negative", (*GENERATE, "--seed", "-1", "--out", "c.yaml"), ("seed", "must be 0 or more, got -1")),
    ("seed-text", (*GENERATE, "--seed", "x", "--out", "c.yaml"), ("'--seed'", "'x'")),
    ("layout-unknown", (*GENERATE, "--layout", "grid", "--out", "c.yaml"), ("'--layout'", "'grid'")),
    ("edge-sites-zero", (*GENERATE, "--edge-sites", "0", "--out", "c.yaml"), ("'--edge-sites'", "0")),
    ("out-missing", GENERATE, ("Missing option", "'--out'")),
    ("o-is-output-format-not-file", (*GENERATE, "-o", "c.yaml"), ("No such option", "-o")),
    ("out-suffix", (*GENERATE, "--out", "c.txt"), ("--out", "'c.txt'", "must end in .yaml")),
    ("out-in-proc", (*GENERATE, "--out", "/proc/c.yaml"), ("--out", "'/proc'", "cannot create a file")),
    ("out-in-sys", (*GENERATE, "--out", "/sys/c.yaml"), ("--out", "'/sys'", "cannot create a file")),
    ("out-missing-folder", (*GENERATE, "--out", "nowhere/c.yaml"), ("--out", "'nowhere'", "does not exist")),
    ("out-under-a-file", (*GENERATE, "--out", "file.txt/c.yaml"), ("--out", "'file.txt'", "not a directory")),
    ("out-a-folder", (*GENERATE, "--out", "folder"), ("'--out'", "folder", "directory")),
    ("out-absolute-missing", (*GENERATE, "--out", "/nonexistent/dir/c.yaml"), ("--out", "'/nonexistent/dir'")),
    ("unknown-option", (*GENERATE, "--colour", "red", "--out", "c.yaml"), ("No such option", "'--colour'")),
    ("export-format-xml", ("topology", "export", "city.yaml", "--format", "xml", "--out", "x.xml"),
     ("'--format'", "'xml'")),
    ("export-out-in-proc", ("topology", "export", "city.yaml", "--format", "graphml", "--out", "/proc/x.graphml"),
     ("--out", "'/proc'", "cannot create a file")),
    ("export-out-missing-folder", ("topology", "export", "city.yaml", "--format", "yaml", "--out", "no/x.yaml"),
     ("--out", "'no'", "does not exist")),
    ("export-out-a-folder", ("topology", "export", "city.yaml", "--format", "json", "--out", "folder"),
     ("'--out'", "folder", "directory")),
    ("export-format-missing", ("topology", "export", "city.yaml", "--out", "x.yaml"), ("Missing option", "'--format'")),
    ("schema-out-in-proc", ("topology", "schema", "--out", "/proc/x.json"), ("--out", "'/proc'", "cannot create")),
    ("schema-out-in-sys", ("topology", "schema", "--out", "/sys/x.json"), ("--out", "'/sys'", "cannot create")),
    ("schema-out-missing-folder", ("topology", "schema", "--out", "no/x.json"), ("--out", "'no'", "does not exist")),
    ("schema-out-under-a-file", ("topology", "schema", "--out", "file.txt/x.json"), ("--out", "not a directory")),
    ("schema-out-a-folder", ("topology", "schema", "--out", "folder"), ("'--out'", "folder", "directory")),
    ("render-out-missing-folder", ("topology", "render", "--cells", "5", "--out", "/nonexistent/dir/x.png"),
     ("--out", "'/nonexistent/dir'", "does not exist")),
    ("render-out-relative-missing", ("topology", "render", "--cells", "5", "--out", "pics/x.png"),
     ("--out", "'pics'", "does not exist")),
    ("render-out-bmp", ("topology", "render", "--cells", "5", "--out", "x.bmp"), ("x.bmp",)),
    ("render-both-sources", ("topology", "render", "--cells", "5", "--topology", "city.yaml", "--out", "x.png"),
     ("exactly one of --topology FILE or --cells N",)),
    ("render-no-source", ("topology", "render", "--out", "x.png"), ("exactly one of --topology FILE or --cells N",)),
    ("render-cells-zero", ("topology", "render", "--cells", "0", "--out", "x.png"), ("'--cells'",)),
    ("render-slice-without-live", ("topology", "render", "--cells", "5", "--slice", "cars", "--out", "x.png"),
     ("--slice", "--live")),
    ("validate-no-file", ("topology", "validate"), ("Missing argument", "'FILE'")),
    ("validate-two-files", ("topology", "validate", "city.yaml", "city.yaml"), ("unexpected extra argument",)),
    ("unknown-command", ("topology", "frobnicate"), ("No such command", "'frobnicate'")),
    ("unknown-group", ("frobnicate",), ("No such command", "'frobnicate'")),
    ("unknown-top-option", ("--frobnicate", "topology"), ("No such option", "'--frobnicate'")),
    ("show-output-xml", ("topology", "show", "city.yaml", "-o", "xml"), ("'-o' / '--output'", "'xml'")),
    ("plan-fail-site-unknown", ("plan", "--topology", "city.yaml", "slice.yaml", "--fail-site", "edge-9"),
     ("--fail-site", "'edge-9'", "not in topology")),
    ("plan-fail-link-format", ("plan", "--topology", "city.yaml", "slice.yaml", "--fail-link", "a1-e1"),
     ("link 'a1-e1'", "expected A:B")),
    ("plan-fail-link-unknown", ("plan", "--topology", "city.yaml", "slice.yaml", "--fail-link", "c1:e1"),
     ("--fail-link", "c1:e1", "not in topology")),
    ("plan-order-unknown", ("plan", "--topology", "city.yaml", "slice.yaml", "--order", "random"),
     ("'--order'", "'random'")),
    ("plan-no-slices", ("plan", "--topology", "city.yaml"), ("Missing argument", "SLICE_FILES")),
    ("plan-no-topology", ("plan", "slice.yaml"), ("Missing option", "'--topology'")),
    ("controller-run-cells-zero", ("controller", "run", "--cells", "0", "--state-dir", "state"), ("'--cells'",)),
    ("controller-run-metrics-port", ("controller", "run", "--metrics-port", "70000", "--state-dir", "state"),
     ("'--metrics-port'", "70000")),
    ("controller-run-lease-nan", ("controller", "run", "--agent-lease", "nan", "--state-dir", "state"),
     ("'--agent-lease'", "'nan' is not a finite number")),
    ("controller-run-heartbeat-inf", ("controller", "run", "--agent-heartbeat", "inf", "--state-dir", "state"),
     ("'--agent-heartbeat'", "inf is not in the range")),
    ("controller-run-sla-window-nan", ("controller", "run", "--sla-window", "nan", "--state-dir", "state"),
     ("'--sla-window'", FINITE)),
    ("slice-list-timeout-nan", ("slice", "list", "--timeout", "nan", "--server", NOWHERE), ("'--timeout'", FINITE)),
    ("top-interval-nan", ("top", "--interval", "nan", "--once", "--server", NOWHERE), ("'--interval'", FINITE)),
):  # fmt: skip
    code = 4 if id in ("plan-fail-site-unknown", "plan-fail-link-unknown") else 2
    case(f"flag-{id}", args, *says, code=code, absent=("/proc/c.yaml", "/nonexistent"),
         files={"city.yaml": CITY_YAML, "slice.yaml": SLICE_YAML, "file.txt": "x\n", "folder/keep": ""})  # fmt: skip

# -- slice documents: through `slice apply` (validated before any connection) and `plan` ----------

APPLY = ("slice", "apply", "-f", "slice.yaml", "--server", NOWHERE, "--timeout", "1")
PLAN = ("plan", "--topology", "city.yaml", "slice.yaml")


def bad_slice(id: str, path: str, value: Any, *says: str, via: str = "apply") -> None:
    case(f"slice-{id}", APPLY if via == "apply" else PLAN, "slice.yaml[doc 1]", *says,
         files={"slice.yaml": as_yaml(edited(SLICE, path, value)), "city.yaml": CITY_YAML})  # fmt: skip


LAT = "spec.sla.latencyMs"
for id, path, value, where, problem in (
    ("latency-inf", LAT, float("inf"), "spec.sla.latencyMs", FINITE),
    ("latency-nan", LAT, float("nan"), "spec.sla.latencyMs", FINITE),
    ("latency-minus-inf", LAT, float("-inf"), "spec.sla.latencyMs", FINITE),
    ("latency-zero", LAT, 0, "spec.sla.latencyMs", "greater than 0"),
    ("latency-1001", LAT, 1001, "spec.sla.latencyMs", "less than or equal to 1000"),
    ("latency-text", LAT, "fast", "spec.sla.latencyMs", "valid number"),
    ("dl-inf", "spec.sla.dlMbpsPerCell", float("inf"), "spec.sla.dlMbpsPerCell", FINITE),
    ("dl-negative", "spec.sla.dlMbpsPerCell", -1, "spec.sla.dlMbpsPerCell", "greater than or equal to 0"),
    ("dl-1e300", "spec.sla.dlMbpsPerCell", 1e300, "spec.sla.dlMbpsPerCell", "less than or equal to 100000"),
    ("ul-nan", "spec.sla.ulMbpsPerCell", float("nan"), "spec.sla.ulMbpsPerCell", FINITE),
    ("reliability-one", "spec.sla.reliability", 1, "spec.sla.reliability", "less than 1"),
    ("reliability-nan", "spec.sla.reliability", float("nan"), "spec.sla.reliability", FINITE),
    ("max-devices-zero", "spec.sla.maxDevices", 0, "spec.sla.maxDevices", "greater than or equal to 1"),
    ("max-devices-1e30", "spec.sla.maxDevices", 10**30, "spec.sla.maxDevices", "less than or equal"),
    ("sla-unknown-field", "spec.sla.jitterMs", 1, "spec.sla.jitterMs", "unknown field"),
    ("circle-lat-nan", "spec.coverage.circle", {"lat": float("nan"), "lon": 2.35, "radiusKm": 1},
     "spec.coverage.circle.lat", FINITE),
    ("circle-radius-inf", "spec.coverage.circle", {"lat": 48.8, "lon": 2.35, "radiusKm": float("inf")},
     "spec.coverage.circle.radiusKm", FINITE),
    ("circle-radius-zero", "spec.coverage.circle", {"lat": 48.8, "lon": 2.35, "radiusKm": 0},
     "spec.coverage.circle.radiusKm", "greater than 0"),
    ("circle-radius-501", "spec.coverage.circle", {"lat": 48.8, "lon": 2.35, "radiusKm": 501},
     "spec.coverage.circle.radiusKm", "less than or equal to 500"),
    ("coverage-empty", "spec.coverage", {}, "spec.coverage", "at least one of sites, zones or circle"),
    ("coverage-missing", "spec.coverage", DELETE, "spec.coverage", "Field required"),
    ("namespace-kube-system", "metadata.namespace", "kube-system", "metadata.namespace", "cluster-scoped"),
    ("namespace-default", "metadata.namespace", "default", "metadata.namespace", "cluster-scoped"),
    ("metadata-uid", "metadata.uid", "1234", "metadata.uid", "unknown field"),
    ("metadata-creation-timestamp", "metadata.creationTimestamp", "2026-01-01T00:00:00Z",
     "metadata.creationTimestamp", "unknown field"),
    ("metadata-generate-name", "metadata.generateName", "cars-", "metadata.generateName", "unknown field"),
    ("name-missing", "metadata.name", DELETE, "metadata.name", "Field required"),
    ("name-upper-case", "metadata.name", "Cars", "metadata.name", "should match pattern"),
    ("name-underscore", "metadata.name", "my_cars", "metadata.name", "should match pattern"),
    ("name-64-chars", "metadata.name", "c" * 64, "metadata.name", "at most 63 characters"),
    ("label-not-text", "metadata.labels", {"team": 7}, "metadata.labels.team", "valid string"),
    ("spec-kind-unknown", "spec.kind", "drone", "spec.kind", "'iot', 'vehicle' or 'wifi'"),
    ("spec-kind-missing", "spec.kind", DELETE, "spec.kind", "Field required"),
    ("kind-deployment", "kind", "Deployment", "kind", "'NetworkSlice'"),
    ("api-version-v2", "apiVersion", "edgeslice.io/v2", "apiVersion", "'edgeslice.io/v1alpha1'"),
    ("sst-zero", "spec.snssai", {"sst": 0}, "spec.snssai.sst", "greater than or equal to 1"),
    ("sst-256", "spec.snssai", {"sst": 256}, "spec.snssai.sst", "less than or equal to 255"),
    ("sd-not-hex", "spec.snssai", {"sst": 4, "sd": "XYZXYZ"}, "spec.snssai.sd", "should match pattern"),
    ("priority-1001", "spec.priority", 1001, "spec.priority", "less than or equal to 1000"),
    ("priority-negative", "spec.priority", -1, "spec.priority", "greater than or equal to 0"),
    ("priority-inf", "spec.priority", float("inf"), "spec.priority", FINITE),
    ("preemptible-text", "spec.preemptible", "perhaps", "spec.preemptible", "valid boolean"),
    ("isolation-unknown", "spec.isolation", "total", "spec.isolation", "'shared' or 'dedicated'"),
    ("spec-unknown-field", "spec.colour", "red", "spec.colour", "unknown field"),
    ("top-level-unknown-field", "status", {"state": "Ready"}, "status", "unknown field"),
    ("workload-cpu-zero", "spec.workloads.0.cpuMillicores", 0, "spec.workloads[0].cpuMillicores",
     "greater than or equal to 1"),
    ("workload-cpu-2-63", "spec.workloads.0.cpuMillicores", 2**63, "spec.workloads[0].cpuMillicores",
     "less than or equal"),
    ("workload-port-70000", "spec.workloads.0.port", 70000, "spec.workloads[0].port", "less than or equal to 65535"),
    ("workload-image-empty", "spec.workloads.0.image", "", "spec.workloads[0].image", "at least 1 character"),
    ("workloads-same-name", "spec.workloads", [SLICE["spec"]["workloads"][0]] * 2, "spec.workloads",
     "workload name 'app' is used twice"),
):  # fmt: skip
    bad_slice(id, path, value, where, problem)
for id, path, value, where, problem in (
    ("latency-inf", LAT, float("inf"), "spec.sla.latencyMs", FINITE),
    ("reliability-nan", "spec.sla.reliability", float("nan"), "spec.sla.reliability", FINITE),
    ("namespace", "metadata.namespace", "kube-system", "metadata.namespace", "cluster-scoped"),
    ("metadata-uid", "metadata.uid", "1234", "metadata.uid", "unknown field"),
    ("circle-radius-inf", "spec.coverage.circle", {"lat": 48.8, "lon": 2.35, "radiusKm": float("inf")},
     "spec.coverage.circle.radiusKm", FINITE),
):  # fmt: skip
    bad_slice(f"plan-{id}", path, value, where, problem, via="plan")

for id, text, says in (
    ("duplicate-key-in-spec", SLICE_YAML.replace("  kind: vehicle\n", "  kind: vehicle\n  kind: iot\n"),
     ("slice.yaml", "key 'kind' is given twice")),
    ("duplicate-key-in-metadata", SLICE_YAML.replace("  name: cars\n", "  name: cars\n  name: bikes\n"),
     ("slice.yaml", "line 5", "key 'name' is given twice (first at line 4)")),
    ("duplicate-key-in-second-document", SLICE_YAML + "---\n" + SLICE_YAML.replace("name: cars", "name: b")
     .replace("  latencyMs: 5\n", "  latencyMs: 5\n    latencyMs: 6\n"), ("slice.yaml", "latencyMs", "given twice")),
    ("5001-digit-priority", SLICE_YAML.replace("  kind: vehicle\n", f"  kind: vehicle\n  priority: {HUGE}\n"),
     ("slice.yaml", "integer of 5001 digits is too large")),
    ("unclosed-bracket", "spec: [\n", ("slice.yaml", "not valid YAML at line 2")),
    ("a-list", "- a\n- b\n", ("slice.yaml[doc 1]", "expected a mapping, got list")),
    ("a-string", "hello\n", ("slice.yaml[doc 1]", "expected a mapping, got str")),
    ("empty", "", ("slice.yaml", "no NetworkSlice documents")),
    ("only-separators", "---\n---\n", ("slice.yaml", "no NetworkSlice documents")),
    ("name-twice", SLICE_YAML + "---\n" + SLICE_YAML, ("slice.yaml[doc 2]", "metadata.name", "'cars' appears twice")),
    ("python-tag", "!!python/object/apply:os.system ['true']\n", ("slice.yaml", "not valid YAML")),
):  # fmt: skip
    case(f"slice-text-{id}", APPLY, *says, files={"slice.yaml": text})
case("slice-text-binary", APPLY, "slice.yaml", "not UTF-8", files={"slice.yaml": bytes(range(128, 256))})
case("slice-plan-binary", PLAN, "slice.yaml", "not UTF-8",
     files={"slice.yaml": b"\xff\xfe" + bytes(100), "city.yaml": CITY_YAML})  # fmt: skip
case("slice-plan-duplicate-key", PLAN, "slice.yaml", "key 'kind' is given twice",
     files={"slice.yaml": SLICE_YAML.replace("  kind: vehicle\n", "  kind: vehicle\n  kind: iot\n"),
            "city.yaml": CITY_YAML})  # fmt: skip
case("slice-plan-missing-file", ("plan", "--topology", "city.yaml", "gone.yaml"), "gone.yaml", "cannot read",
     files={"city.yaml": CITY_YAML})  # fmt: skip
case("slice-plan-name-in-two-files", ("plan", "--topology", "city.yaml", "slice.yaml", "again.yaml"),
     "again.yaml", "'cars' is also defined in slice.yaml",
     files={"city.yaml": CITY_YAML, "slice.yaml": SLICE_YAML, "again.yaml": SLICE_YAML})  # fmt: skip
for id, args, says, code in (
    ("missing-file", ("slice", "apply", "-f", "gone.yaml", "--server", NOWHERE), ("gone.yaml", "cannot read"), 2),
    ("empty-folder", ("slice", "apply", "-f", "folder", "--server", NOWHERE), ("folder", "no .yaml, .yml or .json"), 2),
    ("name-in-two-files", ("slice", "apply", "-f", "slice.yaml", "-f", "again.yaml", "--server", NOWHERE),
     ("again.yaml", "'cars' is also defined in slice.yaml"), 2),
    ("no-file-flag", ("slice", "apply", "--server", NOWHERE), ("Missing option", "'-f' / '--filename'"), 2),
    ("timeout-zero", ("slice", "apply", "-f", "slice.yaml", "--timeout", "0"), ("'--timeout'",), 2),
    ("ca-missing", ("slice", "apply", "-f", "slice.yaml", "--ca", "no-ca.pem"), ("'--ca'", "no-ca.pem"), 2),
    ("output-xml", ("slice", "apply", "-f", "slice.yaml", "-o", "xml"), ("'-o' / '--output'", "'xml'"), 2),
    ("unreachable", ("slice", "apply", "-f", "slice.yaml", "--server", NOWHERE, "--timeout", "2"),
     ("cannot reach the controller at 127.0.0.1:1",), 7),
):  # fmt: skip
    case(f"slice-apply-{id}", args, *says, code=code,
         files={"slice.yaml": SLICE_YAML, "again.yaml": SLICE_YAML, "folder/notes.txt": "x"})  # fmt: skip
for id, args, says in (  # kubectl habits: selectors, -o, durations, delete targets (all before connecting)
    ("list-selector-set-syntax", ("slice", "list", "-l", "tier in (gold)"), ("'-l' / '--selector'", "not a label key")),
    ("list-selector-empty-part", ("slice", "list", "-l", "a=b,"), ("'-l' / '--selector'", "empty requirement")),
    ("list-selector-bad-value", ("slice", "list", "-l", "a=b c"), ("'-l' / '--selector'", "not a label value")),
    ("list-output-xml", ("slice", "list", "-o", "xml"), ("'-o' / '--output'", "'xml'", "jsonpath=EXPR")),
    ("get-jsonpath-unclosed", ("slice", "get", "cars", "-o", "jsonpath={.name"), ("'-o' / '--output'", "without '}'")),
    ("get-jsonpath-range-open", ("slice", "get", "cars", "-o", "jsonpath={range .x[*]}"), ("'-o' / '--output'", "without {end}")),
    ("get-jsonpath-garbage", ("slice", "get", "cars", "-o", "jsonpath={.a..b}"), ("'-o' / '--output'", "cannot read the JSONPath")),
    ("events-since-bare-number", ("slice", "events", "--since", "10"), ("'--since'", "not a duration")),
    ("events-since-zero", ("slice", "events", "--since", "0m"), ("'--since'", "more than 0")),
    ("events-since-centuries", ("slice", "events", "--since", "40000d"), ("'--since'", "more than 100 years")),
    ("events-tail-zero", ("slice", "events", "--tail", "0"), ("'--tail'", "0")),
    ("delete-nothing", ("slice", "delete"), ("exactly one of NAME..., -f FILE, -l SELECTOR or --all",)),
    ("delete-name-and-all", ("slice", "delete", "cars", "--all"), ("exactly one of",)),
    ("delete-file-and-selector", ("slice", "delete", "-f", "slice.yaml", "-l", "a=b"), ("exactly one of",)),
    ("delete-file-missing", ("slice", "delete", "-f", "gone.yaml", "--server", NOWHERE), ("gone.yaml", "cannot read")),
):  # fmt: skip
    case(f"slice-{id}", args, *says, code=2, files={"slice.yaml": SLICE_YAML})
CONFIG = "../home/.config/edgeslice/config.yaml"  # the slicectl config file, under the fixture's HOME
for id, args, says, code, config in (  # contexts, completion, site: before any controller is reached
    ("context-unknown", ("slice", "list", "--context", "lab"), ("context 'lab' is not in", "contexts: none"), 4, None),
    ("context-unknown-env-file", ("site", "status", "--context", "b"), ("context 'b'", "(contexts: a)"), 4,
     "contexts: {a: {server: '127.0.0.1:1'}}\n"),
    ("config-use-unknown", ("config", "use-context", "lab"), ("context 'lab' is not in",), 4, None),
    ("config-delete-unknown", ("config", "delete-context", "lab"), ("context 'lab' is not in",), 4, None),
    ("config-no-current", ("config", "current-context"), ("no current context",), 4, None),
    ("config-set-bad-address", ("config", "set-context", "lab", "--address", "nope"), ("--address 'nope'", "expected HOST:PORT"), 2, None),
    ("config-set-bad-agents", ("config", "set-context", "lab", "--agents", "h:x"), ("--agents 'h:x'",), 2, None),
    ("config-set-bad-name", ("config", "set-context", "a b", "--address", "h:1"), ("NAME 'a b'", "without spaces"), 2, None),
    ("config-not-yaml", ("slice", "list"), ("config.yaml", "not valid YAML"), 2, "[\n"),
    ("config-a-list", ("slice", "list"), ("config.yaml", "expected a mapping"), 2, "- a\n"),
    ("config-unknown-top-field", ("slice", "list"), ("config.yaml", "users: unknown field"), 2, "users: []\n"),
    ("config-unknown-context-field", ("slice", "list"), ("contexts.a.colour: unknown field",), 2,
     "contexts: {a: {colour: red}}\n"),
    ("config-context-field-not-text", ("slice", "list"), ("contexts.a.server: expected text",), 2,
     "contexts: {a: {server: 5}}\n"),
    ("config-current-not-a-context", ("slice", "list"), ("current-context 'b' is not one of its contexts",), 2,
     "current-context: b\ncontexts: {a: {}}\n"),
    ("config-context-ca-missing", ("slice", "list"), ("context 'a'", "no such file"), 2,
     "current-context: a\ncontexts: {a: {server: '127.0.0.1:1', ca: /nonexistent/ca.pem}}\n"),
    ("config-context-token-file-missing", ("slice", "list"), ("token file /nonexistent/t", "cannot read"), 2,
     "current-context: a\ncontexts: {a: {server: '127.0.0.1:1', token-file: /nonexistent/t}}\n"),
    ("config-binary", ("slice", "list"), ("config.yaml", "not UTF-8"), 2, b"\xff\xfe\x00"),
    ("completion-unknown-shell", ("completion", "powershell"), ("'powershell'", "bash"), 2, None),
    ("completion-no-shell", ("completion",), ("Missing argument", "bash, zsh, fish"), 2, None),
    ("site-drain-no-site", ("site", "drain"), ("Missing argument", "SITE"), 2, None),
    ("site-what-if-nothing", ("site", "what-if"), ("at least one --fail-site or --fail-link",), 2, None),
    ("events-after-seq-negative", ("slice", "events", "--after-seq", "-1"), ("'--after-seq'", "-1"), 2, None),
    ("simulate-nothing-to-find", ("agent", "simulate", "--sites", "1"), ("no controller agent address", "--controller HOST:PORT"), 7, None),
):  # fmt: skip
    case(f"cli-{id}", args, *says, code=code, files={CONFIG: config} if config is not None else {})

# Issue 13 items 4-6: dry runs, diffs, cordons, fingerprints, simulators of the controller's city.
for id, args, says in (
    ("apply-dry-run-bogus", ("slice", "apply", "-f", "slice.yaml", "--dry-run=yes"), ("'--dry-run'", "'yes'")),
    ("diff-no-file-flag", ("slice", "diff", "--server", NOWHERE), ("Missing option", "'-f' / '--filename'")),
    ("diff-file-missing", ("slice", "diff", "-f", "gone.yaml", "--server", NOWHERE), ("gone.yaml", "cannot read")),
    ("diff-bad-document", ("slice", "diff", "-f", "bad.yaml", "--server", NOWHERE), ("bad.yaml", "spec.colour")),
    ("topology-fingerprint-missing", ("topology", "fingerprint", "gone.json"), ("gone.json", "cannot read")),
    ("topology-fingerprint-binary", ("topology", "fingerprint", "city.bin"), ("city.bin", "not UTF-8")),
    ("topology-cordon-no-site", ("topology", "cordon"), ("Missing argument", "'SITE'")),
    ("topology-uncordon-no-site", ("topology", "uncordon", "--server", NOWHERE), ("Missing argument", "'SITE'")),
    ("topology-drain-force-value", ("topology", "drain", "edge-1", "--force=yes"), ("--force", "does not take a value")),
    ("plan-order-bogus", ("plan", "--topology", "gone.json", "slice.yaml", "--order", "live"), ("'--order'", "'live'")),
    ("agent-simulate-topology-missing",
     ("agent", "simulate", "--controller", NOWHERE, "--sites", "1", "--topology", "gone.json"), ("gone.json", "cannot read")),
):  # fmt: skip
    case(f"ops-{id}", args, *says, code=2, files={
        "slice.yaml": SLICE_YAML, "bad.yaml": SLICE_YAML.replace("spec:\n", "spec:\n  colour: red\n"),
        "city.bin": b"\x00\xff\xfe" * 10})  # fmt: skip
for id, args, says in (
    ("slice-apply-dry-run-unreachable",
     ("slice", "apply", "-f", "slice.yaml", "--dry-run=server", "--server", NOWHERE, "--timeout", "2"),
     ("cannot reach the controller at 127.0.0.1:1",)),
    ("slice-diff-unreachable", ("slice", "diff", "-f", "slice.yaml", "--server", NOWHERE, "--timeout", "2"),
     ("cannot reach the controller at 127.0.0.1:1",)),
    ("topology-cordon-unreachable", ("topology", "cordon", "edge-1", "--server", NOWHERE, "--timeout", "2"),
     ("cannot reach the controller at 127.0.0.1:1", "nothing was sent")),
    ("agent-simulate-controller-topology-unreachable",
     ("agent", "simulate", "--controller", NOWHERE, "--sites", "1", "--server", NOWHERE, "--timeout", "2"),
     ("cannot reach the controller at 127.0.0.1:1",)),
):  # fmt: skip
    case(f"ops-{id}", args, *says, code=7, files={"slice.yaml": SLICE_YAML})


# -- running them --------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def prepare(folder: Path, files: Mapping[str, str | bytes], state_db: bool = False) -> None:
    if state_db:
        from controller.process.config import DEFAULT_STATE_FILE
        from controller.runtime import store

        (folder / "state").mkdir()
        store.Store.open(folder / "state" / DEFAULT_STATE_FILE).close()
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working folder; HOME and the state folder inside it, no controller discoverable."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    clear_client_env(monkeypatch, "EDGESLICE_CONFIG", "XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EDGESLICE_STATE_DIR", str(tmp_path / "home" / "state"))
    yield work


def run_cli(args: tuple[str, ...]) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="slicectl")


def check(c: Case, code: int, stdout: str, stderr: str) -> None:
    """The contract every case keeps (the exit code, one line naming the problem, no traceback)."""
    assert "Traceback" not in stdout + stderr, stderr
    assert code == c.code, f"exit {code}, want {c.code}; stderr: {stderr!r}"
    assert stdout == "", stdout
    lines = stderr.splitlines()
    assert len(lines) == 1, f"want one line, got {len(lines)}: {stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    missing = [s for s in c.says if s not in lines[0]]
    assert not missing, f"{lines[0]!r} does not say {missing}"


def unchanged(c: Case, before: dict[str, bytes], folder: Path) -> None:
    after = snapshot(folder)
    if c.state_dir:  # the controller takes its lock before reading the topology: empty lock files only
        after = {
            k: v
            for k, v in after.items()
            if not (k.startswith("state/") and k.endswith(".lock") and v == b"")
        }
    assert after == before, f"files changed: {sorted(set(after) ^ set(before)) or 'contents'}"
    for path in c.absent:
        assert not Path(path).exists(), path


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input(c: Case, folder: Path) -> None:
    prepare(folder, c.files, c.state_db)
    before = snapshot(folder)
    result = run_cli(c.args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        pytest.fail("".join(traceback.format_exception(result.exception)))
    check(c, result.exit_code, result.stdout, result.stderr)
    unchanged(c, before, folder)


def test_corpus_is_large_and_ids_are_unique() -> None:
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


# A representative handful as real processes of the installed entry point: the same exit code and
# the same bytes on stderr as through CliRunner, so the bulk above tests what an operator sees.
SUBPROCESS_CASES = [
    "radio-inf",
    "cpu-2-63",
    "yaml-5001-digit-integer",
    "binary-random-bytes",
    "yaml-duplicate-top-level-key",
    "controller-run-radio-inf",
    "flag-export-out-in-proc",
    "flag-schema-out-in-proc",
    "flag-render-out-missing-folder",
    "graphml-flag-out-in-sys",
    "slice-latency-inf",
    "slice-namespace-kube-system",
    "flag-cells-zero",
    "flag-unknown-top-option",
]
BY_ID = {c.id: c for c in CASES}


@pytest.mark.parametrize("id", SUBPROCESS_CASES)
def test_real_process_says_the_same(id: str, folder: Path) -> None:
    c = BY_ID[id]
    prepare(folder, c.files, c.state_db)
    before = snapshot(folder)
    proc = subprocess.run(
        [str(SLICECTL), *c.args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )
    check(c, proc.returncode, proc.stdout, proc.stderr)
    unchanged(c, before, folder)
    in_process = run_cli(c.args)
    assert (in_process.exit_code, in_process.stderr) == (proc.returncode, proc.stderr)
    unchanged(c, before, folder)
