"""Building the city graph: cross-reference checks, reachability, routes, failures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.core import topology as topo
from controller.core import topology_file as tf
from slices import errors
from slices.intent import Coverage


def cell(sid: str, lat: float = 0.0, lon: float = 0.0, zones: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "id": sid,
        "kind": "cell",
        "location": {"lat": lat, "lon": lon},
        "zones": list(zones),
        "capacity": {"radioMbps": 1000},
    }


def agg(sid: str, lon: float = 0.01) -> dict[str, Any]:
    return {"id": sid, "kind": "aggregation", "location": {"lat": 0, "lon": lon}}


def edge(sid: str, lon: float = 0.02, label: str | None = None) -> dict[str, Any]:
    site: dict[str, Any] = {
        "id": sid,
        "kind": "edge",
        "location": {"lat": 0, "lon": lon},
        "capacity": {"cpuMillicores": 64000, "memoryMib": 262144},
    }
    if label is not None:
        site["nodeLabel"] = label
    return site


def link(a: str, b: str, ms: float = 0.5, mbps: float = 10000) -> dict[str, Any]:
    return {"a": a, "b": b, "bandwidthMbps": mbps, "latencyMs": ms}


def ring_city() -> dict[str, Any]:
    """Two dual-homed cells, a ring of three aggregation sites, two edge sites."""
    return {
        "name": "ring",
        "sites": [
            cell("c1", zones=("downtown",)),
            cell("c2", lon=0.05, zones=("corridor-1",)),
            agg("a1"),
            agg("a2", 0.03),
            agg("a3", 0.04),
            edge("e1", 0.02, "edge-west"),
            edge("e2", 0.06),
        ],
        "links": [
            link("c1", "a1", 0.1),
            link("c1", "a2", 0.3),
            link("c2", "a2", 0.1),
            link("c2", "a3", 0.2),
            link("a1", "a2", 1.0, 100000),
            link("a2", "a3", 1.0, 100000),
            link("a3", "a1", 1.0, 100000),
            link("a1", "e1", 0.5, 100000),
            link("a3", "e2", 2.0, 100000),
        ],
    }


def build(document: dict[str, Any]) -> topo.Topology:
    return topo.Topology.from_file(tf.parse_topology(document))


def problem(document: dict[str, Any]) -> str:
    with pytest.raises(errors.TopologyError) as caught:
        build(document)
    return str(caught.value)


def test_ring_city_builds() -> None:
    city = build(ring_city())
    assert city.cells == ("c1", "c2")
    assert city.edge_sites == ("e1", "e2")
    assert city.sites["e1"].node_label == "edge-west"
    assert city.sites["e2"].node_label == "e2"  # an edge site's label defaults to its id
    assert city.sites["c1"].radio_kbps == 1_000_000
    assert city.links[4].bandwidth_kbps == 100_000_000
    assert city.link(("a2", "a1")).index == 4
    assert repr(city) == "Topology('ring', 7 sites, 9 links)"
    assert city.graph.number_of_edges() == 9
    assert city.graph.edges["a3", "e2"]["latency"] == 2.0


def test_duplicate_site_id() -> None:
    doc = ring_city()
    doc["sites"].append(agg("a2", 0.07))
    assert problem(doc) == "sites[7].id: duplicate site id 'a2'"


def test_unknown_endpoint() -> None:
    doc = ring_city()
    doc["links"].append(link("a1", "a9"))
    assert problem(doc) == "links[9]: unknown endpoint 'a9'"


def test_duplicate_link_in_either_direction() -> None:
    doc = ring_city()
    doc["links"].append(link("a2", "c1"))
    assert problem(doc) == "links[9]: duplicate link a2:c1"


def test_link_between_two_cells() -> None:
    doc = ring_city()
    doc["links"].append(link("c1", "c2"))
    assert problem(doc) == "links[9]: c1:c2 joins two cells; cells attach to aggregation, edge or core sites"


def test_no_edge_site() -> None:
    doc = ring_city()
    doc["sites"] = [s for s in doc["sites"] if s["kind"] != "edge"]
    doc["links"] = [ln for ln in doc["links"] if not ln["b"].startswith("e")]
    assert problem(doc) == "sites: no edge site; slices need at least one site of kind 'edge'"


def test_shared_node_label() -> None:
    doc = ring_city()
    doc["sites"][6]["nodeLabel"] = "edge-west"
    assert problem(doc) == "sites[6].nodeLabel: 'edge-west' already pins workloads to edge site 'e1'"


def test_cell_without_path_to_an_edge_site() -> None:
    doc = ring_city()
    doc["sites"] += [cell("c3"), cell("c4"), agg("island")]
    doc["links"] += [link("c3", "island"), link("c4", "island")]
    assert problem(doc) == "sites: cell 'c3' (and 1 more) has no path to any edge site"


def test_lone_cell_without_links() -> None:
    doc = ring_city()
    doc["sites"].append(cell("c9"))
    assert problem(doc) == "sites: cell 'c9' has no path to any edge site"


def test_cells_are_never_transit() -> None:
    # a2 reaches e1 only through cell c1: that is no path.
    doc = {
        "sites": [cell("c1"), agg("a2"), edge("e1"), cell("c2")],
        "links": [link("c1", "e1"), link("c1", "a2"), link("c2", "a2")],
    }
    assert problem(doc) == "sites: cell 'c2' has no path to any edge site"


def test_all_reference_problems_reported_together_and_capped() -> None:
    doc = ring_city()
    doc["links"] += [link("a1", f"x{i}") for i in range(12)]
    doc["sites"].append(agg("a1"))
    lines = problem(doc).splitlines()
    assert lines[0] == "sites[7].id: duplicate site id 'a1'"
    assert lines[1] == "links[9]: unknown endpoint 'x0'"
    assert len(lines) == 11
    assert lines[-1] == "... and 3 more problems"


def test_load_topology_from_file(tmp_path: Path) -> None:
    path = tmp_path / "ring.yaml"
    path.write_text(yaml.safe_dump(ring_city()))
    assert topo.load_topology(str(path)).cells == ("c1", "c2")
    doc = ring_city()
    doc["links"].append(link("a1", "nowhere"))
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(errors.TopologyError) as caught:
        topo.load_topology(str(path))
    assert str(caught.value) == f"{path}: links[9]: unknown endpoint 'nowhere'"  # the file named


def test_routes_best_first_within_bound() -> None:
    city = build(ring_city())
    routes = city.routes("c1", max_latency_ms=10)
    assert [(r.edge, r.nodes, round(r.latency_ms, 6)) for r in routes] == [
        ("e1", ("c1", "a1", "e1"), 0.6),
        ("e1", ("c1", "a2", "a1", "e1"), 1.8),
        ("e2", ("c1", "a1", "a3", "e2"), 3.1),
        ("e2", ("c1", "a2", "a3", "e2"), 3.3),
    ]
    first = routes[0]
    assert [str(city.links[i]) for i in first.links] == ["a1:c1", "a1:e1"]
    assert [r.edge for r in city.routes("c1", max_latency_ms=1.0)] == ["e1"]
    assert city.routes("c1", max_latency_ms=0.5) == []
    assert city.latency_to("c2", "e2") == pytest.approx(2.2)


def test_failures_reroute_and_do_not_change_the_original() -> None:
    city = build(ring_city())
    broken = city.with_down(links=[("e1", "a1")])
    assert city.latency_to("c1", "e1") == pytest.approx(0.6)
    assert broken.latency_to("c1", "e1") == math.inf
    assert broken.routes("c1", 10)[0].nodes == ("c1", "a1", "a3", "e2")
    no_a1 = city.with_down(sites=["a1"])
    assert no_a1.homes("c1") == [("a2", 1)]
    assert no_a1.latency_to("c1", "e2") == pytest.approx(3.3)
    with pytest.raises(errors.NotFound, match="site 'zz' is not in topology 'ring'"):
        city.with_down(sites=["zz"])
    with pytest.raises(errors.NotFound, match="link a1:c2 is not in topology 'ring'"):
        city.with_down(links=[("a1", "c2")])


def test_detour_avoids_unusable_links() -> None:
    city = build(ring_city())
    ring_a1_a3 = city.link(("a1", "a3")).index
    route = city.detour("c1", "e2", 10, usable=lambda i: i != ring_a1_a3)
    assert route is not None
    assert route.nodes == ("c1", "a2", "a3", "e2")
    assert city.detour("c1", "e2", 3.0, usable=lambda i: i != ring_a1_a3) is None


def test_coverage_selects_cells() -> None:
    city = build(ring_city())
    assert city.cells_in(Coverage(zones=("downtown",))) == ("c1",)
    assert city.cells_in(Coverage(sites=("c2",), zones=("downtown",))) == ("c1", "c2")
    assert city.cells_in(Coverage.model_validate({"circle": {"lat": 0, "lon": 0.05, "radiusKm": 1}})) == (
        "c2",
    )
    with pytest.raises(
        errors.InvalidSpec, match=r"^spec\.coverage\.sites: 'a1' is an aggregation site, not a cell$"
    ):
        city.cells_in(Coverage(sites=("a1",)))
    assert city.zones() == ["corridor-1", "downtown"]


def test_parse_link_key() -> None:
    assert topo.parse_link_key("b:a") == ("a", "b")
    with pytest.raises(errors.InvalidSpec, match="link 'ab': expected A:B"):
        topo.parse_link_key("ab")


def test_haversine_paris_to_lyon() -> None:
    assert topo.haversine_km(48.8566, 2.3522, 45.7640, 4.8357) == pytest.approx(392, abs=2)
