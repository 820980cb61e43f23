"""Each placed slice's latest KPIs over its targets: the ``slice_kpi_target_ratio`` family.

At city scale it is almost all of a scrape (4 series per slice, every other family is small), so
it is built column-wise: the targets and the label text of each series are kept per controller
revision, the ratios computed for every slice at once with numpy, and the family's lines written
as text in one join. :class:`RenderedGauge` makes its ``Sample`` objects only for a reader that
asks (``CollectorRegistry.get_sample_value``, the library's own writer); ours writes the lines.
:func:`kpi_ratios` is the definition, one slice at a time; the tests hold the two together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter

import numpy as np
import numpy.typing as npt
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from controller.runtime.service import SliceRecord
from slices.profiles import SliceIntent
from telemetry.metrics.exposition_text import escape_label_value

KPIS = ("latency", "throughput", "loss", "devices")
_PLAIN_BELOW = 1e6  # below this, Python's repr of a float is the Go format Prometheus writes


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


class RenderedGauge(GaugeMetricFamily):
    """A gauge family whose exposition lines are written by whoever fills it (:meth:`set_rows`);
    ``samples`` are made from the rows when read."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self._labels: list[dict[str, str]] = []
        self._values: list[float] = []
        self.lines = ""  # the samples in the text format, each line ending in a newline
        super().__init__(name, documentation, labels=labels)

    @property
    def samples(self) -> list[Sample]:
        return [
            Sample(self.name, labels, value) for labels, value in zip(self._labels, self._values, strict=True)
        ]

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:  # Metric.__init__ sets an empty list; rows come only through set_rows()
            raise TypeError("a RenderedGauge is filled with set_rows()")

    def set_rows(self, labels: list[dict[str, str]], values: list[float], lines: str) -> None:
        self._labels, self._values, self.lines = labels, values, lines


@dataclass(frozen=True)
class KpiTargets:
    """What the family needs of the placed slices, kept per revision: 4 series per slice."""

    names: list[str]
    labels: list[dict[str, str]]  # per series: slice, kind, kpi
    prefixes: list[str]  # per series: its line up to the value
    latency_ms: npt.NDArray[np.float64]
    kbps_per_cell: npt.NDArray[np.float64]
    loss: npt.NDArray[np.float64]
    max_devices: npt.NDArray[np.float64]

    @classmethod
    def of(
        cls,
        family: str,
        records: Sequence[SliceRecord],
        series: dict[tuple[str, str], tuple[list[dict[str, str]], list[str]]] | None = None,
    ) -> KpiTargets:
        """The targets of ``records``; ``series`` ((slice, kind) → its 4 label sets and line
        prefixes), kept by the caller across revisions, spares rebuilding those of every slice
        a change did not touch."""
        series = {} if series is None else series
        placed = [r for r in records if r.placement is not None]
        labels: list[dict[str, str]] = []
        prefixes: list[str] = []
        for r in placed:
            key = (r.name, r.intent.kind.value)
            known = series.get(key)
            if known is None:
                known = series[key] = _series_of(family, *key)
            labels += known[0]
            prefixes += known[1]
        return cls(
            [r.name for r in placed],
            labels,
            prefixes,
            np.array([r.intent.latency_ms for r in placed], np.float64),
            np.array([r.intent.kbps_per_cell for r in placed], np.float64),
            np.array([max(0.0, 1.0 - r.intent.reliability) for r in placed], np.float64),
            np.array([r.intent.max_devices for r in placed], np.float64),
        )


def _series_of(family: str, name: str, kind: str) -> tuple[list[dict[str, str]], list[str]]:
    labels = [{"slice": name, "kind": kind, "kpi": kpi} for kpi in KPIS]
    return labels, [
        f'{family}{{slice="{escape_label_value(name)}",kind="{kind}",kpi="{kpi}"}} ' for kpi in KPIS
    ]


def fill(family: RenderedGauge, targets: KpiTargets, kpis: Mapping[str, SliceKpis]) -> None:
    """The ratios of every placed slice with KPIs, as :func:`kpi_ratios` defines them."""
    got = [kpis.get(name) for name in targets.names]
    present = [i for i, k in enumerate(got) if k is not None]
    if not present:
        family.set_rows([], [], "")
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
    pick = itemgetter(*series)  # 4 or more indices: a tuple
    labels, prefixes = pick(targets.labels), pick(targets.prefixes)
    fmt = repr if bool(np.all(ratios < _PLAIN_BELOW)) else floatToGoString  # inf, NaN, 1e+06
    family.set_rows(list(labels), values, "\n".join(map(str.__add__, prefixes, map(fmt, values))) + "\n")


def _ratios(value: npt.NDArray[np.float64], target: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """:func:`_ratio` element-wise (call under ``np.errstate``: the division runs everywhere)."""
    return np.where(target > 0, value / target, np.where(value <= 0, 0.0, np.inf))
