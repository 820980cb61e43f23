"""``slicectl topology``: generate, validate, show, import and export city topologies."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from controller.cli import output
from controller.core import citygen, graphml
from controller.core import topology as topo
from controller.core import topology_file as tf
from slices import errors

KIND_ORDER = {k: i for i, k in enumerate(tf.SiteKind)}
FILE_FORMATS = ("yaml", "json")
# ``topology show``'s tables of summary() records: (header, key) per column.
EDGE_SITE_COLUMNS = (
    ("EDGE SITE", "id"),
    ("CPU (m)", "cpuMillicores"),
    ("MEMORY (MiB)", "memoryMib"),
    ("NODE LABEL", "nodeLabel"),
    ("CELLS NEAREST", "cellsNearest"),
)
LINK_CLASS_COLUMNS = (
    ("LINK CLASS", "class"),
    ("LINKS", "links"),
    ("BANDWIDTH (Mbps)", "bandwidthMbps"),
    ("LATENCY MEAN (ms)", "latencyMsMean"),
    ("LATENCY MAX (ms)", "latencyMsMax"),
)
# Of `generate` and `import-graphml`: both build a city whose capacities it scales.
capacity_scale_option = click.option(
    "--capacity-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Multiply every capacity (congestion).",
)


@click.group()
def topology() -> None:
    """Work with city topology files."""


@topology.command()
@click.option("--cells", type=click.IntRange(min=1), required=True, help="Number of cells.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; same seed, same city.")
@click.option(
    "--edge-sites", type=click.IntRange(min=1), default=None, help="Edge data centres [default: by size]."
)
@click.option(
    "--layout",
    type=click.Choice(citygen.LAYOUTS),
    default="hex",
    show_default=True,
    help="Cell layout: a hex grid, or Poisson-scattered cells.",
)
@capacity_scale_option
@click.option("--name", default=None, help="Topology name [default: city-CELLS-sSEED].")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="Output .yaml or .json.")
def generate(
    cells: int,
    seed: int,
    edge_sites: int | None,
    layout: str,
    capacity_scale: float,
    name: str | None,
    out: str,
) -> None:
    """Generate a synthetic city (hex or Poisson cells, aggregation rings, edge DCs, core)."""
    city = citygen.generate_city(
        cells, seed, edge_sites=edge_sites, layout=layout, capacity_scale=capacity_scale, name=name
    )
    built = topo.Topology.from_file(city)
    _write(city, out, _format_of(out))
    click.echo(f"wrote {out}: {_one_line(built)}")


@topology.command()
@click.argument("file", type=click.Path())
def validate(file: str) -> None:
    """Check a topology file; print a summary, or every problem found (exit code 2)."""
    built = topo.load_topology(file)
    click.echo(f"{file}: valid: {_one_line(built)}")


@topology.command()
@click.argument("file", type=click.Path())
def fingerprint(file: str) -> None:
    """Print the topology's fingerprint (its sites and links, not capacities): what a controller
    compares with the topology_fingerprint in an agent's or simulator's Hello."""
    click.echo(topo.load_topology(file).fingerprint)


@topology.command()
@click.argument("file", type=click.Path())
@output.output_option
def show(file: str, fmt: str) -> None:
    """Counts per kind, edge sites, zones, link classes and cell-to-edge latency."""
    built = topo.load_topology(file)
    data = summary(built)
    if fmt != "table":
        output.emit_data(data, fmt)
        return
    click.echo(f"topology {data['name']}: {_one_line(built)}\n")
    click.echo(output.table(["KIND", "SITES"], list(data["sites"].items())))
    click.echo()
    for columns, records in (
        (EDGE_SITE_COLUMNS, data["edgeSites"]),
        (LINK_CLASS_COLUMNS, data["linkClasses"]),
    ):
        click.echo(output.table([h for h, _ in columns], [[r[k] for _, k in columns] for r in records]))
        click.echo()
    groups: dict[str, list[str]] = defaultdict(list)
    for zone in data["zones"]:
        groups[zone.rstrip("0123456789").rstrip("-") or zone].append(zone)
    click.echo(
        output.table(
            ["ZONE GROUP", "ZONES", "CELLS"],
            [[g, len(zs), sum(data["zones"][z] for z in zs)] for g, zs in sorted(groups.items())],
        )
    )
    lat = data["cellToNearestEdgeMs"]
    if lat:
        click.echo(
            f"\ncell to nearest edge (ms): min {lat['min']}  median {lat['median']}  "
            f"p95 {lat['p95']}  max {lat['max']}"
        )


@topology.command("import-graphml")
@click.argument("file", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output .yaml or .json.")
@click.option(
    "--edge-sites",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Highest-degree nodes made edge DCs.",
)
@click.option(
    "--edge-node",
    "edge_nodes",
    multiple=True,
    help="Make this node an edge site (repeatable; overrides --edge-sites).",
)
@click.option(
    "--cells-per-node",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Cells generated around each aggregation node.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the generated cells.")
@capacity_scale_option
@click.option("--name", default=None, help="Topology name [default: the graph's label or the file name].")
@click.option("--map-lat", default="Latitude", show_default=True, help="Node attribute with the latitude.")
@click.option("--map-lon", default="Longitude", show_default=True, help="Node attribute with the longitude.")
@click.option(
    "--map-name", default="label", show_default=True, help="Node attribute with the name ('id': node id)."
)
@click.option(
    "--map-speed", default=None, help="Edge attribute with the link speed [default: LinkSpeedRaw, bit/s]."
)
@click.option(
    "--map-latency", default=None, help="Edge attribute with the latency in ms [default: from distance]."
)
def import_graphml(
    file: str,
    out: str,
    edge_sites: int,
    edge_nodes: tuple[str, ...],
    cells_per_node: int,
    seed: int,
    capacity_scale: float,
    name: str | None,
    map_lat: str,
    map_lon: str,
    map_name: str,
    map_speed: str | None,
    map_latency: str | None,
) -> None:
    """Import a GraphML network and add generated cells around its nodes.

    Reads Internet Topology Zoo attributes by default (Latitude, Longitude, label, LinkSpeedRaw);
    the --map-* options name others. Writes nothing unless the result is a valid topology.
    """
    mapping = graphml.GraphmlMapping(
        lat=map_lat, lon=map_lon, name=map_name, speed=map_speed, latency=map_latency
    )
    city = graphml.import_graphml(
        file,
        mapping,
        seed,
        edge_sites=edge_sites,
        edge_nodes=edge_nodes,
        cells_per_node=cells_per_node,
        capacity_scale=capacity_scale,
        name=name,
    )
    built = topo.Topology.from_file(city)
    _write(city, out, _format_of(out))
    click.echo(f"wrote {out}: {_one_line(built)}")


@topology.command()
@click.argument("file", type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("yaml", "json", "graphml")),
    required=True,
    help="File format to write.",
)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The file to write.")
def export(file: str, fmt: str, out: str) -> None:
    """Write a valid topology file as YAML, JSON or GraphML."""
    city = tf.read_topology_file(file)
    try:
        topo.Topology.from_file(city)  # never export an invalid city
    except errors.TopologyError as exc:
        raise errors.TopologyError("\n".join(f"{file}: {line}" for line in str(exc).splitlines())) from exc
    _write(city, out, fmt)
    click.echo(f"wrote {out}")


@topology.command()
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write to a file, not stdout.")
def schema(out: str | None) -> None:
    """JSON Schema of the topology file format, for editors."""
    text = json.dumps(tf.json_schema(), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:

        def write(tmp: Path) -> None:
            tmp.write_text(text, encoding="utf-8")

        _atomic_write(Path(out), write)
        click.echo(f"wrote {out}")


# -- helpers --------------------------------------------------------------------------------


def summary(city: topo.Topology) -> dict[str, Any]:
    """What ``show`` prints, as data."""
    kinds = Counter(s.kind for s in city.sites.values())
    nearest: dict[str, int] = Counter()
    latencies: list[float] = []
    for cell in city.cells:
        best = min(((city.latency_to(cell, e), e) for e in city.edge_sites), default=(float("inf"), ""))
        if best[1] and best[0] != float("inf"):
            latencies.append(best[0])
            nearest[best[1]] += 1
    classes: dict[str, list[topo.Link]] = defaultdict(list)
    for ln in city.links:
        ends = sorted((city.sites[ln.a].kind, city.sites[ln.b].kind), key=KIND_ORDER.__getitem__)
        classes[f"{ends[0].value}-{ends[1].value}"].append(ln)
    zone_cells: Counter[str] = Counter(z for c in city.cells for z in city.sites[c].zones)
    return {
        "name": city.name,
        "sites": {k.value: kinds.get(k, 0) for k in tf.SiteKind},
        "links": len(city.links),
        "edgeSites": [
            {
                "id": e,
                "cpuMillicores": city.sites[e].cpu_millicores,
                "memoryMib": city.sites[e].memory_mib,
                "nodeLabel": city.sites[e].node_label,
                "cellsNearest": nearest.get(e, 0),
            }
            for e in city.edge_sites
        ],
        "zones": {z: zone_cells.get(z, 0) for z in city.zones()},
        "linkClasses": [
            {
                "class": name,
                "links": len(lns),
                "bandwidthMbps": _span(ln.bandwidth_kbps / 1000 for ln in lns),
                "latencyMsMean": round(statistics.fmean(ln.latency_ms for ln in lns), 4),
                "latencyMsMax": round(max(ln.latency_ms for ln in lns), 4),
            }
            for name, lns in sorted(classes.items(), key=lambda kv: _class_rank(kv[0]))
        ],
        "cellToNearestEdgeMs": _stats(latencies),
    }


def _class_rank(name: str) -> tuple[int, int]:
    a, b = name.split("-")
    return KIND_ORDER[tf.SiteKind(a)], KIND_ORDER[tf.SiteKind(b)]


def _span(values: Iterable[float]) -> str:
    """A value, or the range of values, compactly.

    >>> _span([10000.0, 10000.0]), _span([100.0, 40.5])
    ('10000', '40.5-100')
    """
    vs = sorted(set(values))
    return f"{vs[0]:g}" if len(vs) == 1 else f"{vs[0]:g}-{vs[-1]:g}"


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    vs = sorted(values)
    return {
        "min": round(vs[0], 4),
        "median": round(statistics.median(vs), 4),
        "p95": round(vs[min(len(vs) - 1, int(0.95 * len(vs)))], 4),
        "max": round(vs[-1], 4),
    }


def _one_line(city: topo.Topology) -> str:
    kinds = Counter(s.kind.value for s in city.sites.values())
    parts = ", ".join(f"{kinds.get(k.value, 0)} {k.value}" for k in tf.SiteKind)
    return f"{len(city.sites)} sites ({parts}), {len(city.links)} links, {len(city.zones())} zones"


def _format_of(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json":
        return "json"
    raise errors.InvalidSpec(f"--out: {path!r} must end in .yaml, .yml or .json")


def _write(city: tf.TopologyFile, out: str, fmt: str) -> None:
    def write(tmp: Path) -> None:
        if fmt == "graphml":
            graphml.export_graphml(city, tmp)
        else:
            tf.write_topology_file(city, tmp)  # JSON or YAML by the temporary file's suffix

    _atomic_write(Path(out), write, suffix=f".{fmt}")


def _atomic_write(path: Path, write: Callable[[Path], None], suffix: str = "") -> None:
    """Write beside the target and rename, so a failure never leaves half a file."""
    directory = path.parent
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise errors.InvalidSpec(f"--out: directory {str(directory)!r} {problem}")
    if path.is_dir():
        raise errors.InvalidSpec(f"--out: {str(path)!r} is a directory")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=directory)
    except OSError as exc:
        raise errors.InvalidSpec(
            f"--out: cannot create a file in {str(directory)!r} ({exc.strerror})"
        ) from exc
    os.close(fd)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)  # mkstemp makes it private; the result is an ordinary file
    try:
        write(tmp)
        tmp.replace(path)
    except OSError as exc:
        raise errors.InvalidSpec(f"--out: cannot write {path}: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)
