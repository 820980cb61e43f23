"""KPI records as agents report them: checked a batch at a time, kept per site column-wise.

A city's agents send about 2,000 telemetry batches a second, some 10 records each, and one
scrape or SLA pass reads 200,000 (slice, cell) records. So a batch is never taken apart into
Python objects on the way in:

* :func:`packed_columns` takes the KPI columns as the bytes they arrived in (the controller parses
  agent messages with the wire-compatible view in ``agent_ingest.proto``: a packed column of
  doubles is one ``bytes`` field there) and checks every value of a batch at once;
  :func:`checked_columns` is the general path (rows, unpacked columns, a bad value to name).
* :class:`KpiStore` keeps each site's recent batches as those bytes, plus the slice ids of the
  records, so reads decode with ``memoryview`` (samples) or ``numpy`` (whole-city columns).

Not thread-safe: :class:`telemetry.agentlink.registry.AgentRegistry` calls it under its lock.
"""

from __future__ import annotations

import functools
import math
import struct
import sys
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from itertools import compress, pairwise, repeat
from operator import itemgetter
from typing import Any, Final, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from protos.edgeslice.agent.v1 import agent_ingest_pb2, agent_pb2
from telemetry.agentlink.sla import KpiSample

# The wire's doubles are little-endian; only on such a host are they the machine's own.
_NATIVE_WIRE = sys.byteorder == "little"
_INF = math.inf
_RATE_FIELDS = (
    "dl_throughput_mbps",
    "ul_throughput_mbps",
    "dl_demand_mbps",
    "ul_demand_mbps",
    "latency_p50_ms",
    "latency_p99_ms",
)
# The KPI columns of a record, as KpiSample has them (after ``at``).
COLUMNS = (*_RATE_FIELDS, "packet_loss", "active_devices", "radio_utilisation")
# How a kept batch lays them out: one block of n 8-byte values per column, the slice ids first,
# then the doubles as they arrived (contiguous, so one slice checks them all), then the devices.
_BLOCKS = ("slice_id", *_RATE_FIELDS, "packet_loss", "radio_utilisation", "active_devices")
_TYPECODES: tuple[Literal["d", "q"], ...] = ("q", "d", "d", "d", "d", "d", "d", "d", "d", "q")
# Block of each KpiSample column
_SAMPLE_BLOCKS = tuple(_BLOCKS.index(c) for c in COLUMNS)


class KpiError(ValueError):
    """A telemetry batch that cannot be kept; the message names the field and the value.

    ``field`` is the first bad field as agent.proto names it and ``reason`` one of the CamelCase
    words of agent.proto's ``Rejection.reason``, so the agent can be told in-band."""

    def __init__(self, message: str, field: str = "", reason: str = "Invalid") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason


class Columns(NamedTuple):
    """One batch's records, checked: slice names, then the values as machine-order bytes."""

    names: Sequence[str]
    doubles: bytes  # the 8 double columns (_BLOCKS[1:9]), n values each, one after the other
    devices: bytes  # active_devices as int64


# A batch as kept: (when it arrived (controller clock), its slices, data), where data holds the
# blocks of _BLOCKS (slice ids, KPI columns), 8 * len(slices) bytes each. One bytes object per
# batch: a city keeps a million batches, and reads touch one object per batch. A plain tuple, not
# a named one: the garbage collector stops tracking a plain tuple of strings and bytes, so a
# million of them add nothing to its passes (it tracks tuple subclasses for ever).
StoredBatch = tuple[float, tuple[str, ...], bytes]
AT: Final = 0
NAMES: Final = 1
DATA: Final = 2


