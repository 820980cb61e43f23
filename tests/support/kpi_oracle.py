"""The plain definitions the metrics' column-wise KPI paths are tested against, one slice at a
time: a slice's aggregated KPIs (:class:`SliceKpis`) and their ratios over its targets
(:func:`kpi_ratios`, what ``telemetry.metrics.kpi_ratios.fill`` computes for every slice at once)."""

from __future__ import annotations

from dataclasses import dataclass

from slices.profiles import SliceIntent


@dataclass(frozen=True)
class SliceKpis:
    """The latest KPIs agents reported for one slice, aggregated over the sites reporting it.

    Latency and loss are the worst site's (an SLA holds everywhere or it does not hold), devices
    the sum, throughput and demand the mean per reporting site (DL + UL).
    """

    slice: str
    latency_ms: float
    throughput_kbps_per_cell: float
    demand_kbps_per_cell: float
    devices: int
    loss_ratio: float


def kpi_ratios(intent: SliceIntent, kpis: SliceKpis) -> dict[str, float]:
    """Each KPI over its target: above 1 breaches for latency, loss and devices; below 1 for throughput.

    Throughput is compared with what the slice is owed: its guaranteed rate per cell, or the
    demand when less is asked for (a quiet slice is not short of throughput). A zero target (a
    slice asking for perfect reliability) makes any loss an infinite ratio.

    >>> from slices.intent import NetworkSlice
    >>> from slices.profiles import resolve
    >>> intent = resolve(NetworkSlice.model_validate({"metadata": {"name": "cars"},
    ...     "spec": {"kind": "vehicle", "coverage": {"zones": ["ring"]}}}))
    >>> kpis = SliceKpis("cars", latency_ms=2.5, throughput_kbps_per_cell=30_000,
    ...     demand_kbps_per_cell=40_000, devices=500, loss_ratio=0.0)
    >>> kpi_ratios(intent, kpis)
    {'latency': 0.5, 'throughput': 0.75, 'loss': 0.0, 'devices': 0.1}
    """
    loss_target = max(0.0, 1.0 - intent.reliability)
    owed = min(float(intent.kbps_per_cell), kpis.demand_kbps_per_cell)
    return {
        "latency": kpis.latency_ms / intent.latency_ms,
        "throughput": kpis.throughput_kbps_per_cell / owed if owed > 0 else 1.0,
        "loss": _ratio(kpis.loss_ratio, loss_target),
        "devices": _ratio(float(kpis.devices), float(intent.max_devices)),
    }


def _ratio(value: float, target: float) -> float:
    if target > 0:
        return value / target
    return 0.0 if value <= 0 else float("inf")
