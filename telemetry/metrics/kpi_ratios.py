"""Each placed slice's latest KPIs over its targets: the ``slice_kpi_target_ratio`` family.

At city scale it is almost all of a scrape (4 series per slice, every other family is small), so
it is built column-wise: the targets and the labels of each series are kept per controller
revision, and the ratios computed for every slice at once with numpy.
The definition, one slice at a time, is the tests' oracle (tests/support/kpi_oracle.py); the
tests hold the two together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter

import numpy as np
import numpy.typing as npt
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.samples import Sample

from controller.runtime.service import SliceRecord

KPIS = ("latency", "throughput", "loss", "devices")


@dataclass(frozen=True)
class SliceKpiColumns:
    """The latest KPIs agents reported for every reporting slice, aggregated over the sites
    reporting it, as columns: row ``i`` is slice ``names[i]``. Latency and loss are the worst
    site's (an SLA holds everywhere or it does not hold), devices the sum, throughput and demand
    the mean per reporting site (DL + UL). Columns, as a city's slices are too many for an object
    each."""

    names: list[str]
    latency_ms: npt.NDArray[np.float64]
    throughput_kbps_per_cell: npt.NDArray[np.float64]
    demand_kbps_per_cell: npt.NDArray[np.float64]
    devices: npt.NDArray[np.float64]
    loss_ratio: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.names)


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


def fill(family: GaugeMetricFamily, targets: KpiTargets, kpis: SliceKpiColumns) -> None:
    """Add the ratios of every placed slice with KPIs to ``family``, as :func:`kpi_ratios` defines them."""
    row_of = {name: i for i, name in enumerate(kpis.names)}
    pairs = [(i, row_of[name]) for i, name in enumerate(targets.names) if name in row_of]
    if not pairs:
        return
    present = [i for i, _ in pairs]
    at = np.array(present)
    rows = np.array([r for _, r in pairs])
    latency = kpis.latency_ms[rows]
    throughput = kpis.throughput_kbps_per_cell[rows]
    demand = kpis.demand_kbps_per_cell[rows]
    loss = kpis.loss_ratio[rows]
    devices = kpis.devices[rows]
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
