"""The city topology file format (YAML or JSON), validated with pydantic.

Units are the operator's: Mbps, ms, km, millicores, MiB. :mod:`controller.core.topology` turns a
validated file into the graph placement works on.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pydantic
import yaml
from pydantic import Field, model_validator

from slices import documents, errors
from slices.model import WireModel

FIBRE_MS_PER_KM = 0.005  # light in fibre: about 5 µs per km
# libyaml's C dumper when PyYAML was built with it: a big city is slow to write in pure Python.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SITE_ID = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"

# Physical bounds (docs/topology.md): a value beyond them is a typo or a unit mix-up, refused
# here so nothing downstream (integer kbit/s, sums in the ledger, metrics) meets an absurd number.
MAX_RADIO_MBPS = 100_000.0  # 100 Gbit/s per cell: beyond any 5G NR carrier aggregation
MAX_LINK_MBPS = 10_000_000.0  # 10 Tbit/s per link: a fully lit fibre pair
MAX_CPU_MILLICORES = 10_000_000  # 10,000 vCPU per site
MAX_MEMORY_MIB = 100_000_000  # about 95 TiB per site
MAX_LINK_LATENCY_MS = 1000.0  # one second one way: farther than a geostationary hop
MAX_LINK_KM = 40_000.0  # once round the Earth


class SiteKind(StrEnum):
    CELL = "cell"
    AGGREGATION = "aggregation"
    EDGE = "edge"
    CORE = "core"


class Location(WireModel):
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class Capacity(WireModel):
    radio_mbps: Annotated[
        float | None,
        Field(gt=0, le=MAX_RADIO_MBPS, allow_inf_nan=False, description="cells: radio capacity"),
    ] = None
    cpu_millicores: Annotated[
        int | None, Field(ge=0, le=MAX_CPU_MILLICORES, description="edge/core: allocatable CPU")
    ] = None
    memory_mib: Annotated[
        int | None, Field(ge=0, le=MAX_MEMORY_MIB, description="edge/core: allocatable memory")
    ] = None


class SiteSpec(WireModel):
    id: Annotated[str, Field(pattern=SITE_ID, max_length=63)]
    kind: SiteKind
    location: Location
    zones: tuple[Annotated[str, Field(pattern=SITE_ID, max_length=63)], ...] = ()
    capacity: Capacity = Capacity()
    node_label: Annotated[
        str | None,
        Field(max_length=63, description="edge sites: value of the node label that pins workloads here"),
    ] = None

    @model_validator(mode="after")
    def _capacities_fit_kind(self) -> SiteSpec:
        cap = self.capacity
        if self.kind == SiteKind.CELL and cap.radio_mbps is None:
            raise ValueError("a cell needs capacity.radioMbps")
        if self.kind == SiteKind.EDGE and (cap.cpu_millicores is None or cap.memory_mib is None):
            raise ValueError("an edge site needs capacity.cpuMillicores and capacity.memoryMib")
        if self.kind != SiteKind.CELL and cap.radio_mbps is not None:
            raise ValueError(f"capacity.radioMbps is for cells, not {self.kind.value} sites")
        if self.kind != SiteKind.EDGE and self.node_label is not None:
            raise ValueError(f"nodeLabel is for edge sites, not {self.kind.value} sites")
        return self


class LinkSpec(WireModel):
    a: str
    b: str
    bandwidth_mbps: Annotated[float, Field(gt=0, le=MAX_LINK_MBPS, allow_inf_nan=False)]
    latency_ms: Annotated[float | None, Field(ge=0, le=MAX_LINK_LATENCY_MS, allow_inf_nan=False)] = None
    length_km: Annotated[float | None, Field(ge=0, le=MAX_LINK_KM, allow_inf_nan=False)] = None

    @model_validator(mode="after")
    def _one_latency(self) -> LinkSpec:
        if (self.latency_ms is None) == (self.length_km is None):
            raise ValueError("give exactly one of latencyMs or lengthKm")
        if self.a == self.b:
            raise ValueError(f"link joins {self.a!r} to itself")
        return self


class TopologyFile(WireModel):
    """A whole city: sites, links and the per-hop cost added to links given by fibre length."""

    name: Annotated[str, Field(min_length=1, max_length=120)] = "city"
    hop_latency_ms: Annotated[
        float, Field(ge=0, le=10, allow_inf_nan=False, description="switching cost per fibre hop")
    ] = 0.05
    sites: tuple[SiteSpec, ...]
    links: tuple[LinkSpec, ...]

    def link_latency_ms(self, link: LinkSpec) -> float:
        if link.latency_ms is not None:
            return link.latency_ms
        assert link.length_km is not None
        return link.length_km * FIBRE_MS_PER_KM + self.hop_latency_ms


def parse_topology(document: object, where: str = "") -> TopologyFile:
    try:
        return TopologyFile.model_validate(document)
    except pydantic.ValidationError as exc:
        raise errors.TopologyError(errors.describe_validation_error(exc, where)) from exc


def read_topology_file(path: str | Path) -> TopologyFile:
    """Read YAML or JSON (by content: JSON is YAML) and validate the schema."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.TopologyError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise errors.TopologyError(
            f"{path}: not a topology file: byte {exc.start} is not UTF-8 text (a binary file?)"
        ) from exc
    try:
        document = _load_document(text, is_json=path.suffix == ".json")
    except documents.DocumentError as exc:
        raise errors.TopologyError(f"{path}: {exc}") from exc
    if not isinstance(document, dict):
        raise errors.TopologyError(f"{path}: expected a mapping with sites and links")
    return parse_topology(document, str(path))


def _load_document(text: str, is_json: bool) -> object:
    """JSON or YAML, strictly (:mod:`slices.documents`: no duplicate keys, no over-long integers).

    >>> _load_document('{"a": [1, 2]}', is_json=False), _load_document("a: [1, 2]", is_json=False)
    ({'a': [1, 2]}, {'a': [1, 2]})
    """
    return documents.load_document(text, is_json)


def write_topology_file(topology: TopologyFile, path: str | Path) -> None:
    path = Path(path)
    data = topology.to_wire()
    if path.suffix == ".json":
        text = json.dumps(data, indent=1)
    else:
        text = yaml.dump(data, Dumper=_YAML_DUMPER, sort_keys=False, default_flow_style=None, width=120)
    path.write_text(text, encoding="utf-8")


def json_schema() -> dict[str, object]:
    """JSON Schema of the file format, for editors (``slicectl topology schema``)."""
    return TopologyFile.model_json_schema(by_alias=True)
