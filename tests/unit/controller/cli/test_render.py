"""The city picture: PNG and SVG, links by utilisation, highlighted routes, and the
``slicectl topology render`` command, offline and against a running controller."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from controller.cli import main, render
from controller.core import citygen
from controller.core.topology import Topology
from controller.process import wiring as runtime
from slices import errors
from slices.intent import load_slices
from tests.support.runtime_helpers import loopback_config


@pytest.fixture(scope="module")
def city() -> Topology:
    return Topology.from_file(citygen.generate_city(80, seed=2))


def _pixels(path: Path) -> np.ndarray:
    from matplotlib import image

    return np.asarray(image.imread(str(path)))[..., :3]


def _has_colour(pixels: np.ndarray, hex_colour: str, tolerance: float = 0.04) -> int:
    rgb = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return int(np.sum(np.all(np.abs(pixels - rgb) < tolerance, axis=-1)))


def test_png_shows_highlighted_routes_in_their_colour(city: Topology, tmp_path: Path) -> None:
    routes = tuple(city.routes(c, 50)[0].nodes for c in city.cells[:10])
    plain = render.render_city(city, tmp_path / "plain.png")
    marked = render.render_city(city, tmp_path / "marked.png", highlights=[render.Highlight("cars", routes)])
    assert plain.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    colour = render.ROUTE_COLOURS[0]
    assert _has_colour(_pixels(plain), colour) == 0
    assert _has_colour(_pixels(marked), colour) > 200


def test_links_are_coloured_by_utilisation(city: Topology, tmp_path: Path) -> None:
    full = {ln.key: 1.0 for ln in city.links}
    idle = render.render_city(city, tmp_path / "idle.png")
    busy = render.render_city(city, tmp_path / "busy.png", utilisation=full)
    # RdYlGn_r: idle links are green, saturated ones red.
    red = int(np.sum((_pixels(busy)[..., 0] > 0.55) & (_pixels(busy)[..., 1] < 0.2)))
    red_idle = int(np.sum((_pixels(idle)[..., 0] > 0.55) & (_pixels(idle)[..., 1] < 0.2)))
    assert red > 3 * max(red_idle, 100)


def test_svg_names_the_slices_and_marks_down_sites(city: Topology, tmp_path: Path) -> None:
    down = city.with_down(sites=[city.edge_sites[0]])
    routes = (city.routes(city.cells[0], 50)[0].nodes,)
    out = render.render_city(
        down,
        tmp_path / "city.svg",
        highlights=[render.Highlight("cars", routes), render.Highlight("idle", ())],
    )
    text = out.read_text()
    root = ET.fromstring(text)
    assert root.tag.endswith("svg")
    labels = set(re.findall(r"<!-- (.*?) -->", text))  # matplotlib's SVG keeps each text as a comment
    assert {"slice cars (1 cells)", "slice idle (not placed)", "down", "link reserved / capacity"} <= labels


def test_unknown_site_and_bad_format_are_user_errors(city: Topology, tmp_path: Path) -> None:
    with pytest.raises(errors.NotFound, match="site 'nowhere'"):
        render.render_city(
            city, tmp_path / "x.png", highlights=[render.Highlight("s", (("nowhere", "edge-1"),))]
        )
    with pytest.raises(errors.InvalidSpec, match=r"unknown picture format '\.pdf'"):
        render.render_city(city, tmp_path / "x.pdf")
    assert not (tmp_path / "x.png").exists()


def test_render_command_offline_and_live(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["topology", "render", "--cells", "60", "--out", str(tmp_path / "a.svg")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.svg").read_text().startswith("<?xml")
    bad = runner.invoke(main, ["topology", "render", "--out", str(tmp_path / "b.png")])
    assert bad.exit_code == 2 and "give exactly one of --topology FILE or --cells N" in bad.stderr

    config = loopback_config(tmp_path, reconcile_interval_s=60)
    controller = runtime.Controller(config)  # the default sample city: 60 cells, seed 0
    controller.start()
    try:
        assert controller.service is not None
        docs = load_slices(
            "apiVersion: edgeslice.io/v1alpha1\nkind: NetworkSlice\nmetadata: {name: cars}\n"
            "spec: {kind: vehicle, coverage: {zones: [downtown]}}\n"
        )
        controller.service.apply(docs, "operator:test")
        token = (tmp_path / "state" / "token").read_text().strip()
        live = ["--live", "--server", controller.address, "--token", token]
        out = tmp_path / "live.png"
        result = runner.invoke(
            main, ["topology", "render", "--cells", "60", "--slice", "cars", "--out", str(out), *live]
        )
        assert result.exit_code == 0, result.output
        assert _has_colour(_pixels(out), render.ROUTE_COLOURS[0]) > 50
        # --live alone: the controller's own topology, nothing else to name.
        alone = tmp_path / "alone.svg"
        result = runner.invoke(main, ["topology", "render", "--slice", "cars", "--out", str(alone), *live])
        assert (result.exit_code, result.stdout.strip()) == (0, f"wrote {alone}"), result.output
        labels = set(re.findall(r"<!-- (.*?) -->", alone.read_text()))
        assert {"city-60-s0 (live)", "edge-1", "edge-2", "core-1", "cell (60)"} <= labels, labels
        assert any(label.startswith("slice cars (") for label in labels)
        other = runner.invoke(
            main, ["topology", "render", "--cells", "61", "--out", str(tmp_path / "x.png"), *live]
        )
        assert other.exit_code == 2 and "the controller runs topology 'city-60-s0'" in other.stderr
        missing = runner.invoke(
            main,
            [
                "topology",
                "render",
                "--cells",
                "60",
                "--slice",
                "nope",
                "--out",
                str(tmp_path / "y.png"),
                *live,
            ],
        )
        assert missing.exit_code == 4 and "nope" in missing.stderr
    finally:
        controller.stop()


def test_edge_and_core_sites_are_named_cells_visible_and_the_legend_off_the_map(
    city: Topology, tmp_path: Path
) -> None:
    fig = render.draw_city(city)
    (ax,) = [a for a in fig.axes if a.get_legend() is not None]
    names = {t.get_text() for t in ax.texts}
    assert names == {s for s, site in city.sites.items() if site.kind.value in render.LABELLED}
    assert {"edge-1", "core-1"} <= names
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    # Nothing drawn of the city (its sites and links, the axes' data area) lies under the legend.
    assert not legend.overlaps(ax.get_window_extent(renderer)), (legend, ax.get_window_extent(renderer))
    colourbar = next(a for a in fig.axes if a is not ax).get_window_extent(renderer)
    assert not colourbar.overlaps(ax.get_window_extent(renderer))
    # Cells are drawn as visible dots in their colour, at least a few pixels each.
    out = render.render_city(city, tmp_path / "cells.png")
    assert _has_colour(_pixels(out), render.SITE_STYLE["cell"]["c"], tolerance=0.05) > 20 * len(city.cells)
