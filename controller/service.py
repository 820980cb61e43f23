"""The controller's one entry point for everything that changes or reads slice state.

The operator gRPC API, the agent service, the Kubernetes NetworkSlice watcher and the demo all
call this class; none of them touches the store or the ledger directly. It is thread-safe (one
lock: decisions are serialised, reads see committed state).

CONTRACT SKELETON: the names and signatures below are the agreed interface between the
runtime (controller.service / store / reconciler), the operator API (controller.api_server),
the agents (telemetry.*), Kubernetes (controller.kube_*) and metrics (telemetry.metrics).
Bodies raising NotImplementedError are filled in by the runtime work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from controller.placement_model import Placement
from controller.topology import LinkKey, Topology
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent
from slices.status import Condition


class SliceState(StrEnum):
    PENDING = "Pending"  # stored, not yet decided
    READY = "Ready"  # admitted, placed and realised (and SLA met once agents report)
    ADMITTED = "Admitted"  # admitted and placed, realisation not confirmed yet
    DEGRADED = "Degraded"  # placed but some cells unserved / SLA not met / healing failed
    REJECTED = "Rejected"
    PREEMPTED = "Preempted"  # waits for capacity, re-admitted automatically


@dataclass(frozen=True)
class SliceRecord:
    name: str
    generation: int  # bumps on every spec change
    document: NetworkSlice
    intent: SliceIntent
    state: SliceState
    placement: Placement | None
    conditions: tuple[Condition, ...]
    reason: str  # CamelCase reason of the current state ("" when Ready)
    message: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Event:
    """One line of the audit trail."""

    seq: int
    at: datetime
    actor: str  # "operator:<token name>", "controller", "agent:<site>", "kubernetes"
    action: str  # apply, delete, admit, reject, preempt, readmit, heal, degrade, drain, undrain, site-down, site-up, link-down, link-up, sla-violation
    slice: str | None
    site: str | None
    message: str


@dataclass(frozen=True)
class ApplyResult:
    name: str
    generation: int
    changed: bool  # False when the same spec was applied again
    state: SliceState
    reason: str
    message: str


@dataclass(frozen=True)
class SiteStatus:
    site: str
    kind: str
    up: bool
    drained: bool
    reason: str
    cpu_reserved: int
    cpu_capacity: int
    memory_reserved: int
    memory_capacity: int
    radio_reserved_kbps: int
    radio_capacity_kbps: int
    slices: int  # slices with a route through or workloads at this site


@dataclass(frozen=True)
class TopologyStatus:
    name: str
    sites: tuple[SiteStatus, ...]
    down_links: tuple[LinkKey, ...]
    link_utilisation: tuple[tuple[LinkKey, int, int], ...] = field(default=())  # (link, reserved, capacity), busiest first


class ControllerService:
    def __init__(self, topology: Topology, store: object, realisers: Sequence[object], clock: object) -> None:
        raise NotImplementedError

    # -- operator operations ----------------------------------------------------------------
    def apply(self, documents: Sequence[NetworkSlice], actor: str) -> list[ApplyResult]:
        """Validate (resolve) all, store all in one transaction, then reconcile. Nothing invalid is stored."""
        raise NotImplementedError

    def delete(self, name: str, actor: str) -> None:
        raise NotImplementedError

    def get(self, name: str) -> SliceRecord:
        raise NotImplementedError

    def list_slices(self) -> list[SliceRecord]:
        raise NotImplementedError

    def explain(self, name: str) -> dict[str, object]:
        """Why the slice is where it is: the decision, checks passed/failed, binding constraint, routes."""
        raise NotImplementedError

    def events(self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None) -> list[Event]:
        raise NotImplementedError

    def wait_events(self, after_seq: int, timeout_s: float) -> list[Event]:
        """Block until events newer than ``after_seq`` exist or the timeout passes (for watch/follow)."""
        raise NotImplementedError

    def topology(self) -> Topology:
        """The topology as the controller sees it now (with down and drained elements)."""
        raise NotImplementedError

    def topology_status(self) -> TopologyStatus:
        raise NotImplementedError

    def drain(self, site: str, actor: str) -> list[str]:
        """Take a site out of service for maintenance; returns the slices re-placed."""
        raise NotImplementedError

    def undrain(self, site: str, actor: str) -> list[str]:
        raise NotImplementedError

    def what_if(self, fail_sites: Sequence[str], fail_links: Sequence[LinkKey]) -> dict[str, object]:
        raise NotImplementedError

    def reconcile(self) -> int:
        """One level-based pass; returns how many slices changed. Running it twice changes nothing."""
        raise NotImplementedError

    # -- what agents report (issue 4) --------------------------------------------------------
    def site_down(self, site: str, reason: str, actor: str) -> list[str]:
        """A site stopped (missed lease); heal the slices it served. Returns the slices affected."""
        raise NotImplementedError

    def site_up(self, site: str, actor: str) -> None:
        raise NotImplementedError

    def link_down(self, key: LinkKey, reason: str, actor: str) -> list[str]:
        raise NotImplementedError

    def link_up(self, key: LinkKey, actor: str) -> None:
        raise NotImplementedError

    def set_sla(self, name: str, met: bool, reason: str, message: str, actor: str) -> None:
        """Record the SLAMet condition (agents' KPIs evaluated by telemetry.sla)."""
        raise NotImplementedError

    def replace_slice(self, name: str, reason: str, actor: str) -> bool:
        """Try to move a slice elsewhere (sustained SLA violation); True if it moved."""
        raise NotImplementedError

    @property
    def revision(self) -> int:
        """Increments on every committed change; cheap to poll (agents push config when it moves)."""
        raise NotImplementedError
