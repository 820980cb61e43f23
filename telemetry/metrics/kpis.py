"""A slice's KPIs from what its sites' agents reported: the newest record of each site, aggregated.

Latency and loss are the worst site's, devices the sum, throughput and demand the mean per site
(:class:`telemetry.metrics.kpi_ratios.SliceKpiColumns`).
"""

from __future__ import annotations

import numpy as np

from telemetry.agentlink.kpi_store import KpiColumns
from telemetry.metrics.kpi_ratios import SliceKpiColumns

# The newest KPI sample of a (slice, cell) counts while younger than this: a few telemetry
# intervals (1 s) and longer than an agent's lease (3 s), so a silent agent's numbers drop out
# about when its site is declared down.
KPI_MAX_AGE_S = 5.0
KBPS = 1000.0  # kbit/s in a Mbit/s


def aggregate_kpi_columns(c: KpiColumns) -> SliceKpiColumns:
    """Every slice's KPIs (see :class:`~telemetry.metrics.kpi_ratios.SliceKpiColumns`), a row per
    reporting slice, from the newest record of each reporting site,
    given column-wise: grouped by slice id with ``bincount`` and ``maximum.at``, as a city's
    records (one per slice and cell) are too many for a loop per record.

    >>> import numpy as np
    >>> a = np.array
    >>> c = KpiColumns(["cars"], a([0, 0]), a([10.0, 30.0]), a([2.0, 2.0]), a([20.0, 20.0]),
    ...     a([4.0, 4.0]), a([1.0, 1.0]), a([4.0, 9.0]), a([0.001, 0.0]), a([5, 7]), a([0.5, 0.5]))
    >>> k = aggregate_kpi_columns(c)
    >>> k.names, k.latency_ms, k.throughput_kbps_per_cell, k.demand_kbps_per_cell, k.devices, k.loss_ratio
    (['cars'], array([9.]), array([22000.]), array([24000.]), array([12.]), array([0.001]))
    """
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
    return SliceKpiColumns(
        [c.slice_names[i] for i in present.tolist()],
        latency[present],
        throughput[present] * per_cell,
        demand[present] * per_cell,
        devices[present].astype(np.float64),
        loss[present],
    )
