"""SLA evaluation: do the KPIs agents report over a rolling window meet each slice's SLA?

:func:`evaluate` is pure: one slice's intent and its recent samples per site in, violations out.
:class:`SlaEvaluator` keeps the little state that needs (the verdict last recorded and how many
windows in a row a slice has been violating) and tells the controller: a changed verdict sets the
``SLAMet`` condition; a violation sustained for ``sustain_windows`` windows asks the controller to
re-place the slice (which it records in the audit trail).

The checks, each against the resolved intent (``slices.profiles.SliceIntent``):

* latency: the mean of the window's p99 samples at a site above ``latency_ms``;
* packet loss: the mean loss at a site above ``1 - reliability``;
* throughput: only when there is demand: delivered below 95 % of
  ``min(demand, guaranteed per cell)`` (an idle cell delivering little is not a violation);
* devices: active devices summed over the sites above ``max_devices``.

Only KPIs from cells are judged: the radio access is where users experience the slice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from slices.profiles import SliceIntent

log = logging.getLogger(__name__)
THROUGHPUT_TOLERANCE = 0.95


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


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def evaluate(
    intent: SliceIntent,
    samples: Mapping[str, Sequence[KpiSample]],
    cells: frozenset[str] | set[str] = frozenset(),
) -> list[Violation]:
    """Violations of ``intent``'s SLA in ``samples`` (site → the window's samples), worst first
    within each KPI. When ``cells`` is given only samples from those sites are judged: the radio
    access is where users experience the slice (other sites' KPIs describe one segment of it).

    >>> from slices.intent import NetworkSlice
    >>> from slices.profiles import resolve
    >>> cars = resolve(NetworkSlice.model_validate({"metadata": {"name": "cars"},
    ...     "spec": {"kind": "vehicle", "coverage": {"zones": ["ring"]}}}))
    >>> ok = KpiSample(0, 50, 25, 50, 25, 2.0, 4.0, 0.0, 10, 0.5)
    >>> slow = KpiSample(0, 50, 25, 50, 25, 4.0, 9.5, 0.0, 10, 0.9)
    >>> [v.message for v in evaluate(cars, {"cell-1": [ok], "cell-2": [slow]}, {"cell-1", "cell-2"})]
    ['latency p99 at site cell-2 is 9.5 ms, above the 5 ms bound']
    """
    if cells:
        samples = {site: w for site, w in samples.items() if site in cells}
    out: list[Violation] = []
    latency = sorted(
        ((_mean([s.latency_p99_ms for s in w]), site) for site, w in samples.items() if w), reverse=True
    )
    for value, site in latency:
        if value > intent.latency_ms:
            out.append(
                Violation(
                    "LatencyExceeded",
                    "latency_p99_ms",
                    site,
                    value,
                    intent.latency_ms,
                    f"latency p99 at site {site} is {value:.3g} ms, above the {intent.latency_ms:g} ms bound",
                )
            )
    max_loss = 1.0 - intent.reliability
    losses = sorted(
        ((_mean([s.packet_loss for s in w]), site) for site, w in samples.items() if w), reverse=True
    )
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
        for site, w in samples.items():
            if not w or guaranteed <= 0:
                continue
            demand = [getattr(s, f"{direction}_demand_mbps") for s in w]
            if max(demand) <= 0:
                continue  # no demand, nothing to judge
            expected = _mean([min(d, guaranteed) for d in demand])
            delivered = _mean([getattr(s, f"{direction}_mbps") for s in w])
            if delivered < THROUGHPUT_TOLERANCE * expected:
                shortfalls.append((delivered / expected, delivered, expected, site))
        for _, delivered, expected, site in sorted(shortfalls):
            out.append(
                Violation(
                    "ThroughputBelowGuarantee",
                    f"{direction}_throughput_mbps",
                    site,
                    delivered,
                    expected,
                    f"{direction.upper()} throughput at site {site} is {delivered:.3g} Mbps, below the "
                    f"{expected:.3g} Mbps demanded within the {guaranteed:g} Mbps guarantee",
                )
            )
    latest = {site: w[-1].active_devices for site, w in samples.items() if w}
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


def summarise(violations: Sequence[Violation], window_s: float) -> tuple[str, str]:
    """(reason, message) for the SLAMet condition: the first violation, and how many more."""
    first = violations[0]
    more = f" (and {len(violations) - 1} more violations)" if len(violations) > 1 else ""
    return first.reason, f"{first.message} over the last {window_s:g} s{more}"


class KpiSource(Protocol):
    @property
    def clock(self) -> Callable[[], float]: ...
    def kpis(self, since: float = ...) -> dict[tuple[str, str], list[KpiSample]]: ...
    def intents(self) -> dict[str, SliceIntent]: ...
    def site_kinds(self) -> dict[str, str]: ...


class SlaSink(Protocol):
    def set_sla(self, name: str, met: bool, reason: str, message: str, actor: str) -> None: ...
    def replace_slice(self, name: str, reason: str, actor: str) -> bool: ...


@dataclass
class _Verdict:
    met: bool
    reason: str
    site: str
    violating_windows: int = 0


@dataclass
class SlaEvaluator:
    """Evaluates every slice with fresh KPIs once per window and tells the controller."""

    source: KpiSource
    sink: SlaSink
    window_s: float = 10.0
    sustain_windows: int = 3
    actor: str = "controller:sla"
    _verdicts: dict[str, _Verdict] = field(default_factory=dict)
    replacements: list[str] = field(default_factory=list)

    def evaluate_once(self) -> dict[str, list[Violation]]:
        now = self.source.clock()
        by_slice: dict[str, dict[str, list[KpiSample]]] = {}
        for (name, site), window in self.source.kpis(since=now - self.window_s).items():
            by_slice.setdefault(name, {})[site] = window
        intents = self.source.intents()
        cells = {site for site, kind in self.source.site_kinds().items() if kind == "cell"}
        results: dict[str, list[Violation]] = {}
        for name, samples in sorted(by_slice.items()):
            intent = intents.get(name)
            if intent is None:
                continue
            violations = evaluate(intent, samples, cells)
            results[name] = violations
            self._record(name, violations)
        return results

    def _record(self, name: str, violations: list[Violation]) -> None:
        old = self._verdicts.get(name)
        if not violations:
            if old is None or not old.met:
                self.sink.set_sla(
                    name,
                    True,
                    "SLAMet",
                    f"every KPI within the SLA over the last {self.window_s:g} s",
                    self.actor,
                )
            self._verdicts[name] = _Verdict(True, "SLAMet", "")
            return
        reason, message = summarise(violations, self.window_s)
        site = violations[0].site
        windows = (old.violating_windows if old is not None and not old.met else 0) + 1
        if old is None or old.met or old.reason != reason or old.site != site:
            self.sink.set_sla(name, False, reason, message, self.actor)
        if windows >= self.sustain_windows:
            windows = 0  # the next attempt waits for another sustained stretch
            self.replacements.append(name)
            self.sink.replace_slice(
                name,
                f"{reason}: sustained for {self.sustain_windows} windows: {violations[0].message}",
                self.actor,
            )
        self._verdicts[name] = _Verdict(False, reason, site, windows)


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
