"""Bookings' status changes, read off the audit trail and queued for their sinks.

The reconciler records every decision in the audit trail (``book``, ``activate``, ``expire``,
``sla-violation``, ...). This follower reads it from a cursor kept in the state file and, for each
event of a booking that has a sink, queues the CloudEvent in the same transaction that moves the
cursor: each change is notified once, across restarts, and nothing in the reconciler has to
know about bookings. Creation and deletion are queued by the booking service itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from controller.booking import notifier, records
from controller.runtime.clock import Clock
from controller.runtime.service import ControllerService
from controller.runtime.store import Store

log = logging.getLogger(__name__)

#: What a booking's status becomes on each audit action (others are not notified).
STATUS_OF_ACTION = {
    "book": "scheduled",
    "activate": "active",
    "admit": "active",  # a booking whose window had begun when it was made
    "expire": "expired",
    "sla-violation": "sla-violated",
    "sla-met": "sla-met",
    "degrade": "degraded",
    "heal": "active",
}
CURSOR_KEY = "booking_status_seq"


class StatusFeed:
    """A runnable of the leader: follows the audit trail and queues booking notifications."""

    name = "booking-status"
    needs_leadership = True

    def __init__(
        self,
        controller: ControllerService,
        store: Store,
        clock: Clock,
        *,
        on_enqueued: Callable[[], None] = lambda: None,
        source: str = notifier.DEFAULT_SOURCE,
        wait_s: float = 1.0,
    ) -> None:
        self.controller = controller
        self.store = store
        self.clock = clock
        self.on_enqueued = on_enqueued
        self.source = source
        self.wait_s = wait_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cursor = self._load_cursor()

    def _load_cursor(self) -> int:
        rows = self.store.query("SELECT value FROM meta WHERE key = ?", (CURSOR_KEY,))
        if rows:
            return int(rows[0]["value"])
        # A first start follows from here: what happened before bookings existed is not news.
        seq = self.store.last_event_seq()
        with self.store.transaction() as tx:
            tx.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (CURSOR_KEY, str(seq)))
        return seq

    def pump(self, timeout_s: float = 0.0) -> int:
        """Queue the notifications of the events after the cursor; how many were queued."""
        events = self.controller.wait_events(self.cursor, timeout_s)
        if not events:
            return 0
        now = self.clock.now()
        queued = 0
        last = events[-1].seq
        with self.store.transaction() as tx:
            for event in events:
                status = STATUS_OF_ACTION.get(event.action)
                if status is None or event.slice is None or not event.slice.startswith("bk-"):
                    continue
                booking = records.of_slice(self.store, event.slice)
                if booking is None or booking.sink is None:
                    continue
                notifier.enqueue(
                    tx, now, booking.slice_id, status, booking.sink, booking.slice_info(), source=self.source
                )
                queued += 1
            tx.execute("UPDATE meta SET value = ? WHERE key = ?", (str(last), CURSOR_KEY))
        self.cursor = last
        if queued:
            self.on_enqueued()
        return queued

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="booking-status", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pump(self.wait_s)
            except Exception:  # a bad row must not end the feed; it is logged and retried
                log.exception("booking status feed failed")
                self._stop.wait(self.wait_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
