"""areas.covered_cells over a small grid of cells around the spec's example point (Lyon)."""

from __future__ import annotations

import pytest

from controller.booking import areas, camara, ports
from controller.core import topology as topology_mod
from tests.support import cityfixtures as cf

LAT0, LON0 = 45.754114, 4.860374  # the centre of the spec's RETRIEVAL_CIRCLE example
KM_PER_DEG_LAT = topology_mod.EARTH_RADIUS_KM * 3.141592653589793 / 180  # 111.195 km


def _north(metres: float) -> float:
    return LAT0 + metres / 1000 / KM_PER_DEG_LAT


@pytest.fixture(scope="module")
def city() -> topology_mod.Topology:
    """Cells listed out of geographic order (topology order is the file's): far, north-500,
    centre, east, north-1000, and one on the polygon boundary."""
    cells = [
        cf.cell("far", lat=LAT0 + 1, lon=LON0),
        cf.cell("n500", lat=_north(500), lon=LON0),
        cf.cell("centre", lat=LAT0, lon=LON0),
        cf.cell("east", lat=LAT0, lon=LON0 + 0.02),
        cf.cell("n1000", lat=_north(1000), lon=LON0),
        cf.cell("rim", lat=LAT0 - 0.002, lon=LON0),
    ]
    sites = [*cells, cf.edge("e1", lat=LAT0, lon=LON0)]
    return cf.build(sites, [cf.link(c["id"], "e1") for c in cells])


def _circle(radius: float, lat: float = LAT0, lon: float = LON0) -> camara.Circle:
    return camara.Circle(center=camara.Point(latitude=lat, longitude=lon), radius=radius)


def _polygon(*points: tuple[float, float]) -> camara.Polygon:
    """Points as (lat, lon)."""
    return camara.Polygon(boundary=tuple(camara.Point(latitude=a, longitude=o) for a, o in points))


def test_circle_radius_is_metres(city: topology_mod.Topology) -> None:
    assert areas.covered_cells(_circle(200), city) == ("centre",)  # rim is 222 m south
    assert areas.covered_cells(_circle(400), city) == ("centre", "rim")
    assert areas.covered_cells(_circle(800), city) == ("n500", "centre", "rim")
    assert areas.covered_cells(_circle(1100), city) == ("n500", "centre", "n1000", "rim")


def test_circle_rim_just_inside_and_just_outside(city: topology_mod.Topology) -> None:
    assert "n1000" in areas.covered_cells(_circle(1000.5), city)
    assert "n1000" not in areas.covered_cells(_circle(999.5), city)


def test_circle_far_too_big_names_radius(city: topology_mod.Topology) -> None:
    with pytest.raises(ports.BookingError) as caught:
        areas.covered_cells(_circle(500_001), city)
    assert (caught.value.status, caught.value.code) == (400, "OUT_OF_RANGE")
    assert caught.value.message.startswith("serviceArea.radius:")
    assert "\n" not in caught.value.message
    assert "far" in areas.covered_cells(_circle(500_000), city)


def test_polygon_cells_inside_and_on_the_boundary_in_topology_order(city: topology_mod.Topology) -> None:
    # A box from the rim cell (its southern edge) to just past n500, wide enough for east.
    south, north = LAT0 - 0.002, _north(600)
    west, east = LON0 - 0.001, LON0 + 0.021
    box = _polygon((north, east), (north, west), (south, west), (south, east))
    assert areas.covered_cells(box, city) == ("n500", "centre", "east", "rim")


def test_polygon_given_closed_is_the_same(city: topology_mod.Topology) -> None:
    ring = [(LAT0 - 0.001, LON0 - 0.001), (LAT0 - 0.001, LON0 + 0.001), (LAT0 + 0.001, LON0 + 0.001)]
    assert areas.covered_cells(_polygon(*ring), city) == ("centre",)
    assert areas.covered_cells(_polygon(*ring, ring[0]), city) == ("centre",)


def test_the_spec_polygon_example_covers_a_cell_inside_it() -> None:
    # RETRIEVAL_POLYGON: a thin sliver east of the circle's centre; one cell in it, one just south.
    example = ((45.754114, 4.860374), (45.753845, 4.863185), (45.753916, 4.866531), (45.754116, 4.876353))
    inside, outside = (45.754000, 4.866531), (45.753800, 4.866531)
    city = cf.build(
        [
            cf.cell("in", lat=inside[0], lon=inside[1]),
            cf.cell("out", lat=outside[0], lon=outside[1]),
            cf.edge("e"),
        ],
        [cf.link("in", "e"), cf.link("out", "e")],
    )
    assert areas.covered_cells(_polygon(*example), city) == ("in",)


@pytest.mark.parametrize(
    "points",
    [
        ((0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)),  # a bow tie: the edges cross
        ((0.0, 0.0), (1.0, 1.0), (2.0, 2.0)),  # on one line
        ((0.0, 0.0), (0.0, 0.0), (0.0, 0.0)),  # one point
        ((0.0, 0.0), (1.0, 0.0), (0.0, 0.0)),  # there and back
    ],
)
def test_polygon_not_simple_is_invalid_boundary(
    city: topology_mod.Topology, points: tuple[tuple[float, float], ...]
) -> None:
    with pytest.raises(ports.BookingError) as caught:
        areas.covered_cells(_polygon(*points), city)
    assert (caught.value.status, caught.value.code) == (400, "INVALID_ARGUMENT")
    assert caught.value.message.startswith("serviceArea.boundary:")
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    "area",
    [
        _circle(50, lat=LAT0 + 0.5),
        _polygon((0.0, 0.0), (0.0, 1.0), (1.0, 1.0)),
    ],
)
def test_nothing_covered_is_area_not_supported(city: topology_mod.Topology, area: camara.Area) -> None:
    with pytest.raises(ports.BookingError) as caught:
        areas.covered_cells(area, city)
    assert (caught.value.status, caught.value.code) == (
        422,
        "NETWORK_SLICE_BOOKING.SERVICEAREA_NOT_SUPPORTED",
    )
    assert caught.value.message.startswith("serviceArea:")


def test_down_cells_are_still_covered(city: topology_mod.Topology) -> None:
    """Coverage is geography; whether a covered cell is up is admission's concern."""
    assert areas.covered_cells(_circle(400), city.with_down(["centre"])) == ("centre", "rim")
