"""The synthetic city generator: determinism, structure, zones, capacities, bad arguments."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core import citygen
from controller.core import topology as topo
from controller.core import topology_file as tf
from slices import errors


@pytest.fixture(scope="module")
def city() -> tf.TopologyFile:
    return citygen.generate_city(1200, seed=7)


@pytest.fixture(scope="module")
def built(city: tf.TopologyFile) -> topo.Topology:
    return topo.Topology.from_file(city)


def kinds(city: tf.TopologyFile) -> Counter[str]:
    return Counter(s.kind.value for s in city.sites)


def test_same_seed_same_city_other_seed_other_city(city: tf.TopologyFile) -> None:
    assert citygen.generate_city(1200, seed=7) == city
    other = citygen.generate_city(1200, seed=8)
    assert other != city
    assert kinds(other)["cell"] == 1200


@pytest.mark.parametrize("layout", citygen.LAYOUTS)
@pytest.mark.parametrize("cells", [1, 2, 13, 300])
def test_counts_and_validity(layout: str, cells: int) -> None:
    city = citygen.generate_city(cells, seed=1, layout=layout)
    count = kinds(city)
    assert count["cell"] == cells
    assert count["aggregation"] == max(2, round(cells / citygen.CELLS_PER_AGGREGATION))
    assert 1 <= count["edge"] <= count["aggregation"]
    assert count["core"] >= 1
    topo.Topology.from_file(city)  # raises if anything is inconsistent


def test_every_cell_dual_homed_to_two_aggregation_sites(built: topo.Topology) -> None:
    for cell in built.cells:
        homes = built.homes(cell)
        assert len(homes) == 2, cell
        assert {built.sites[h].kind for h, _ in homes} == {tf.SiteKind.AGGREGATION}
        assert homes[0][0] != homes[1][0]


def test_homes_are_the_two_nearest_aggregation_sites(built: topo.Topology) -> None:
    aggs = [s for s in built.sites.values() if s.kind == tf.SiteKind.AGGREGATION]
    for cell in built.cells[::97]:
        c = built.sites[cell]
        nearest = sorted(aggs, key=lambda a: topo.haversine_km(c.lat, c.lon, a.lat, a.lon))[:2]
        assert {h for h, _ in built.homes(cell)} == {a.id for a in nearest}


def test_every_cell_reaches_an_edge_within_5_ms_even_after_losing_a_home_or_a_dc(
    built: topo.Topology,
) -> None:
    for cell in built.cells:
        assert min(built.latency_to(cell, e) for e in built.edge_sites) < 5.0
    # Resilience: each aggregation ring is homed to two edge DCs, so losing any one DC
    # leaves every cell with a route.
    for dc in built.edge_sites:
        degraded = built.with_down(sites=[dc])
        assert all(degraded.routes(c, math.inf, limit=1) for c in built.cells[::7]), dc


def test_aggregation_sites_form_rings_homed_to_two_edge_sites(built: topo.Topology) -> None:
    ring_graph = nx.Graph()
    uplinks: dict[str, set[str]] = defaultdict(set)
    for ln in built.links:
        ka, kb = built.sites[ln.a].kind, built.sites[ln.b].kind
        if ka == kb == tf.SiteKind.AGGREGATION:
            ring_graph.add_edge(ln.a, ln.b)
        elif {ka, kb} == {tf.SiteKind.AGGREGATION, tf.SiteKind.EDGE}:
            a, e = (ln.a, ln.b) if ka == tf.SiteKind.AGGREGATION else (ln.b, ln.a)
            uplinks[a].add(e)
    aggs = [s for s in built.sites if built.sites[s].kind == tf.SiteKind.AGGREGATION]
    ring_graph.add_nodes_from(aggs)
    rings = list(nx.connected_components(ring_graph))
    assert len(rings) >= len(built.edge_sites)
    for ring in rings:
        assert len(ring) <= citygen.RING_SIZE
        if len(ring) > 2:
            assert all(ring_graph.degree(n) == 2 for n in ring)  # a cycle, not a chain
        homes = set().union(*(uplinks[n] for n in ring))
        assert len(homes) == 2, sorted(ring)


def test_link_classes_and_capacities(built: topo.Topology) -> None:
    by_class: dict[frozenset[str], set[int]] = defaultdict(set)
    for ln in built.links:
        by_class[frozenset({built.sites[ln.a].kind.value, built.sites[ln.b].kind.value})].add(
            ln.bandwidth_kbps
        )
    assert by_class[frozenset({"cell", "aggregation"})] == {10_000_000}
    assert by_class[frozenset({"aggregation"})] == {100_000_000}
    assert by_class[frozenset({"aggregation", "edge"})] == {100_000_000}
    assert by_class[frozenset({"edge", "core"})] == {400_000_000}
    radios = {built.sites[c].radio_kbps for c in built.cells}
    assert radios <= {round(m * 1000) for m in citygen.CELL_RADIO_MBPS}
    assert len(radios) > 1
    for e in built.edge_sites:
        site = built.sites[e]
        assert 64_000 <= site.cpu_millicores <= 512_000
        assert site.memory_mib == site.cpu_millicores // 1000 * 4096
        assert site.node_label == e


def test_latencies_come_from_fibre_length(city: tf.TopologyFile) -> None:
    sites = {s.id: s for s in city.sites}
    for ln in city.links[:: max(1, len(city.links) // 50)]:
        assert ln.latency_ms is None and ln.length_km is not None
        a, b = sites[ln.a].location, sites[ln.b].location
        straight = topo.haversine_km(a.lat, a.lon, b.lat, b.lon)
        assert ln.length_km == pytest.approx(straight * citygen.ROUTE_FACTOR, rel=0.01, abs=0.002)


def test_cells_are_spread_like_a_city(city: tf.TopologyFile) -> None:
    cells = [s for s in city.sites if s.kind == tf.SiteKind.CELL]
    lat = [c.location.lat for c in cells]
    lon = [c.location.lon for c in cells]
    assert sum(lat) / len(lat) == pytest.approx(48.8566, abs=0.01)
    assert sum(lon) / len(lon) == pytest.approx(2.3522, abs=0.01)
    # 1200 hexagons of 0.4 km spacing fill a disc of about 7.6 km radius.
    radius = max(topo.haversine_km(48.8566, 2.3522, c.location.lat, c.location.lon) for c in cells)
    assert 6 < radius < 9
    assert len({(c.location.lat, c.location.lon) for c in cells}) == len(cells)


def test_zones(built: topo.Topology) -> None:
    zones = built.zones()
    districts = [z for z in zones if z.startswith("district-")]
    assert len(districts) >= 4
    assert "downtown" in zones
    assert {"corridor-1", "corridor-2", "corridor-3"} <= set(zones)
    assert any(z.startswith("hotspot-") for z in zones)
    for cell in built.cells:
        assert sum(z.startswith("district-") for z in built.sites[cell].zones) == 1
    downtown = [built.sites[c] for c in built.cells if "downtown" in built.sites[c].zones]
    assert 0 < len(downtown) < len(built.cells) / 10
    for c in downtown:
        assert topo.haversine_km(48.8566, 2.3522, c.lat, c.lon) < 2
    corridor = [built.sites[c] for c in built.cells if "corridor-1" in built.sites[c].zones]
    assert 10 < len(corridor) < len(built.cells) / 3


def test_capacity_scale_shrinks_every_capacity() -> None:
    full = topo.Topology.from_file(citygen.generate_city(200, seed=3))
    small = topo.Topology.from_file(citygen.generate_city(200, seed=3, capacity_scale=0.1))
    for a, b in zip(full.links, small.links, strict=True):
        assert b.bandwidth_kbps == round(a.bandwidth_kbps / 10)
    for sid, site in full.sites.items():
        assert small.sites[sid].radio_kbps == round(site.radio_kbps / 10)
        assert small.sites[sid].cpu_millicores == round(site.cpu_millicores / 10)


def test_options() -> None:
    city = citygen.generate_city(
        500, seed=2, edge_sites=4, layout="poisson", name="lyon", center=(45.764, 4.8357)
    )
    assert city.name == "lyon"
    assert kinds(city)["edge"] == 4
    assert citygen.generate_city(10).name == "city-10-s0"
    cells = [s for s in city.sites if s.kind == tf.SiteKind.CELL]
    assert sum(c.location.lat for c in cells) / len(cells) == pytest.approx(45.764, abs=0.02)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cells": 0}, "cells: must be at least 1, got 0"),
        ({"cells": 5, "edge_sites": 0}, "edgeSites: must be at least 1, got 0"),
        ({"cells": 5, "layout": "grid"}, "layout: unknown layout 'grid'; expected one of hex, poisson"),
        ({"cells": 5, "capacity_scale": 0}, "capacityScale: must be a positive number, got 0"),
        ({"cells": 5, "capacity_scale": math.nan}, "capacityScale: not a finite number (got nan)"),
        ({"cells": 5, "center": (95.0, 0.0)}, "center: (95.0, 0.0) is not a latitude"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(errors.InvalidSpec) as caught:
        citygen.generate_city(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)


@settings(max_examples=20, deadline=None)
@given(
    cells=st.integers(min_value=1, max_value=400),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    layout=st.sampled_from(citygen.LAYOUTS),
    edge_sites=st.one_of(st.none(), st.integers(min_value=1, max_value=6)),
)
def test_any_generated_city_is_valid_and_dual_homed(
    cells: int, seed: int, layout: str, edge_sites: int | None
) -> None:
    city = citygen.generate_city(cells, seed, layout=layout, edge_sites=edge_sites)
    assert tf.parse_topology(city.to_wire()) == city  # what is written reads back the same
    built = topo.Topology.from_file(city)
    assert len(built.cells) == cells
    assert all(len({h for h, _ in built.homes(c)}) == 2 for c in built.cells)
    if edge_sites is not None:
        assert len(built.edge_sites) == min(edge_sites, max(2, round(cells / citygen.CELLS_PER_AGGREGATION)))
