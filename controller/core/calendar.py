"""The capacity calendar: reservations that hold only inside a time window (bookings).

The ledger says what is reserved now. A booking for next Saturday holds nothing now, but
admission of anything that overlaps Saturday must count it. The calendar keeps each windowed
reservation with its window and answers one question: over a window, what is the most that the
bookings overlapping it hold at once, element by element (:meth:`Calendar.peak`)? Admission then
places against the ledger of what holds regardless of time plus that peak, so a placement that
fits it fits at every instant of the window. The peak is taken per element, so it can be more
than the load at any one instant (two bookings that never meet, on different elements); that
errs on the safe side, and bookings that do not overlap in time never add up.

Pure: no clock, no I/O. Times are POSIX seconds (floats); an open end is ``math.inf``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Container, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from controller.core.placement_model import Reservation

OPEN_END = math.inf
_MASKS_MAX = 1024  # element masks kept for the collections decisions ask about

# Element keys, flattened into one index space so one sort answers every element at once.
_RADIO, _LINK, _CPU, _MEMORY = 0, 1, 2, 3
ElementKey = tuple[int, str | int]


def timestamp(at: datetime | None) -> float:
    """POSIX seconds of ``at``; None (no end) is :data:`OPEN_END`."""
    return OPEN_END if at is None else at.timestamp()


def when(ts: float) -> str:
    """A calendar time as people read it (UTC; seconds only when it has some).

    >>> when(1_800_000_000), when(1_800_000_042.5), when(OPEN_END)
    ('2027-01-15 08:00 UTC', '2027-01-15 08:00:42 UTC', '(no end)')
    """
    if math.isinf(ts):
        return "(no end)"
    at = datetime.fromtimestamp(ts, UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC" if int(ts) % 60 else "%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Window:
    """Half-open ``[start, end)`` in POSIX seconds: back-to-back windows do not overlap."""

    start: float
    end: float = OPEN_END

    def overlaps(self, start: float, end: float) -> bool:
        return start < self.end and end > self.start

    def __str__(self) -> str:
        return f"{when(self.start)} to {when(self.end)}"


@dataclass(frozen=True)
class _Entry:
    start: float
    end: float
    reservation: Reservation
    elements: np.ndarray  # indices into the calendar's element space
    amounts: np.ndarray  # int64, what it holds of each


@dataclass(frozen=True)
class Peak:
    """The most the overlapping bookings hold at once, per element, and when each peak begins."""

    reservation: Reservation
    at: dict[ElementKey, float] = field(default_factory=dict)
    bookings: int = 0  # how many bookings overlap the window

    def time_of(self, binding: str | None) -> float | None:
        """When the element named like admission names it (``cell:c1``, ``link:a:b``,
        ``site:e1``) is most loaded by bookings, or None if no booking holds it."""
        if binding is None:
            return None
        kind, _, name = binding.partition(":")
        if kind == "cell":
            return self.at.get((_RADIO, name))
        if kind == "site":
            cpu, mem = self.at.get((_CPU, name)), self.at.get((_MEMORY, name))
            return cpu if cpu is not None else mem
        return None  # links are named by their ends; see time_of_link

    def time_of_link(self, index: int) -> float | None:
        return self.at.get((_LINK, index))


class Calendar:
    """Windowed reservations by holder name (a slice with a schedule)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        # The windows as arrays, one slot per put (a removed one's slot is emptied), so which
        # entries overlap a window is one vectorised comparison, not a loop over every entry.
        self._slot_of: dict[str, int] = {}
        self._slot_names: list[str | None] = []
        self._starts = np.empty(0)
        self._ends = np.empty(0)
        self._index: dict[ElementKey, int] = {}
        self._keys: list[ElementKey] = []
        self._masks: dict[int, tuple[Collection[ElementKey], np.ndarray]] = {}
        # Every start and end not yet passed, soonest first (stale ones are skipped when popped).
        self._boundaries: list[tuple[float, str]] = []
        #: Moves with every put and remove.
        self.revision = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return list(self._entries)

    def window(self, name: str) -> Window | None:
        e = self._entries.get(name)
        return None if e is None else Window(e.start, e.end)

    def put(self, name: str, window: Window, reservation: Reservation) -> None:
        """Hold ``reservation`` during ``window`` (replacing what ``name`` held before)."""
        keys: list[ElementKey] = [
            *((_RADIO, c) for c in reservation.radio_kbps),
            *((_LINK, i) for i in reservation.link_kbps),
            *((_CPU, s) for s in reservation.cpu_millicores),
            *((_MEMORY, s) for s in reservation.memory_mib),
        ]
        amounts = [
            *reservation.radio_kbps.values(),
            *reservation.link_kbps.values(),
            *reservation.cpu_millicores.values(),
            *reservation.memory_mib.values(),
        ]
        index = self._index
        elements = np.fromiter((self._element(k, index) for k in keys), dtype=np.int64, count=len(keys))
        self._entries[name] = _Entry(
            window.start, window.end, reservation, elements, np.asarray(amounts, dtype=np.int64)
        )
        self._place(name, window)
        heapq.heappush(self._boundaries, (window.start, name))
        if window.end != OPEN_END:
            heapq.heappush(self._boundaries, (window.end, name))
        self.revision += 1

    def _place(self, name: str, window: Window) -> None:
        slot = self._slot_of.get(name)
        if slot is None:
            slot = self._slot_of[name] = len(self._slot_names)
            self._slot_names.append(name)
            if slot >= len(self._starts):  # grow by doubling
                size = max(64, 2 * len(self._starts))
                self._starts = np.resize(self._starts, size)
                self._ends = np.resize(self._ends, size)
                self._starts[slot:], self._ends[slot:] = math.inf, -math.inf
        self._starts[slot], self._ends[slot] = window.start, window.end

    def _overlapping(self, window: Window) -> list[str]:
        hits = np.flatnonzero((self._starts < window.end) & (self._ends > window.start))
        names = self._slot_names
        return [n for i in hits.tolist() if (n := names[i]) is not None]

    def _element(self, key: ElementKey, index: dict[ElementKey, int]) -> int:
        i = index.get(key)
        if i is None:
            i = index[key] = len(self._keys)
            self._keys.append(key)
        return i

    def remove(self, name: str) -> bool:
        if self._entries.pop(name, None) is None:
            return False
        slot = self._slot_of.pop(name)
        self._slot_names[slot] = None
        self._starts[slot], self._ends[slot] = math.inf, -math.inf  # overlaps nothing
        self.revision += 1
        return True

    def overlapping(self, window: Window, exclude: Iterable[str] = ()) -> list[str]:
        skip = set(exclude)
        return [n for n in self._overlapping(window) if n not in skip]

    def pop_due(self, now: float) -> list[str]:
        """Holders whose window began or ended by ``now`` since the last call, each once.

        >>> cal = Calendar()
        >>> cal.put("a", Window(10, 20), Reservation())
        >>> cal.pop_due(5), cal.pop_due(10), cal.pop_due(15), cal.next_boundary()
        ([], ['a'], [], 20)
        """
        out: dict[str, None] = {}
        heap = self._boundaries
        while heap and heap[0][0] <= now:
            at, name = heapq.heappop(heap)
            e = self._entries.get(name)
            if e is not None and at in (e.start, e.end):
                out[name] = None
        return list(out)

    def next_boundary(self) -> float:
        """When :meth:`pop_due` next has something (perhaps a stale boundary: a harmless early look)."""
        return self._boundaries[0][0] if self._boundaries else OPEN_END

    def peak(
        self, window: Window, exclude: Iterable[str] = (), only: Collection[ElementKey] | None = None
    ) -> Peak:
        """The most the holders overlapping ``window`` (but ``exclude``) hold at once, per element
        (of ``only``, if given: the elements a decision can touch, so the sweep stays small).

        A sweep over the window: each holder adds its amounts at its start (or the window's, if
        it began before) and takes them back at its end (if inside the window); ends sort before
        starts at the same instant (half-open windows), so back-to-back holders never add up.

        >>> cal = Calendar()
        >>> cal.put("sat", Window(10, 20), Reservation(radio_kbps={"c1": 600}))
        >>> cal.put("sun", Window(20, 30), Reservation(radio_kbps={"c1": 700}))
        >>> cal.put("late", Window(15, 25), Reservation(radio_kbps={"c1": 100}))
        >>> cal.peak(Window(0, 100)).reservation.radio_kbps
        {'c1': 800}
        >>> cal.peak(Window(0, 100)).at
        {(0, 'c1'): 20.0}
        >>> cal.peak(Window(0, 15)).reservation.radio_kbps, cal.peak(Window(30, 40)).bookings
        ({'c1': 600}, 0)
        """
        skip = set(exclude)
        entries = self._entries
        chosen = [entries[n] for n in self._overlapping(window) if n not in skip]
        if not chosen:
            return Peak(Reservation())
        # Every entry's elements in one array each (a loop of numpy calls per entry would cost
        # more than the sweep): its amounts, when it starts holding them and when it lets go.
        sizes = [len(e.elements) for e in chosen]
        els = np.concatenate([e.elements for e in chosen])
        amounts = np.concatenate([e.amounts for e in chosen])
        begin = np.repeat(np.array([max(e.start, window.start) for e in chosen]), sizes)
        finish = np.repeat(np.array([e.end for e in chosen]), sizes)
        mask = self._mask(only)
        if mask is not None:
            keep = mask[els]
            els, amounts, begin, finish = els[keep], amounts[keep], begin[keep], finish[keep]
        if not len(els):
            return Peak(Reservation(), {}, len(chosen))
        ending = finish < window.end  # lets go inside the window: a second event, negative
        el = np.concatenate([els, els[ending]])
        t = np.concatenate([begin, finish[ending]])
        d = np.concatenate([amounts, -amounts[ending]])
        ends_first = np.concatenate(
            [np.ones(len(els), dtype=np.int8), np.zeros(int(ending.sum()), dtype=np.int8)]
        )
        order = np.lexsort((ends_first, t, el))
        el, t, d = el[order], t[order], d[order]
        running = np.cumsum(d)
        starts = np.flatnonzero(np.r_[True, el[1:] != el[:-1]])
        before = np.r_[0, running[:-1]][starts]  # the running total before each element's group
        sizes = np.diff(np.r_[starts, len(el)])
        level = running - np.repeat(before, sizes)
        best = np.maximum.reduceat(level, starts)
        # When each element's peak begins: the first event of its group at the best level.
        at_best = level == np.repeat(best, sizes)
        first_best = np.minimum.reduceat(np.where(at_best, np.arange(len(el)), len(el)), starts)
        res = Reservation()
        at: dict[ElementKey, float] = {}
        for g, i in enumerate(starts.tolist()):
            amount = int(best[g])
            if amount <= 0:
                continue
            key = self._keys[int(el[i])]
            _add(res, key, amount)
            at[key] = float(t[int(first_best[g])])
        return Peak(res, at, len(chosen))

    def held(
        self,
        holders: Container[str],
        exclude: Iterable[str] = (),
        only: Collection[ElementKey] | None = None,
        at: float | None = None,
    ) -> Reservation:
        """What the entries of ``holders`` (but ``exclude``) hold together, per element (of
        ``only``); with ``at``, only the entries whose window contains that instant are looked at.

        >>> cal = Calendar()
        >>> cal.put("a", Window(0, 10), Reservation(radio_kbps={"c1": 5, "c2": 1}))
        >>> cal.put("b", Window(5, 15), Reservation(radio_kbps={"c1": 7}))
        >>> cal.held({"a", "b"}, only=[(0, "c1")]).radio_kbps
        {'c1': 12}
        """
        skip = set(exclude)
        mask = self._mask(only)
        entries = self._entries
        names = entries if at is None else self._overlapping(Window(at, math.nextafter(at, math.inf)))
        parts = [(entries[n].elements, entries[n].amounts) for n in names if n in holders and n not in skip]
        res = Reservation()
        if not parts:
            return res
        els = np.concatenate([p[0] for p in parts])
        amounts = np.concatenate([p[1] for p in parts])
        if mask is not None:
            keep = mask[els]
            els, amounts = els[keep], amounts[keep]
        totals = np.bincount(els, weights=amounts, minlength=len(self._keys)).astype(np.int64)
        for i in np.flatnonzero(totals).tolist():
            _add(res, self._keys[i], int(totals[i]))
        return res

    def _mask(self, only: Collection[ElementKey] | None) -> np.ndarray | None:
        """``only`` as a mask over the element space. The same collection (callers cache theirs)
        is looked up once; elements the calendar learnt since are added to its mask."""
        if only is None:
            return None
        cached = self._masks.get(id(only))
        keys = self._keys
        if cached is None or cached[0] is not only:
            mask = np.zeros(len(keys), dtype=bool)
            index = self._index
            picked = [index[k] for k in only if k in index]
            if picked:
                mask[picked] = True
        else:
            mask = cached[1]
            if len(mask) < len(keys):
                more = np.fromiter((k in only for k in keys[len(mask) :]), dtype=bool)
                mask = np.concatenate([mask, more])
        if len(self._masks) >= _MASKS_MAX:
            self._masks.clear()
        self._masks[id(only)] = (only, mask)
        return mask


def element_keys(cells: Iterable[str], links: Iterable[int], sites: Iterable[str]) -> set[ElementKey]:
    """The calendar's keys of cells' radio, links and edge sites' CPU and memory."""
    keys: set[ElementKey] = {(_RADIO, c) for c in cells}
    keys.update((_LINK, i) for i in links)
    for s in sites:
        keys.add((_CPU, s))
        keys.add((_MEMORY, s))
    return keys


def _add(res: Reservation, key: ElementKey, amount: int) -> None:
    kind, name = key
    if kind == _LINK:
        assert isinstance(name, int)
        res.link_kbps[name] = amount
    else:
        assert isinstance(name, str)
        {_RADIO: res.radio_kbps, _CPU: res.cpu_millicores, _MEMORY: res.memory_mib}[kind][name] = amount
