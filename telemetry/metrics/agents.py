"""The agents as the metrics collector reads them: an :class:`~telemetry.metrics.views.AgentsView`
over the agent service's registry."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Protocol

import numpy as np

from telemetry.agentlink.kpi_store import KpiColumns
from telemetry.agentlink.session_table import SessionColumns
from telemetry.agentlink.settings import KNOWN_REFUSALS
from telemetry.metrics.kpi_ratios import SliceKpiColumns
from telemetry.metrics.kpis import KPI_MAX_AGE_S, aggregate_kpi_columns
from telemetry.metrics.state import OTHER_REFUSAL
from telemetry.metrics.views import AgentTable


class _RegistryLike(Protocol):
    """The reading side of :class:`telemetry.agentlink.registry.AgentRegistry`."""

    @property
    def clock(self) -> Callable[[], float]: ...

    def session_columns(self) -> SessionColumns: ...

    def latest_kpi_columns(self, since: float, sites: AbstractSet[str]) -> KpiColumns:
        """The newest record of every (slice, site) of ``sites`` taken after ``since``."""
        ...

    def site_kinds(self) -> dict[str, str]: ...

    def refusal_counts(self) -> dict[str, int]: ...


class AgentRegistryView:
    """:class:`AgentsView` over the agent service's registry.

    Agents are the sites whose agent has connected, in this run or before a restart (a site
    with no agent deployed is not an agent that is down). Heartbeat ages become Unix timestamps,
    the Prometheus convention, so a dashboard computes the age with ``time() - ...``. KPIs are the
    latest sample per cell of the last ``kpi_max_age_s`` (:data:`KPI_MAX_AGE_S`; a silent agent's old numbers drop out);
    only cells count: the radio access is where users feel the slice (the SLA is judged on the
    edge sites' KPIs too, :mod:`telemetry.agentlink.sla`).
    """

    def __init__(
        self,
        registry: _RegistryLike,
        wall_clock: Callable[[], float] = time.time,
        kpi_max_age_s: float = KPI_MAX_AGE_S,
    ) -> None:
        self._registry = registry
        self._kinds = registry.site_kinds()
        self._cells = frozenset(site for site, kind in self._kinds.items() if kind == "cell")
        self._kind_names = sorted(set(self._kinds.values()))
        self._kind_codes = {site: self._kind_names.index(kind) for site, kind in self._kinds.items()}
        self._wall = wall_clock
        self._max_age = kpi_max_age_s

    def agent_table(self) -> AgentTable:
        c = self._registry.session_columns()
        seconds_ago = c.seconds_since_seen
        return AgentTable(
            c.sites,
            self._kind_names,
            np.fromiter(map(self._kind_codes.__getitem__, c.sites), np.intp, len(c.sites)),
            c.connected,
            np.where(np.isfinite(seconds_ago), self._wall() - seconds_ago, math.nan),
            c.desired_generation,
            c.acked_generation,
        )

    def refusal_counts(self) -> dict[str, int]:
        """The registry's counts, with every known reason and "Other" from zero (so a reason's
        first refusal is an increase, not the start of a series)."""
        counts = dict.fromkeys((*KNOWN_REFUSALS, OTHER_REFUSAL), 0)
        counts.update(self._registry.refusal_counts())
        return counts

    def slice_kpis(self) -> SliceKpiColumns:
        since = self._registry.clock() - self._max_age
        return aggregate_kpi_columns(self._registry.latest_kpi_columns(since, self._cells))
