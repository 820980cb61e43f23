"""Which audit events ``slicectl slice events`` shows: the newest N (``--tail``), those of the last
DURATION (``--since 10m``), or those after a sequence number (``--after-seq``).

The operator API lists events oldest first after a sequence number. The newest ones are found
with a few one-event reads (a galloping then binary search for the last sequence number and, for
``--since``, for the first event at or after the cutoff), so a tail of an audit trail of millions
of events reads O(log n) single events plus the window itself, never the whole trail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from controller.cli import selection
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_DURATION_S = 100 * 365 * 86400.0


def parse_duration(text: str, flag: str = "--since") -> timedelta:
    """``90s``, ``10m``, ``1h30m``, ``2d`` (Go-style units, as kubectl takes them).

    >>> parse_duration("1h30m"), parse_duration("10m").total_seconds()
    (datetime.timedelta(seconds=5400), 600.0)
    >>> parse_duration("10")
    Traceback (most recent call last):
    ...
    slices.errors.InvalidSpec: --since '10': not a duration (e.g. 30s, 10m, 2h, 1d, 1h30m)
    """
    value = text.strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(value):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if not value or pos != len(value):
        raise errors.InvalidSpec(f"{flag} {text!r}: not a duration (e.g. 30s, 10m, 2h, 1d, 1h30m)")
    if total <= 0:
        raise errors.InvalidSpec(f"{flag} {text!r}: must be more than 0")
    if total > MAX_DURATION_S:
        raise errors.InvalidSpec(f"{flag} {text!r}: more than 100 years")
    return timedelta(seconds=total)


class DurationType(selection.ParsedType[timedelta]):
    name = "DURATION"
    parsed = timedelta
    flag = "--since"

    def parse(self, text: str) -> timedelta:
        return parse_duration(text)


class EventSource(Protocol):
    def events(
        self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None
    ) -> list[pb.Event]: ...


def _next(client: EventSource, after: int, slice_name: str | None) -> pb.Event | None:
    found = client.events(after_seq=after, limit=1, slice_name=slice_name)
    return found[0] if found else None


def last_seq(client: EventSource, slice_name: str | None, floor: int = 0) -> int:
    """The sequence number of the newest event after ``floor`` (``floor`` when there is none)."""
    first = _next(client, floor, slice_name)
    if first is None:
        return floor
    lo, step = first.seq - 1, 1024  # an event exists after lo
    while _next(client, lo + step, slice_name) is not None:
        lo, step = lo + step, step * 2
    hi = lo + step  # and none after hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _next(client, mid, slice_name) is not None:
            lo = mid
        else:
            hi = mid
    return hi


def seq_before(client: EventSource, cutoff: datetime, slice_name: str | None, floor: int, top: int) -> int:
    """The smallest ``after_seq`` in ``floor..top`` after which every event is at or after
    ``cutoff`` (events are numbered in the order they were recorded)."""
    lo, hi = floor, top
    while lo < hi:
        mid = (lo + hi) // 2
        event = _next(client, mid, slice_name)
        if event is None or event.at.ToDatetime(tzinfo=UTC) >= cutoff:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True)
class Window:
    events: list[pb.Event]  # newest first
    older: bool  # events older than the oldest shown exist (within the asked range)


def tail(client: EventSource, count: int, slice_name: str | None, floor: int = 0) -> Window:
    """The newest ``count`` events after ``floor``, newest first."""
    top = last_seq(client, slice_name, floor)
    width = count
    while True:
        start = max(floor, top - width)
        found = client.events(after_seq=start, limit=max(top - start, 1), slice_name=slice_name)
        if len(found) >= count or start == floor:
            break
        width *= 4
    shown = found[-count:]
    older = len(found) > count
    if not older and start > floor:
        first = _next(client, floor, slice_name)
        older = first is not None and bool(shown) and first.seq < shown[0].seq
    return Window(list(reversed(shown)), older)


def since_floor(client: EventSource, since: timedelta, slice_name: str | None, floor: int = 0) -> int:
    """The ``after_seq`` from which events are no older than ``since``."""
    top = last_seq(client, slice_name, floor)
    cutoff = datetime.now(UTC) - since
    return seq_before(client, cutoff, slice_name, floor, top)
