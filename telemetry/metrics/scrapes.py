"""Scrapes in progress in this process, and the process-wide switches serving metrics needs.

:func:`configure_process` is what the composition root calls once (both switches act on the
whole process, not on one registry).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

from prometheus_client import disable_created_metrics


def configure_process() -> None:
    """No ``_created`` samples (they would double every counter's series for a timestamp nobody
    graphs), and the cyclic garbage collector paused during each scrape (:meth:`_Scrapes.running`).
    Idempotent."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    SCRAPES.pause_gc = True


class _Scrapes:
    """Scrapes in progress in this process: background work that would compete with one for the
    GIL (the topology rebuild of :meth:`StateCollector.follow_changes`) waits until none is."""

    def __init__(self) -> None:
        self.pause_gc = False  # set by configure_process()
        self._lock = threading.Lock()
        self._running = 0
        self.idle = threading.Event()
        self.idle.set()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """One scrape counted, with Python's cyclic garbage collector paused when
        :attr:`pause_gc`: a city-scale scrape allocates a great many short-lived objects (refcounting
        frees them all; none is in a cycle), enough to set off many young-generation
        collections. Scrapes overlapping this one may re-enable the collector early; it only
        runs later, never wrongly."""
        with self._lock:
            self._running += 1
            self.idle.clear()
        enabled = self.pause_gc and gc.isenabled()
        if enabled:
            gc.disable()
        try:
            yield
        finally:
            if enabled:
                gc.enable()
            with self._lock:
                self._running -= 1
                if not self._running:
                    self.idle.set()


SCRAPES = _Scrapes()
