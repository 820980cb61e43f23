"""GraphML import (Topology Zoo style) and export round trips."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from controller.core import citygen, graphml
from controller.core import topology as topo
from controller.core import topology_file as tf
from slices import errors
from slices.intent import Coverage
from tests.support.paths import DATA

ABILENE = DATA / "abilene.graphml"
NODE_KEYS = """
  <key attr.name="label" attr.type="string" for="node" id="d1" />
  <key attr.name="Latitude" attr.type="double" for="node" id="d2" />
  <key attr.name="Longitude" attr.type="double" for="node" id="d3" />
  <key attr.name="LinkSpeed" attr.type="string" for="edge" id="d4" />
  <key attr.name="LinkSpeedUnits" attr.type="string" for="edge" id="d5" />
  <key attr.name="Delay" attr.type="double" for="edge" id="d6" />
"""


def write_graphml(tmp_path: Path, nodes: str, edges: str, keys: str = NODE_KEYS) -> Path:
    path = tmp_path / "net.graphml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
        f'{keys}<graph edgedefault="undirected">{nodes}{edges}</graph></graphml>\n'
    )
    return path


def node(nid: str, label: str | None, lat: float | None, lon: float | None) -> str:
    parts = [f'<data key="d1">{label}</data>' if label is not None else ""]
    parts.append(f'<data key="d2">{lat}</data>' if lat is not None else "")
    parts.append(f'<data key="d3">{lon}</data>' if lon is not None else "")
    return f'<node id="{nid}">{"".join(parts)}</node>'


def edge(a: str, b: str, data: str = "") -> str:
    return f'<edge source="{a}" target="{b}">{data}</edge>'


@pytest.fixture(scope="module")
def abilene() -> tf.TopologyFile:
    return graphml.import_graphml(ABILENE, seed=1)


def test_abilene_imports_as_a_plannable_topology(abilene: tf.TopologyFile) -> None:
    count = Counter(s.kind.value for s in abilene.sites)
    assert count == {"aggregation": 8, "edge": 2, "core": 1, "cell": 33}
    assert abilene.name == "abilene-like"
    city = topo.Topology.from_file(abilene)
    # Highest degree (3) first, ties broken by node id: Sunnyvale (4) and Denver (6).
    assert city.edge_sites == ("sunnyvale", "denver")
    assert [s.id for s in abilene.sites if s.kind == tf.SiteKind.CORE] == ["kansas-city"]
    assert city.sites["denver"].node_label == "denver"
    assert city.sites["denver"].cpu_millicores == 256_000
    backbone = [
        ln
        for ln in city.links
        if city.sites[ln.a].kind != tf.SiteKind.CELL and city.sites[ln.b].kind != tf.SiteKind.CELL
    ]
    assert len(backbone) == 14
    assert {ln.bandwidth_kbps for ln in backbone} == {10_000_000}  # LinkSpeedRaw 10 Gbit/s
    # Every cell is planned on: New York is far from the western edge sites but reachable.
    for c in city.cells:
        assert min(city.latency_to(c, e) for e in city.edge_sites) < 40
    ny = city.routes("cell-new-york-1", max_latency_ms=40)[0]
    assert ny.nodes[:2] == ("cell-new-york-1", "new-york")
    assert 15 < ny.latency_ms < 30  # New York to Denver through Chicago and Kansas City, ~3000 km of fibre
    assert city.cells_in(city_zone("houston", city)) == ("cell-houston-1", "cell-houston-2", "cell-houston-3")


def city_zone(zone: str, city: topo.Topology) -> Coverage:

    assert zone in city.zones()
    return Coverage(zones=(zone,))


def test_latency_from_great_circle_distance(abilene: tf.TopologyFile) -> None:
    (ny_chicago,) = [ln for ln in abilene.links if {ln.a, ln.b} == {"new-york", "chicago"}]
    assert ny_chicago.length_km == pytest.approx(1145 * citygen.ROUTE_FACTOR, rel=0.01)


def test_cells_around_each_node(abilene: tf.TopologyFile) -> None:
    sites = {s.id: s for s in abilene.sites}
    for s in abilene.sites:
        if s.kind != tf.SiteKind.CELL:
            continue
        home = s.id.removeprefix("cell-").rsplit("-", 1)[0]
        d = topo.haversine_km(
            s.location.lat, s.location.lon, sites[home].location.lat, sites[home].location.lon
        )
        assert graphml.CELL_RING_KM[0] - 0.01 <= d <= graphml.CELL_RING_KM[1] + 0.01
        assert s.zones == (home,)


def test_same_seed_same_import() -> None:
    assert graphml.import_graphml(ABILENE, seed=4) == graphml.import_graphml(ABILENE, seed=4)
    assert graphml.import_graphml(ABILENE, seed=4) != graphml.import_graphml(ABILENE, seed=5)


def test_options(tmp_path: Path) -> None:
    city = graphml.import_graphml(
        ABILENE, edge_nodes=["New York", "atlanta"], cells_per_node=1, capacity_scale=0.5, name="us"
    )
    assert city.name == "us"
    assert sorted(s.id for s in city.sites if s.kind == tf.SiteKind.EDGE) == ["atlanta", "new-york"]
    assert sum(s.kind == tf.SiteKind.CELL for s in city.sites) == 11
    assert {s.capacity.radio_mbps for s in city.sites if s.kind == tf.SiteKind.CELL} <= {
        m / 2 for m in citygen.CELL_RADIO_MBPS
    }
    four = graphml.import_graphml(ABILENE, edge_sites=4)
    assert sum(s.kind == tf.SiteKind.EDGE for s in four.sites) == 4


def test_close_neighbours_dual_home_cells(tmp_path: Path) -> None:
    path = write_graphml(
        tmp_path,
        node("0", "Paris", 48.8566, 2.3522)
        + node("1", "Saint-Denis", 48.9362, 2.3574)
        + node("2", "Lyon", 45.764, 4.8357),
        edge("0", "1") + edge("1", "2"),
    )
    city = topo.Topology.from_file(graphml.import_graphml(path, cells_per_node=2, edge_sites=1))
    for c in ("cell-paris-1", "cell-paris-2"):
        assert {h for h, _ in city.homes(c)} == {"paris", "saint-denis"}
    assert {h for h, _ in city.homes("cell-lyon-1")} == {"lyon"}  # 390 km from the others
    assert {ln.bandwidth_kbps for ln in city.links if "cell" not in ln.a} == {round(citygen.RING_MBPS * 1000)}


def test_speed_with_units_and_latency_attribute(tmp_path: Path) -> None:
    path = write_graphml(
        tmp_path,
        node("0", "A", 0, 0) + node("1", "B", 0, 1),
        edge("0", "1", '<data key="d4">2.5</data><data key="d5">G</data><data key="d6">3.5</data>'),
    )
    mapping = graphml.GraphmlMapping(speed="LinkSpeed", latency="Delay")
    city = graphml.import_graphml(path, mapping, cells_per_node=0, edge_sites=1)
    (ln,) = city.links
    assert ln.bandwidth_mbps == 2500
    assert ln.latency_ms == 3.5 and ln.length_km is None


def test_names_from_node_ids_and_duplicates(tmp_path: Path) -> None:
    path = write_graphml(
        tmp_path,
        node("n1", "Hub", 0, 0)
        + node("n2", "Hub", 0, 1)
        + node("n10", "Hub", 0, 2)
        + node("n11", "Zürich " + "x" * 70, 0, 3)
        + node("n12", "!!!", 0, 4),
        edge("n1", "n2") + edge("n2", "n10") + edge("n10", "n11") + edge("n11", "n12"),
    )
    city = graphml.import_graphml(path, cells_per_node=10)
    ids = [s.id for s in city.sites if s.kind != tf.SiteKind.CELL]
    assert ids == ["hub", "hub-2", "hub-3", "zurich-" + "x" * 41, "node-n12"]
    assert f"cell-zurich-{'x' * 41}-10" in {s.id for s in city.sites}
    by_id = graphml.import_graphml(path, graphml.GraphmlMapping(name="id"), cells_per_node=0)
    assert [s.id for s in by_id.sites] == ["n1", "n2", "n10", "n11", "n12"]


def test_parallel_edges_and_self_loops_are_merged(tmp_path: Path) -> None:
    path = tmp_path / "multi.graphml"
    path.write_text(
        ABILENE.read_text().replace(
            'edgedefault="undirected">',
            'edgedefault="undirected">'
            '<edge source="0" target="1"><data key="d8">40000000000.0</data></edge>'
            '<edge source="2" target="2"><data key="d8">1.0</data></edge>',
            1,
        )
    )
    city = graphml.import_graphml(path, cells_per_node=0)
    (ny_chicago,) = [ln for ln in city.links if {ln.a, ln.b} == {"new-york", "chicago"}]
    assert ny_chicago.bandwidth_mbps == 40_000
    assert len(city.links) == 14


@pytest.mark.parametrize(
    ("nodes", "edges", "mapping", "message"),
    [
        (
            node("0", "A", 0, 0) + node("1", "B", None, 1),
            edge("0", "1"),
            graphml.GraphmlMapping(),
            "node '1' (b): no Latitude attribute; coordinates are needed",
        ),
        (
            node("0", "A", 0, 0),
            "",
            graphml.GraphmlMapping(lat="Lat"),
            "mapping.lat: no node has attribute 'Lat'; node attributes are: Latitude, Longitude, label",
        ),
        (
            node("0", "A", 0, 0),
            "",
            graphml.GraphmlMapping(name="City"),
            "mapping.name: no node has attribute 'City'",
        ),
        (
            node("0", "A", 0, 0) + node("1", "B", 0, 1),
            edge("0", "1"),
            graphml.GraphmlMapping(speed="Capacity"),
            "mapping.speed: no edge has attribute 'Capacity'; edge attributes are: (none)",
        ),
        (
            node("0", "A", 0, 0) + node("1", "B", 0, 1),
            edge("0", "1", '<data key="d4">fast</data>'),
            graphml.GraphmlMapping(speed="LinkSpeed"),
            "edge 0-1: LinkSpeed='fast' is not a positive speed",
        ),
        (
            node("0", "A", 0, 0) + node("1", "B", 0, 1),
            edge("0", "1", '<data key="d4">10</data><data key="d5">Q</data>'),
            graphml.GraphmlMapping(speed="LinkSpeed"),
            "edge 0-1: unknown speed unit 'Q'",
        ),
        ("", "", graphml.GraphmlMapping(), "the graph has no nodes"),
    ],
)
def test_precise_errors(
    tmp_path: Path, nodes: str, edges: str, mapping: graphml.GraphmlMapping, message: str
) -> None:
    path = write_graphml(tmp_path, nodes, edges)
    with pytest.raises(errors.TopologyError) as caught:
        graphml.import_graphml(path, mapping)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_unknown_edge_node() -> None:
    with pytest.raises(errors.TopologyError, match="edgeNodes: no node named 'Boston'"):
        graphml.import_graphml(ABILENE, edge_nodes=["Boston"])


def test_not_graphml_and_missing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.graphml"
    bad.write_text("<graphml><graph>")
    with pytest.raises(errors.TopologyError, match=r"bad\.graphml: not valid GraphML"):
        graphml.import_graphml(bad)
    with pytest.raises(errors.TopologyError, match=r"none\.graphml: cannot read: no such file"):
        graphml.import_graphml(tmp_path / "none.graphml")


@pytest.mark.parametrize("source", ["generated", "abilene"])
def test_export_then_import_gives_the_same_sites_and_links(
    tmp_path: Path, source: str, abilene: tf.TopologyFile
) -> None:
    city = citygen.generate_city(150, seed=5) if source == "generated" else abilene
    path = tmp_path / "out.graphml"
    graphml.export_graphml(city, path)
    again = graphml.import_graphml(path, graphml.GraphmlMapping(lat="nope"), edge_sites=9)
    assert again == city
    # The export is plain Zoo-style GraphML that other tools read as a graph.
    graph = graphml.read_graph(path)
    assert graph.number_of_nodes() == len(city.sites)
    assert {"Latitude", "Longitude", "label", "kind"} <= set(graph.nodes[city.sites[0].id])


def test_a_slice_can_be_planned_on_the_imported_network(abilene: tf.TopologyFile) -> None:
    from controller.core import planner
    from slices.intent import NetworkSlice
    from slices.profiles import resolve

    city = topo.Topology.from_file(abilene)
    wifi = resolve(
        NetworkSlice.model_validate(
            {
                "metadata": {"name": "houston-wifi"},
                "spec": {
                    "kind": "wifi",
                    "snssai": {"sst": 1, "sd": "000001"},
                    "coverage": {"zones": ["houston"]},
                    "sla": {"latencyMs": 30, "dlMbpsPerCell": 200, "ulMbpsPerCell": 20},
                },
            }
        )
    )
    result = planner.plan([wifi], city)
    assert [(d.slice_name, d.outcome.value) for d in result.decisions] == [("houston-wifi", "admitted")]
    placement = result.state.admitted["houston-wifi"][1]
    assert set(placement.edge_sites) <= set(city.edge_sites)
    assert {a.cell for a in placement.assignments} == {"cell-houston-1", "cell-houston-2", "cell-houston-3"}
    assert placement.worst_latency_ms <= 30
