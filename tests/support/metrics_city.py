"""A city-scale controller state for the metrics cardinality test and the scrape benchmark.

20,000 cells, 2,000 slices and every site's agent reporting, built at our own interfaces (the
collector's :class:`telemetry.metrics.views.StateSource` and :class:`telemetry.metrics.views.AgentsView`):
running the real placement for 2,000 slices and 21,677 agent streams would measure those, not
the scrape. The state is the worst case for the budget: every slice placed, reporting KPIs and
violating its SLA; some agents down, some behind on config; many distinct rejection reasons;
every API method answered with several status codes.
"""

from __future__ import annotations

import math
import operator
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from prometheus_client import CollectorRegistry

from controller.core.capacity import CapacityView, Layout
from controller.core.citygen import generate_city
from controller.core.placement_model import CellAssignment, EdgeShare, Placement
from controller.core.topology import Topology
from controller.runtime.service import Event, SiteStatus, SliceRecord, SliceState, TopologyStatus
from slices.intent import NetworkSlice
from slices.profiles import resolve
from slices.status import ConditionStatus, ConditionType, set_condition
from telemetry.metrics.kpi_ratios import SliceKpiColumns
from telemetry.metrics.observer import ControllerMetrics
from telemetry.metrics.state import MAX_REASONS
from telemetry.metrics.views import AgentSnapshot, AgentTable
from tests.support.kpi_oracle import SliceKpis

CELLS = 20_000
SLICES = 2_000
KINDS = ("iot", "vehicle", "wifi")
OPERATOR_METHODS = (
    "Apply",
    "Delete",
    "Get",
    "List",
    "Explain",
    "Events",
    "Watch",
    "Topology",
    "Drain",
    "Undrain",
    "WhatIf",
)
CODES = ("OK", "NOT_FOUND", "INVALID_ARGUMENT", "UNAUTHENTICATED", "UNAVAILABLE")
ACTIONS = [
    "apply",
    "delete",
    "admit",
    "reject",
    "preempt",
    "readmit",
    "heal",
    "degrade",
    "drain",
    "undrain",
    "site-down",
    "site-up",
    "link-down",
    "link-up",
    "sla-violation",
]


@dataclass
class CityState:
    """Implements StateSource and AgentsView over fixed values."""

    topo: Topology
    records: list[SliceRecord]
    status: TopologyStatus
    events_list: list[Event]
    snapshots: list[AgentSnapshot]
    kpis: dict[str, SliceKpis]
    view: CapacityView
    revision: int = 1

    def list_slices(self) -> list[SliceRecord]:
        return self.records

    def topology(self) -> Topology:
        return self.topo

    def topology_status(self) -> TopologyStatus:
        return self.status

    def capacity(self) -> CapacityView:
        return self.view

    def events(self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None) -> list[Event]:
        return [e for e in self.events_list if e.seq > after_seq][:limit]

    def agent_table(self) -> AgentTable:
        return agent_table(self.snapshots)

    def slice_kpis(self) -> SliceKpiColumns:
        return kpi_columns(self.kpis)

    def refusal_counts(self) -> Mapping[str, int]:
        # Worst case: more distinct reasons than the cap (the registry bounds them; the collector
        # caps them again).
        return {f"Refused{i:02d}": i for i in range(MAX_REASONS + 8)} | {"Other": 3}


