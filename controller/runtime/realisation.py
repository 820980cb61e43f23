"""How a placed slice becomes real: the interface every realisation backend implements.

Backends: the plan recorder (writes the realisation plan per slice to the state folder), the
manifest folder (renders the Kubernetes objects there: the embedded default) and Kubernetes itself
(controller.kube.realiser). Site agents are not a realiser: telemetry.agentlink.desired derives each
site's desired config from the placements and pushes it when the service's revision moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from controller.core.placement_model import Placement
from slices.profiles import SliceIntent


@dataclass(frozen=True)
class RealisationResult:
    ok: bool
    reason: str  # CamelCase, e.g. "Applied", "Forbidden", "Invalid", "Unreachable"
    message: str


class Realiser(Protocol):
    name: str

    def realise(self, intent: SliceIntent, placement: Placement, generation: int) -> RealisationResult:
        """Make the world match the placement; idempotent (applying twice changes nothing)."""
        ...

    def remove(self, name: str) -> RealisationResult:
        """Remove exactly what this backend created for the slice."""
        ...


@dataclass(frozen=True)
class AgentProgress:
    """What the site agents have confirmed of one slice's current configuration.

    A site "acked" the slice when its agent acknowledged a generation that carries the slice's
    current config at that site; ``refused`` names sites whose agent refused such a generation
    (site, generation, reason, message) and have not acked one since. Only the sites the agent
    policy requires count (``exempt``: sites carrying the slice that the policy leaves out).
    """

    required: int
    acked: int
    refused: tuple[tuple[str, int, str, str], ...] = ()
    waiting: tuple[str, ...] = ()  # the first few required sites not acked yet
    exempt: int = 0
    policy: str = "all"
    revision: int = 0  # the service revision whose placements this was computed against
