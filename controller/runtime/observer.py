"""What the service tells whoever watches it (the Prometheus metrics helper) as things happen.

Counters and histograms are fed from here; state gauges are read from the service at scrape time.
"""

from __future__ import annotations

from typing import Protocol


class ServiceObserver(Protocol):
    def decision(self, kind: str, outcome: str, reason: str) -> None:
        """An admission decision for a slice of ``kind`` (outcome: admitted, rejected, ...)."""
        ...

    def preempted(self, kind: str) -> None: ...

    def healed(self, kind: str, ok: bool) -> None:
        """A slice of ``kind`` was re-placed after a failure or drain (``ok``) or could not be."""
        ...

    def reconciled(self, duration_s: float, changed: int, errors: int) -> None: ...

    def placement_timed(self, duration_s: float) -> None: ...


class NullObserver:
    """Observes nothing; the default when no metrics are wired."""

    def decision(self, kind: str, outcome: str, reason: str) -> None:
        pass

    def preempted(self, kind: str) -> None:
        pass

    def healed(self, kind: str, ok: bool) -> None:
        pass

    def reconciled(self, duration_s: float, changed: int, errors: int) -> None:
        pass

    def placement_timed(self, duration_s: float) -> None:
        pass
