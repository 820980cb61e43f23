"""What an operator asks for: the ``NetworkSlice`` intent as written in YAML, sent over the API
or stored as a Kubernetes custom resource.

The spec leaves most SLA fields optional; :func:`slices.profiles.resolve` fills them from the
profile of the slice's kind and checks the result is consistent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

import pydantic
from pydantic import ConfigDict, Field, field_validator, model_validator

from slices import documents, errors
from slices.model import WireModel

API_VERSION = "edgeslice.io/v1alpha1"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_LABEL_RE = re.compile(DNS_LABEL)


class SliceKind(StrEnum):
    IOT = "iot"
    VEHICLE = "vehicle"
    WIFI = "wifi"


class Isolation(StrEnum):
    SHARED = "shared"
    DEDICATED = "dedicated"


class Snssai(WireModel):
    """Single Network Slice Selection Assistance Information (3GPP TS 23.003 §28.4.2)."""

    sst: Annotated[int, Field(ge=1, le=255, description="Slice/Service Type (TS 23.501 §5.15.2.2)")]
    sd: Annotated[
        str | None,
        Field(pattern=r"^[0-9A-Fa-f]{6}$", description="Slice Differentiator, 6 hex digits"),
    ] = None

    def __str__(self) -> str:
        return f"{self.sst}-{self.sd.lower()}" if self.sd else str(self.sst)


class Circle(WireModel):
    """A disc on the map: every cell whose location lies inside it is covered."""

    model_config = ConfigDict(allow_inf_nan=False)  # NaN and infinity: "not a finite number"

    lat: Annotated[float, Field(ge=-90, le=90, description="latitude of the centre, degrees (WGS 84)")]
    lon: Annotated[float, Field(ge=-180, le=180, description="longitude of the centre, degrees (WGS 84)")]
    radius_km: Annotated[float, Field(gt=0, le=500, description="radius in kilometres")]


class Coverage(WireModel):
    """Which cells the slice covers: the union of explicit cells, zone tags and a circle."""

    sites: Annotated[
        tuple[str, ...], Field(description="cell site ids from the topology, covered as listed")
    ] = ()
    zones: Annotated[
        tuple[str, ...], Field(description="zone tags: every cell tagged with one of them is covered")
    ] = ()
    circle: Annotated[Circle | None, Field(description="every cell inside this circle is covered")] = None

    @model_validator(mode="after")
    def _not_empty(self) -> Coverage:
        if not self.sites and not self.zones and self.circle is None:
            raise ValueError("give at least one of sites, zones or circle")
        return self


class Sla(WireModel):
    """Service level asked for; unset fields take the profile's default (GSMA NG.116 names in docs)."""

    model_config = ConfigDict(allow_inf_nan=False)  # NaN and infinity: "not a finite number"

    latency_ms: Annotated[
        float | None, Field(gt=0, le=1000, description="one-way cell-to-edge latency bound (NG.116 latency)")
    ] = None
    dl_mbps_per_cell: Annotated[
        float | None, Field(ge=0, le=100_000, description="guaranteed downlink throughput per cell")
    ] = None
    ul_mbps_per_cell: Annotated[
        float | None, Field(ge=0, le=100_000, description="guaranteed uplink throughput per cell")
    ] = None
    max_devices: Annotated[
        int | None, Field(ge=1, le=100_000_000, description="maximum number of UEs (NG.116 maxNumberofUEs)")
    ] = None
    reliability: Annotated[
        float | None, Field(gt=0, lt=1, description="fraction of packets delivered in time, e.g. 0.99999")
    ] = None


class Workload(WireModel):
    """An application the slice runs at its edge sites (one Deployment per edge site)."""

    name: Annotated[
        str,
        Field(
            pattern=DNS_LABEL,
            max_length=40,
            description="DNS label, unique in the slice; the Deployment at each edge site is <name>-<site>",
        ),
    ]
    image: Annotated[str, Field(min_length=1, max_length=255, description="container image reference")]
    cpu_millicores: Annotated[
        int, Field(ge=1, le=1_000_000, description="CPU per replica in millicores (request = limit)")
    ]
    memory_mib: Annotated[
        int, Field(ge=1, le=4_194_304, description="memory per replica in MiB (request = limit)")
    ]
    replicas: Annotated[int, Field(ge=1, le=1000, description="replicas at each edge site (default 1)")] = 1
    port: Annotated[
        int | None, Field(ge=1, le=65535, description="TCP port to expose with a Service, if any")
    ] = None


class Schedule(WireModel):
    """When the slice holds capacity: from ``start`` until ``end`` (none: until deleted).

    Admission checks the whole window against every other slice that overlaps it (the capacity
    calendar); the slice is realised at ``start`` and released at ``end``.
    """

    start: Annotated[datetime, Field(description="when the slice starts (RFC 3339 with a time zone)")]
    end: Annotated[
        datetime | None,
        Field(description="when the slice ends and its capacity is released (RFC 3339; none: never)"),
    ] = None

    @field_validator("start", "end")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("give a time zone (e.g. 2026-12-24T18:00:00Z)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Schedule:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} is not after start {self.start.isoformat()}")
        return self


