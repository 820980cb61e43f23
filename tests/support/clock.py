"""The suite's one fake clock: time that moves only when a test says so.

It is both kinds of clock the product takes: a :class:`controller.runtime.clock.Clock` (``now()``
and ``monotonic()``, for the controller service and store) and the telemetry side's
``Callable[[], float]`` (calling it gives ``monotonic()``; ``now`` serves as its wall clock).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class FakeClock:
    """A clock that moves only when told to.

    >>> clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    >>> clock.advance(90)
    >>> clock.now().isoformat(), clock.monotonic(), clock()
    ('2026-01-01T00:01:30+00:00', 90.0, 90.0)
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.elapsed = 0.0
        self.lock = threading.Lock()

    def now(self) -> datetime:
        with self.lock:
            return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        with self.lock:
            return self.elapsed

    def __call__(self) -> float:
        return self.monotonic()

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.elapsed += seconds
