"""A picture of the city: sites by kind, links coloured by utilisation, chosen slices' routes.

Drawn with matplotlib's object API on the Agg/SVG canvases (no pyplot, no display, no global
state), so it runs in a server or a test. The output format follows the file name: ``.png`` or
``.svg``. Sites are placed by longitude and latitude (scaled by the cosine of the latitude so a
city is not stretched); the access links all go in one ``LineCollection``, so a
city of tens of thousands of cells draws quickly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.core.placement_model import Placement
from controller.core.topology import LinkKey, Topology, link_key
from slices import errors

FORMATS = (".png", ".svg")
SITE_STYLE: dict[str, dict[str, Any]] = {
    # kind: marker, size, colour, drawing order (cells: the size for a small city, see _cell_size)
    "cell": {"marker": "o", "s": 16, "c": "#5a5a5a", "zorder": 3},
    "aggregation": {"marker": "s", "s": 46, "c": "#1f77b4", "zorder": 4},
    "edge": {"marker": "^", "s": 190, "c": "#ff7f0e", "zorder": 6},
    "core": {"marker": "*", "s": 340, "c": "#d62728", "zorder": 6},
}
LABELLED = ("edge", "core")  # kinds whose sites are named on the map
MAX_LABELS = 80  # more named sites than this would hide the map: the legend counts them instead
ROUTE_COLOURS = (
    "#1f3fff",
    "#a000d8",
    "#00b5d8",
    "#ff00b4",
    "#111111",
    "#7f4f00",
    "#5a5aff",
    "#00806e",
)  # off the link colour map


@dataclass(frozen=True)
class Highlight:
    """A slice to draw on top: its routes as node paths (cell, ..., edge site)."""

    name: str
    routes: tuple[tuple[str, ...], ...]

    @classmethod
    def from_placement(cls, placement: Placement) -> Highlight:
        return cls(placement.slice_name, tuple(a.nodes for a in placement.assignments))

    @classmethod
    def from_explain(cls, name: str, explanation: Mapping[str, Any]) -> Highlight:
        """From ``ExplainSlice`` (``placement.routes[].path``); no routes when it is not placed."""
        placement = explanation.get("placement") or {}
        routes = tuple(tuple(str(n) for n in r["path"]) for r in placement.get("routes", ()))
        return cls(name, routes)


def output_format(path: Path) -> str:
    """The format a file name asks for.

    >>> output_format(Path("city.svg"))
    'svg'
    >>> output_format(Path("city.jpg"))
    Traceback (most recent call last):
    ...
    slices.errors.InvalidSpec: --out city.jpg: unknown picture format '.jpg'; use .png or .svg
    """
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise errors.InvalidSpec(
            f"--out {path}: unknown picture format {suffix or '(none)'!r}; use {' or '.join(FORMATS)}"
        )
    return suffix[1:]


def utilisation_of(rows: Iterable[tuple[LinkKey, int, int]]) -> dict[LinkKey, float]:
    """(link, reserved, capacity) rows, as ``TopologyStatus.link_utilisation`` has them, to ratios.

    >>> utilisation_of([(("b", "a"), 50, 200), (("c", "d"), 1, 0)])
    {('a', 'b'): 0.25, ('c', 'd'): 0.0}
    """
    return {link_key(*key): (res / cap if cap > 0 else 0.0) for key, res, cap in rows}


def _cell_size(cells: int) -> float:
    """Cell marker area: visible in a small city, a dot that does not swamp a big one.

    >>> _cell_size(60), _cell_size(2000), _cell_size(20000)
    (16.0, 4.0, 1.0)
    """
    return max(1.0, min(16.0, 8000.0 / max(1, cells)))


def render_city(
    topology: Topology,
    out: Path,
    utilisation: Mapping[LinkKey, float] | None = None,
    highlights: Sequence[Highlight] = (),
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Draw ``topology`` to ``out`` (PNG or SVG by its suffix); returns the path written.

    See :func:`draw_city` for what is drawn. Unknown site names in a highlight raise
    :class:`slices.errors.NotFound`.
    """
    fmt = output_format(out)
    fig = draw_city(topology, utilisation, highlights, title, fmt)
    try:
        fig.savefig(out, format=fmt, dpi=dpi, bbox_inches="tight")
    except OSError as exc:
        raise errors.InvalidSpec(f"--out {out}: cannot write: {exc.strerror}") from exc
    return out


