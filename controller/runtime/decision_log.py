"""The controller's decisions in its log, and the log as JSON Lines when asked.

Every audit event the service commits (admit, reject, preempt, heal, degrade, drain, site down
and up, ...) is logged at INFO by the ``edgeslice.decisions`` logger with the slice, the site,
the reason and the actor. :class:`DecisionLog` follows the committed audit trail (the same one
``slicectl slice events`` reads), so the log can only say what was stored, in the order it was
stored. It is started beside the service (``slicectl controller run`` attaches it).

``--log-format json`` (:func:`configure`) makes every log line one JSON object with ``time``,
``level``, ``logger`` and ``message``, plus the decision's fields for decision lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any, Protocol

from controller.runtime.service import Event

LOGGER = "edgeslice.decisions"
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_CAMEL = re.compile(r"\b([A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+)\b")  # LatencyUnreachable, MissedLease
_LEADING = re.compile(r"^([A-Z][a-z]+):\s")  # "Preempted: by cars"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

log = logging.getLogger(LOGGER)


class EventSource(Protocol):
    """What :class:`DecisionLog` reads of :class:`controller.runtime.service.ControllerService`."""

    @property
    def first_seq_after(self) -> int:
        """The newest audit event before the service loaded its state."""
        ...

    def wait_events(self, after_seq: int, timeout_s: float) -> list[Event]: ...


def reason_of(message: str) -> str | None:
    """The machine reason an audit message carries (``Reason: text``), if any.

    >>> reason_of("LatencyUnreachable: no edge site within 5 ms"), reason_of("site e1 back up")
    ('LatencyUnreachable', None)
    >>> reason_of("re-placed (site e1 down: MissedLease): 2 cells served"), reason_of("Preempted: by x")
    ('MissedLease', 'Preempted')
    """
    found = _CAMEL.search(message) or _LEADING.search(message)
    return found.group(1) if found else None


def fields(event: Event) -> dict[str, Any]:
    """A decision as log fields (the same names as ``slicectl slice events -o json``)."""
    return {
        "seq": event.seq,
        "action": event.action,
        "slice": event.slice,
        "site": event.site,
        "reason": reason_of(event.message),
        "actor": event.actor,
        "at": event.at.isoformat(timespec="milliseconds"),
    }


def line(event: Event) -> str:
    """The text message of one decision: what, to which slice and site, why, by whom.

    >>> from datetime import datetime, UTC
    >>> e = Event(7, datetime(2026, 1, 1, tzinfo=UTC), "operator:ops", "reject", "cars", None,
    ...           "LatencyUnreachable: no edge site within 5 ms")
    >>> line(e)
    'reject slice=cars site=- reason=LatencyUnreachable actor=operator:ops: LatencyUnreachable: no edge site within 5 ms'
    """
    f = fields(event)
    return (
        f"{event.action} slice={f['slice'] or '-'} site={f['site'] or '-'} reason={f['reason'] or '-'} "
        f"actor={event.actor}: {event.message}"
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then any ``extra`` fields (a
    decision's under their own names) and the traceback, if any, as ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str, fmt: str = "text") -> None:
    """The process's logging: ``level`` (debug, info, ...) to stderr, as text or JSON Lines."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class DecisionLog:
    """Follows the committed audit trail from where it stood when the service loaded its state
    and logs each event.

    ``close`` logs what was committed up to then and stops; an attachment of the runtime, it
    is closed after the last pass, so nothing committed goes unlogged.
    """

    def __init__(self, source: EventSource, poll_s: float = 1.0) -> None:
        self._source = source
        self._poll_s = poll_s
        self._after = source.first_seq_after  # what it decided while loading is logged too
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    def _drain(self, timeout_s: float) -> int:
        found = self._source.wait_events(self._after, timeout_s)
        for event in found:
            log.info(line(event), extra=fields(event))
            self._after = event.seq
        return len(found)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._drain(self._poll_s)
            except Exception:  # the log must never take the controller down
                log.exception("decision log: reading the audit trail failed")
                self._stop.wait(self._poll_s)
        try:
            while self._drain(0.0):  # what was committed before the stop
                pass
        except Exception:
            log.exception("decision log: reading the audit trail failed")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
