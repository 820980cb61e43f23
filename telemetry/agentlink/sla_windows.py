"""The SLA's windows computed column-wise: every (slice, site) of a city at once from the KPI
store's columns (:meth:`telemetry.agentlink.kpi_store.KpiStore.window_columns`), grouped with
``bincount`` instead of a Python object per sample.

The plain computation is :func:`telemetry.agentlink.sla.windows_of` over the samples;
``tests/unit/telemetry/agentlink/test_sla_windows.py`` checks that both give the same windows,
float for float: ``bincount`` adds each group's values in record order, as ``sum`` does.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from slices.profiles import SliceIntent
from telemetry.agentlink.kpi_store import KpiWindow
from telemetry.agentlink.sla import SiteWindow


def sla_windows(c: KpiWindow, intents: Mapping[str, SliceIntent]) -> dict[str, dict[str, SiteWindow]]:
    """slice → site → its window over the records of ``c``, slices of ``intents`` only."""
    size = len(c.slice_names)
    wanted = np.zeros(size, np.bool_)
    dl_g = np.zeros(size)
    ul_g = np.zeros(size)
    for i, name in enumerate(c.slice_names):
        intent = intents.get(name)
        if intent is not None:
            wanted[i] = True
            dl_g[i], ul_g[i] = intent.dl_kbps / 1000, intent.ul_kbps / 1000
    keep = wanted[c.slice_ids] if size else np.zeros(0, np.bool_)
    slice_ids, site_ids = c.slice_ids[keep], c.site_ids[keep]
    key = slice_ids * max(1, len(c.sites)) + site_ids
    groups, inverse = np.unique(key, return_inverse=True)
    n = len(groups)
    count = np.bincount(inverse, minlength=n)

    def mean(values: npt.NDArray[np.float64]) -> list[float]:
        out: list[float] = (np.bincount(inverse, values[keep], n) / count).tolist()
        return out

    def peak(values: npt.NDArray[np.float64]) -> list[float]:
        out = np.full(n, -np.inf)
        np.maximum.at(out, inverse, values[keep])
        top: list[float] = out.tolist()
        return top

    newest = np.zeros(n, np.int64)  # the last record of each group: records are oldest first
    np.maximum.at(newest, inverse, np.arange(len(inverse)))
    dl_demand, ul_demand = c.dl_demand_mbps[keep], c.ul_demand_mbps[keep]
    columns = zip(
        count.tolist(),
        mean(c.latency_p99_ms),
        mean(c.latency_p50_ms),
        mean(c.packet_loss),
        peak(c.dl_demand_mbps),
        (np.bincount(inverse, np.minimum(dl_demand, dl_g[slice_ids]), n) / count).tolist(),
        mean(c.dl_throughput_mbps),
        peak(c.ul_demand_mbps),
        (np.bincount(inverse, np.minimum(ul_demand, ul_g[slice_ids]), n) / count).tolist(),
        mean(c.ul_throughput_mbps),
        mean(c.radio_utilisation),
        c.active_devices[keep][newest].tolist(),
        strict=True,
    )
    out: dict[str, dict[str, SiteWindow]] = {}
    first = np.zeros(n, np.int64)  # any record of each group names its slice and site
    first[inverse] = np.arange(len(inverse))
    names = [c.slice_names[i] for i in slice_ids[first].tolist()]
    sites = [c.sites[i] for i in site_ids[first].tolist()]
    for name, site, values in zip(names, sites, columns, strict=True):
        out.setdefault(name, {})[site] = SiteWindow(*values)
    return out
