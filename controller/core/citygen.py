"""A seeded synthetic city: cells, aggregation rings, edge data centres and a core.

The shape follows how a metro operator builds a 5G transport network:

* cells on a hexagonal grid (planned macro sites) or a Poisson layout (organic growth), each
  dual-homed over 10 Gbps fibre to its two nearest aggregation sites;
* aggregation sites (about one per dozen cells, placed by k-means on the cells) joined in
  100 Gbps rings of about eight, each ring homed to two edge data centres so a DC failure
  leaves every ring connected;
* a few edge data centres (64–512 vCPU, 4 GiB per vCPU, sized by the cells they serve),
  each joined to the core at 400 Gbps;
* links given as fibre length (straight-line distance × a route factor: ducts follow streets).

Zone tags let slices pick coverage: a grid of districts (``district-NN``), ``downtown``,
straight road corridors (``corridor-N``) for vehicle slices and Wi-Fi ``hotspot-N`` circles.
Everything is drawn from one ``numpy`` generator seeded by ``seed``: same arguments, same file.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from controller.core.topology_file import TopologyFile, parse_topology
from slices import errors

LAYOUTS = ("hex", "poisson")
CELL_SPACING_KM = 0.4  # inter-site distance of urban 5G macro cells
CELLS_PER_AGGREGATION = 12
RING_SIZE = 8
CELLS_PER_EDGE_SITE = 2500
ROUTE_FACTOR = 1.4  # fibre length over straight-line distance
CELL_RADIO_MBPS = (1000.0, 1200.0, 1500.0, 1800.0, 2000.0)  # 5G NR, 100 MHz, per site
CELL_UPLINK_MBPS = 10_000.0
RING_MBPS = 100_000.0
CORE_MBPS = 400_000.0
EDGE_VCPU_STEPS = (64, 96, 128, 192, 256, 384, 512)
MIB_PER_VCPU = 4096
CORE_VCPU = 1024
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON_EQUATOR = 111.320
CORRIDOR_HALF_WIDTH_KM = 0.35
HOTSPOT_RADIUS_KM = 0.5
# Bounds on the arguments: beyond them a city would exceed the topology file's physical bounds
# (at 8x the core site has 8,192 vCPU, under 10,000) or take hours and gigabytes to build.
MAX_CELLS = 200_000
MIN_CAPACITY_SCALE = 1e-4
MAX_CAPACITY_SCALE = 8.0


def generate_city(
    cells: int,
    seed: int = 0,
    *,
    edge_sites: int | None = None,
    layout: str = "hex",
    capacity_scale: float = 1.0,
    name: str | None = None,
    center: tuple[float, float] = (48.8566, 2.3522),
) -> TopologyFile:
    """Generate a city of ``cells`` cells; deterministic for given arguments.

    ``capacity_scale`` multiplies every capacity (radio, links, compute) so a small factor
    makes a congested instance for tests.

    >>> city = generate_city(40, seed=1)
    >>> sorted({s.kind.value for s in city.sites})
    ['aggregation', 'cell', 'core', 'edge']
    >>> sum(s.kind == "cell" for s in city.sites)
    40
    >>> generate_city(40, seed=1) == city
    True
    """
    _check_arguments(cells, edge_sites, layout, capacity_scale, center)
    check_seed(seed)
    from scipy.spatial import cKDTree  # here, not at the top: importing it costs a CLI a second

    rng = np.random.default_rng(seed)
    cell_xy = _cell_positions(cells, layout, rng)

    n_agg = max(2, round(cells / CELLS_PER_AGGREGATION))
    agg_xy = _kmeans(cell_xy, n_agg, rng)
    n_edge = edge_sites if edge_sites is not None else min(16, max(2, round(cells / CELLS_PER_EDGE_SITE)))
    n_edge = min(n_edge, n_agg)
    edge_xy = _kmeans(agg_xy, n_edge, rng)
    core_xy = np.array([[0.0, 0.0]]) if n_edge <= 2 else np.array([[-1.0, 0.0], [1.0, 0.0]])

    w_cell, w_agg = len(str(cells)), len(str(n_agg))
    cell_ids = [f"cell-{i + 1:0{w_cell}d}" for i in range(cells)]
    agg_ids = [f"agg-{i + 1:0{w_agg}d}" for i in range(n_agg)]
    edge_ids = [f"edge-{i + 1}" for i in range(n_edge)]
    core_ids = [f"core-{i + 1}" for i in range(len(core_xy))]

    lat0 = center[0]
    km_per_deg_lon = KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat0))

    def to_latlon(xy: np.ndarray) -> np.ndarray:
        # Equirectangular projection is exact enough over a city; rounded so files are stable.
        lat = np.round(center[0] + xy[:, 1] / KM_PER_DEG_LAT, 6)
        lon = np.round(center[1] + xy[:, 0] / km_per_deg_lon, 6)
        return np.column_stack([lat, lon])

    # -- links ------------------------------------------------------------------------------
    links: list[dict[str, Any]] = []

    def add_links(
        a_ids: list[str], a_xy: np.ndarray, b_ids: list[str], b_xy: np.ndarray, mbps: float
    ) -> None:
        km = np.round(np.hypot(*(a_xy - b_xy).T) * ROUTE_FACTOR, 3)
        bw = mbps * capacity_scale
        links.extend(
            {"a": a, "b": b, "bandwidth_mbps": bw, "length_km": float(k)}
            for a, b, k in zip(a_ids, b_ids, km.tolist(), strict=True)
        )

    # Cells: two nearest aggregation sites.
    _, homes = cKDTree(agg_xy).query(cell_xy, k=2)
    for j in range(2):
        add_links(cell_ids, cell_xy, [agg_ids[h] for h in homes[:, j]], agg_xy[homes[:, j]], CELL_UPLINK_MBPS)

    # Aggregation: rings around each edge DC, each ring homed to its two nearest DCs.
    primary = cKDTree(edge_xy).query(agg_xy, k=1)[1] if n_edge > 1 else np.zeros(n_agg, dtype=int)
    for e in range(n_edge):
        members = np.nonzero(primary == e)[0]
        for ring in _rings(members, agg_xy, edge_xy[e]):
            _ring_links(ring, agg_ids, agg_xy, add_links)
            centroid = agg_xy[ring].mean(axis=0)
            order = np.argsort(np.hypot(*(edge_xy - centroid).T), kind="stable")
            # The second home: the nearest other DC (with one DC, a second uplink to it).
            second = next((int(o) for o in order if o != e), e)
            first_node = ring[int(np.argmin(np.hypot(*(agg_xy[ring] - edge_xy[e]).T)))]
            rest = [r for r in ring if r != first_node] or [first_node]
            second_node = rest[int(np.argmin(np.hypot(*(agg_xy[rest] - edge_xy[second]).T)))]
            add_links([agg_ids[first_node]], agg_xy[[first_node]], [edge_ids[e]], edge_xy[[e]], RING_MBPS)
            if second_node != first_node or second != e:
                add_links(
                    [agg_ids[second_node]],
                    agg_xy[[second_node]],
                    [edge_ids[second]],
                    edge_xy[[second]],
                    RING_MBPS,
                )

    # Edge DCs: each to every core site.
    for c in range(len(core_xy)):
        add_links(
            edge_ids, edge_xy, [core_ids[c]] * n_edge, np.repeat(core_xy[[c]], n_edge, axis=0), CORE_MBPS
        )
    if len(core_xy) > 1:
        add_links(core_ids[:1], core_xy[:1], core_ids[1:2], core_xy[1:2], CORE_MBPS)

    # -- sites ------------------------------------------------------------------------------
    zones = _zones(cell_xy, rng)
    radio = rng.choice(np.array(CELL_RADIO_MBPS), size=cells) * capacity_scale
    served = np.bincount(primary[homes[:, 0]], minlength=n_edge)
    sites: list[dict[str, Any]] = []
    for sid, (lat, lon), z, r in zip(
        cell_ids, to_latlon(cell_xy).tolist(), zones, radio.tolist(), strict=True
    ):
        sites.append(
            {
                "id": sid,
                "kind": "cell",
                "location": {"lat": lat, "lon": lon},
                "zones": z,
                "capacity": {"radio_mbps": r},
            }
        )
    district = _district_names(agg_xy, cell_xy)
    for sid, (lat, lon), d in zip(agg_ids, to_latlon(agg_xy).tolist(), district, strict=True):
        sites.append({"id": sid, "kind": "aggregation", "location": {"lat": lat, "lon": lon}, "zones": [d]})
    for e, (sid, (lat, lon)) in enumerate(zip(edge_ids, to_latlon(edge_xy).tolist(), strict=True)):
        vcpu = next((v for v in EDGE_VCPU_STEPS if v * 10 >= served[e]), EDGE_VCPU_STEPS[-1])
        sites.append(
            {
                "id": sid,
                "kind": "edge",
                "location": {"lat": lat, "lon": lon},
                "capacity": _compute(vcpu, capacity_scale),
                "node_label": sid,
            }
        )
    for sid, (lat, lon) in zip(core_ids, to_latlon(core_xy).tolist(), strict=True):
        sites.append(
            {
                "id": sid,
                "kind": "core",
                "location": {"lat": lat, "lon": lon},
                "capacity": _compute(CORE_VCPU, capacity_scale),
            }
        )
    doc = {"name": name or f"city-{cells}-s{seed}", "sites": sites, "links": links}
    return parse_topology(doc, "generated city")


def _check_arguments(
    cells: int, edge_sites: int | None, layout: str, capacity_scale: float, center: tuple[float, float]
) -> None:
    if cells < 1:
        raise errors.InvalidSpec(f"cells: must be at least 1, got {cells}")
    if cells > MAX_CELLS:
        raise errors.InvalidSpec(f"cells: at most {MAX_CELLS:,} cells in a generated city, got {cells:,}")
    if edge_sites is not None and edge_sites < 1:
        raise errors.InvalidSpec(f"edgeSites: must be at least 1, got {edge_sites}")
    if layout not in LAYOUTS:
        raise errors.InvalidSpec(f"layout: unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    check_capacity_scale(capacity_scale)
    if not (-80 <= center[0] <= 80 and -180 <= center[1] <= 180):
        raise errors.InvalidSpec(
            f"center: {center} is not a latitude in [-80, 80] and longitude in [-180, 180]"
        )


def check_capacity_scale(scale: float) -> None:
    """The capacity multiplier's bounds, shared with the GraphML import.

    >>> check_capacity_scale(float("inf"))
    Traceback (most recent call last):
    ...
    slices.errors.InvalidSpec: capacityScale: not a finite number (got inf)
    """
    if not math.isfinite(scale):
        raise errors.InvalidSpec(f"capacityScale: not a finite number (got {scale})")
    if not scale > 0:
        raise errors.InvalidSpec(f"capacityScale: must be a positive number, got {scale}")
    if not MIN_CAPACITY_SCALE <= scale <= MAX_CAPACITY_SCALE:
        raise errors.InvalidSpec(
            f"capacityScale: must be between {MIN_CAPACITY_SCALE:g} and {MAX_CAPACITY_SCALE:g} "
            f"(capacities beyond the physical bounds otherwise), got {scale:g}"
        )


def check_seed(seed: int) -> None:
    if seed < 0:
        raise errors.InvalidSpec(f"seed: must be 0 or more, got {seed}")


def _compute(vcpu: int, scale: float) -> dict[str, int]:
    return {
        "cpu_millicores": max(1, round(vcpu * 1000 * scale)),
        "memory_mib": max(1, round(vcpu * MIB_PER_VCPU * scale)),
    }


def _cell_positions(cells: int, layout: str, rng: np.random.Generator) -> np.ndarray:
    """Cell coordinates in km around the centre, filling a disc."""
    area = cells * math.sqrt(3) / 2 * CELL_SPACING_KM**2  # one hexagon per cell
    radius = math.sqrt(area / math.pi)
    if layout == "poisson":
        r = radius * np.sqrt(rng.random(cells))
        t = rng.random(cells) * 2 * math.pi
        return np.column_stack([r * np.cos(t), r * np.sin(t)])
    # Hex grid: the lattice points nearest the centre, so the city is round.
    n = math.ceil(radius / CELL_SPACING_KM) + 2
    q, r_ = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    x = CELL_SPACING_KM * (q + r_ / 2)
    y = CELL_SPACING_KM * (math.sqrt(3) / 2) * r_
    pts = np.column_stack([x.ravel(), y.ravel()])
    order = np.lexsort((pts[:, 0], pts[:, 1], np.round(np.hypot(pts[:, 0], pts[:, 1]), 9)))
    return pts[order[:cells]]


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, rounds: int = 12) -> np.ndarray:
    """Lloyd's algorithm from a seeded start; empty clusters keep their centre."""
    from scipy.spatial import cKDTree

    if len(points) >= k:
        centres = points[np.sort(rng.choice(len(points), size=k, replace=False))].astype(float)
    else:
        centres = points[np.arange(k) % len(points)] + rng.normal(0, CELL_SPACING_KM, size=(k, 2))
    if k == 1:
        return np.asarray(points.mean(axis=0, keepdims=True), dtype=float)
    for _ in range(rounds):
        label = cKDTree(centres).query(points, k=1)[1]
        counts = np.bincount(label, minlength=k)
        sums = np.zeros_like(centres)
        np.add.at(sums, label, points)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return np.round(centres, 6)