class KpiColumns(NamedTuple):
    """The newest record of every (slice, site) asked for, as arrays of equal length."""

    slice_names: list[str]  # slice id → name
    slice_ids: npt.NDArray[np.int64]
    dl_throughput_mbps: npt.NDArray[np.float64]
    ul_throughput_mbps: npt.NDArray[np.float64]
    dl_demand_mbps: npt.NDArray[np.float64]
    ul_demand_mbps: npt.NDArray[np.float64]
    latency_p50_ms: npt.NDArray[np.float64]
    latency_p99_ms: npt.NDArray[np.float64]
    packet_loss: npt.NDArray[np.float64]
    active_devices: npt.NDArray[np.int64]
    radio_utilisation: npt.NDArray[np.float64]


class KpiWindow(NamedTuple):
    """Every record taken after some time, as arrays of equal length: by site (in the order sites
    first reported), oldest batch first, in each batch's order."""

    slice_names: list[str]  # slice id → name
    sites: list[str]  # site id → name
    slice_ids: npt.NDArray[np.int64]
    site_ids: npt.NDArray[np.int64]
    at: npt.NDArray[np.float64]
    dl_throughput_mbps: npt.NDArray[np.float64]
    ul_throughput_mbps: npt.NDArray[np.float64]
    dl_demand_mbps: npt.NDArray[np.float64]
    ul_demand_mbps: npt.NDArray[np.float64]
    latency_p50_ms: npt.NDArray[np.float64]
    latency_p99_ms: npt.NDArray[np.float64]
    packet_loss: npt.NDArray[np.float64]
    active_devices: npt.NDArray[np.int64]
    radio_utilisation: npt.NDArray[np.float64]


# -- checking a batch ------------------------------------------------------------------------------


def packed_columns(c: agent_ingest_pb2.IngestSliceKpiColumns) -> Columns | None:
    """The batch's columns as they arrived, when every value passes the checks at once; ``None``
    when the general path must look (unpacked or split columns, a value to reject or to look at
    closer), never a wrong answer.

    Valid rates are finite and >= 0: as little-endian doubles, their most significant bytes (the
    sign bit and 7 exponent bits) are all below 0x7F. One slice of bytes and two C-level scans
    check 80 values without making a Python float.

    >>> from array import array
    >>> def cols(loss):
    ...     c = agent_ingest_pb2.IngestSliceKpiColumns(slice=["a", "b"], active_devices=[1, 2])
    ...     for name in ("dl_throughput_mbps", "ul_throughput_mbps", "dl_demand_mbps",
    ...                  "ul_demand_mbps", "latency_p50_ms", "latency_p99_ms", "radio_utilisation"):
    ...         setattr(c, name, array("d", [1.5, 0.0]).tobytes())
    ...     c.packet_loss = array("d", loss).tobytes()
    ...     return c
    >>> packed_columns(cols([0.01, 0.0])).names
    ['a', 'b']
    >>> [packed_columns(cols(bad)) for bad in ([-0.01, 0.0], [float("nan"), 0.0], [0.0, 2.0], [0.0])]
    [None, None, None, None]
    """
    if not _NATIVE_WIRE:
        return None
    names = c.slice[:]
    size = 8 * len(names)
    dl, ul, dld, uld = c.dl_throughput_mbps, c.ul_throughput_mbps, c.dl_demand_mbps, c.ul_demand_mbps
    p50, p99, loss, radio = c.latency_p50_ms, c.latency_p99_ms, c.packet_loss, c.radio_utilisation
    devices = c.active_devices[:]
    if not (
        len(dl) == size
        and len(ul) == size
        and len(dld) == size
        and len(uld) == size
        and len(p50) == size
        and len(p99) == size
        and len(loss) == size
        and len(radio) == size
        and 8 * len(devices) == size
    ):
        return None
    doubles = b"".join((dl, ul, dld, uld, p50, p99, loss, radio))
    if size:
        top = doubles[7::8]
        if not (
            top.isascii()
            and b"\x7f" not in top
            and max(memoryview(loss).cast("d")) <= 1.0
            and max(memoryview(radio).cast("d")) <= 10.0
        ):
            return None
    return Columns(names, doubles, _int64s(len(devices)).pack(*devices))


