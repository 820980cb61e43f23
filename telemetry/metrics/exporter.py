"""Prometheus metrics of the controller, bound to an injected :class:`CollectorRegistry`.

Two kinds of metric, the prometheus-client way:

* **State gauges** are computed at every scrape by :class:`StateCollector` from the controller's
  own state (``list_slices()``, ``topology_status()``, the agent registry), so they can never
  drift from the truth.
* **Event counters and histograms** are fed as things happen: :class:`ControllerMetrics` is the
  :class:`controller.runtime.observer.ServiceObserver` the service reports decisions, preemptions,
  healings, reconcile and placement timings to, and :class:`GrpcMetricsInterceptor` counts and
  times every gRPC call of the operator and agent APIs.

The cardinality budget (``docs/observability.md``) is at most 10,000 series for a
20,000-cell city with 2,000 slices: nothing is labelled by cell or by link except bounded
"worst N" lists, per-slice series are the four KPI ratios, and reason labels are capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import itertools
import logging
import math
import operator
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Protocol

import grpc
import grpc.aio
import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from controller.core.topology import Link, LinkKey, Topology
from controller.runtime.service import Event, SliceRecord, SliceState, TopologyStatus
from slices.intent import SliceKind
from slices.status import ConditionStatus, ConditionType, get_condition
from telemetry.agentlink.kpi_store import KpiColumns
from telemetry.agentlink.session_table import SessionColumns
from telemetry.agentlink.settings import KNOWN_REFUSALS
from telemetry.metrics import kpi_ratios
from telemetry.metrics.exposition_text import escape_label_value
from telemetry.metrics.kpi_ratios import KpiTargets, RenderedGauge, SliceKpis

log = logging.getLogger(__name__)
PREFIX = "edgeslice"
TOP_LINKS = 20  # the busiest links listed by name
MAX_LISTED_AGENTS = 100  # disconnected or lagging agents listed by site (cells have agents too)
MAX_LISTED_VIOLATIONS = 200  # slices listed by name while their SLA is violated
MAX_REASONS = 32  # distinct admission reasons kept before the rest count as "Other"
OTHER_REFUSAL = "Other"  # config refusals whose reason is not one of KNOWN_REFUSALS
LISTED_AGENT_KINDS = frozenset({"edge", "core"})  # a few sites: every one gets its own series
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
KIND_ORDER = ("cell", "aggregation", "edge", "core")
# The newest KPI sample of a (slice, cell) counts while younger than this: a few telemetry
# intervals (1 s) and longer than an agent's lease (3 s), so a silent agent's numbers drop out
# about when its site is declared down. Short on purpose: the registry's ``kpis(since)`` copies
# every sample of the span, and at city scale that copy is most of a scrape's cost.
KPI_MAX_AGE_S = 5.0
KBPS = 1000.0  # bits per second in a kbit/s
MIB = 1024.0 * 1024.0
MILLI = 1000.0


# -- what the collector reads -------------------------------------------------------------------


class StateSource(Protocol):
    """The part of :class:`controller.runtime.service.ControllerService` the collector reads."""

    def list_slices(self) -> list[SliceRecord]: ...

    def topology(self) -> Topology: ...

    def topology_status(self) -> TopologyStatus: ...

    def events(self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None) -> list[Event]: ...

    @property
    def revision(self) -> int:
        """Moves on every committed change: the capacity figures are recomputed only when it does."""
        ...


class AgentSnapshot(NamedTuple):
    """One site agent as the agent registry sees it now.

    A named tuple, not a dataclass: a city scrape builds one for each of 21,677 agents.
    """

    site: str
    kind: str
    connected: bool
    last_heartbeat_unix: float | None  # None: never heard from
    desired_generation: int
    acked_generation: int

    @property
    def generation_lag(self) -> int:
        return max(0, self.desired_generation - self.acked_generation)


class AgentTable(NamedTuple):
    """Every agent as columns: a city has 21,677, and a scrape counts them with numpy."""

    sites: Sequence[str]
    kind_names: Sequence[str]  # kind code → kind
    kind: npt.NDArray[np.intp]  # per agent: its kind's code
    connected: npt.NDArray[np.bool_]
    last_heartbeat_unix: npt.NDArray[np.float64]  # NaN: never heard from
    desired_generation: npt.NDArray[np.int64]
    acked_generation: npt.NDArray[np.int64]

    @classmethod
    def of(cls, snapshots: Iterable[AgentSnapshot]) -> AgentTable:
        """The table of ``snapshots`` (small views and tests).

        >>> t = AgentTable.of([AgentSnapshot("e1", "edge", True, 5.0, 2, 1)])
        >>> t.snapshots()
        [AgentSnapshot(site='e1', kind='edge', connected=True, last_heartbeat_unix=5.0, desired_generation=2, acked_generation=1)]
        """
        rows = list(snapshots)
        names = sorted({a.kind for a in rows})
        return cls(
            [a.site for a in rows],
            names,
            np.array([names.index(a.kind) for a in rows], np.intp),
            np.array([a.connected for a in rows], np.bool_),
            np.array(
                [math.nan if a.last_heartbeat_unix is None else a.last_heartbeat_unix for a in rows],
                np.float64,
            ),
            np.array([a.desired_generation for a in rows], np.int64),
            np.array([a.acked_generation for a in rows], np.int64),
        )

    def snapshot(self, i: int) -> AgentSnapshot:
        seen = float(self.last_heartbeat_unix[i])
        return AgentSnapshot(
            self.sites[i],
            self.kind_names[int(self.kind[i])],
            bool(self.connected[i]),
            None if math.isnan(seen) else seen,
            int(self.desired_generation[i]),
            int(self.acked_generation[i]),
        )

    def snapshots(self) -> list[AgentSnapshot]:
        return [self.snapshot(i) for i in range(len(self.sites))]


class AgentsView(Protocol):
    """What the collector reads of the agents (an adapter over ``telemetry.agentlink.service``)."""

    def agent_table(self) -> AgentTable: ...

    def slice_kpis(self) -> Mapping[str, SliceKpis]: ...

    def refusal_counts(self) -> Mapping[str, int]:
        """Config refusals (ConfigAck ok=false) since the controller started, by reason: a fixed
        set of reasons plus "Other", every one present (zeros included)."""
        ...


class _SampleLike(Protocol):
    @property
    def dl_mbps(self) -> float: ...
    @property
    def ul_mbps(self) -> float: ...
    @property
    def dl_demand_mbps(self) -> float: ...
    @property
    def ul_demand_mbps(self) -> float: ...
    @property
    def latency_p99_ms(self) -> float: ...
    @property
    def packet_loss(self) -> float: ...
    @property
    def active_devices(self) -> int: ...


class _RegistryLike(Protocol):
    """The reading side of :class:`telemetry.agentlink.registry.AgentRegistry`."""

    @property
    def clock(self) -> Callable[[], float]: ...

    def session_columns(self) -> SessionColumns: ...

    def kpis(self, since: float = ...) -> Mapping[tuple[str, str], Sequence[_SampleLike]]: ...

    def site_kinds(self) -> dict[str, str]: ...

    def refusal_counts(self) -> dict[str, int]: ...

    # Optional, used when present: ``latest_kpi_columns(since, sites)`` → the newest record of
    # every (slice, site) as arrays (telemetry.agentlink.kpi_store.KpiColumns). ``kpis()`` makes a Python
    # object of every recent sample of every (slice, cell), 200,000 in a city, for the view to
    # keep the last one: the largest cost of a city-scale scrape.


class AgentRegistryView:
    """:class:`AgentsView` over the agent service's registry.

    Agents are the sites whose agent has connected, in this run or before a restart (a site
    with no agent deployed is not an agent that is down). Heartbeat ages become Unix timestamps,
    the Prometheus convention, so a dashboard computes the age with ``time() - ...``. KPIs are the
    latest sample per cell of the last ``kpi_max_age_s`` (:data:`KPI_MAX_AGE_S`; a silent agent's old numbers drop out);
    only cells count: the radio access is where users feel the slice (the SLA is judged on the
    edge sites' KPIs too, :mod:`telemetry.agentlink.sla`).
    """

    def __init__(
        self,
        registry: _RegistryLike,
        wall_clock: Callable[[], float] = time.time,
        kpi_max_age_s: float = KPI_MAX_AGE_S,
    ) -> None:
        self._registry = registry
        self._kinds = registry.site_kinds()
        self._cells = frozenset(site for site, kind in self._kinds.items() if kind == "cell")
        self._kind_names = sorted(set(self._kinds.values()))
        self._kind_codes = {site: self._kind_names.index(kind) for site, kind in self._kinds.items()}
        self._wall = wall_clock
        self._max_age = kpi_max_age_s

    def agent_table(self) -> AgentTable:
        c = self._registry.session_columns()
        seconds_ago = c.seconds_since_seen
        return AgentTable(
            c.sites,
            self._kind_names,
            np.fromiter(map(self._kind_codes.__getitem__, c.sites), np.intp, len(c.sites)),
            c.connected,
            np.where(np.isfinite(seconds_ago), self._wall() - seconds_ago, math.nan),
            c.desired_generation,
            c.acked_generation,
        )

    def refusal_counts(self) -> dict[str, int]:
        """The registry's counts, with every known reason and "Other" from zero (so a reason's
        first refusal is an increase, not the start of a series)."""
        counts = dict.fromkeys((*KNOWN_REFUSALS, OTHER_REFUSAL), 0)
        counts.update(self._registry.refusal_counts())
        return counts

    def slice_kpis(self) -> dict[str, SliceKpis]:
        since = self._registry.clock() - self._max_age
        columns: Callable[[float, AbstractSet[str]], KpiColumns] | None = getattr(
            self._registry, "latest_kpi_columns", None
        )
        if columns is not None:  # the agent registry: a city's records as arrays, aggregated in numpy
            return aggregate_kpi_columns(columns(since, self._cells))
        per_slice: dict[str, list[_SampleLike]] = {}
        cells = self._cells
        for (slice_name, site), samples in self._registry.kpis(since=since).items():
            if site in cells and samples:
                per_slice.setdefault(slice_name, []).append(samples[-1])
        return {name: aggregate_kpis(name, latest) for name, latest in per_slice.items()}


def aggregate_kpi_columns(c: KpiColumns) -> dict[str, SliceKpis]:
    """:func:`aggregate_kpis` of every slice at once, over records given column-wise (grouped
    by slice id with ``bincount`` and ``maximum.at``: 200,000 records in a few milliseconds)."""
    ids = c.slice_ids
    size = len(c.slice_names)
    count = np.bincount(ids, minlength=size)
    throughput = np.bincount(ids, c.dl_throughput_mbps, size) + np.bincount(ids, c.ul_throughput_mbps, size)
    demand = np.bincount(ids, c.dl_demand_mbps, size) + np.bincount(ids, c.ul_demand_mbps, size)
    devices = np.bincount(ids, c.active_devices, size)
    latency = np.zeros(size)
    np.maximum.at(latency, ids, c.latency_p99_ms)
    loss = np.zeros(size)
    np.maximum.at(loss, ids, c.packet_loss)
    present = np.flatnonzero(count)
    n = count[present]
    per_cell = KBPS / n
    return {
        c.slice_names[i]: SliceKpis(c.slice_names[i], lat, thr, dem, round(dev), lo)
        for i, lat, thr, dem, dev, lo in zip(
            present.tolist(),
            latency[present].tolist(),
            (throughput[present] * per_cell).tolist(),
            (demand[present] * per_cell).tolist(),
            devices[present].tolist(),
            loss[present].tolist(),
            strict=True,
        )
    }


def aggregate_kpis(slice_name: str, latest: Sequence[_SampleLike]) -> SliceKpis:
    """One slice's KPIs from the latest sample of each reporting site (see :class:`SliceKpis`).

    >>> from telemetry.agentlink.sla import KpiSample
    >>> a = KpiSample(0, 10.0, 2.0, 20.0, 4.0, 1.0, 4.0, 0.001, 5, 0.5)
    >>> b = KpiSample(0, 30.0, 2.0, 20.0, 4.0, 1.0, 9.0, 0.0, 7, 0.5)
    >>> aggregate_kpis("cars", [a, b])
    SliceKpis(slice='cars', latency_ms=9.0, throughput_kbps_per_cell=22000.0, demand_kbps_per_cell=24000.0, devices=12, loss_ratio=0.001)
    """
    # C-level passes (map over attribute getters): 2,000 slices x 100 cells at every scrape.
    n = len(latest)
    return SliceKpis(
        slice=slice_name,
        latency_ms=max(map(_P99, latest)),
        throughput_kbps_per_cell=(sum(map(_DL, latest)) + sum(map(_UL, latest))) * KBPS / n,
        demand_kbps_per_cell=(sum(map(_DL_DEMAND, latest)) + sum(map(_UL_DEMAND, latest))) * KBPS / n,
        devices=sum(map(_DEVICES, latest)),
        loss_ratio=max(map(_LOSS, latest)),
    )


_P99, _LOSS, _DEVICES = (
    operator.attrgetter("latency_p99_ms"),
    operator.attrgetter("packet_loss"),
    operator.attrgetter("active_devices"),
)
_DL, _UL = operator.attrgetter("dl_mbps"), operator.attrgetter("ul_mbps")
_DL_DEMAND, _UL_DEMAND = operator.attrgetter("dl_demand_mbps"), operator.attrgetter("ul_demand_mbps")


# -- pure helpers ---------------------------------------------------------------------------------


def link_class(kind_a: str, kind_b: str) -> str:
    """The class of a link, named by its endpoint kinds from the access side up.

    >>> link_class("edge", "aggregation"), link_class("cell", "aggregation"), link_class("core", "core")
    ('aggregation-edge', 'cell-aggregation', 'core-core')
    """
    order = {k: i for i, k in enumerate(KIND_ORDER)}
    a, b = sorted((kind_a, kind_b), key=lambda k: (order.get(k, len(order)), k))
    return f"{a}-{b}"


def sla_violated(record: SliceRecord) -> bool:
    """Whether the controller's SLAMet condition says the slice misses its SLA."""
    cond = get_condition(record.conditions, ConditionType.SLA_MET)
    return cond is not None and cond.status == ConditionStatus.FALSE


# -- state at scrape time -------------------------------------------------------------------------


class StateCollector(Collector):
    """Reads the controller's state at each scrape; holds no state of its own except event counts."""

    def __init__(
        self, source: StateSource, agents: AgentsView | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._source = source
        self._agents = agents
        self._clock = clock
        self._lock = threading.Lock()
        self._after_seq = 0
        self._events: dict[str, int] = {}
        self._violations: dict[str, int] = {}
        self._last_util: tuple[list[LinkKey], Any] = ([], None)
        self._topology_samples: tuple[int, dict[str, list[Sample]]] | None = None
        self._topology_lock = threading.Lock()
        self._following: threading.Event | None = None  # set: wake the follow_changes thread
        self._classes: tuple[tuple[Link, ...], dict[LinkKey, int], list[str], list[int]] | None = None
        self._kpi_targets: tuple[int, KpiTargets] | None = None
        self._kpi_series: dict[tuple[str, str], tuple[list[dict[str, str]], list[str]]] = {}

    def describe(self) -> Iterable[Metric]:
        # Names only, so registering does not run a scrape (and duplicate names are caught).
        return list(self._families().values())

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        revision = self._source.revision  # before the records: never newer than they are
        records = self._source.list_slices()
        self._slices(families, records)
        self._topology_cached(families)
        self._events_counts(families, {r.name: r.intent.kind.value for r in records})
        if self._agents is not None:
            self._agent_metrics(families, records, revision)
        return list(families.values())

    # Each family once, in one place: name, type, help and labels.
    def _families(self) -> dict[str, Metric]:
        g, c = GaugeMetricFamily, CounterMetricFamily
        specs: list[tuple[type[GaugeMetricFamily] | type[CounterMetricFamily], str, str, list[str]]] = [
            (
                g,
                "slices",
                "Slices by kind and state (Ready, Admitted, Degraded, Pending, Rejected, Preempted).",
                ["kind", "state"],
            ),
            (g, "slices_sla_violated", "Slices whose SLAMet condition is False, by kind.", ["kind"]),
            (
                g,
                "slice_conditions",
                "Slices by kind, condition (Admitted, Placed, Realised, SLAMet, Ready) and its status "
                "(True, False, Unknown; a slice without the condition yet counts as Unknown).",
                ["kind", "condition", "status"],
            ),
            (
                g,
                "slice_sla_violated",
                f"1 for each slice whose SLA is violated now (at most {MAX_LISTED_VIOLATIONS}, oldest violation first).",
                ["slice", "kind"],
            ),
            (
                RenderedGauge,
                "slice_kpi_target_ratio",
                "Latest agent-reported KPI of a slice over its target (kpi: latency, throughput, loss, devices); latency, loss and devices breach above 1, throughput below 1.",
                ["slice", "kind", "kpi"],
            ),
            (
                g,
                "site_up",
                "1 if the edge or core site is in service, 0 if down or drained.",
                ["site", "kind"],
            ),
            (
                g,
                "site_slices",
                "Slices with a route through or workloads at the edge or core site.",
                ["site", "kind"],
            ),
            (
                g,
                "site_cpu_reserved_cores",
                "CPU reserved by slices at the edge or core site.",
                ["site", "kind"],
            ),
            (g, "site_cpu_capacity_cores", "Allocatable CPU of the edge or core site.", ["site", "kind"]),
            (
                g,
                "site_memory_reserved_bytes",
                "Memory reserved by slices at the edge or core site.",
                ["site", "kind"],
            ),
            (
                g,
                "site_memory_capacity_bytes",
                "Allocatable memory of the edge or core site.",
                ["site", "kind"],
            ),
            (g, "sites_down", "Sites out of service (failed or drained), by kind.", ["kind"]),
            (
                g,
                "radio_reserved_bits_per_second",
                "Radio capacity reserved by slices, summed over all cells.",
                [],
            ),
            (g, "radio_capacity_bits_per_second", "Radio capacity of all cells in service.", []),
            (
                g,
                "link_class_reserved_bits_per_second",
                "Bandwidth reserved on links, summed per link class (endpoint kinds).",
                ["class"],
            ),
            (
                g,
                "link_class_capacity_bits_per_second",
                "Bandwidth of links, summed per link class (endpoint kinds).",
                ["class"],
            ),
            (
                g,
                "link_reserved_bits_per_second",
                f"Bandwidth reserved on each of the {TOP_LINKS} most loaded links.",
                ["link", "class"],
            ),
            (
                g,
                "link_capacity_bits_per_second",
                f"Bandwidth of each of the {TOP_LINKS} most loaded links.",
                ["link", "class"],
            ),
            (g, "links_down", "Links out of service.", []),
            (
                c,
                "controller_events",
                "Audit-trail events recorded by the controller, by action (admit, reject, heal, site-down, ...).",
                ["action"],
            ),
            (c, "sla_violations", "SLA violations recorded (sla-violation events), by slice kind.", ["kind"]),
            (
                g,
                "agents",
                "Site agents by site kind and connection state (connected, disconnected).",
                ["kind", "state"],
            ),
            (
                g,
                "agent_up",
                f"1 if the site's agent is connected; every edge and core agent, plus up to {MAX_LISTED_AGENTS} others that are disconnected or behind on config.",
                ["site", "kind"],
            ),
            (
                g,
                "agent_last_heartbeat_timestamp_seconds",
                "Unix time of the last heartbeat of each listed agent (see agent_up).",
                ["site", "kind"],
            ),
            (
                g,
                "agent_config_generation_lag",
                "Config generations the listed agent has not acknowledged yet (desired - acked).",
                ["site", "kind"],
            ),
            (
                c,
                "agent_config_refusals",
                f"Configs agents refused (ConfigAck ok=false, resends included) since the controller started, by the agent's reason (a fixed set, then Other; at most {MAX_REASONS}).",
                ["reason"],
            ),
            (
                g,
                "agents_config_lagging",
                "Agents that have not acknowledged their latest config generation, by site kind.",
                ["kind"],
            ),
            (
                g,
                "agents_oldest_heartbeat_timestamp_seconds",
                "Unix time of the oldest last heartbeat among connected agents, by site kind.",
                ["kind"],
            ),
        ]
        return {name: cls(f"{PREFIX}_{name}", doc, labels=labels) for cls, name, doc, labels in specs}

    def _slices(self, fam: dict[str, Metric], records: Sequence[SliceRecord]) -> None:
        counts = {(k.value, s.value): 0 for k in SliceKind for s in SliceState}
        violated = {k.value: 0 for k in SliceKind}
        conditions = {
            (k.value, c.value, st.value): 0
            for k in SliceKind
            for c in ConditionType
            for st in ConditionStatus
        }
        listed: list[tuple[str, str, str]] = []
        for r in records:
            kind = r.intent.kind.value
            counts[(kind, r.state.value)] = counts.get((kind, r.state.value), 0) + 1
            held = {c.type: c.status for c in r.conditions}
            for c in ConditionType:
                key = (kind, c.value, held.get(c, ConditionStatus.UNKNOWN).value)
                conditions[key] += 1
            if sla_violated(r):
                violated[kind] += 1
                cond = get_condition(r.conditions, ConditionType.SLA_MET)
                since = cond.last_transition_time.isoformat() if cond is not None else ""
                listed.append((since, r.name, kind))
        for (kind, state), n in sorted(counts.items()):
            _add(fam["slices"], [kind, state], n)
        for kind, n in violated.items():
            _add(fam["slices_sla_violated"], [kind], n)
        for labels, n in sorted(conditions.items()):
            _add(fam["slice_conditions"], list(labels), n)
        for _, name, kind in sorted(listed)[:MAX_LISTED_VIOLATIONS]:
            _add(fam["slice_sla_violated"], [name, kind], 1)

    def _topology_cached(self, fam: dict[str, Metric]) -> None:
        cached = self._topology_samples
        if self._following is not None and cached is not None and cached[0] != self._source.revision:
            # A change the follower has not rebuilt yet (it takes a fraction of a second): serve
            # the samples of the revision before, as a scrape that came a moment earlier would,
            # and wake the follower rather than make this scrape do its work.
            self._following.set()
            samples = cached[1]
        else:
            samples = self._topology_samples_now()
        for key, family_samples in samples.items():
            fam[key].samples.extend(family_samples)

    def _topology_samples_now(self) -> dict[str, list[Sample]]:
        # topology_status() of a 20,000-cell city and the families built from it cost more than
        # the rest of a scrape; they change only with a committed change: kept by revision, and
        # rebuilt soon after a change by follow_changes() when it runs.
        revision = self._source.revision
        cached = self._topology_samples
        if cached is not None and cached[0] == revision:
            return cached[1]
        with self._topology_lock:
            cached = self._topology_samples
            if cached is None or cached[0] != revision:
                scratch = self._families()
                self._topology(scratch)
                keep = {k: list(m.samples) for k, m in scratch.items() if m.samples}
                cached = self._topology_samples = (revision, keep)
            return cached[1]

    def follow_changes(self, interval_s: float = 0.2) -> Callable[[], None]:
        """Rebuild the topology families on a thread of their own within ``interval_s`` of every
        committed change (as soon as it ends when a scrape finds them behind; that scrape serves
        the previous revision's). Returns the function that stops the thread."""
        stop = threading.Event()
        wake = self._following = threading.Event()

        def run() -> None:
            while not stop.is_set():
                wake.wait(interval_s)
                wake.clear()
                # A scrape in progress goes first (it serves the previous revision's families):
                # rebuilding alongside would make it share the GIL with ~80 ms of work.
                SCRAPES.idle.wait(5.0)
                try:
                    self._topology_samples_now()
                except Exception:  # the scrape will try again and report its own error
                    log.exception("rebuilding the topology metrics failed")

        thread = threading.Thread(target=run, name="metrics-topology", daemon=True)
        thread.start()

        def close() -> None:
            stop.set()
            wake.set()
            thread.join(5)
            self._following = None

        return close

    def _topology(self, fam: dict[str, Metric]) -> None:
        status = self._source.topology_status()
        down = dict.fromkeys(KIND_ORDER, 0)
        # 20,000 cells: comprehensions rather than one loop with branches (a third of the time).
        sites = status.sites
        cells = [s for s in sites if s.kind == "cell"]
        radio_reserved = sum([s.radio_reserved_kbps for s in cells])
        radio_capacity = sum([s.radio_capacity_kbps for s in cells if s.up])
        for s in [s for s in sites if not s.up or s.drained]:
            down[s.kind] = down.get(s.kind, 0) + 1
        for s in [
            s for s in sites if s.kind != "cell" and (s.cpu_capacity > 0 or s.kind in LISTED_AGENT_KINDS)
        ]:
            labels = [s.site, s.kind]
            _add(fam["site_up"], labels, 1 if s.up and not s.drained else 0)
            _add(fam["site_slices"], labels, s.slices)
            _add(fam["site_cpu_reserved_cores"], labels, s.cpu_reserved / MILLI)
            _add(fam["site_cpu_capacity_cores"], labels, s.cpu_capacity / MILLI)
            _add(fam["site_memory_reserved_bytes"], labels, s.memory_reserved * MIB)
            _add(fam["site_memory_capacity_bytes"], labels, s.memory_capacity * MIB)
        for kind, n in down.items():
            _add(fam["sites_down"], [kind], n)
        _add(fam["radio_reserved_bits_per_second"], [], radio_reserved * KBPS)
        _add(fam["radio_capacity_bits_per_second"], [], radio_capacity * KBPS)
        _add(fam["links_down"], [], len(status.down_links))

        index, names, capacity = self._link_classes()
        reserved: list[float] = [0.0] * len(names)
        busiest: list[tuple[LinkKey, str, float, float]] = []
        util = status.link_utilisation
        if util:
            # Vectorised: 40,000 access links are too many for a Python loop within the budget.
            keys = list(map(_FIRST, util))
            cached_keys, cached_idx = self._last_util
            if keys == cached_keys:  # same links in the same order as last scrape: a C-level compare
                cls_idx = cached_idx
            else:
                cls_idx = np.fromiter(
                    map(index.get, keys, itertools.repeat(-1)), dtype=np.int64, count=len(keys)
                )
                self._last_util = (keys, cls_idx)
            res = np.fromiter(map(_SECOND, util), dtype=np.float64, count=len(util))
            cap = np.fromiter(map(_THIRD, util), dtype=np.float64, count=len(util))
            known = cls_idx >= 0
            reserved = np.bincount(cls_idx[known], weights=res[known], minlength=len(names)).tolist()
            ratio = np.divide(res, cap, out=np.zeros_like(res), where=(cap > 0) & known)
            candidates = np.arange(len(ratio))
            if len(ratio) > TOP_LINKS:
                candidates = np.argpartition(-ratio, TOP_LINKS)[:TOP_LINKS]
            order = candidates[np.lexsort((candidates, -ratio[candidates]))]
            busiest = [
                (keys[j], names[cls_idx[j]], float(res[j]), float(cap[j]))
                for j in order.tolist()
                if ratio[j] > 0
            ]
        for i in sorted(range(len(names)), key=names.__getitem__):
            _add(fam["link_class_reserved_bits_per_second"], [names[i]], reserved[i] * KBPS)
            _add(fam["link_class_capacity_bits_per_second"], [names[i]], capacity[i] * KBPS)
        for key, cls, res_kbps, cap_kbps in busiest:
            labels = [f"{key[0]}:{key[1]}", cls]
            _add(fam["link_reserved_bits_per_second"], labels, res_kbps * KBPS)
            _add(fam["link_capacity_bits_per_second"], labels, cap_kbps * KBPS)

    def _link_classes(self) -> tuple[dict[LinkKey, int], list[str], list[int]]:
        """(link → class index, class names, capacity per class), computed once per topology.

        Failures and drains make new Topology objects that share the links tuple, so the tuple's
        identity is the cache key.
        """
        links = self._source.topology().links
        cached = self._classes
        if cached is not None and cached[0] is links:
            return cached[1], cached[2], cached[3]
        topo = self._source.topology()
        index: dict[LinkKey, int] = {}
        names: list[str] = []
        capacity: list[int] = []
        position: dict[str, int] = {}
        for ln in links:
            cls = link_class(topo.sites[ln.a].kind.value, topo.sites[ln.b].kind.value)
            i = position.setdefault(cls, len(names))
            if i == len(names):
                names.append(cls)
                capacity.append(0)
            index[ln.key] = i
            capacity[i] += ln.bandwidth_kbps
        self._classes = (links, index, names, capacity)
        return index, names, capacity

    def _events_counts(self, fam: dict[str, Metric], kinds: Mapping[str, str]) -> None:
        # Counters from the audit trail: read only what is new since the last scrape.
        with self._lock:
            while True:
                batch = self._source.events(after_seq=self._after_seq, limit=1000)
                for ev in batch:
                    self._events[ev.action] = self._events.get(ev.action, 0) + 1
                    if ev.action == "sla-violation":
                        kind = kinds.get(ev.slice or "", "unknown")
                        self._violations[kind] = self._violations.get(kind, 0) + 1
                    self._after_seq = max(self._after_seq, ev.seq)
                if len(batch) < 1000:
                    break
            events, violations = dict(self._events), dict(self._violations)
        for action, n in sorted(events.items()):
            _add(fam["controller_events"], [action], n)
        for kind in sorted({k.value for k in SliceKind} | set(violations)):
            _add(fam["sla_violations"], [kind], violations.get(kind, 0))

    def _agent_metrics(self, fam: dict[str, Metric], records: Sequence[SliceRecord], revision: int) -> None:
        assert self._agents is not None
        t = self._agents.agent_table()
        # 21,677 agents in a city: counted with numpy; series only for the agents listed.
        behind = t.acked_generation < t.desired_generation
        listed_kind = np.isin(t.kind, [i for i, k in enumerate(t.kind_names) if k in LISTED_AGENT_KINDS])
        for i in np.flatnonzero(listed_kind).tolist():
            self._agent_series(fam, t.snapshot(i))
        others = [t.snapshot(i) for i in np.flatnonzero(~listed_kind & (behind | ~t.connected)).tolist()]
        # Worst first: disconnected before lagging, then the longest silent.
        others.sort(key=lambda a: (a.connected, a.last_heartbeat_unix or 0.0, a.site))
        for a in others[:MAX_LISTED_AGENTS]:
            self._agent_series(fam, a)
        for reason, n in _bounded_counts(self._agents.refusal_counts()):
            _add(fam["agent_config_refusals"], [reason], n)
        present = sorted(set(t.kind.tolist()), key=t.kind_names.__getitem__)
        for code in present:
            kind = t.kind_names[code]
            of_kind = t.kind == code
            up = of_kind & t.connected
            _add(fam["agents"], [kind, "connected"], int(up.sum()))
            _add(fam["agents"], [kind, "disconnected"], int((of_kind & ~t.connected).sum()))
            _add(fam["agents_config_lagging"], [kind], int((of_kind & behind).sum()))
            seen = t.last_heartbeat_unix[up]
            seen = seen[~np.isnan(seen)]
            if seen.size:
                _add(fam["agents_oldest_heartbeat_timestamp_seconds"], [kind], float(seen.min()))
        targets = self._kpi_targets
        if targets is None or targets[0] != revision:
            if len(self._kpi_series) > 2 * len(records) + 1000:  # slices come and go: forget old ones
                self._kpi_series.clear()
            name = fam["slice_kpi_target_ratio"].name
            targets = self._kpi_targets = (revision, KpiTargets.of(name, records, self._kpi_series))
        family = fam["slice_kpi_target_ratio"]
        assert isinstance(family, RenderedGauge)
        kpi_ratios.fill(family, targets[1], self._agents.slice_kpis())

    @staticmethod
    def _agent_series(fam: dict[str, Metric], a: AgentSnapshot) -> None:
        labels = [a.site, a.kind]
        _add(fam["agent_up"], labels, 1 if a.connected else 0)
        if a.last_heartbeat_unix is not None:
            _add(fam["agent_last_heartbeat_timestamp_seconds"], labels, a.last_heartbeat_unix)
        _add(fam["agent_config_generation_lag"], labels, a.generation_lag)


_FIRST, _SECOND, _THIRD = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(2)


def _bounded_counts(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """``counts`` by label, sorted, at most :data:`MAX_REASONS` labels plus "Other" (which takes
    the rest): the registry bounds its reasons already; this keeps the budget if one ever does not.

    >>> _bounded_counts({"Timeout": 2, "Other": 1})
    [('Other', 1), ('Timeout', 2)]
    """
    named = sorted(r for r in counts if r != OTHER_REFUSAL)
    kept, rest = named[:MAX_REASONS], named[MAX_REASONS:]
    out = [(r, counts[r]) for r in kept]
    if OTHER_REFUSAL in counts or rest:
        out.append((OTHER_REFUSAL, counts.get(OTHER_REFUSAL, 0) + sum(counts[r] for r in rest)))
    return sorted(out)


def _add(family: Metric, labels: list[str], value: float) -> None:
    family.add_metric(labels, value)  # type: ignore[attr-defined]


# -- events as they happen ------------------------------------------------------------------------


class ControllerMetrics:
    """Counters and histograms fed by the service (a :class:`controller.runtime.observer.ServiceObserver`).

    >>> registry = CollectorRegistry()
    >>> m = ControllerMetrics(registry)
    >>> m.decision("iot", "admitted", "Admitted")
    >>> registry.get_sample_value("edgeslice_admission_decisions_total",
    ...     {"kind": "iot", "outcome": "admitted", "reason": "Admitted"})
    1.0
    """

    def __init__(self, registry: CollectorRegistry, process: bool = True) -> None:
        # ``_created`` samples would double every counter's series for a timestamp nobody graphs
        # (a process-wide switch of prometheus-client; the controller has one metrics registry).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry
        self._reasons: set[str] = set()
        self._reasons_lock = threading.Lock()
        self.decisions = Counter(
            f"{PREFIX}_admission_decisions",
            f"Admission decisions by slice kind, outcome and CamelCase reason (at most {MAX_REASONS} reasons, then Other).",
            ["kind", "outcome", "reason"],
            registry=registry,
        )
        self.preemptions = Counter(
            f"{PREFIX}_preemptions",
            "Slices preempted by a higher-priority slice, by kind.",
            ["kind"],
            registry=registry,
        )
        self.healings = Counter(
            f"{PREFIX}_healings",
            "Slices re-placed after a failure or drain, by kind and result (ok, failed).",
            ["kind", "result"],
            registry=registry,
        )
        self.reconcile_duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Time one reconcile pass takes.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.reconcile_changes = Counter(
            f"{PREFIX}_reconcile_changes", "Slices changed by reconcile passes.", registry=registry
        )
        self.reconcile_errors = Counter(
            f"{PREFIX}_reconcile_errors", "Errors met by reconcile passes.", registry=registry
        )
        self.placement_duration = Histogram(
            f"{PREFIX}_placement_duration_seconds",
            "Time one placement decision takes.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.grpc_started = Counter(
            f"{PREFIX}_grpc_server_started",
            "gRPC calls started, by API (operator, agent), service and method.",
            ["api", "service", "method"],
            registry=registry,
        )
        self.grpc_handled = Counter(
            f"{PREFIX}_grpc_server_handled",
            "gRPC calls completed, by API, service, method and status code.",
            ["api", "service", "method", "code"],
            registry=registry,
        )
        self.grpc_duration = Histogram(
            f"{PREFIX}_grpc_server_handling_seconds",
            "Time to handle a gRPC call (streams: until the stream ends), by API, service and method.",
            ["api", "service", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.state: StateCollector | None = None
        # Known label values start at zero, so rate() and dashboards see a series before the first event.
        for kind in SliceKind:
            self.preemptions.labels(kind.value)
            for result in ("ok", "failed"):
                self.healings.labels(kind.value, result)
        if process:
            ProcessCollector(registry=registry)  # process_* series: memory, CPU, open files

    # -- ServiceObserver ------------------------------------------------------------------------
    def decision(self, kind: str, outcome: str, reason: str) -> None:
        self.decisions.labels(kind, outcome, self._bounded_reason(reason)).inc()

    def preempted(self, kind: str) -> None:
        self.preemptions.labels(kind).inc()

    def healed(self, kind: str, ok: bool) -> None:
        self.healings.labels(kind, "ok" if ok else "failed").inc()

    def reconciled(self, duration_s: float, changed: int, errors: int) -> None:
        self.reconcile_duration.observe(duration_s)
        if changed:
            self.reconcile_changes.inc(changed)
        if errors:
            self.reconcile_errors.inc(errors)

    def placement_timed(self, duration_s: float) -> None:
        self.placement_duration.observe(duration_s)

    def _bounded_reason(self, reason: str) -> str:
        reason = reason or "None"
        with self._reasons_lock:
            if reason in self._reasons:
                return reason
            if len(self._reasons) < MAX_REASONS:
                self._reasons.add(reason)
                return reason
        return "Other"

    # -- wiring ---------------------------------------------------------------------------------
    def watch(self, source: StateSource, agents: AgentsView | None = None) -> StateCollector:
        """Register the scrape-time collector of ``source`` (once; the service must exist first)."""
        if self.state is not None:
            raise RuntimeError("metrics already watch a controller")
        self.state = StateCollector(source, agents)
        self.registry.register(self.state)
        return self.state

    def interceptor(self, api: str) -> GrpcMetricsInterceptor:
        """A server interceptor for ``grpc.server(..., interceptors=[...])``; ``api``: operator or agent."""
        return GrpcMetricsInterceptor(self, api)

    def aio_interceptor(self, api: str) -> AioGrpcMetricsInterceptor:
        """The same for ``grpc.aio.server(interceptors=[...])`` (the agent API runs on asyncio)."""
        return AioGrpcMetricsInterceptor(self, api)


def build_metrics(
    service: StateSource,
    agents: AgentsView | None = None,
    registry: CollectorRegistry | None = None,
    process: bool = True,
) -> ControllerMetrics:
    """Metrics for a running service: the event metrics plus the scrape-time state collector.

    When the service needs its observer at construction, build :class:`ControllerMetrics` first,
    pass it as the observer and call :meth:`ControllerMetrics.watch` once the service exists.
    """
    metrics = ControllerMetrics(registry if registry is not None else CollectorRegistry(), process)
    metrics.watch(service, agents)
    return metrics


# -- gRPC -----------------------------------------------------------------------------------------


def _split_method(full: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``).

    >>> _split_method("/edgeslice.operator.v1.SliceService/Apply")
    ('edgeslice.operator.v1.SliceService', 'Apply')
    """
    _, service, method = [*full.split("/"), "", ""][:3]
    return service or "unknown", method or "unknown"


class GrpcMetricsInterceptor(grpc.ServerInterceptor):
    """Counts and times every call, by service, method and final status code."""

    def __init__(self, metrics: ControllerMetrics, api: str) -> None:
        self._m = metrics
        self._api = api

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(details)
        if handler is None:
            return None
        service, method = _split_method(details.method)
        labels = (self._api, service, method)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, labels),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, labels),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, labels),
                handler.request_deserializer,
                handler.response_serializer,
            )
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(handler.stream_stream, labels),
            handler.request_deserializer,
            handler.response_serializer,
        )

    def _done(
        self, labels: tuple[str, str, str], context: grpc.ServicerContext, start: float, failed: bool
    ) -> None:
        code = _code_of(context, failed)
        self._m.grpc_handled.labels(*labels, code).inc()
        self._m.grpc_duration.labels(*labels).observe(time.perf_counter() - start)

    def _wrap_unary(
        self, behaviour: Callable[[Any, grpc.ServicerContext], Any], labels: tuple[str, str, str]
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            self._m.grpc_started.labels(*labels).inc()
            start = time.perf_counter()
            failed = True
            try:
                response = behaviour(request, context)
                failed = False
                return response
            finally:
                self._done(labels, context, start, failed)

        return call

    def _wrap_stream(
        self, behaviour: Callable[[Any, grpc.ServicerContext], Iterator[Any]], labels: tuple[str, str, str]
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            self._m.grpc_started.labels(*labels).inc()
            start = time.perf_counter()
            failed = True
            try:
                yield from behaviour(request, context)
                failed = False
            finally:
                self._done(labels, context, start, failed)

        return call


class AioGrpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    """The asyncio twin of :class:`GrpcMetricsInterceptor`, for ``grpc.aio.server`` (the agent API)."""

    def __init__(self, metrics: ControllerMetrics, api: str) -> None:
        self._m = metrics
        self._api = api

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None:
            return handler
        service, method = _split_method(details.method)
        labels = (self._api, service, method)
        m = self._m

        def done(context: Any, start: float, outcome: str | None) -> None:
            # outcome: None for a normal return, "CANCELLED" when the peer went away, "" for an error.
            code = outcome if outcome else _code_of(context, outcome == "")
            m.grpc_handled.labels(*labels, code).inc()
            m.grpc_duration.labels(*labels).observe(time.perf_counter() - start)

        def wrap(behaviour: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            if inspect.isasyncgenfunction(behaviour):

                async def gen(request: Any, context: Any) -> AsyncIterator[Any]:
                    m.grpc_started.labels(*labels).inc()
                    start = time.perf_counter()
                    outcome: str | None = ""
                    try:
                        async for item in behaviour(request, context):
                            yield item
                        outcome = None
                    except asyncio.CancelledError:
                        outcome = "CANCELLED"
                        raise
                    finally:
                        done(context, start, outcome)

                return gen

            async def call(request: Any, context: Any) -> Any:
                m.grpc_started.labels(*labels).inc()
                start = time.perf_counter()
                outcome: str | None = ""
                try:
                    result = await behaviour(request, context)
                    outcome = None
                    return result
                except asyncio.CancelledError:
                    outcome = "CANCELLED"
                    raise
                finally:
                    done(context, start, outcome)

            return call

        kinds = (
            ("unary_unary", grpc.unary_unary_rpc_method_handler),
            ("unary_stream", grpc.unary_stream_rpc_method_handler),
            ("stream_unary", grpc.stream_unary_rpc_method_handler),
            ("stream_stream", grpc.stream_stream_rpc_method_handler),
        )
        for attr, make in kinds:
            behaviour = getattr(handler, attr)
            if behaviour is not None:
                made: grpc.RpcMethodHandler[Any, Any] = make(
                    wrap(behaviour), handler.request_deserializer, handler.response_serializer
                )
                return made
        return handler


def _code_of(context: grpc.ServicerContext, failed: bool) -> str:
    """The status the call ends with: what the handler set, else OK, or UNKNOWN for an exception."""
    code = getattr(context, "code", lambda: None)()  # grpcio >= 1.38; not in the typing stubs
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return "UNKNOWN" if failed else "OK"


# -- HTTP endpoint --------------------------------------------------------------------------------

_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "info": "gauge",
}
_SUFFIX = {"counter": "_total", "info": "_info"}


_go_float: Callable[[float], str] = floatToGoString  # the library's number format (+Inf, NaN, 1e+06)


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format 0.0.4, as ``generate_latest`` writes it.

    A leaner writer than prometheus-client's: our label names are fixed identifiers, so it skips
    validating and escaping them for each of the ~9,000 samples of a city-scale scrape (the
    library's writer alone takes most of the 250 ms budget there); labels keep the order they
    were added in (Prometheus does not mind) and are escaped only when a value needs it. Sample
    values are formatted by the library's own ``floatToGoString``.
    """
    out: list[str] = []
    append = out.append
    for family in registry.collect():
        name = family.name + _SUFFIX.get(family.type, "")
        doc = family.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        append(f"# HELP {name} {doc}\n# TYPE {name} {_TYPES.get(family.type, 'untyped')}\n")
        if isinstance(family, RenderedGauge):  # its lines are written already
            append(family.lines)
            continue
        for sample in family.samples:
            labels = sample.labels
            if labels:
                body = ",".join([f'{k}="{v}"' for k, v in labels.items()])
                if body.count('"') != 2 * len(labels) or "\\" in body or "\n" in body:
                    body = ",".join(
                        [f'{k}="{escape_label_value(v)}"' for k, v in labels.items()]
                    )  # rare: escape
                line = f"{sample.name}{{{body}}} {_go_float(sample.value)}"
            else:
                line = f"{sample.name} {_go_float(sample.value)}"
            if sample.timestamp is not None:
                line += f" {int(float(sample.timestamp) * 1000):d}"
            append(line + "\n")
    return "".join(out).encode("utf-8")


class _Scrapes:
    """Scrapes in progress in this process: background work that would compete with one for the
    GIL (the topology rebuild of :meth:`StateCollector.follow_changes`) waits until none is."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self.idle = threading.Event()
        self.idle.set()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """One scrape: Python's cyclic garbage collector paused and the scrape counted. A
        city-scale scrape allocates ~100,000 short-lived objects (refcounting frees them all;
        none is in a cycle), enough to set off a hundred young-generation collections that cost
        15-30 ms of it. Scrapes overlapping this one may re-enable the collector early; it only
        runs later, never wrongly."""
        with self._lock:
            self._running += 1
            self.idle.clear()
        enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if enabled:
                gc.enable()
            with self._lock:
                self._running -= 1
                if not self._running:
                    self.idle.set()


SCRAPES = _Scrapes()


class MetricsServer:
    """``GET /metrics`` of a registry over HTTP on a daemon thread; ``port`` is the bound port."""

    def __init__(self, registry: CollectorRegistry, port: int = 0, addr: str = "127.0.0.1") -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] not in ("/metrics", "/"):
                    self.send_error(404, "only /metrics is served here")
                    return
                # The whole response counts as the scrape: the body's writes wait for the GIL
                # too, and a busy background thread would make each one wait its turn.
                with SCRAPES.running():
                    try:
                        body = exposition(registry)
                    except Exception as exc:  # a failing collector must not kill the endpoint
                        self.send_error(500, f"collecting metrics failed: {exc}")
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # Prometheus scrapes every few seconds: no access log

        self._httpd = ThreadingHTTPServer((addr, port), Handler)
        self._httpd.daemon_threads = True
        self.addr = addr
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.addr}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve ``registry`` at ``http://addr:port/metrics`` (port 0 picks a free one); ``close()`` stops it."""
    return MetricsServer(registry, port, addr)
