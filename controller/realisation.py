"""How a placed slice becomes real: the interface every realisation backend implements.

CONTRACT SKELETON (see controller/service.py). Backends: the plan recorder (embedded default,
writes the realisation plan per slice to a folder), Kubernetes (controller.kube_realiser) and
the site agents (telemetry.agent_service, which pushes per-site config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from controller.placement_model import Placement
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