def build_city_state(cells: int = CELLS, slices: int = SLICES, seed: int = 0) -> CityState:
    rng = random.Random(seed)
    topo = Topology.from_file(generate_city(cells, seed=seed))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    cell_ids = list(topo.cells)
    records: list[SliceRecord] = []
    kpis: dict[str, SliceKpis] = {}
    for i in range(slices):
        kind = KINDS[i % 3]
        name = f"slice-{i:04d}"
        document = NetworkSlice.model_validate(
            {
                "metadata": {"name": name},
                "spec": {"kind": kind, "coverage": {"sites": [cell_ids[i % len(cell_ids)]]}},
            }
        )
        intent = resolve(document)
        cell = cell_ids[i % len(cell_ids)]
        edge = topo.edge_sites[i % len(topo.edge_sites)]
        placement = Placement(
            slice_name=name,
            spec_hash=intent.spec_hash,
            kbps_per_cell=intent.kbps_per_cell,
            assignments=(CellAssignment(cell, edge, (cell, edge), 1.0),),
            edges=(EdgeShare(edge, 1, 1000, 1024, (("w", 1),)),),
        )
        conditions = set_condition(
            (), ConditionType.SLA_MET, ConditionStatus.FALSE, "LatencyTooHigh", "worst case", 1, at
        )
        records.append(
            SliceRecord(
                name, 1, document, intent, SliceState.DEGRADED, placement, conditions, "SlaNotMet", "", at, at
            )
        )
        kpis[name] = SliceKpis(
            name,
            latency_ms=intent.latency_ms * rng.uniform(0.2, 1.5),
            throughput_kbps_per_cell=intent.kbps_per_cell * rng.uniform(0.5, 1.0),
            demand_kbps_per_cell=float(intent.kbps_per_cell),
            devices=rng.randrange(1, 1000),
            loss_ratio=rng.uniform(0, 0.001),
        )
    sites = tuple(
        SiteStatus(
            site=s.id,
            kind=s.kind.value,
            up=rng.random() > 0.01,
            drained=False,
            reason="",
            cpu_reserved=s.cpu_millicores // 2,
            cpu_capacity=s.cpu_millicores,
            memory_reserved=s.memory_mib // 2,
            memory_capacity=s.memory_mib,
            radio_reserved_kbps=s.radio_kbps // 3,
            radio_capacity_kbps=s.radio_kbps,
            slices=rng.randrange(0, 20),
        )
        for s in topo.sites.values()
    )
    util = [(ln.key, ln.bandwidth_kbps // rng.randrange(2, 50), ln.bandwidth_kbps) for ln in topo.links]
    util.sort(key=lambda t: (-t[1] / t[2], t[0]))
    status = TopologyStatus(topo.name, sites, tuple(ln.key for ln in topo.links[:30]), tuple(util))
    events = [
        Event(
            seq=i + 1,
            at=at,
            actor="controller",
            action=ACTIONS[i % len(ACTIONS)],
            slice=f"slice-{i % slices:04d}",
            site=None,
            message="",
        )
        for i in range(5000)
    ]
    now = time.time()
    snapshots = [
        AgentSnapshot(
            site=s.id,
            kind=s.kind.value,
            connected=rng.random() > 0.05,
            last_heartbeat_unix=now - rng.uniform(0, 3),
            desired_generation=5,
            acked_generation=5 if rng.random() > 0.05 else 4,
        )
        for s in topo.sites.values()
    ]
    return CityState(topo, records, status, events, snapshots, kpis, capacity_view(topo, status))


def capacity_view(topo: Topology, status: TopologyStatus) -> CapacityView:
    """The capacity view that ``status`` would be derived from (sites' and links' reserved figures)."""
    layout = Layout.of(topo)
    by_site = {s.site: s for s in status.sites}
    reserved = {key: kbps for key, kbps, _ in status.link_utilisation}

    def sites(field: str) -> np.ndarray:
        return np.array([getattr(by_site[site], field) for site in layout.sites], np.int64)

    return CapacityView(
        revision=1,
        layout=layout,
        radio_reserved_kbps=sites("radio_reserved_kbps"),
        cpu_reserved_millicores=sites("cpu_reserved"),
        memory_reserved_mib=sites("memory_reserved"),
        slices=sites("slices"),
        link_reserved_kbps=np.array([reserved.get(key, 0) for key in layout.links], np.int64),
    )


def city_registry(state: CityState) -> CollectorRegistry:
    """A registry watching ``state``, with every event metric exercised (worst case for labels)."""
    registry = CollectorRegistry()
    m = ControllerMetrics(registry)
    m.watch(state, state)
    for kind in KINDS:
        m.preempted(kind)
        m.healed(kind, True)
        m.healed(kind, False)
        m.decision(kind, "admitted", "Admitted")
        for r in range(MAX_REASONS + 8):
            m.decision(kind, "rejected", f"Reason{r}")
    m.reconciled(0.5, 3, 1)
    m.placement_timed(0.01)
    for api, service, methods in (
        ("operator", "edgeslice.operator.v1.OperatorService", OPERATOR_METHODS),
        ("agent", "edgeslice.agent.v1.SiteAgent", ("Connect",)),
    ):
        for method in methods:
            m.grpc_started.labels(api, service, method).inc()
            m.grpc_duration.labels(api, service, method).observe(0.01)
            for code in CODES:
                m.grpc_handled.labels(api, service, method, code).inc()
    return registry


def count_series(registry: CollectorRegistry) -> dict[str, int]:
    """Samples per metric family in one scrape (each sample is one series in Prometheus)."""
    return {family.name: len(family.samples) for family in registry.collect()}


def label_values(registry: CollectorRegistry, family: str, label: str) -> set[str]:
    """The values ``label`` takes across the samples of ``family`` in one scrape."""
    return {s.labels[label] for f in registry.collect() if f.name == family for s in f.samples}


def agent_table(snapshots: Iterable[AgentSnapshot]) -> AgentTable:
    """The table of ``snapshots``, for views at our own interface.

    >>> agent_table([AgentSnapshot("e1", "edge", True, 5.0, 2, 1)]).snapshots()
    [AgentSnapshot(site='e1', kind='edge', connected=True, last_heartbeat_unix=5.0, desired_generation=2, acked_generation=1)]
    """
    rows = list(snapshots)
    names = sorted({a.kind for a in rows})
    return AgentTable(
        [a.site for a in rows],
        names,
        np.array([names.index(a.kind) for a in rows], np.intp),
        np.array([a.connected for a in rows], np.bool_),
        np.array(
            [math.nan if a.last_heartbeat_unix is None else a.last_heartbeat_unix for a in rows], np.float64
        ),
        np.array([a.desired_generation for a in rows], np.int64),
        np.array([a.acked_generation for a in rows], np.int64),
    )


def kpi_columns(rows: Mapping[str, SliceKpis]) -> SliceKpiColumns:
    """``rows`` as the columns a scrape reads (what fakes hand the collector)."""
    ks = list(rows.values())

    def column(field: str) -> np.ndarray:
        return np.array([getattr(k, field) for k in ks], np.float64)

    return SliceKpiColumns(
        list(rows),
        column("latency_ms"),
        column("throughput_kbps_per_cell"),
        column("demand_kbps_per_cell"),
        column("devices"),
        column("loss_ratio"),
    )


def kpi_rows(columns: SliceKpiColumns) -> dict[str, SliceKpis]:
    """``columns`` as one :class:`SliceKpis` per slice (to compare with the oracle)."""
    return {
        name: SliceKpis(name, float(lat), float(thr), float(dem), round(float(dev)), float(lo))
        for name, lat, thr, dem, dev, lo in zip(
            columns.names,
            columns.latency_ms,
            columns.throughput_kbps_per_cell,
            columns.demand_kbps_per_cell,
            columns.devices,
            columns.loss_ratio,
            strict=True,
        )
    }


def aggregate_kpis(slice_name: str, latest: Sequence[object]) -> SliceKpis:
    """The oracle of :func:`telemetry.metrics.kpis.aggregate_kpi_columns`, one slice at a time:
    its KPIs from the latest sample (``dl_mbps``, ``latency_p99_ms``, ... attributes) of each
    reporting site.

    >>> from telemetry.agentlink.sla import KpiSample
    >>> a = KpiSample(0, 10.0, 2.0, 20.0, 4.0, 1.0, 4.0, 0.001, 5, 0.5)
    >>> b = KpiSample(0, 30.0, 2.0, 20.0, 4.0, 1.0, 9.0, 0.0, 7, 0.5)
    >>> aggregate_kpis("cars", [a, b])
    SliceKpis(slice='cars', latency_ms=9.0, throughput_kbps_per_cell=22000.0, demand_kbps_per_cell=24000.0, devices=12, loss_ratio=0.001)
    """
    n = len(latest)

    def total(*fields: str) -> float:
        return sum(sum(map(operator.attrgetter(f), latest)) for f in fields)

    return SliceKpis(
        slice=slice_name,
        latency_ms=max(map(operator.attrgetter("latency_p99_ms"), latest)),
        throughput_kbps_per_cell=total("dl_mbps", "ul_mbps") * 1000.0 / n,
        demand_kbps_per_cell=total("dl_demand_mbps", "ul_demand_mbps") * 1000.0 / n,
        devices=sum(map(operator.attrgetter("active_devices"), latest)),
        loss_ratio=max(map(operator.attrgetter("packet_loss"), latest)),
    )
