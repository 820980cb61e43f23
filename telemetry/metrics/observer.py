"""The event metrics: counters and histograms fed as things happen.

:class:`ControllerMetrics` is the :class:`controller.runtime.observer.ServiceObserver` the service
reports decisions, preemptions, healings, reconcile and placement timings to; it owns the
registry, registers the scrape-time :class:`~telemetry.metrics.state.StateCollector` and makes
the gRPC interceptors that count and time every call of the operator and agent APIs.
"""

from __future__ import annotations

import threading

import grpc.aio
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

from slices.intent import SliceKind
from telemetry.metrics.interceptors import GrpcMetricsInterceptor
from telemetry.metrics.state import MAX_REASONS, PREFIX, StateCollector
from telemetry.metrics.views import AgentsView, StateSource

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
        return GrpcMetricsInterceptor(self.grpc_started, self.grpc_handled, self.grpc_duration, api)

    def aio_interceptor(self, api: str) -> grpc.aio.ServerInterceptor:
        """The same for ``grpc.aio.server(interceptors=[...])`` (the agent API runs on asyncio)."""
        return self.interceptor(api).aio()


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