def _rings(members: np.ndarray, xy: np.ndarray, hub: np.ndarray) -> list[list[int]]:
    """Split the sites around a hub into rings of about RING_SIZE neighbouring sectors."""
    if len(members) == 0:
        return []
    rel = xy[members] - hub
    angle = np.arctan2(rel[:, 1], rel[:, 0])
    ordered = members[np.argsort(angle, kind="stable")]
    n_rings = math.ceil(len(members) / RING_SIZE)
    rings = []
    for chunk in np.array_split(ordered, n_rings):
        # Out along the outer sites, back along the inner ones: a loop, not a zigzag.
        rel = xy[chunk] - hub
        dist = np.hypot(rel[:, 0], rel[:, 1])
        ang = np.arctan2(rel[:, 1], rel[:, 0])
        outer = dist >= np.median(dist)
        out_part = chunk[outer][np.argsort(ang[outer], kind="stable")]
        in_part = chunk[~outer][np.argsort(-ang[~outer], kind="stable")]
        rings.append([int(i) for i in (*out_part, *in_part)])
    return rings


def _ring_links(ring: list[int], ids: list[str], xy: np.ndarray, add_links: Any) -> None:
    if len(ring) < 2:
        return
    a = ring
    b = ring[1:] + ring[:1]
    if len(ring) == 2:
        a, b = ring[:1], ring[1:]
    add_links([ids[i] for i in a], xy[a], [ids[i] for i in b], xy[b], RING_MBPS)


