"""GraphML in and out: real networks (e.g. the Internet Topology Zoo) as city topologies.

A foreign graph gives the transport network: its nodes become aggregation sites, the
highest-degree (or named) nodes become edge data centres, the most central remaining node the
core. It rarely says anything about radio access, so cells are generated around every node
(``cells_per_node``, on a small circle, seeded), homed to their node and also to the nearest
other node when it is close enough for a second fibre. Missing link speeds are generated,
missing latencies come from great-circle distance × the fibre route factor.

A file written by :func:`export_graphml` carries an ``edgesliceFormat`` graph attribute and
every field of the topology file, so it reads back to exactly the same sites and links.
"""

from __future__ import annotations

import json
import math
import re
import sys
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from controller.core import citygen
from controller.core.topology import haversine_km
from controller.core.topology_file import (
    MAX_LINK_LATENCY_MS,
    MAX_LINK_MBPS,
    SiteKind,
    TopologyFile,
    parse_topology,
)
from slices import errors

EXPORT_FORMAT = "edgeslice-topology/v1"
DUAL_HOME_KM = 40.0  # a second home further away than this is not worth the fibre
CELL_RING_KM = (1.0, 4.0)  # cells sit this far from the node they hang off
UNIT_BPS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
MAX_NAME = 48  # so "cell-NAME-K" stays within the 63 characters of a site id
NODE_ID_ATTR = "id"  # mapping value meaning "use the GraphML node id"
MAX_CELLS_PER_NODE = 1000


@dataclass(frozen=True)
class GraphmlMapping:
    """Which GraphML attributes hold what; the defaults are the Topology Zoo's names.

    ``speed`` is read as bit/s, unless the edge also has ``<speed>Units`` or the Zoo's
    ``LinkSpeedUnits`` (K, M, G, T), as with ``LinkSpeed="10" LinkSpeedUnits="G"``. With
    ``speed=None`` the Zoo's ``LinkSpeedRaw`` is used where present and speeds are generated
    elsewhere. ``latency`` (ms) is optional; without it latency follows from distance.
    ``name="id"`` takes names from the GraphML node ids.
    """

    lat: str = "Latitude"
    lon: str = "Longitude"
    name: str = "label"
    speed: str | None = None
    latency: str | None = None


def read_graph(path: str | Path) -> nx.Graph:
    """Read a GraphML file as a simple undirected graph (parallel edges merged, loops dropped)."""
    path = Path(path)
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "no such file"
        raise errors.TopologyError(f"{path}: cannot read: {problem}")
    try:
        raw = nx.read_graphml(path)
    except OSError as exc:
        raise errors.TopologyError(f"{path}: cannot read: {exc.strerror}") from exc
    except (ET.ParseError, nx.NetworkXError, ValueError, KeyError, TypeError) as exc:
        problem = " ".join(str(exc).split()) or type(exc).__name__
        if "integer string conversion" in problem:  # Python's int() limit, not the user's words
            problem = f"an integer attribute has more than {sys.get_int_max_str_digits()} digits"
        raise errors.TopologyError(f"{path}: not valid GraphML: {problem}") from exc
    graph = nx.Graph()
    graph.graph.update(raw.graph)
    graph.add_nodes_from(raw.nodes(data=True))
    for u, v, data in raw.edges(data=True):
        if u == v:
            continue
        if graph.has_edge(u, v):
            # Parallel circuits: keep the fastest one's attributes.
            if _number(data.get("LinkSpeedRaw"), 0) > _number(graph.edges[u, v].get("LinkSpeedRaw"), 0):
                graph.edges[u, v].update(data)
            continue
        graph.add_edge(u, v, **data)
    return graph


