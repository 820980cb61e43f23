"""What the metrics collector reads: the controller's state, and the agents as a table.

Protocols at our own interfaces, so the collector runs over the real service and registry or
over a test's fixed state alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from controller.core.capacity import CapacityView
from controller.core.topology import Topology
from controller.runtime.service import Event, SliceRecord, TopologyStatus
from telemetry.metrics.kpi_ratios import SliceKpiColumns


class StateSource(Protocol):
    """The part of :class:`controller.runtime.service.ControllerService` the collector reads."""

    def list_slices(self) -> list[SliceRecord]: ...

    def topology(self) -> Topology: ...

    def topology_status(self) -> TopologyStatus: ...

    def capacity(self) -> CapacityView:
        """The ledger's capacity figures as arrays (the link families read them)."""
        ...

    def events(self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None) -> list[Event]: ...

    @property
    def revision(self) -> int:
        """Moves on every committed change: the capacity figures are recomputed only when it does."""
        ...


class AgentSnapshot(NamedTuple):
    """One site agent as the agent registry sees it now.

    A named tuple, not a dataclass: a city scrape builds one for every agent of the city.
    """

    site: str
    kind: str
    connected: bool
    last_heartbeat_unix: float | None  # None: never heard from
    desired_generation: int
    acked_generation: int

    @property
    def generation_lag(self) -> int:
        return max(0, self.desired_generation - self.acked_generation)


class AgentTable(NamedTuple):
    """Every agent as columns: one per site of a city, and a scrape counts them with numpy."""

    sites: Sequence[str]
    kind_names: Sequence[str]  # kind code → kind
    kind: npt.NDArray[np.intp]  # per agent: its kind's code
    connected: npt.NDArray[np.bool_]
    last_heartbeat_unix: npt.NDArray[np.float64]  # NaN: never heard from
    desired_generation: npt.NDArray[np.int64]
    acked_generation: npt.NDArray[np.int64]

    def snapshot(self, i: int) -> AgentSnapshot:
        seen = float(self.last_heartbeat_unix[i])
        return AgentSnapshot(
            self.sites[i],
            self.kind_names[int(self.kind[i])],
            bool(self.connected[i]),
            None if math.isnan(seen) else seen,
            int(self.desired_generation[i]),
            int(self.acked_generation[i]),
        )

    def snapshots(self) -> list[AgentSnapshot]:
        return [self.snapshot(i) for i in range(len(self.sites))]


class AgentsView(Protocol):
    """What the collector reads of the agents (an adapter over ``telemetry.agentlink.registry``)."""

    def agent_table(self) -> AgentTable: ...

    def slice_kpis(self) -> SliceKpiColumns: ...

    def refusal_counts(self) -> Mapping[str, int]:
        """Config refusals (ConfigAck ok=false) since the controller started, by reason: a fixed
        set of reasons plus "Other", every one present (zeros included)."""
        ...
