"""SLA evaluation: do the KPIs agents report over a rolling window meet each slice's SLA?

:func:`evaluate` is pure: one slice's intent and its recent samples per site in, violations out.
:func:`verdict` adds the evidence rule: a slice is judged met only when every site expected to
report its KPIs did so in the window. :class:`SlaEvaluator` keeps the little state that needs (the
verdict last recorded, how many windows in a row a slice has been violating, the edge sites it was
moved away from) and tells the controller: a changed verdict sets the ``SLAMet`` condition
(``True``, ``False`` or ``Unknown``); a violation that a move can fix, sustained for
``sustain_windows`` windows, asks the controller to re-place the slice.

What each site kind reports and what is judged there (agent.proto, "Telemetry"):

* cells (the radio access, where users experience the slice): latency (the window's mean p99,
  UE to the serving edge) above ``latency_ms``; packet loss above ``1 - reliability``;
  throughput, only when there is demand: delivered below 95 % of ``min(demand, guaranteed per
  cell)``; active devices, summed over the cells, above ``max_devices``;
* edge sites (the slice's processing): latency (mean p99 processing time) above ``latency_ms``
  and packet loss above ``1 - reliability``; their throughput is the cells' aggregate, already
  judged at the cells;
* aggregation and core sites report no slice KPIs (link health only): nothing to judge.

Which violations a move can fix: latency, loss and throughput at a site (a different edge site
or path changes them). Too many devices, and a throughput shortfall at a cell where the slice
uses all the radio share it reserved (``radio_utilisation`` >= 1: RadioShareSaturated), are the
tenant's own load: the condition says so and the alert fires, but the slice is not moved.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from slices.profiles import SliceIntent

log = logging.getLogger(__name__)
THROUGHPUT_TOLERANCE = 0.95
#: Violations a re-placement can fix (the others only set the condition).
MOVABLE = frozenset({"LatencyExceeded", "PacketLossExceeded", "ThroughputBelowGuarantee"})
SATURATED_SHARE = 1.0  # radio_utilisation at or above which a cell's slice uses all the share it bought
NO_TELEMETRY = "NoTelemetry"
PARTIAL_TELEMETRY = "PartialTelemetry"


class KpiSample(NamedTuple):
    """One slice's KPIs at one site for one telemetry interval (``at``: controller clock, s).

    A named tuple, not a dataclass: the controller builds one per KPI record it ingests.
    """

    at: float
    dl_mbps: float
    ul_mbps: float
    dl_demand_mbps: float
    ul_demand_mbps: float
    latency_p50_ms: float
    latency_p99_ms: float
    packet_loss: float
    active_devices: int
    radio_utilisation: float


@dataclass(frozen=True)
class Violation:
    reason: str  # CamelCase, for the SLAMet condition
    kpi: str
    site: str
    measured: float
    bound: float
    message: str

    @property
    def movable(self) -> bool:
        """Whether moving the slice to other sites can fix it."""
        return self.reason in MOVABLE


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


class SiteWindow(NamedTuple):
    """One slice's KPIs at one site over a window: what the SLA is judged on. Means are over the
    window's samples, oldest first (``sum / len``, so a columnar computation adding in the same
    order gets the same floats)."""

    samples: int
    latency_p99_ms: float
    latency_p50_ms: float
    packet_loss: float
    dl_demand_max: float
    dl_expected: float  # the mean of min(demand, guaranteed per cell)
    dl_delivered: float
    ul_demand_max: float
    ul_expected: float
    ul_delivered: float
    radio_utilisation: float
    active_devices: int  # the newest sample's


def window_of(intent: SliceIntent, samples: Sequence[KpiSample]) -> SiteWindow:
    """The window of ``samples`` (at least one, oldest first) for ``intent``: the plain
    computation (:mod:`telemetry.agentlink.sla_windows` is the columnar one)."""
    dl_g, ul_g = intent.dl_kbps / 1000, intent.ul_kbps / 1000
    return SiteWindow(
        len(samples),
        _mean([s.latency_p99_ms for s in samples]),
        _mean([s.latency_p50_ms for s in samples]),
        _mean([s.packet_loss for s in samples]),
        max(s.dl_demand_mbps for s in samples),
        _mean([min(s.dl_demand_mbps, dl_g) for s in samples]),
        _mean([s.dl_mbps for s in samples]),
        max(s.ul_demand_mbps for s in samples),
        _mean([min(s.ul_demand_mbps, ul_g) for s in samples]),
        _mean([s.ul_mbps for s in samples]),
        _mean([s.radio_utilisation for s in samples]),
        samples[-1].active_devices,
    )


def windows_of(
    samples: Mapping[tuple[str, str], Sequence[KpiSample]], intents: Mapping[str, SliceIntent]
) -> dict[str, dict[str, SiteWindow]]:
    """slice → site → its window, from (slice, site) → samples; slices of ``intents`` only."""
    out: dict[str, dict[str, SiteWindow]] = {}
    for (name, site), window in samples.items():
        intent = intents.get(name)
        if intent is not None and window:
            out.setdefault(name, {})[site] = window_of(intent, window)
    return out


def evaluate(
    intent: SliceIntent,
    samples: Mapping[str, Sequence[KpiSample]],
    kinds: Mapping[str, str],
) -> list[Violation]:
    """Violations of ``intent``'s SLA in ``samples`` (site → the window's samples), worst first
    within each KPI. ``kinds`` gives each site's kind: cells are judged on every KPI, edge sites
    on latency and loss; samples from other sites are not judged.

    >>> from slices.intent import NetworkSlice
    >>> from slices.profiles import resolve
    >>> cars = resolve(NetworkSlice.model_validate({"metadata": {"name": "cars"},
    ...     "spec": {"kind": "vehicle", "coverage": {"zones": ["ring"]}}}))
    >>> ok = KpiSample(0, 50, 25, 50, 25, 2.0, 4.0, 0.0, 10, 0.5)
    >>> slow = KpiSample(0, 50, 25, 50, 25, 4.0, 9.5, 0.0, 10, 0.9)
    >>> lossy_edge = KpiSample(0, 0, 0, 0, 0, 300.0, 900.0, 0.5, 0, 0.0)
    >>> kinds = {"cell-1": "cell", "cell-2": "cell", "edge-1": "edge"}
    >>> [v.message for v in evaluate(cars, {"cell-1": [ok], "cell-2": [slow]}, kinds)]
    ['latency p99 at site cell-2 is 9.5 ms (p50 4 ms), above the 5 ms bound']
    >>> [v.reason for v in evaluate(cars, {"cell-1": [ok], "edge-1": [lossy_edge]}, kinds)]
    ['LatencyExceeded', 'PacketLossExceeded']
    """
    return judge(intent, {site: window_of(intent, w) for site, w in samples.items() if w}, kinds)


def judge(
    intent: SliceIntent, windows: Mapping[str, SiteWindow], kinds: Mapping[str, str]
) -> list[Violation]:
    """:func:`evaluate` over the sites' windows (site → its window of this slice's KPIs)."""
    judged = {site: w for site, w in windows.items() if w.samples and kinds.get(site) in ("cell", "edge")}
    cells = {site: w for site, w in judged.items() if kinds[site] == "cell"}
    out: list[Violation] = []
    latency = sorted(((w.latency_p99_ms, site) for site, w in judged.items()), reverse=True)
    for value, site in latency:
        if value > intent.latency_ms:
            what = "latency p99" if kinds[site] == "cell" else "processing latency p99"
            p50 = judged[site].latency_p50_ms
            out.append(
                Violation(
                    "LatencyExceeded",
                    "latency_p99_ms",
                    site,
                    value,
                    intent.latency_ms,
                    f"{what} at site {site} is {value:.3g} ms (p50 {p50:.3g} ms), above the "
                    f"{intent.latency_ms:g} ms bound",
                )
            )
    max_loss = 1.0 - intent.reliability
    losses = sorted(((w.packet_loss, site) for site, w in judged.items()), reverse=True)
    for value, site in losses:
        if value > max_loss * (1 + 1e-9):
            out.append(
                Violation(
                    "PacketLossExceeded",
                    "packet_loss",
                    site,
                    value,
                    max_loss,
                    f"packet loss at site {site} is {value:.3g}, above the {max_loss:.3g} the "
                    f"{intent.reliability:g} reliability allows",
                )
            )
    for direction, guaranteed_kbps in (("dl", intent.dl_kbps), ("ul", intent.ul_kbps)):
        guaranteed = guaranteed_kbps / 1000
        shortfalls = []
        for site, w in cells.items():
            if guaranteed <= 0:
                continue
            if direction == "dl":
                demand, expected, delivered = w.dl_demand_max, w.dl_expected, w.dl_delivered
            else:
                demand, expected, delivered = w.ul_demand_max, w.ul_expected, w.ul_delivered
            if demand <= 0:
                continue  # no demand, nothing to judge
            if delivered < THROUGHPUT_TOLERANCE * expected:
                shortfalls.append((delivered / expected, delivered, expected, site, w.radio_utilisation))
        for _, delivered, expected, site, share in sorted(shortfalls):
            text = (
                f"{direction.upper()} throughput at site {site} is {delivered:.3g} Mbps, below the "
                f"{expected:.3g} Mbps demanded within the {guaranteed:g} Mbps guarantee"
            )
            if share >= SATURATED_SHARE:
                # The slice uses all the radio it reserved there: its own load, not the network's.
                reason = "RadioShareSaturated"
                text += f", while the slice uses {share:.0%} of its radio share at that cell (its own load)"
            else:
                reason = "ThroughputBelowGuarantee"
            out.append(Violation(reason, f"{direction}_throughput_mbps", site, delivered, expected, text))
    latest = {site: w.active_devices for site, w in cells.items()}
    devices = sum(latest.values())
    if devices > intent.max_devices:
        busiest = max(latest, key=lambda s: (latest[s], s))
        out.append(
            Violation(
                "TooManyDevices",
                "active_devices",
                busiest,
                float(devices),
                float(intent.max_devices),
                f"{devices} active devices (most at site {busiest}: {latest[busiest]}), above the "
                f"maximum of {intent.max_devices}",
            )
        )
    return out


@dataclass(frozen=True)
class Verdict:
    """The SLAMet condition a window's evidence supports: ``met`` None is Unknown."""

    met: bool | None
    reason: str
    message: str
    violations: tuple[Violation, ...] = ()


