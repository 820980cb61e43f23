"""Each placed slice's latest KPIs over its targets: the ``slice_kpi_target_ratio`` family.

At city scale it is almost all of a scrape (4 series per slice, every other family is small), so
it is built column-wise: the targets and the labels of each series are kept per controller
revision, and the ratios computed for every slice at once with numpy.
:func:`kpi_ratios` is the definition, one slice at a time; the tests hold the two together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter

import numpy as np
import numpy.typing as npt
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.samples import Sample

from controller.runtime.service import SliceRecord
from slices.profiles import SliceIntent

KPIS = ("latency", "throughput", "loss", "devices")


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


@dataclass(frozen=True)
class KpiTargets:
    """What the family needs of the placed slices, kept per revision: 4 series per slice."""

    names: list[str]
    labels: list[dict[str, str]]  # per series: slice, kind, kpi
    latency_ms: npt.NDArray[np.float64]
    kbps_per_cell: npt.NDArray[np.float64]
    loss: npt.NDArray[np.float64]
    max_devices: npt.NDArray[np.float64]

    @classmethod
    def of(
        cls,
        records: Sequence[SliceRecord],
        series: dict[tuple[str, str], list[dict[str, str]]] | None = None,
    ) -> KpiTargets:
        """The targets of ``records``; ``series`` ((slice, kind) → its 4 label sets), kept by the
        caller across revisions, spares rebuilding those of every slice a change did not touch."""
        series = {} if series is None else series
        placed = [r for r in records if r.placement is not None]
        labels: list[dict[str, str]] = []
        for r in placed:
            key = (r.name, r.intent.kind.value)
            known = series.get(key)
            if known is None:
                known = series[key] = [{"slice": key[0], "kind": key[1], "kpi": kpi} for kpi in KPIS]
            labels += known
        return cls(
            [r.name for r in placed],
            labels,
            np.array([r.intent.latency_ms for r in placed], np.float64),
            np.array([r.intent.kbps_per_cell for r in placed], np.float64),
            np.array([max(0.0, 1.0 - r.intent.reliability) for r in placed], np.float64),
            np.array([r.intent.max_devices for r in placed], np.float64),
        )


def fill(family: GaugeMetricFamily, targets: KpiTargets, kpis: Mapping[str, SliceKpis]) -> None:
    """Add the ratios of every placed slice with KPIs to ``family``, as :func:`kpi_ratios` defines them."""
    got = [kpis.get(name) for name in targets.names]
    present = [i for i, k in enumerate(got) if k is not None]
    if not present:
        return
    ks = [k for k in got if k is not None]
    at = np.array(present)
    latency = np.array([k.latency_ms for k in ks], np.float64)
    throughput = np.array([k.throughput_kbps_per_cell for k in ks], np.float64)
    demand = np.array([k.demand_kbps_per_cell for k in ks], np.float64)
    loss = np.array([k.loss_ratio for k in ks], np.float64)
    devices = np.array([k.devices for k in ks], np.float64)
    owed = np.minimum(targets.kbps_per_cell[at], demand)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.stack(
            [
                latency / targets.latency_ms[at],
                np.where(owed > 0, throughput / owed, 1.0),
                _ratios(loss, targets.loss[at]),
                _ratios(devices, targets.max_devices[at]),
            ],
            axis=1,
        )
    values = ratios.ravel().tolist()
    series = [4 * i + j for i in present for j in range(len(KPIS))]
    labels = itemgetter(*series)(targets.labels)  # 4 or more indices: a tuple
    family.samples.extend(map(Sample, repeat(family.name), labels, values))


def _ratios(value: npt.NDArray[np.float64], target: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """:func:`_ratio` element-wise (call under ``np.errstate``: the division runs everywhere)."""
    return np.where(target > 0, value / target, np.where(value <= 0, 0.0, np.inf))