class NetworkSliceSpec(WireModel):
    """What the slice needs; unset fields take the defaults of its kind's profile."""

    kind: Annotated[
        SliceKind,
        Field(
            description="iot (SST 3, MIoT), vehicle (SST 4 V2X or 2 URLLC) or wifi (SST 1, eMBB); "
            "sets the profile that fills every unset field"
        ),
    ]
    snssai: Annotated[
        Snssai | None, Field(description="S-NSSAI; the SST must fit the kind (default: the kind's SST)")
    ] = None
    coverage: Annotated[
        Coverage, Field(description="the cells to serve: union of sites, zones and circle (at least one)")
    ]
    sla: Annotated[Sla, Field(description="service level; unset fields take the profile's values")] = Sla()
    priority: Annotated[
        int | None,
        Field(ge=0, le=1000, description="0-1000, higher wins; may preempt lower (default: profile)"),
    ] = None
    preemptible: Annotated[
        bool | None,
        Field(description="whether a higher-priority slice may take its capacity (default: profile)"),
    ] = None
    isolation: Annotated[
        Isolation | None,
        Field(description="shared or dedicated (recorded; every slice has its own namespace either way)"),
    ] = None
    schedule: Annotated[
        Schedule | None,
        Field(description="the time window the slice holds capacity in (default: from now until deleted)"),
    ] = None
    workloads: Annotated[
        tuple[Workload, ...] | None,
        Field(
            description="applications run at every edge site that serves the slice (default: the profile's)",
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    ] = None

    @field_validator("workloads")
    @classmethod
    def _unique_workloads(cls, value: tuple[Workload, ...] | None) -> tuple[Workload, ...] | None:
        if value is not None:
            seen: set[str] = set()
            for w in value:
                if w.name in seen:
                    raise ValueError(f"workload name {w.name!r} is used twice")
                seen.add(w.name)
        return value


class ObjectMeta(WireModel):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
    namespace: Annotated[str | None, Field(pattern=DNS_LABEL, max_length=63)] = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("namespace")
    @classmethod
    def _cluster_scoped(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                f"a NetworkSlice is cluster-scoped and has no namespace; remove namespace: {value}"
            )
        return value


class NetworkSlice(WireModel):
    """A whole intent document, Kubernetes-shaped so the same file works with ``kubectl apply``."""

    api_version: Literal["edgeslice.io/v1alpha1"] = "edgeslice.io/v1alpha1"
    kind: Literal["NetworkSlice"] = "NetworkSlice"
    metadata: ObjectMeta
    spec: NetworkSliceSpec

    @property
    def name(self) -> str:
        return self.metadata.name


def parse_slice(document: object, where: str = "") -> NetworkSlice:
    """Validate one decoded document; raise :class:`errors.InvalidSpec` naming every bad field."""
    try:
        return NetworkSlice.model_validate(document)
    except pydantic.ValidationError as exc:
        raise errors.InvalidSpec(errors.describe_validation_error(exc, where)) from exc


def _documents(text: str, where: str) -> Iterator[object]:
    """Strictly (:mod:`slices.documents`): a key given twice is an error naming its line."""
    try:
        yield from documents.load_yaml_all(text)
    except documents.DocumentError as exc:
        raise errors.InvalidSpec(f"{where}: {exc}") from exc


def load_slices(text: str, where: str = "<input>") -> list[NetworkSlice]:
    """Parse a YAML stream of one or more ``NetworkSlice`` documents; all or nothing.

    >>> docs = load_slices('''
    ... apiVersion: edgeslice.io/v1alpha1
    ... kind: NetworkSlice
    ... metadata: {name: sensors}
    ... spec: {kind: iot, coverage: {zones: [north]}}
    ... ''')
    >>> docs[0].name, docs[0].spec.kind.value
    ('sensors', 'iot')
    """
    out: list[NetworkSlice] = []
    names: set[str] = set()
    for i, doc in enumerate(_documents(text, where)):
        if doc is None:
            continue
        label = f"{where}[doc {i + 1}]"
        if not isinstance(doc, dict):
            raise errors.InvalidSpec(f"{label}: expected a mapping, got {type(doc).__name__}")
        item = parse_slice(doc, label)
        if item.name in names:
            raise errors.InvalidSpec(f"{label}: metadata.name: slice {item.name!r} appears twice")
        names.add(item.name)
        out.append(item)
    return out


def load_slice_files(paths: list[str]) -> list[NetworkSlice]:
    """Load every file; a problem in any file fails the whole load (nothing half-read)."""
    out: list[NetworkSlice] = []
    names: dict[str, str] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise errors.InvalidSpec(f"{path}: cannot read: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise errors.InvalidSpec(f"{path}: not UTF-8 text (byte {exc.start}; a binary file?)") from exc
        for item in load_slices(text, path):
            if item.name in names:
                raise errors.InvalidSpec(
                    f"{path}: metadata.name: slice {item.name!r} is also defined in {names[item.name]}"
                )
            names[item.name] = path
            out.append(item)
    return out


def is_dns_label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS_LABEL_RE.match(value))