def verdict(
    intent: SliceIntent,
    samples: Mapping[str, Sequence[KpiSample]],
    kinds: Mapping[str, str],
    expected: Collection[str],
    window_s: float,
) -> Verdict:
    """Met only when every site in ``expected`` (the slice's cells and edge sites) reported in the
    window and nothing violates the SLA; violated as soon as any evidence shows a violation;
    Unknown otherwise (no samples, or sites missing), naming what is missing.

    >>> from slices.intent import NetworkSlice
    >>> from slices.profiles import resolve
    >>> cars = resolve(NetworkSlice.model_validate({"metadata": {"name": "cars"},
    ...     "spec": {"kind": "vehicle", "coverage": {"zones": ["ring"]}}}))
    >>> ok = KpiSample(0, 50, 25, 50, 25, 2.0, 4.0, 0.0, 10, 0.5)
    >>> kinds = {"c1": "cell", "c2": "cell"}
    >>> verdict(cars, {}, kinds, {"c1", "c2"}, 10).reason
    'NoTelemetry'
    >>> verdict(cars, {"c1": [ok]}, kinds, {"c1", "c2"}, 10).message
    'no KPIs over the last 10 s from 1 of 2 sites: c2'
    >>> verdict(cars, {"c1": [ok], "c2": [ok]}, kinds, {"c1", "c2"}, 10).met
    True
    """
    windows = {site: window_of(intent, w) for site, w in samples.items() if w}
    return judgement(intent, windows, kinds, expected, window_s)


