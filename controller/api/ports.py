"""What the operator API needs from the controller: one Protocol per servicer, and their union.

The servicers depend on these, never on :class:`controller.runtime.service.ControllerService`;
the service implements all of them (mypy checks it where the process passes the service to
:func:`controller.api.server.serve`), and so does the in-memory fake of the API's tests
(``tests/support/operator_fake.py``), fully, with no casts. Each Protocol lists only the
methods its servicer calls. The agents' read model has its own Protocol,
:class:`controller.runtime.agent_view.AgentDirectory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from controller.core.topology import LinkKey, Topology
from controller.core.topology_file import TopologyFile
from controller.runtime.service import (
    ApplyResult,
    DrainReport,
    Event,
    SliceRecord,
    TopologyStatus,
)
from slices.intent import NetworkSlice

__all__ = ["EventPort", "OperatorPort", "SlicePort", "TopologyPort"]


class SlicePort(Protocol):
    """Slices: apply, read, delete and explain (ApplySlices, GetSlice, ListSlices, DeleteSlice,
    ExplainSlice)."""

    def apply(
        self, documents: Sequence[NetworkSlice], actor: str, dry_run: bool = False
    ) -> list[ApplyResult]: ...

    def get(self, name: str) -> SliceRecord:
        """NotFound when there is no slice by that name (as for delete and explain)."""
        ...

    def list_slices(self) -> list[SliceRecord]: ...

    def delete(self, name: str, actor: str) -> None: ...

    def explain(self, name: str) -> dict[str, object]:
        """The service's explanation report (see :func:`controller.api.reports.explanation_message`
        for its keys)."""
        ...


class EventPort(Protocol):
    """The audit trail (ListEvents, WatchEvents)."""

    def events(self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None) -> list[Event]: ...

    def wait_events(self, after_seq: int, timeout_s: float) -> list[Event]:
        """Every event after ``after_seq`` once one exists, or [] after ``timeout_s``."""
        ...


class TopologyPort(Protocol):
    """Topology status, maintenance and what-if (GetTopologyStatus, DrainSite, UndrainSite,
    CordonSite, UncordonSite, GetTopology, WhatIf)."""

    @property
    def revision(self) -> int:
        """Increments on every committed change (a paged status is of one revision)."""
        ...

    def topology_status(self) -> TopologyStatus: ...

    def drain_report(self, site: str, actor: str) -> DrainReport: ...

    def undrain(self, site: str, actor: str) -> list[str]: ...

    def cordon(self, site: str, actor: str) -> tuple[bool, list[str]]: ...

    def uncordon(self, site: str, actor: str) -> bool: ...

    def topology(self) -> Topology: ...

    def topology_file(self) -> TopologyFile: ...

    def what_if(self, fail_sites: Sequence[str], fail_links: Sequence[LinkKey]) -> dict[str, object]: ...


class OperatorPort(SlicePort, EventPort, TopologyPort, Protocol):
    """Everything the operator API serves from the controller."""