def import_graphml(
    path: str | Path,
    mapping: GraphmlMapping | None = None,
    seed: int = 0,
    *,
    edge_sites: int = 2,
    edge_nodes: Sequence[str] = (),
    cells_per_node: int = 3,
    capacity_scale: float = 1.0,
    name: str | None = None,
) -> TopologyFile:
    """Turn a GraphML network into a topology file (see the module docstring).

    ``edge_nodes`` names (by mapped name or node id) the nodes to make edge sites; otherwise
    the ``edge_sites`` highest-degree nodes are chosen. A file written by
    :func:`export_graphml` is read back as it was, ignoring the other arguments.
    """
    path = Path(path)
    if cells_per_node < 0 or cells_per_node > MAX_CELLS_PER_NODE:
        raise errors.InvalidSpec(
            f"cellsPerNode: must be between 0 and {MAX_CELLS_PER_NODE}, got {cells_per_node}"
        )
    citygen.check_capacity_scale(capacity_scale)
    citygen.check_seed(seed)
    graph = read_graph(path)
    if graph.graph.get("edgesliceFormat") is not None:
        return _read_export(graph, path)
    mapping = mapping or GraphmlMapping()
    if graph.number_of_nodes() == 0:
        raise errors.TopologyError(f"{path}: the graph has no nodes")
    _check_attributes(graph, mapping, path)

    nodes = sorted(graph.nodes, key=_natural)
    ids = _site_ids(graph, nodes, mapping)
    coords = {}
    for n in nodes:
        data = graph.nodes[n]
        lat, lon = data.get(mapping.lat), data.get(mapping.lon)
        if lat is None or lon is None:
            missing = mapping.lat if lat is None else mapping.lon
            raise errors.TopologyError(
                f"{path}: node {n!r} ({ids[n]}): no {missing} attribute; coordinates are needed"
            )
        try:
            coords[n] = (float(lat), float(lon))
        except (TypeError, ValueError):
            raise errors.TopologyError(
                f"{path}: node {n!r} ({ids[n]}): {mapping.lat}/{mapping.lon} are not numbers"
            ) from None
        if not (math.isfinite(coords[n][0]) and math.isfinite(coords[n][1])):
            raise errors.TopologyError(
                f"{path}: node {n!r} ({ids[n]}): {mapping.lat}/{mapping.lon} are not finite numbers"
            )
        if not (-90 <= coords[n][0] <= 90 and -180 <= coords[n][1] <= 180):
            raise errors.TopologyError(
                f"{path}: node {n!r} ({ids[n]}): {mapping.lat}={lat}, {mapping.lon}={lon} is not a latitude "
                "in [-90, 90] and a longitude in [-180, 180]"
            )

    edges = _choose_edges(graph, nodes, ids, edge_sites, edge_nodes, path)
    core = _choose_core(graph, nodes, coords, edges)
    kind = {
        n: SiteKind.EDGE if n in edges else SiteKind.CORE if n == core else SiteKind.AGGREGATION
        for n in nodes
    }

    sites: list[dict[str, Any]] = []
    for n in nodes:
        site: dict[str, Any] = {
            "id": ids[n],
            "kind": kind[n].value,
            "location": {"lat": coords[n][0], "lon": coords[n][1]},
            "zones": [ids[n]],
        }
        if kind[n] == SiteKind.EDGE:
            site["capacity"] = citygen._compute(256, capacity_scale)
            site["node_label"] = ids[n]
        elif kind[n] == SiteKind.CORE:
            site["capacity"] = citygen._compute(citygen.CORE_VCPU, capacity_scale)
        sites.append(site)

    links: list[dict[str, Any]] = []
    for u, v in sorted(
        (tuple(sorted((u, v), key=_natural)) for u, v in graph.edges),
        key=lambda e: (_natural(e[0]), _natural(e[1])),
    ):
        data = graph.edges[u, v]
        bps = _speed_bps(data, mapping, path, (u, v))
        link: dict[str, Any] = {
            "a": ids[u],
            "b": ids[v],
            "bandwidth_mbps": bps / 1e6 if bps else citygen.RING_MBPS * capacity_scale,
        }
        latency = data.get(mapping.latency) if mapping.latency else None
        if latency is not None:
            link["latency_ms"] = _number(latency, -1)
            if not 0 <= link["latency_ms"] <= MAX_LINK_LATENCY_MS:
                raise errors.TopologyError(
                    f"{path}: edge {u}-{v}: {mapping.latency}={latency!r} is not a latency in ms "
                    f"(a finite number from 0 to {MAX_LINK_LATENCY_MS:g})"
                )
        else:
            km = haversine_km(*coords[u], *coords[v]) * citygen.ROUTE_FACTOR
            link["length_km"] = round(km, 3)
        links.append(link)

    sites_cells, links_cells = _cells(nodes, ids, coords, cells_per_node, capacity_scale, seed)
    doc = {
        "name": name
        or _slug(str(graph.graph.get("label") or graph.graph.get("Network") or path.stem))
        or "network",
        "sites": sites + sites_cells,
        "links": links + links_cells,
    }
    return parse_topology(doc, str(path))


def _check_attributes(graph: nx.Graph, mapping: GraphmlMapping, path: Path) -> None:
    node_attrs = sorted({k for _, d in graph.nodes(data=True) for k in d})
    edge_attrs = sorted({k for _, _, d in graph.edges(data=True) for k in d})
    for field, node_attr in (("lat", mapping.lat), ("lon", mapping.lon), ("name", mapping.name)):
        if field == "name" and node_attr == NODE_ID_ATTR:
            continue
        if node_attr not in node_attrs:
            raise errors.TopologyError(
                f"{path}: mapping.{field}: no node has attribute {node_attr!r}; node attributes are: "
                f"{', '.join(node_attrs) or '(none)'}"
            )
    for field, attr in (("speed", mapping.speed), ("latency", mapping.latency)):
        if attr is not None and attr not in edge_attrs:
            raise errors.TopologyError(
                f"{path}: mapping.{field}: no edge has attribute {attr!r}; edge attributes are: "
                f"{', '.join(edge_attrs) or '(none)'}"
            )