@functools.cache
def _int64s(n: int) -> struct.Struct:
    """Packs ``n`` integers as machine-order int64 (a compiled Struct: twice as fast as array)."""
    return struct.Struct(f"{n}q")


def checked_columns(batch: agent_pb2.TelemetryBatch) -> Columns:
    """The batch's records (rows and columns) checked value by value; raises :class:`KpiError`
    naming the first bad one."""
    names, columns = _column_records(batch.columns)
    if batch.slices:
        row_names, row_columns = _row_records(batch.slices)
        names = row_names + names
        columns = {k: row_columns[k] + v for k, v in columns.items()}
    return Columns(
        names,
        b"".join(array("d", columns[name]).tobytes() for name in _BLOCKS[1:-1]),
        array("q", columns["active_devices"]).tobytes(),
    )


def _column_records(c: agent_pb2.SliceKpiColumns) -> tuple[list[str], dict[str, list[float]]]:
    names = c.slice[:]
    n = len(names)
    columns: dict[str, list[float]] = {}
    for name in COLUMNS:
        values = getattr(c, name)[:]
        if len(values) != n:
            raise KpiError(
                f"columns.{name}: {len(values)} values for {n} slices", f"columns.{name}", "LengthMismatch"
            )
        columns[name] = values
    for i, slice_name in enumerate(names):
        for name, column in columns.items():
            _check(f"columns.{name}[{i}]", name, column[i], f" (slice {slice_name!r})")
    return names, columns


def _row_records(rows: Iterable[agent_pb2.SliceKpi]) -> tuple[list[str], dict[str, list[float]]]:
    names = []
    values = []
    for k in rows:
        names.append(k.slice)
        dl, ul, dld, uld = k.dl_throughput_mbps, k.ul_throughput_mbps, k.dl_demand_mbps, k.ul_demand_mbps
        p50, p99, loss, radio = k.latency_p50_ms, k.latency_p99_ms, k.packet_loss, k.radio_utilisation
        # One chained comparison per value (NaN fails them all); _check only names the bad one.
        if not (
            0.0 <= dl < _INF
            and 0.0 <= ul < _INF
            and 0.0 <= dld < _INF
            and 0.0 <= uld < _INF
            and 0.0 <= p50 < _INF
            and 0.0 <= p99 < _INF
            and 0.0 <= loss <= 1.0
            and 0.0 <= radio <= 10.0
        ):
            for name in COLUMNS:
                _check(f"slices[{len(names) - 1}].{name}", name, getattr(k, name), f" (slice {k.slice!r})")
        values.append((dl, ul, dld, uld, p50, p99, loss, k.active_devices, radio))
    columns = zip(*values, strict=True) if values else ([] for _ in COLUMNS)
    return names, {name: list(column) for name, column in zip(COLUMNS, columns, strict=True)}


def _check(where: str, name: str, value: float, about: str = "") -> None:
    if name == "active_devices":
        return
    upper = {"packet_loss": 1.0, "radio_utilisation": 10.0}.get(name)
    if upper is not None:
        check_fraction(where, value, upper, about)
    elif not math.isfinite(value):
        raise KpiError(f"{where}{about}: {value!r} is not a finite number", where, "NotFinite")
    elif value < 0.0:
        raise KpiError(f"{where}{about}: {value!r} is negative (must be >= 0)", where, "OutOfRange")


def check_fraction(where: str, value: float, upper: float, about: str = "") -> None:
    """Raise :class:`KpiError` unless ``value`` is a finite number in ``0..upper``.

    >>> check_fraction("columns.packet_loss[0]", float("nan"), 1.0)
    Traceback (most recent call last):
    ...
    telemetry.agentlink.kpi_store.KpiError: columns.packet_loss[0]: nan is not a finite number
    """
    if not math.isfinite(value):
        raise KpiError(f"{where}{about}: {value!r} is not a finite number", where, "NotFinite")
    if not 0.0 <= value <= upper:
        raise KpiError(f"{where}{about}: {value!r} is not in 0..{upper:g}", where, "OutOfRange")