def judgement(
    intent: SliceIntent,
    windows: Mapping[str, SiteWindow],
    kinds: Mapping[str, str],
    expected: Collection[str],
    window_s: float,
) -> Verdict:
    """:func:`verdict` over the sites' windows (site → its window of this slice's KPIs)."""
    violations = judge(intent, windows, kinds)
    if violations:
        first = violations[0]
        more = f" (and {len(violations) - 1} more violations)" if len(violations) > 1 else ""
        return Verdict(
            False, first.reason, f"{first.message} over the last {window_s:g} s{more}", tuple(violations)
        )
    reported = {site for site, w in windows.items() if w.samples}
    missing = sorted(set(expected) - reported)
    if not expected or len(missing) == len(expected):
        return Verdict(None, NO_TELEMETRY, f"no KPIs reported for this slice over the last {window_s:g} s")
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        return Verdict(
            None,
            PARTIAL_TELEMETRY,
            f"no KPIs over the last {window_s:g} s from {len(missing)} of {len(expected)} sites: {shown}",
        )
    return Verdict(
        True, "SLAMet", f"every KPI of all {len(expected)} sites within the SLA over the last {window_s:g} s"
    )


class KpiSource(Protocol):
    """What the SLA evaluator reads: :class:`telemetry.agentlink.registry.AgentRegistry`."""

    @property
    def clock(self) -> Callable[[], float]: ...
    def sla_windows(
        self, since: float, intents: Mapping[str, SliceIntent]
    ) -> Mapping[str, Mapping[str, SiteWindow]]:
        """slice → site → its window of the KPIs taken after ``since``, slices of ``intents``."""
        ...

    def intents(self) -> dict[str, SliceIntent]: ...
    def site_kinds(self) -> dict[str, str]: ...
    def reporters(self) -> dict[str, frozenset[str]]: ...