def _district_grid(cell_xy: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    g = min(12, max(1, round(math.sqrt(len(cell_xy) / 100))))
    lo = cell_xy.min(axis=0)
    span = np.maximum(cell_xy.max(axis=0) - lo, 1e-9)
    return g, lo, span


def _district_names(xy: np.ndarray, cell_xy: np.ndarray) -> list[str]:
    g, lo, span = _district_grid(cell_xy)
    ij = np.clip(((xy - lo) / span * g).astype(int), 0, g - 1)
    width = max(2, len(str(g * g)))
    return [f"district-{n + 1:0{width}d}" for n in (ij[:, 1] * g + ij[:, 0]).tolist()]


def _zones(cell_xy: np.ndarray, rng: np.random.Generator) -> list[list[str]]:
    n = len(cell_xy)
    zones: list[list[str]] = [[d] for d in _district_names(cell_xy, cell_xy)]
    radius = float(np.max(np.hypot(cell_xy[:, 0], cell_xy[:, 1]))) if n else 0.0
    dist = np.hypot(cell_xy[:, 0], cell_xy[:, 1])
    # Downtown: the central sixth of the radius, at least the nearest few cells.
    downtown = dist <= max(radius / 6, np.sort(dist)[min(n, 3) - 1])
    for i in np.nonzero(downtown)[0].tolist():
        zones[i].append("downtown")
    # Corridors: straight roads across the city at seeded angles, slightly off centre.
    for c in range(3):
        theta = rng.random() * math.pi
        offset = (rng.random() - 0.5) * radius * 0.6
        normal = np.array([-math.sin(theta), math.cos(theta)])
        along = np.abs(cell_xy @ normal - offset) <= CORRIDOR_HALF_WIDTH_KM
        if not along.any():
            along[int(np.argmin(np.abs(cell_xy @ normal - offset)))] = True
        for i in np.nonzero(along)[0].tolist():
            zones[i].append(f"corridor-{c + 1}")
    # Wi-Fi hotspots: small circles around randomly chosen cells.
    n_hot = min(20, max(1, n // 500))
    for h, centre in enumerate(rng.choice(n, size=min(n, n_hot), replace=False).tolist()):
        near = np.hypot(*(cell_xy - cell_xy[centre]).T) <= HOTSPOT_RADIUS_KM
        for i in np.nonzero(near)[0].tolist():
            zones[i].append(f"hotspot-{h + 1}")
    return zones