def _site_ids(graph: nx.Graph, nodes: list[str], mapping: GraphmlMapping) -> dict[str, str]:
    ids: dict[str, str] = {}
    used: set[str] = set()
    for n in nodes:
        raw = n if mapping.name == NODE_ID_ATTR else graph.nodes[n].get(mapping.name, n)
        base = (_slug(str(raw)) or _slug(f"node-{n}") or "node")[:MAX_NAME].rstrip("-")
        sid, k = base, 2
        while sid in used:
            sid = f"{base}-{k}"
            k += 1
        used.add(sid)
        ids[n] = sid
    return ids


def _choose_edges(
    graph: nx.Graph, nodes: list[str], ids: Mapping[str, str], count: int, named: Sequence[str], path: Path
) -> set[str]:
    if named:
        by_name = {ids[n]: n for n in nodes} | {n: n for n in nodes}
        chosen = set()
        for want in named:
            node = by_name.get(want) or by_name.get(_slug(want))
            if node is None:
                raise errors.TopologyError(f"{path}: edgeNodes: no node named {want!r}")
            chosen.add(node)
        return chosen
    if count < 1:
        raise errors.InvalidSpec(f"edgeSites: must be at least 1, got {count}")
    ranked = sorted(nodes, key=lambda n: (-graph.degree(n), _natural(n)))
    return set(ranked[: min(count, len(nodes))])


def _choose_core(
    graph: nx.Graph, nodes: list[str], coords: Mapping[str, tuple[float, float]], edges: set[str]
) -> str | None:
    """The most central non-edge node by distance, the natural place for the core."""
    rest = [n for n in nodes if n not in edges]
    if not rest:
        return None
    for u, v in graph.edges:
        graph.edges[u, v]["_km"] = haversine_km(*coords[u], *coords[v])
    closeness = nx.closeness_centrality(graph, distance="_km")
    return max(rest, key=lambda n: (round(closeness[n], 12), -nodes.index(n)))


def _speed_bps(
    data: Mapping[str, Any], mapping: GraphmlMapping, path: Path, edge: tuple[str, str]
) -> float | None:
    attr = mapping.speed or "LinkSpeedRaw"
    value = data.get(attr)
    if value is None:
        return None
    if _is_number(value) and not math.isfinite(float(value)):
        raise errors.TopologyError(
            f"{path}: edge {edge[0]}-{edge[1]}: {attr}={value!r} is not a finite number"
        )
    number = _number(value, -1)
    if number <= 0:
        raise errors.TopologyError(
            f"{path}: edge {edge[0]}-{edge[1]}: {attr}={value!r} is not a positive speed"
        )
    unit = data.get(f"{attr}Units", data.get("LinkSpeedUnits") if attr != "LinkSpeedRaw" else None)
    if unit is not None:
        scale = UNIT_BPS.get(str(unit).strip().upper().removesuffix("BPS"))
        if scale is None:
            raise errors.TopologyError(f"{path}: edge {edge[0]}-{edge[1]}: unknown speed unit {unit!r}")
        number *= scale
    if number > MAX_LINK_MBPS * 1e6:
        raise errors.TopologyError(
            f"{path}: edge {edge[0]}-{edge[1]}: {attr}={value!r} is above the {MAX_LINK_MBPS / 1e6:g} Tbit/s "
            "a link can carry"
        )
    return number