# -- keeping batches -------------------------------------------------------------------------------

_new_sample = functools.partial(tuple.__new__, KpiSample)


class KpiStore:
    """Each site's last ``window`` batches, only records of slices configured at the site."""

    def __init__(self, window: int) -> None:
        self._window = window
        self._batches: dict[str, deque[StoredBatch]] = {}
        self._last: dict[str, StoredBatch] = {}  # each site's last batch, for reads of a whole city
        # slice name → id, in order of first sight (ids are never reused while the store lives)
        self._ids: dict[str, int] = {}
        # site → (its last batch's names as received, as kept, their ids): agents send the same
        # slices in the same order batch after batch, so the checks and ids are reused.
        self._known: dict[str, tuple[list[str], tuple[str, ...], bytes]] = {}
        self.unknown_slice_reports = 0

    def add(self, site: str, at: float, batch: Columns, configured: frozenset[str]) -> int:
        """Keep the records of ``batch`` that are about slices in ``configured``; returns how many.
        Raises :class:`KpiError` (keeping nothing) when a slice is reported twice."""
        names = batch.names
        if not names:
            return 0
        known = self._known.get(site)
        if known is not None and known[0] == names:
            kept, ids = known[1], known[2]
            data = b"".join((ids, batch.doubles, batch.devices))
        else:
            if len(set(names)) != len(names):
                twice = sorted({n for n in names if names.count(n) > 1})
                raise KpiError(
                    f"slices: {', '.join(map(repr, twice))} reported more than once in one batch",
                    "slices",
                    "Duplicate",
                )
            data = b"".join((bytes(8 * len(names)), batch.doubles, batch.devices))
            if configured.issuperset(names):
                kept = tuple(names)
                ids = self._slice_ids(kept)
                self._known[site] = (list(names), kept, ids)
            else:  # records of slices not configured here: dropped (and counted), never cached
                keep = [i for i, n in enumerate(names) if n in configured]
                self.unknown_slice_reports += len(names) - len(keep)
                if not keep:
                    return 0
                kept = tuple(names[i] for i in keep)
                ids = self._slice_ids(kept)
                data = _pick(data, len(names), keep)
            data = ids + data[len(ids) :]
        window = self._batches.get(site)
        if window is None:
            window = self._batches[site] = deque(maxlen=self._window)
        self._last[site] = stored = (at, kept, data)
        window.append(stored)
        return len(kept)

    def _slice_ids(self, names: Iterable[str]) -> bytes:
        ids = self._ids
        return array("q", [ids.setdefault(n, len(ids)) for n in names]).tobytes()

    def reconfigured(self, site: str, names: frozenset[str]) -> None:
        """The site's configuration changed: forget records of slices no longer there."""
        self._known.pop(site, None)
        window = self._batches.get(site)
        if not window:
            return
        kept: list[StoredBatch] = []
        for b in window:
            keep = [i for i, n in enumerate(b[NAMES]) if n in names]
            if len(keep) == len(b[NAMES]):
                kept.append(b)
            elif keep:
                kept.append(_subset(b, keep))
        window.clear()
        window.extend(kept)
        if kept:
            self._last[site] = kept[-1]
        else:
            self._last.pop(site, None)

    # -- reading ---------------------------------------------------------------------------------

    def samples(
        self, since: float = -_INF, sites: AbstractSet[str] | None = None
    ) -> dict[tuple[str, str], list[KpiSample]]:
        """(slice, site) → its samples taken after ``since``, oldest first (of ``sites`` only,
        when given)."""
        out: dict[tuple[str, str], list[KpiSample]] = {}
        batches = self._batches
        windows = batches.items() if sites is None else ((s, batches[s]) for s in sites if s in batches)
        for site, window in windows:
            if not window or window[-1][AT] <= since:
                continue
            recent = []
            for b in reversed(window):
                if b[AT] <= since:
                    break
                recent.append(b)
            for b in reversed(recent):
                for name, sample in zip(b[NAMES], _decode(b), strict=True):
                    key = (name, site)
                    found = out.get(key)
                    if found is None:
                        out[key] = [sample]
                    else:
                        found.append(sample)
        return out

    def window_columns(self, since: float) -> KpiWindow:
        """Every record taken after ``since``, column-wise (what an SLA pass judges): the kept
        batches' bytes joined and gathered by numpy, no Python object per record."""
        datas: list[bytes] = []
        sizes: list[int] = []
        ats: list[float] = []
        site_of: list[int] = []
        sites: list[str] = []
        for site, window in self._batches.items():
            if not window or window[-1][AT] <= since:
                continue
            recent = []
            for b in reversed(window):
                if b[AT] <= since:
                    break
                recent.append(b)
            sid = len(sites)
            sites.append(site)
            for b in reversed(recent):
                datas.append(b[DATA])
                sizes.append(len(b[NAMES]))
                ats.append(b[AT])
                site_of.append(sid)
        n = np.array(sizes, np.int64)
        first = np.cumsum(n) - n  # each batch's first record
        batch = np.repeat(np.arange(len(n)), n)  # each record's batch
        nrep = n[batch]
        # A batch is len(_BLOCKS) blocks of n 8-byte values: record j of batch b, block k is
        # word len(_BLOCKS) * first[b] + k * n[b] + j of the joined bytes.
        base = len(_BLOCKS) * first[batch] + (np.arange(int(n.sum())) - first[batch])
        words = np.frombuffer(b"".join(datas), np.float64)
        ints = words.view(np.int64)

        def block(name: str, of: npt.NDArray[np.float64] | npt.NDArray[np.int64]) -> npt.NDArray[Any]:
            out: npt.NDArray[Any] = of[base + _BLOCKS.index(name) * nrep]
            return out

        return KpiWindow(
            list(self._ids),
            sites,
            block("slice_id", ints),
            np.array(site_of, np.int64)[batch],
            np.array(ats, np.float64)[batch],
            block("dl_throughput_mbps", words),
            block("ul_throughput_mbps", words),
            block("dl_demand_mbps", words),
            block("ul_demand_mbps", words),
            block("latency_p50_ms", words),
            block("latency_p99_ms", words),
            block("packet_loss", words),
            block("active_devices", ints),
            block("radio_utilisation", words),
        )

    def latest_columns(self, since: float, sites: AbstractSet[str], configured: dict[str, int]) -> KpiColumns:
        """The newest record of every (slice, site) of ``sites`` taken after ``since``, column-wise:
        the sites' batches joined and taken apart by numpy, so a city's 200,000 records cost no
        Python object each."""
        # C-level passes over the sites (20,000 cells): their last batches, which are fresh, and
        # which lack a slice of the site (the slice's newest record is in an older batch: rare).
        # Walked in the store's own order, the order sites first reported in, not the caller's:
        # a set's hash order would jump around memory (cache locality; bench/README.md, metrics scrape).
        last = self._last
        reporting = list(filter(sites.__contains__, last))
        newest = list(map(last.__getitem__, reporting))
        fresh = np.fromiter(map(_AT, newest), np.float64, len(newest)) > since
        sizes = np.fromiter(map(len, map(_NAMES, newest)), np.int64, len(newest))
        short = sizes < np.fromiter(map(configured.get, reporting, repeat(0)), np.int64, len(newest))
        whole = fresh & ~short
        parts = list(compress(newest, whole.tolist()))
        part_sizes = [sizes[whole]]
        for i in np.flatnonzero(fresh & short).tolist():
            site = reporting[i]
            for b, keep in self._newest(site, self._batches[site], since, configured):
                parts.append(b if keep is None else _subset(b, sorted(keep)))
                part_sizes.append(np.array([len(parts[-1][NAMES])], np.int64))
        names = list(self._ids)
        # Batches of the same size n are alike: grouped by n (a stable sort), each group is one
        # (batches, blocks, n) array, and one strided copy per group moves its records into the
        # (blocks, records) result: no index array and no gather per value.
        sizes = np.concatenate(part_sizes)
        order = np.argsort(sizes, kind="stable")
        counts = sizes[order]
        ordered = itemgetter(*order.tolist())(parts) if len(parts) > 1 else parts
        data = np.frombuffer(b"".join(map(_DATA, ordered)), np.float64)
        k = len(_BLOCKS)
        out = np.empty((k, int(counts.sum())), np.float64)
        starts = (np.flatnonzero(np.diff(counts)) + 1).tolist()
        value = record = 0
        for start, stop in pairwise([0, *starts, len(counts)] if len(counts) else []):
            batches, n = stop - start, int(counts[start])
            group = data[value : value + batches * k * n].reshape(batches, k, n)
            # a view of the result's columns for these records (splitting a contiguous axis)
            out[:, record : record + batches * n].reshape(k, batches, n)[...] = group.transpose(1, 0, 2)
            value += batches * k * n
            record += batches * n
        blocks = list(out)
        col = dict(zip(_BLOCKS, blocks, strict=True))
        return KpiColumns(
            names,
            col["slice_id"].view(np.int64),
            col["dl_throughput_mbps"],
            col["ul_throughput_mbps"],
            col["dl_demand_mbps"],
            col["ul_demand_mbps"],
            col["latency_p50_ms"],
            col["latency_p99_ms"],
            col["packet_loss"],
            col["active_devices"].view(np.int64),
            col["radio_utilisation"],
        )

    @staticmethod
    def _newest(
        site: str, window: deque[StoredBatch], since: float, configured: dict[str, int] | None
    ) -> Iterator[tuple[StoredBatch, set[int] | None]]:
        """The batches holding each slice's newest record after ``since``: (batch, the indices
        to take from it, None for all). Usually just the last batch."""
        if not window or window[-1][AT] <= since:
            return
        last = window[-1]
        yield last, None
        wanted = configured.get(site, 0) if configured is not None else _INF
        if len(window) == 1 or len(last[NAMES]) >= wanted:
            return
        # Some slice was left out of the last batch: its newest record is further back.
        seen = set(last[NAMES])
        for b in reversed(window):
            if b is last:
                continue
            if b[AT] <= since or len(seen) >= wanted:
                break
            keep = {i for i, n in enumerate(b[NAMES]) if n not in seen}
            if keep:
                seen.update(b[NAMES][i] for i in keep)
                yield b, keep


