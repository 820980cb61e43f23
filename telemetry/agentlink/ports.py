"""What the agent link needs of the controller: one Protocol, :class:`ControllerPort`.

:class:`controller.runtime.service.ControllerService` implements it (the composition root hands it
to :func:`telemetry.agentlink.server.serve_agents`), and so does the unit tests' fake
(``tests/support/telemetry_fakes.py``), every method of it: nothing here is optional.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Protocol

from controller.core.placement_model import Placement
from controller.core.topology import LinkKey, Topology
from controller.runtime.realisation import AgentProgress
from slices.profiles import SliceIntent

Clock = Callable[[], float]


class SliceRecord(Protocol):
    """A slice as the controller lists it: what the per-site configs are derived from."""

    @property
    def name(self) -> str: ...
    @property
    def intent(self) -> SliceIntent: ...
    @property
    def placement(self) -> Placement | None: ...
    @property
    def state(self) -> str: ...


class ControllerPort(Protocol):
    """What the agent side needs of :class:`controller.runtime.service.ControllerService`."""

    @property
    def revision(self) -> int: ...

    def topology(self) -> Topology: ...

    def list_slices(self) -> Sequence[SliceRecord]: ...

    def site_down(self, site: str, reason: str, actor: str) -> list[str]: ...

    def sites_down(self, downs: Sequence[tuple[str, str]], actor: str) -> list[str]: ...

    def site_up(self, site: str, actor: str) -> None: ...

    def link_down(self, key: LinkKey, reason: str, actor: str) -> list[str]: ...

    def link_up(self, key: LinkKey, actor: str) -> None: ...

    def set_sla(self, name: str, met: bool | None, reason: str, message: str, actor: str) -> None: ...

    def replace_slice(self, name: str, reason: str, actor: str, avoid: Collection[str] = ()) -> bool: ...

    def require_agents(self, policy: str) -> None: ...

    def record_agent_progress(self, progress: Mapping[str, AgentProgress], actor: str) -> None: ...

    @property
    def progress_pending(self) -> bool: ...

    def config_refused(
        self, site: str, generation: int, reason: str, message: str, slices: Sequence[str]
    ) -> None: ...

    def agent_sites(self) -> frozenset[str]: ...

    def remember_agent_sites(self, sites: Iterable[str]) -> None: ...

    def state_epoch(self) -> str: ...

    def site_generations(self) -> dict[str, tuple[int, str]]: ...

    def save_site_generations(self, rows: Sequence[tuple[str, int, str]]) -> None: ...
