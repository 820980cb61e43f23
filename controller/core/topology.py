"""The city as a graph: the one module that imports networkx.

A :class:`Topology` is immutable. Failures and maintenance make a new one
(:meth:`Topology.with_down`) that shares the parsed sites and links but routes around what is
down. Routing is precomputed once per topology: a latency shortest-path tree rooted at every
edge site over the transport graph (aggregation, edge and core sites; cells are access leaves,
never transit). A cell reaches an edge site through one of its homes (the sites it is linked
to), so the candidates for a cell are ``homes × edge sites``, each a single dictionary lookup.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np

from controller.core.topology_file import SiteKind, TopologyFile
from slices import errors
from slices.intent import Coverage

EARTH_RADIUS_KM = 6371.0088
COVERAGE_CACHE_SIZE = 4096  # admission asks for a slice's cells several times per decision

LinkKey = tuple[str, str]


def link_key(a: str, b: str) -> LinkKey:
    """Links are undirected; their key orders the endpoints.

    >>> link_key("b", "a")
    ('a', 'b')
    """
    return (a, b) if a <= b else (b, a)


def parse_link_key(text: str) -> LinkKey:
    """Parse ``A:B`` (as given to ``--fail-link``).

    >>> parse_link_key("agg-2:cell-7")
    ('agg-2', 'cell-7')
    """
    a, sep, b = text.partition(":")
    if not sep or not a or not b:
        raise errors.InvalidSpec(f"link {text!r}: expected A:B, two site ids joined by a colon")
    return link_key(a, b)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class Site:
    id: str
    kind: SiteKind
    lat: float
    lon: float
    zones: frozenset[str]
    radio_kbps: int
    cpu_millicores: int
    memory_mib: int
    node_label: str | None


@dataclass(frozen=True)
class Link:
    index: int
    a: str
    b: str
    bandwidth_kbps: int
    latency_ms: float

    @property
    def key(self) -> LinkKey:
        return (self.a, self.b)

    def __str__(self) -> str:
        return f"{self.a}:{self.b}"


@dataclass(frozen=True)
class Route:
    """A path from a cell to an edge site: nodes from the cell to the edge, the link indices."""

    cell: str
    edge: str
    nodes: tuple[str, ...]
    links: tuple[int, ...]
    latency_ms: float


class Topology:
    """Sites, links and precomputed routes of one city. Build with :meth:`from_file`.

    >>> from controller.core.topology_file import TopologyFile
    >>> city = Topology.from_file(TopologyFile.model_validate({"sites": [
    ...     {"id": "c1", "kind": "cell", "location": {"lat": 0, "lon": 0}, "capacity": {"radioMbps": 100}},
    ...     {"id": "a1", "kind": "aggregation", "location": {"lat": 0, "lon": 0.01}},
    ...     {"id": "e1", "kind": "edge", "location": {"lat": 0, "lon": 0.02},
    ...      "capacity": {"cpuMillicores": 8000, "memoryMib": 16384}}],
    ...   "links": [{"a": "c1", "b": "a1", "bandwidthMbps": 1000, "latencyMs": 0.5},
    ...             {"a": "a1", "b": "e1", "bandwidthMbps": 10000, "lengthKm": 10}]}))
    >>> [(r.edge, r.nodes, round(r.latency_ms, 3)) for r in city.routes("c1", max_latency_ms=5)]
    [('e1', ('c1', 'a1', 'e1'), 0.6)]
    """

    def __init__(
        self,
        source: TopologyFile,
        sites: Mapping[str, Site],
        links: tuple[Link, ...],
        down_sites: frozenset[str] = frozenset(),
        down_links: frozenset[LinkKey] = frozenset(),
    ) -> None:
        self.source = source
        self.name = source.name
        self.sites = sites
        self.links = links
        self.down_sites = down_sites
        self.down_links = down_links
        self.link_index: dict[LinkKey, int] = {(ln.a, ln.b): ln.index for ln in links}
        #: Bandwidth by link index, for tight loops that would otherwise go through ``links``.
        self.link_capacity_kbps: list[int] = [ln.bandwidth_kbps for ln in links]
        self.cells: tuple[str, ...] = tuple(s.id for s in sites.values() if s.kind == SiteKind.CELL)
        self.edge_sites: tuple[str, ...] = tuple(s.id for s in sites.values() if s.kind == SiteKind.EDGE)
        self._homes: dict[str, list[tuple[str, int]]] = {c: [] for c in self.cells}
        for ln in links:
            if (down_links or down_sites) and (
                (ln.a, ln.b) in down_links or ln.a in down_sites or ln.b in down_sites
            ):
                continue
            for cell, home in ((ln.a, ln.b), (ln.b, ln.a)):
                if cell in self._homes:
                    self._homes[cell].append((home, ln.index))
        self._trees = self._edge_trees()
        self._cell_coords: np.ndarray | None = None
        self._path_cache: dict[tuple[str, str], tuple[tuple[str, ...], tuple[int, ...]]] = {}
        self._nearest_cache: dict[tuple[str, int], tuple[Route, ...]] = {}
        self._zone_cells: dict[str, list[str]] | None = None
        self._cell_position: dict[str, int] = {c: i for i, c in enumerate(self.cells)}
        self._coverage_cache: dict[Coverage, tuple[str, ...]] = {}
        # The same city with nothing down: what :meth:`with_down` derives from. Its indexes,
        # homes and route trees are reused, so a failure recomputes only what it touches.
        self._root: Topology = self if not (down_sites or down_links) else Topology(source, sites, links)
        self._site_links: dict[str, list[int]] | None = None  # site → indices of its links (lazy)

    @functools.cached_property
    def fingerprint(self) -> str:
        """Identifies the city: its sites (id, kind) and links (ends), not capacities or what is
        down. An agent or simulator built for another topology is refused by it.

        >>> from controller.core.topology_file import TopologyFile
        >>> t = Topology.from_file(TopologyFile.model_validate({"sites": [
        ...     {"id": "c1", "kind": "cell", "location": {"lat": 0, "lon": 0}, "capacity": {"radioMbps": 100}},
        ...     {"id": "e1", "kind": "edge", "location": {"lat": 0, "lon": 0.01},
        ...      "capacity": {"cpuMillicores": 8000, "memoryMib": 16384}}],
        ...   "links": [{"a": "c1", "b": "e1", "bandwidthMbps": 1000, "latencyMs": 0.5}]}))
        >>> len(t.fingerprint), t.fingerprint == t.with_down(["e1"]).fingerprint
        (16, True)
        """
        if self._root is not self:
            return self._root.fingerprint
        text = repr(
            (
                sorted((s.id, s.kind.value) for s in self.sites.values()),
                sorted((ln.a, ln.b) for ln in self.links),
            )
        )
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    @functools.cached_property
    def graph(self) -> nx.Graph:
        """Every site and link (down ones too), built on first use: routing does not need it."""
        graph = nx.Graph()
        graph.add_nodes_from(self.sites)
        graph.add_edges_from((ln.a, ln.b, {"index": ln.index, "latency": ln.latency_ms}) for ln in self.links)
        return graph

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_file(cls, source: TopologyFile) -> Topology:
        """Check references and reachability; raise :class:`errors.TopologyError` naming the problem."""
        problems: list[str] = []
        sites: dict[str, Site] = {}
        for i, s in enumerate(source.sites):
            if s.id in sites:
                problems.append(f"sites[{i}].id: duplicate site id {s.id!r}")
                continue
            cap = s.capacity
            sites[s.id] = Site(
                id=s.id,
                kind=s.kind,
                lat=s.location.lat,
                lon=s.location.lon,
                zones=frozenset(s.zones),
                radio_kbps=round((cap.radio_mbps or 0) * 1000),
                cpu_millicores=cap.cpu_millicores or 0,
                memory_mib=cap.memory_mib or 0,
                node_label=(s.node_label or s.id) if s.kind == SiteKind.EDGE else s.node_label,
            )
        labels: dict[str, str] = {}
        for i, s in enumerate(source.sites):
            site = sites.get(s.id)
            if site is None or site.kind != SiteKind.EDGE or site.node_label is None:
                continue
            owner = labels.setdefault(site.node_label, s.id)
            if owner != s.id:
                problems.append(
                    f"sites[{i}].nodeLabel: {site.node_label!r} already pins workloads to edge site {owner!r}"
                )
        links: list[Link] = []
        seen: set[LinkKey] = set()
        for i, ln in enumerate(source.links):
            bad = [end for end in (ln.a, ln.b) if end not in sites]
            if bad:
                problems.append(f"links[{i}]: unknown endpoint {bad[0]!r}")
                continue
            key = link_key(ln.a, ln.b)
            if key in seen:
                problems.append(f"links[{i}]: duplicate link {key[0]}:{key[1]}")
                continue
            if sites[ln.a].kind == SiteKind.CELL and sites[ln.b].kind == SiteKind.CELL:
                problems.append(
                    f"links[{i}]: {ln.a}:{ln.b} joins two cells; cells attach to aggregation, edge or core sites"
                )
                continue
            seen.add(key)
            links.append(
                Link(
                    index=len(links),
                    a=key[0],
                    b=key[1],
                    bandwidth_kbps=round(ln.bandwidth_mbps * 1000),
                    latency_ms=source.link_latency_ms(ln),
                )
            )
        if not problems and not any(s.kind == SiteKind.EDGE for s in sites.values()):
            problems.append("sites: no edge site; slices need at least one site of kind 'edge'")
        if problems:
            raise errors.TopologyError(_summarise(problems))
        topology = cls(source, sites, tuple(links))
        # A cell reaches an edge site iff one of its homes is in some edge site's routing tree.
        routed = set().union(*(dist for dist, _ in topology._trees.values()))
        unreachable = [c for c in topology.cells if not any(h in routed for h, _ in topology.homes(c))]
        if unreachable:
            more = f" (and {len(unreachable) - 1} more)" if len(unreachable) > 1 else ""
            raise errors.TopologyError(f"sites: cell {unreachable[0]!r}{more} has no path to any edge site")
        return topology

    def with_down(self, sites: Iterable[str] = (), links: Iterable[LinkKey] = ()) -> Topology:
        """The same city with more sites or links out of service (failure or maintenance)."""
        sites = frozenset(sites)
        links = frozenset(link_key(*k) for k in links)
        for s in sites:
            self.site(s)
        for k in links:
            self.link(k)
        return self._derive(self.down_sites | sites, self.down_links | links)

    def _derive(self, down_sites: frozenset[str], down_links: frozenset[LinkKey]) -> Topology:
        """The city with exactly these elements down, built from the nothing-down root.

        Equal to ``Topology(source, sites, links, down_sites, down_links)`` but cheap on a big
        city: the parsed sites and links, their indexes and the coverage caches are shared; only
        the homes of cells next to a down element are filtered, and only the edge sites' route
        trees that a down transport site or tree link lies on are searched again (a cell or an
        access link never carries transit, so failing one reuses every tree).
        """
        root = self._root
        new = object.__new__(Topology)
        new.source, new.name, new.sites, new.links = root.source, root.name, root.sites, root.links
        new.down_sites, new.down_links = down_sites, down_links
        new.link_index, new.link_capacity_kbps = root.link_index, root.link_capacity_kbps
        new.cells, new.edge_sites, new._cell_position = root.cells, root.edge_sites, root._cell_position
        new._coverage_cache = root._coverage_cache  # coverage selects cells whatever is down
        new._cell_coords, new._zone_cells = root._cell_coords, root._zone_cells
        new._root, new._site_links = root, None
        sites, links = root.sites, root.links
        # Homes: drop the attachments through a down link or to a down (non-cell) site.
        adjacency = root._adjacency()
        touched: set[int] = {root.link_index[k] for k in down_links}
        for s in down_sites:
            if sites[s].kind != SiteKind.CELL:
                touched.update(adjacency[s])
        homes = root._homes
        cells_hit = {end for i in touched for end in (links[i].a, links[i].b) if end in homes}
        if cells_hit:
            homes = dict(homes)
            for c in cells_hit:
                homes[c] = [
                    (h, i)
                    for h, i in root._homes[c]
                    if h not in down_sites and (links[i].a, links[i].b) not in down_links
                ]
        new._homes = homes
        # Route trees: only transport elements matter.
        gone_nodes = {s for s in down_sites if sites[s].kind != SiteKind.CELL}
        gone_links = [
            k for k in down_links if sites[k[0]].kind != SiteKind.CELL and sites[k[1]].kind != SiteKind.CELL
        ]
        if not gone_nodes and not gone_links:
            new._trees, new._transport = root._trees, root._transport
        else:
            transport = root._transport.copy()
            transport.remove_nodes_from(gone_nodes)
            transport.remove_edges_from(gone_links)
            trees = {}
            for edge in new.edge_sites:
                if edge not in transport:
                    continue
                tree = root._trees.get(edge)
                if tree is None or _tree_touched(tree[1], gone_nodes, gone_links):
                    dist, paths = nx.single_source_dijkstra(transport, edge, weight="latency")
                    tree = (dist, paths)
                trees[edge] = tree
            new._trees, new._transport = trees, transport
        # Caches: keep the entries whose inputs (that edge's tree, that cell's homes) are unchanged.
        new._path_cache = {
            k: v for k, v in self._path_cache.items() if new._trees.get(k[1]) is self._trees.get(k[1])
        }
        if new._trees is self._trees:
            new._nearest_cache = {
                k: v
                for k, v in self._nearest_cache.items()
                if new._homes.get(k[0]) is self._homes.get(k[0])
                and (k[0] in down_sites) == (k[0] in self.down_sites)
            }
        else:
            new._nearest_cache = {}
        return new

    def _adjacency(self) -> dict[str, list[int]]:
        """Site → indices of the links that touch it (built once, on the first failure)."""
        if self._site_links is None:
            index: dict[str, list[int]] = {s: [] for s in self.sites}
            for ln in self.links:
                index[ln.a].append(ln.index)
                index[ln.b].append(ln.index)
            self._site_links = index
        return self._site_links

    def _edge_trees(self) -> dict[str, tuple[dict[str, float], dict[str, list[str]]]]:
        transport = nx.Graph()
        nodes = {s.id for s in self.sites.values() if s.kind != SiteKind.CELL and s.id not in self.down_sites}
        transport.add_nodes_from(nodes)
        transport.add_edges_from(
            (ln.a, ln.b, {"latency": ln.latency_ms})
            for ln in self.links
            if ln.a in nodes and ln.b in nodes and (ln.a, ln.b) not in self.down_links
        )
        trees = {}
        for edge in self.edge_sites:
            if edge in transport:
                dist, paths = nx.single_source_dijkstra(transport, edge, weight="latency")
                trees[edge] = (dist, paths)
        self._transport = transport
        return trees

    # -- look-ups -----------------------------------------------------------------------------

    def site(self, site_id: str) -> Site:
        try:
            return self.sites[site_id]
        except KeyError:
            raise errors.NotFound(f"site {site_id!r} is not in topology {self.name!r}") from None

    def link(self, key: LinkKey) -> Link:
        try:
            return self.links[self.link_index[link_key(*key)]]
        except KeyError:
            raise errors.NotFound(f"link {key[0]}:{key[1]} is not in topology {self.name!r}") from None

    def is_up(self, site_id: str) -> bool:
        return site_id not in self.down_sites

    def homes(self, cell: str) -> list[tuple[str, int]]:
        """(home site, access link index) for every working attachment of ``cell``."""
        return self._homes.get(cell, []) if cell not in self.down_sites else []

    def _tree_path(self, home: str, edge: str) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
        cached = self._path_cache.get((home, edge))
        if cached is not None:
            return cached
        tree = self._trees.get(edge)
        if tree is None or home not in tree[1]:
            return None
        nodes = tuple(reversed(tree[1][home]))
        idx = self.link_index
        result = nodes, tuple(idx[link_key(u, v)] for u, v in itertools.pairwise(nodes))
        self._path_cache[(home, edge)] = result
        return result

    def routes(self, cell: str, max_latency_ms: float, limit: int | None = None) -> list[Route]:
        """Shortest-latency route to each edge site via each home, within the bound, best first."""
        out: list[Route] = []
        for home, access in self.homes(cell):
            access_ms = self.links[access].latency_ms
            for edge, (dist, _) in self._trees.items():
                d = dist.get(home)
                if d is None or access_ms + d > max_latency_ms:
                    continue
                tp = self._tree_path(home, edge)
                assert tp is not None
                nodes, links = tp
                out.append(Route(cell, edge, (cell, *nodes), (access, *links), access_ms + d))
        out.sort(key=lambda r: (r.latency_ms, r.edge, r.nodes))
        return out[:limit] if limit is not None else out

    def nearest_routes(self, cell: str, limit: int) -> tuple[Route, ...]:
        """The ``limit`` lowest-latency routes of ``cell`` (one per home and edge site, no bound).

        Cached per cell: placement asks for the same few candidates of a cell again and again, and
        building every ``homes × edges`` route each time would dominate admission on a big city.
        """
        key = (cell, limit)
        cached = self._nearest_cache.get(key)
        if cached is not None:
            return cached
        options: list[tuple[float, str, str, int]] = []
        for home, access in self.homes(cell):
            access_ms = self.links[access].latency_ms
            for edge, (dist, _) in self._trees.items():
                d = dist.get(home)
                if d is not None:
                    options.append((access_ms + d, edge, home, access))
        options.sort(key=lambda o: (o[0], o[1], o[2]))
        out: list[Route] = []
        for latency, edge, home, access in options[:limit]:
            tp = self._tree_path(home, edge)
            assert tp is not None
            nodes, links = tp
            out.append(Route(cell, edge, (cell, *nodes), (access, *links), latency))
        result = tuple(out)
        self._nearest_cache[key] = result
        return result

    def latency_to(self, cell: str, edge: str) -> float:
        """Best latency from ``cell`` to ``edge`` over working elements (inf where unreachable)."""
        best = math.inf
        tree = self._trees.get(edge)
        if tree is None:
            return best
        for home, access in self.homes(cell):
            d = tree[0].get(home)
            if d is not None:
                best = min(best, self.links[access].latency_ms + d)
        return best

    def detour(
        self, cell: str, edge: str, max_latency_ms: float, usable: Callable[[int], bool]
    ) -> Route | None:
        """Shortest-latency route that uses only links for which ``usable(index)`` is true.

        The search hides unusable links by returning ``None`` from the weight function, the
        networkx way, so a saturated ring segment is routed around when latency allows.
        """
        if edge not in self._transport:
            return None
        idx = self.link_index

        def weight(u: str, v: str, data: Mapping[str, float]) -> float | None:
            return data["latency"] if usable(idx[link_key(u, v)]) else None

        best: Route | None = None
        for home, access in self.homes(cell):
            if not usable(access):
                continue
            access_ms = self.links[access].latency_ms
            try:
                d, path = nx.single_source_dijkstra(
                    self._transport, home, target=edge, cutoff=max_latency_ms - access_ms, weight=weight
                )
            except nx.NetworkXNoPath:
                continue
            total = access_ms + d
            if total <= max_latency_ms and (best is None or total < best.latency_ms):
                nodes = (cell, *path)
                links = (access, *(idx[link_key(u, v)] for u, v in itertools.pairwise(path)))
                best = Route(cell, edge, nodes, links, total)
        return best

    # -- coverage -----------------------------------------------------------------------------

    def cells_in(self, coverage: Coverage) -> tuple[str, ...]:
        """Cells a coverage selects (explicit cells, zone tags, circle), in topology order."""
        cached = self._coverage_cache.get(coverage)
        if cached is not None:
            return cached
        chosen: set[str] = set()
        for sid in coverage.sites:
            site = self.sites.get(sid)
            if site is None:
                raise errors.InvalidSpec(f"spec.coverage.sites: unknown site {sid!r}")
            if site.kind != SiteKind.CELL:
                raise errors.InvalidSpec(
                    f"spec.coverage.sites: {sid!r} is {_article(site.kind.value)} site, not a cell"
                )
            chosen.add(sid)
        if coverage.zones:
            index = self._zone_index()
            for zone in coverage.zones:
                chosen.update(index.get(zone, ()))
        if coverage.circle is not None:
            chosen.update(
                self._cells_within(coverage.circle.lat, coverage.circle.lon, coverage.circle.radius_km)
            )
        result = tuple(sorted(chosen, key=self._cell_position.__getitem__))
        if len(self._coverage_cache) >= COVERAGE_CACHE_SIZE:
            self._coverage_cache.clear()
        self._coverage_cache[coverage] = result
        return result

    def _cells_within(self, lat: float, lon: float, radius_km: float) -> list[str]:
        if self._cell_coords is None:
            self._cell_coords = self._root._cell_coords
        if self._cell_coords is None:
            self._cell_coords = self._root._cell_coords = np.radians(
                np.array([(self.sites[c].lat, self.sites[c].lon) for c in self.cells], dtype=float).reshape(
                    -1, 2
                )
            )
        coords = self._cell_coords
        p, lam = math.radians(lat), math.radians(lon)
        dp = coords[:, 0] - p
        dl = coords[:, 1] - lam
        h = np.sin(dp / 2) ** 2 + np.cos(p) * np.cos(coords[:, 0]) * np.sin(dl / 2) ** 2
        dist = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))
        return [self.cells[i] for i in np.nonzero(dist <= radius_km)[0]]

    def _zone_index(self) -> dict[str, list[str]]:
        # Built once: scanning every cell for every slice's zones is the cost of a big city.
        if self._zone_cells is None:
            self._zone_cells = self._root._zone_cells
        if self._zone_cells is None:
            index: dict[str, list[str]] = {}
            for c in self.cells:
                for z in self.sites[c].zones:
                    index.setdefault(z, []).append(c)
            self._zone_cells = self._root._zone_cells = index
        return self._zone_cells

    def zones(self) -> list[str]:
        return sorted({z for s in self.sites.values() for z in s.zones})

    def has_zone(self, zone: str) -> bool:
        """Whether any cell carries the zone tag (zones on other sites select no cells)."""
        return zone in self._zone_index()

    def __repr__(self) -> str:
        return f"Topology({self.name!r}, {len(self.sites)} sites, {len(self.links)} links)"


def _tree_touched(
    paths: Mapping[str, list[str]], gone_nodes: set[str], gone_links: Iterable[LinkKey]
) -> bool:
    """Whether removing these sites or links changes a shortest-path tree (``paths`` of one root).

    A removed link that is no tree edge changes no path: Dijkstra never chose it.

    >>> tree = {"e": ["e"], "a": ["e", "a"], "b": ["e", "a", "b"], "c": ["e", "c"]}
    >>> _tree_touched(tree, set(), [("b", "c")]), _tree_touched(tree, set(), [("a", "b")])
    (False, True)
    >>> _tree_touched(tree, {"c"}, [])
    True
    """
    if any(n in paths for n in gone_nodes):
        return True
    for a, b in gone_links:
        pa, pb = paths.get(a), paths.get(b)
        if (pb is not None and len(pb) > 1 and pb[-2] == a) or (
            pa is not None and len(pa) > 1 and pa[-2] == b
        ):
            return True
    return False


def _article(word: str) -> str:
    """
    >>> _article("aggregation"), _article("edge"), _article("core")
    ('an aggregation', 'an edge', 'a core')
    """
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _summarise(problems: list[str], limit: int = 10) -> str:
    shown = problems[:limit]
    if len(problems) > limit:
        shown.append(f"... and {len(problems) - limit} more problems")
    return "\n".join(shown)


def load_topology(path: str) -> Topology:
    """Read, validate and build a topology from a YAML or JSON file."""
    from controller.core.topology_file import read_topology_file

    source = read_topology_file(path)
    try:
        return Topology.from_file(source)
    except errors.TopologyError as exc:  # name the file on every problem line
        raise errors.TopologyError("\n".join(f"{path}: {line}" for line in str(exc).splitlines())) from exc