class SlaSink(Protocol):
    def set_sla(self, name: str, met: bool | None, reason: str, message: str, actor: str) -> None: ...
    def replace_slice(self, name: str, reason: str, actor: str, avoid: Collection[str] = ()) -> bool: ...


@dataclass
class _Recorded:
    met: bool | None
    reason: str
    message: str
    site: str
    violating_windows: int = 0


@dataclass
class SlaEvaluator:
    """Evaluates every placed slice once per window and tells the controller."""

    source: KpiSource
    sink: SlaSink
    window_s: float = 10.0
    sustain_windows: int = 3
    actor: str = "controller:sla"
    hold_down_s: float = 600.0
    _recorded: dict[str, _Recorded] = field(default_factory=dict)
    _left: dict[str, dict[str, float]] = field(default_factory=dict)  # slice → edge site → held until
    replacements: list[str] = field(default_factory=list)

    def evaluate_once(self) -> dict[str, Verdict]:
        now = self.source.clock()
        intents = self.source.intents()
        by_slice = self.source.sla_windows(now - self.window_s, intents)
        kinds = self.source.site_kinds()
        reporters = self.source.reporters()
        results: dict[str, Verdict] = {}
        for name in sorted(intents):
            v = judgement(
                intents[name], by_slice.get(name, {}), kinds, reporters.get(name, frozenset()), self.window_s
            )
            results[name] = v
            self._record(name, v, reporters.get(name, frozenset()), kinds, now)
        for name in set(self._recorded) - set(intents):
            del self._recorded[name]  # no longer placed: its next verdict starts afresh
        return results

    def _record(
        self, name: str, v: Verdict, sites: frozenset[str], kinds: Mapping[str, str], now: float
    ) -> None:
        old = self._recorded.get(name)
        site = v.violations[0].site if v.violations else ""
        windows = (old.violating_windows if old is not None and old.met is False else 0) + (v.met is False)
        if (
            old is None
            or (old.met, old.reason, old.site) != (v.met, v.reason, site)
            or (v.met is None and old.message != v.message)
        ):
            self.sink.set_sla(name, v.met, v.reason, v.message, self.actor)
        movable = [x for x in v.violations if x.movable]
        if v.met is False and movable and windows >= self.sustain_windows:
            windows = 0  # the next attempt waits for another sustained stretch
            held = {s: t for s, t in self._left.get(name, {}).items() if t > now}
            edges = sorted(s for s in sites if kinds.get(s) == "edge")
            self.replacements.append(name)
            moved = self.sink.replace_slice(
                name,
                f"{movable[0].reason}: sustained for {self.sustain_windows} windows: {movable[0].message}",
                self.actor,
                avoid=sorted(held),
            )
            if moved:
                held.update({s: now + self.hold_down_s for s in edges})
            self._left[name] = held
        self._recorded[name] = _Recorded(v.met, v.reason, v.message, site, windows)


class SlaMonitor:
    """Runs an :class:`SlaEvaluator` every window on a thread of its own."""

    def __init__(self, evaluator: SlaEvaluator) -> None:
        self.evaluator = evaluator
        self.passes = 0
        self.last_pass_s = 0.0  # how long the last evaluation took (benchmarks report it)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sla-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.evaluator.window_s):
            started = time.perf_counter()
            try:
                self.evaluator.evaluate_once()
            except Exception:  # a failing controller call must not end SLA evaluation
                log.exception("SLA evaluation failed")
            self.passes += 1
            self.last_pass_s = time.perf_counter() - started
