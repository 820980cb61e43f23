"""The state gauges, computed at every scrape from the controller's own state so they can never
drift from the truth: slices and their conditions, sites, links and radio capacity, the audit
trail's counters and, with an agents view, the agents and each slice's KPIs over its targets.

The cardinality budget (``docs/observability.md``) is at most 10,000 series for a
20,000-cell city with 2,000 slices: nothing is labelled by cell or by link except bounded
"worst N" lists, per-slice series are the four KPI ratios, and reason labels are capped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from controller.core.capacity import CapacityView, Layout
from controller.runtime.service import SliceRecord, SliceState
from slices.intent import SliceKind
from slices.status import ConditionStatus, ConditionType, get_condition
from telemetry.metrics import kpi_ratios
from telemetry.metrics.kpi_ratios import KpiTargets
from telemetry.metrics.scrapes import SCRAPES
from telemetry.metrics.views import AgentSnapshot, AgentsView, StateSource

log = logging.getLogger(__name__)
PREFIX = "edgeslice"
TOP_LINKS = 20  # the busiest links listed by name
MAX_LISTED_AGENTS = 100  # disconnected or lagging agents listed by site (cells have agents too)
MAX_LISTED_VIOLATIONS = 200  # slices listed by name while their SLA is violated
MAX_REASONS = 32  # distinct admission reasons kept before the rest count as "Other"
OTHER_REFUSAL = "Other"  # config refusals whose reason is not one of KNOWN_REFUSALS
LISTED_AGENT_KINDS = frozenset({"edge", "core"})  # a few sites: every one gets its own series
KIND_ORDER = ("cell", "aggregation", "edge", "core")
KBPS = 1000.0  # bits per second in a kbit/s
MIB = 1024.0 * 1024.0
MILLI = 1000.0


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
        self._topology_samples: tuple[int, dict[str, list[Sample]]] | None = None
        self._topology_lock = threading.Lock()
        self._following: threading.Event | None = None  # set: wake the follow_changes thread
        self._classes: tuple[Layout, npt.NDArray[np.intp], list[str]] | None = None
        self._kpi_targets: tuple[int, KpiTargets] | None = None
        self._kpi_series: dict[tuple[str, str], list[dict[str, str]]] = {}

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
                "Slices by kind and state (Ready, Admitted, Degraded, Pending, Rejected, Preempted, "
                "Scheduled, Expired).",
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
                g,
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
                # rebuilding alongside would make it share the GIL with the rebuild's work.
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
        # A city's cells: comprehensions rather than one loop with branches (less work per cell).
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

        self._links(fam, self._source.capacity())

    def _links(self, fam: dict[str, Metric], view: CapacityView) -> None:
        """Link classes and the busiest links, from the ledger's capacity view."""
        cls_idx, names = self._link_classes(view.layout)
        reserved = np.bincount(cls_idx, weights=view.link_reserved_kbps, minlength=len(names))
        capacity = np.bincount(cls_idx, weights=view.link_capacity_kbps, minlength=len(names))
        for i, name in enumerate(names):
            _add(fam["link_class_reserved_bits_per_second"], [name], float(reserved[i]) * KBPS)
            _add(fam["link_class_capacity_bits_per_second"], [name], float(capacity[i]) * KBPS)
        for j in view.busiest_links[:TOP_LINKS].tolist():
            a, b = view.links[j]
            labels = [f"{a}:{b}", names[cls_idx[j]]]
            _add(fam["link_reserved_bits_per_second"], labels, float(view.link_reserved_kbps[j]) * KBPS)
            _add(fam["link_capacity_bits_per_second"], labels, float(view.link_capacity_kbps[j]) * KBPS)

    def _link_classes(self, layout: Layout) -> tuple[npt.NDArray[np.intp], list[str]]:
        """Each link's class (an index into the sorted class names), once per topology layout."""
        cached = self._classes
        if cached is not None and cached[0] is layout:
            return cached[1], cached[2]
        kinds = sorted(set(layout.kinds))
        code = np.array([kinds.index(k) for k in layout.kinds], np.intp)
        ends = code[layout.link_ends] if len(layout.links) else np.zeros((0, 2), np.intp)
        pairs, per_link = np.unique(ends[:, 0] * len(kinds) + ends[:, 1], return_inverse=True)
        of_pair = [link_class(kinds[p // len(kinds)], kinds[p % len(kinds)]) for p in pairs.tolist()]
        names = sorted(set(of_pair))
        cls_idx = np.array([names.index(c) for c in of_pair], np.intp)[per_link.reshape(-1)]
        self._classes = (layout, cls_idx, names)
        return cls_idx, names

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
        # One agent per site of a city: counted with numpy; series only for the agents listed.
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
            targets = self._kpi_targets = (revision, KpiTargets.of(records, self._kpi_series))
        family = fam["slice_kpi_target_ratio"]
        assert isinstance(family, GaugeMetricFamily)
        kpi_ratios.fill(family, targets[1], self._agents.slice_kpis())

    @staticmethod
    def _agent_series(fam: dict[str, Metric], a: AgentSnapshot) -> None:
        labels = [a.site, a.kind]
        _add(fam["agent_up"], labels, 1 if a.connected else 0)
        if a.last_heartbeat_unix is not None:
            _add(fam["agent_last_heartbeat_timestamp_seconds"], labels, a.last_heartbeat_unix)
        _add(fam["agent_config_generation_lag"], labels, a.generation_lag)


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
