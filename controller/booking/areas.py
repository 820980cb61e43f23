"""Which cells of the city a booking's ``serviceArea`` covers.

A circle selects the cells within ``radius`` metres of its centre, great-circle distance, through
:meth:`Topology.cells_in` (the same rule as a slice's ``coverage.circle``). A polygon selects the
cells inside it or on its boundary (so a cell on the edge counts, as one on a circle's rim does);
it is taken in plain longitude/latitude degrees, which over a city's few kilometres differs from
the geodesic shape by far less than a cell's own footprint. A polygon must be simple, as the spec
says: a self-intersecting or zero-area boundary is refused rather than guessed at.
"""

from __future__ import annotations

import weakref

import numpy as np
import shapely  # type: ignore[import-untyped]  # no py.typed in shapely 2.x; types-shapely would do

from controller.booking import camara, ports
from controller.core import topology as topology_mod
from slices import intent

#: The largest circle a slice's coverage takes (``Circle.radius_km``), in metres.
MAX_RADIUS_M = 500_000.0


def covered_cells(area: camara.Area, topology: topology_mod.Topology) -> tuple[str, ...]:
    """The cells ``area`` covers, in topology order; :func:`ports.area_not_supported` if none.

    >>> from controller.core.topology_file import TopologyFile
    >>> city = topology_mod.Topology.from_file(TopologyFile.model_validate({"sites": [
    ...     {"id": "c1", "kind": "cell", "location": {"lat": 45.7541, "lon": 4.8604}, "capacity": {"radioMbps": 100}},
    ...     {"id": "c2", "kind": "cell", "location": {"lat": 45.7700, "lon": 4.8604}, "capacity": {"radioMbps": 100}},
    ...     {"id": "e1", "kind": "edge", "location": {"lat": 45.76, "lon": 4.86},
    ...      "capacity": {"cpuMillicores": 8000, "memoryMib": 16384}}],
    ...   "links": [{"a": "c1", "b": "e1", "bandwidthMbps": 1000, "latencyMs": 0.5},
    ...             {"a": "c2", "b": "e1", "bandwidthMbps": 1000, "latencyMs": 0.5}]}))
    >>> covered_cells(camara.Circle(center=camara.Point(latitude=45.754114, longitude=4.860374), radius=800), city)
    ('c1',)
    """
    cells = _in_circle(area, topology) if isinstance(area, camara.Circle) else _in_polygon(area, topology)
    if not cells:
        raise ports.area_not_supported(
            f"serviceArea: no cell of this network lies in the requested {area.areaType.lower()}"
        )
    return cells


def _in_circle(area: camara.Circle, topology: topology_mod.Topology) -> tuple[str, ...]:
    if area.radius > MAX_RADIUS_M:
        raise ports.out_of_range(
            f"serviceArea.radius: {area.radius:g} m is more than this network books ({MAX_RADIUS_M:g} m at most)"
        )
    circle = intent.Circle(lat=area.center.latitude, lon=area.center.longitude, radius_km=area.radius / 1000)
    return topology.cells_in(intent.Coverage(circle=circle))


def _in_polygon(area: camara.Polygon, topology: topology_mod.Topology) -> tuple[str, ...]:
    polygon = shapely.Polygon([(p.longitude, p.latitude) for p in area.boundary])
    if not polygon.is_valid:
        why = shapely.is_valid_reason(polygon)
        raise ports.invalid_argument(f"serviceArea.boundary: not a simple polygon ({why})")
    if polygon.area <= 0:
        raise ports.invalid_argument("serviceArea.boundary: the points enclose no area (all on one line?)")
    shapely.prepare(polygon)
    cells = topology.cells
    if not cells:
        return ()
    lon, lat = _cell_coordinates(topology)
    inside = shapely.intersects_xy(polygon, lon, lat)  # inside or on the boundary
    return tuple(cells[i] for i in np.flatnonzero(inside).tolist())


# Topology -> its cells' (lon, lat) arrays, in topology order: made once per city, not per polygon.
_COORDINATES: weakref.WeakKeyDictionary[topology_mod.Topology, tuple[np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)


def _cell_coordinates(topology: topology_mod.Topology) -> tuple[np.ndarray, np.ndarray]:
    found = _COORDINATES.get(topology)
    if found is None:
        sites = topology.sites
        lon = np.array([sites[c].lon for c in topology.cells], dtype=float)
        lat = np.array([sites[c].lat for c in topology.cells], dtype=float)
        found = _COORDINATES[topology] = (lon, lat)
    return found