def _cells(
    nodes: list[str],
    ids: Mapping[str, str],
    coords: Mapping[str, tuple[float, float]],
    per_node: int,
    scale: float,
    seed: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    sites: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for n in nodes:
        lat0, lon0 = coords[n]
        km_lon = citygen.KM_PER_DEG_LON_EQUATOR * max(math.cos(math.radians(lat0)), 0.01)
        start = rng.random() * 2 * math.pi
        for k in range(per_node):
            angle = start + 2 * math.pi * k / per_node
            r = rng.uniform(*CELL_RING_KM)
            lat = round(min(90.0, max(-90.0, lat0 + r * math.sin(angle) / citygen.KM_PER_DEG_LAT)), 6)
            lon = round(((lon0 + r * math.cos(angle) / km_lon + 180) % 360) - 180, 6)
            cid = f"cell-{ids[n]}-{k + 1}"
            sites.append(
                {
                    "id": cid,
                    "kind": "cell",
                    "location": {"lat": lat, "lon": lon},
                    "zones": [ids[n]],
                    "capacity": {"radio_mbps": float(rng.choice(citygen.CELL_RADIO_MBPS)) * scale},
                }
            )
            homes = [(haversine_km(lat, lon, *coords[m]), m) for m in nodes if m != n]
            home_list = [(haversine_km(lat, lon, lat0, lon0), n)]
            if homes:
                second = min(homes, key=lambda h: (h[0], _natural(h[1])))
                if second[0] <= DUAL_HOME_KM:
                    home_list.append(second)
            for km, m in home_list:
                links.append(
                    {
                        "a": cid,
                        "b": ids[m],
                        "bandwidth_mbps": citygen.CELL_UPLINK_MBPS * scale,
                        "length_km": round(km * citygen.ROUTE_FACTOR, 3),
                    }
                )
    return sites, links


# -- export ---------------------------------------------------------------------------------


def export_graphml(topology: TopologyFile, path: str | Path) -> None:
    """Write every site and link as GraphML (with Latitude/Longitude/label, Zoo style)."""
    graph = nx.Graph(edgesliceFormat=EXPORT_FORMAT, label=topology.name, hopLatencyMs=topology.hop_latency_ms)
    for s in topology.sites:
        attrs: dict[str, Any] = {
            "label": s.id,
            "kind": s.kind.value,
            "Latitude": s.location.lat,
            "Longitude": s.location.lon,
            "zones": json.dumps(list(s.zones)),
        }
        cap = s.capacity
        for key, value in (
            ("radioMbps", cap.radio_mbps),
            ("cpuMillicores", cap.cpu_millicores),
            ("memoryMib", cap.memory_mib),
            ("nodeLabel", s.node_label),
        ):
            if value is not None:
                attrs[key] = value
        graph.add_node(s.id, **attrs)
    for i, ln in enumerate(topology.links):
        # Index and ends recorded because a graph forgets link order and orientation.
        attrs = {
            "linkIndex": i,
            "a": ln.a,
            "b": ln.b,
            "bandwidthMbps": ln.bandwidth_mbps,
            "LinkSpeedRaw": ln.bandwidth_mbps * 1e6,
        }
        if ln.latency_ms is not None:
            attrs["latencyMs"] = ln.latency_ms
        if ln.length_km is not None:
            attrs["lengthKm"] = ln.length_km
        # networkx.Graph merges duplicate links; a valid file has none.
        graph.add_edge(ln.a, ln.b, **attrs)
    try:
        nx.write_graphml(graph, Path(path))
    except OSError as exc:
        raise errors.TopologyError(f"{path}: cannot write: {exc.strerror}") from exc


def _read_export(graph: nx.Graph, path: Path) -> TopologyFile:
    if graph.graph["edgesliceFormat"] != EXPORT_FORMAT:
        raise errors.TopologyError(
            f"{path}: edgesliceFormat {graph.graph['edgesliceFormat']!r} is not {EXPORT_FORMAT!r}"
        )
    sites = []
    for n, d in graph.nodes(data=True):
        cap = {k: d[k] for k in ("radioMbps", "cpuMillicores", "memoryMib") if k in d}
        try:
            zones = json.loads(str(d.get("zones", "[]")))
        except ValueError:
            raise errors.TopologyError(
                f"{path}: node {n!r}: zones={d.get('zones')!r} is not a JSON list of zone tags"
            ) from None
        site = {
            "id": n,
            "kind": d.get("kind"),
            "location": {"lat": d.get("Latitude"), "lon": d.get("Longitude")},
            "zones": zones,
            "capacity": cap,
        }
        if "nodeLabel" in d:
            site["nodeLabel"] = d["nodeLabel"]
        sites.append(site)
    links = []
    for u, v, d in sorted(graph.edges(data=True), key=lambda e: e[2].get("linkIndex", 0)):
        link = {"a": d.get("a", u), "b": d.get("b", v), "bandwidthMbps": d.get("bandwidthMbps")}
        for key in ("latencyMs", "lengthKm"):
            if key in d:
                link[key] = d[key]
        links.append(link)
    doc = {"name": graph.graph.get("label", "city"), "hopLatencyMs": graph.graph.get("hopLatencyMs", 0.05)}
    return parse_topology(doc | {"sites": sites, "links": links}, str(path))


# -- helpers --------------------------------------------------------------------------------


def _slug(text: str) -> str:
    """A site id from a free-text name.

    >>> _slug("New York, NY")
    'new-york-ny'
    >>> _slug("  São Paulo ")
    'sao-paulo'
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:63].strip("-")


def _natural(text: str) -> tuple[Any, ...]:
    """Sort key putting ``n2`` before ``n10`` (GraphML ids are usually ``n0, n1, ...``)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(text)))


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _number(value: Any, default: float) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default