_AT, _NAMES, _DATA = itemgetter(AT), itemgetter(NAMES), itemgetter(DATA)


def _blocks(b: StoredBatch) -> list[memoryview[float] | memoryview[int]]:
    size = 8 * len(b[NAMES])
    data = memoryview(b[DATA])
    return [data[k * size : (k + 1) * size].cast(t) for k, t in enumerate(_TYPECODES)]


def _sample_columns(b: StoredBatch) -> list[memoryview[float] | memoryview[int]]:
    blocks = _blocks(b)
    return [blocks[k] for k in _SAMPLE_BLOCKS]


def _decode(b: StoredBatch) -> Iterator[KpiSample]:
    """The batch's records as samples, in its order (C-level: zip over memoryviews)."""
    return map(_new_sample, zip(repeat(b[AT]), *_sample_columns(b)))


def _pick(data: bytes, n: int, keep: Sequence[int]) -> bytes:
    """Of ``n`` records laid out as in a :data:`StoredBatch`, those at ``keep``."""
    out = []
    size = 8 * n
    view = memoryview(data)
    for k, t in enumerate(_TYPECODES):
        block = view[k * size : (k + 1) * size].cast(t)
        out.append(array(t, [block[i] for i in keep]).tobytes())
    return b"".join(out)


def _subset(b: StoredBatch, keep: Sequence[int]) -> StoredBatch:
    return (b[AT], tuple(b[NAMES][i] for i in keep), _pick(b[DATA], len(b[NAMES]), keep))