def draw_city(
    topology: Topology,
    utilisation: Mapping[LinkKey, float] | None = None,
    highlights: Sequence[Highlight] = (),
    title: str | None = None,
    fmt: str = "png",
) -> Any:
    """The picture as a matplotlib ``Figure`` on its own canvas (``fmt``: png or svg).

    Links are coloured by ``utilisation`` (reserved over capacity, 0 where absent) from green to
    red; down sites and links (``topology.down_sites``/``down_links``) are drawn crossed out and
    dashed; each highlighted slice's routes are drawn thick in its own colour, its cells ringed.
    Edge and core sites are named beside their markers; the legend and the colour bar sit
    outside the map, so nothing of the city is hidden under them.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    util = utilisation or {}
    sites = topology.sites
    lat0 = sum(s.lat for s in sites.values()) / max(1, len(sites))
    kx = math.cos(math.radians(lat0))

    def xy(site_id: str) -> tuple[float, float]:
        s = sites[site_id]
        return (s.lon * kx, s.lat)

    for h in highlights:
        for route in h.routes:
            for node in route:
                topology.site(node)  # NotFound names the site

    fig = Figure(figsize=(12, 12) if len(sites) > 2000 else (9, 9))
    FigureCanvasSVG(fig) if fmt == "svg" else FigureCanvasAgg(fig)  # the figure keeps its canvas
    ax = fig.add_subplot(1, 1, 1)
    ax.set_aspect("equal")
    ax.set_axis_off()

    cmap = colormaps["RdYlGn_r"]
    norm = Normalize(0.0, 1.0)
    big = len(topology.links) > 5000
    segments, colours, widths, styles = [], [], [], []
    for ln in topology.links:
        down = ln.key in topology.down_links or ln.a in topology.down_sites or ln.b in topology.down_sites
        access = sites[ln.a].kind.value == "cell" or sites[ln.b].kind.value == "cell"
        segments.append((xy(ln.a), xy(ln.b)))
        colours.append((0.3, 0.3, 0.3, 0.5) if down else cmap(norm(min(1.0, util.get(ln.key, 0.0)))))
        widths.append((0.2 if big else 0.5) if access else 1.6)
        styles.append("dashed" if down else "solid")
    ax.add_collection(
        LineCollection(segments, colors=colours, linewidths=widths, linestyles=styles, zorder=1)
    )

    handles = []
    for kind, style in SITE_STYLE.items():
        ids = [s for s, site in sites.items() if site.kind.value == kind]
        if not ids:
            continue
        pts = [xy(s) for s in ids]
        drawn = style
        if kind == "cell":
            drawn = {**style, "s": _cell_size(len(ids))}
        elif kind == "aggregation":  # a few stand out; hundreds must not hide the cells
            drawn = {**style, "s": max(14.0, min(float(style["s"]), 2500.0 / len(ids)))}
        ax.scatter(
            [p[0] for p in pts],
            [p[1] for p in pts],
            label=f"{kind} ({len(ids)})",
            edgecolors="white",
            linewidths=0.3 if kind == "cell" else 0.8,
            **drawn,
        )
        if kind in LABELLED and len(ids) <= MAX_LABELS:
            backing = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75}
            for site_id, (x, y) in zip(ids, pts, strict=True):
                ax.annotate(
                    site_id,
                    (x, y),
                    xytext=(7, 7),
                    textcoords="offset points",
                    fontsize=8,
                    fontweight="bold",
                    color=style["c"],
                    bbox=backing,
                    zorder=9,
                )
        handles.append(
            Line2D(
                [],
                [],
                marker=style["marker"],
                color=style["c"],
                linestyle="",
                markersize=8,
                label=f"{kind} ({len(ids)})",
            )
        )
    down_pts = [xy(s) for s in topology.down_sites]
    if down_pts:
        ax.scatter([p[0] for p in down_pts], [p[1] for p in down_pts], marker="x", s=140, c="black", zorder=8)
        handles.append(Line2D([], [], marker="x", color="black", linestyle="", markersize=8, label="down"))

    for i, h in enumerate(highlights):
        colour = ROUTE_COLOURS[i % len(ROUTE_COLOURS)]
        route_segments = [(xy(u), xy(v)) for route in h.routes for u, v in itertools.pairwise(route)]
        ax.add_collection(LineCollection(route_segments, colors=colour, linewidths=2.6, alpha=0.85, zorder=7))
        cells = {route[0] for route in h.routes}
        if cells:
            pts = [xy(c) for c in cells]
            ax.scatter(
                [p[0] for p in pts], [p[1] for p in pts], s=40, facecolors="none", edgecolors=colour, zorder=7
            )
        label = f"slice {h.name} ({len(cells)} cells)" if h.routes else f"slice {h.name} (not placed)"
        handles.append(Line2D([], [], color=colour, linewidth=2.6, label=label))

    ax.autoscale_view()
    ax.margins(0.04)  # room for the names at the rim
    sm = _scalar_mappable(cmap, norm)
    fig.colorbar(
        sm,
        ax=ax,
        orientation="horizontal",
        location="bottom",
        shrink=0.5,
        pad=0.02,
        label="link reserved / capacity",
    )
    # Outside the map, to its right: the city is never hidden under the legend.
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        fontsize=8,
        frameon=False,
    )
    ax.set_title(title or f"{topology.name}: {len(topology.cells)} cells, {len(topology.links)} links")
    return fig


def _scalar_mappable(cmap: Any, norm: Any) -> Any:
    from matplotlib.cm import ScalarMappable

    sm = ScalarMappable(norm=norm, cmap=cmap)
    sm.set_array([])
    return sm
