"""The agent table: every site's session facts, one row per site, written by the registry only.

Each fact is kept once. What a metrics scrape or the lease scan reads for every site (one per site of
a city) is a flat array (:class:`SessionTable`'s columns: a message renews ``last_seen`` with one
array store, a scrape copies the arrays whole); the rest of a site's facts, read one site at a
time, is its :class:`SiteRecord`. The registry (:class:`telemetry.agentlink.registry.AgentRegistry`)
writes both under its lock; :meth:`SessionTable.columns`, :meth:`SessionTable.status` and
:meth:`SessionTable.info` are the reads.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from controller.runtime.agent_view import AgentInfo, Refusal, SessionState
from telemetry.agentlink.limits import RATE_WINDOW_S
from telemetry.agentlink.session import Session


class SessionColumns(NamedTuple):
    """The sites whose agent has connected (in this run or before a restart), one entry per site."""

    sites: tuple[str, ...]
    connected: npt.NDArray[np.bool_]
    seconds_since_seen: npt.NDArray[np.float64]
    desired_generation: npt.NDArray[np.int64]
    acked_generation: npt.NDArray[np.int64]


class SiteSessionStatus(NamedTuple):
    """One site's session as the registry sees it (a named tuple: a scrape makes one per agent
    of a city, and a frozen dataclass costs more to build)."""

    site: str
    connected: bool  # a session whose lease is valid
    up: bool
    software_version: str
    desired_generation: int
    acked_generation: int
    config_lag_s: float  # how long the desired config has waited for its ack (0 when acked)
    last_seen_s: float  # seconds since the last message (inf: never)
    nack_reason: str
    nack_message: str
    messages: int
    kpi_records: int


@dataclass
class SiteRecord:
    """What the controller knows of one site across sessions, beyond the table's columns."""

    session: Session | None = None  # the table's ``connected`` column says whether there is one
    version: str = ""
    instance_id: str = ""
    backend: str = ""
    refusal: Refusal | None = None  # the last refused generation (cleared by a good ack of a later one)
    refusals_in_row: int = 0
    desired_since: float = 0.0
    messages: int = 0
    kpi_records: int = 0
    rejections: int = 0
    health_cpu: float = 0.0
    # Message rate for operators: messages counted since rate_since; the last full minute's rate.
    rate_since: float = -math.inf
    rate_base: int = 0
    last_rate: float = 0.0

    def count_message(self, now: float) -> None:
        self.messages += 1
        if now - self.rate_since >= RATE_WINDOW_S:  # once a minute: the hot path only compares
            if self.rate_since > -math.inf:
                self.last_rate = (self.messages - 1 - self.rate_base) / (now - self.rate_since)
            self.rate_since, self.rate_base = now, self.messages - 1

    def messages_per_s(self, now: float) -> float:
        """The running minute once it holds 10 s of messages, else the last full minute's rate."""
        span = now - self.rate_since
        return (self.messages - self.rate_base) / span if span >= 10.0 else self.last_rate


class SessionTable:
    """Rows fixed at start (``row[site]``); the owner writes the arrays under its own lock.

    >>> t = SessionTable(["a", "b", "c"])
    >>> t.ever[1] = t.connected[1] = 1; t.last_seen[1] = 7.0; t.desired[1] = 3
    >>> t.ever[2] = 1
    >>> c = t.columns(now=10.0, lease_s=5.0)
    >>> c.sites, c.connected.tolist(), c.seconds_since_seen.tolist(), c.desired_generation.tolist()
    (('b', 'c'), [True, False], [3.0, inf], [3, 0])
    >>> t.columns(now=13.0, lease_s=5.0).connected.tolist()  # a session whose lease ran out
    [False, False]
    """

    def __init__(self, sites: Sequence[str]) -> None:
        n = len(sites)
        self.sites = tuple(sites)
        self.row = {site: i for i, site in enumerate(self.sites)}
        self.ever = bytearray(n)  # 1: its agent has connected (in this run or before a restart)
        self.connected = bytearray(n)  # 1: has a session now (connected when its lease is valid too)
        self.up = bytearray(b"\x01") * n  # 0: marked down for its lease (until its agent is back)
        self.last_seen = array("d", [-math.inf]) * n  # registry clock of the last message
        self.lease_from = array("d", [-math.inf]) * n  # known from before a restart: its lease runs from here
        self.desired = array("q", [0]) * n  # the desired config's generation (0: none yet)
        self.acked = array("q", [0]) * n
        self.records = [SiteRecord() for _ in range(n)]

    # -- writing (the registry, under its lock) ---------------------------------------------------

    def attach(self, row: int, session: Session) -> None:
        self.records[row].session = session
        self.ever[row] = self.connected[row] = 1

    def detach(self, row: int) -> None:
        self.records[row].session = None
        self.connected[row] = 0

    def expired_rows(self, now: float, lease_s: float) -> list[int]:
        """Rows of the sites that are up, have had an agent and heard nothing for ``lease_s``
        (from the later of the last message and ``lease_from``)."""
        ever = np.frombuffer(self.ever, np.uint8)
        up = np.frombuffer(self.up, np.uint8)
        heard = np.maximum(
            np.frombuffer(self.last_seen, np.float64), np.frombuffer(self.lease_from, np.float64)
        )
        rows: list[int] = np.flatnonzero((ever & up).astype(np.bool_) & (now - heard > lease_s)).tolist()
        return rows

    # -- reading (under the owner's lock) ---------------------------------------------------------

    def columns(self, now: float, lease_s: float) -> SessionColumns:
        """Copies of the rows of the sites that have connected (call under the owner's lock);
        ``connected`` is true for a session whose lease (``lease_s`` from its last message) is valid."""
        ever = np.frombuffer(self.ever, np.uint8).astype(np.bool_)
        with np.errstate(invalid="ignore"):  # never seen: inf seconds
            seen = now - np.frombuffer(self.last_seen, np.float64)[ever]
        return SessionColumns(
            tuple(compress(self.sites, self.ever)),
            np.frombuffer(self.connected, np.uint8)[ever].astype(np.bool_) & (seen <= lease_s),
            seen,
            np.frombuffer(self.desired, np.int64)[ever],
            np.frombuffer(self.acked, np.int64)[ever],
        )

    def is_connected(self, row: int, now: float, lease_s: float) -> bool:
        return bool(self.connected[row]) and now - self.last_seen[row] <= lease_s

    def status(self, row: int, now: float, lease_s: float) -> SiteSessionStatus:
        rec = self.records[row]
        desired, acked = self.desired[row], self.acked[row]
        lag = 0.0 if acked == desired else max(0.0, now - rec.desired_since)
        r = rec.refusal
        return SiteSessionStatus(  # positional: the fields' order (a scrape makes one per agent)
            self.sites[row],
            self.is_connected(row, now, lease_s),
            bool(self.up[row]),
            rec.version,
            desired,
            acked,
            lag,
            now - self.last_seen[row],
            r.reason if r is not None else "",
            r.message if r is not None else "",
            rec.messages,
            rec.kpi_records,
        )

    def info(self, row: int, now: float, lease_s: float, kind: str, epoch: str) -> AgentInfo:
        rec = self.records[row]
        connected = self.is_connected(row, now, lease_s)
        last_seen = self.last_seen[row]
        if connected:
            session_state = SessionState.CONNECTED
        elif self.ever[row]:
            session_state = SessionState.DISCONNECTED
        else:
            session_state = SessionState.NEVER
        return AgentInfo(
            site=self.sites[row],
            kind=kind,
            state=session_state,
            lease_expires_in_s=max(0.0, lease_s - (now - last_seen)) if connected else None,
            last_seen_s_ago=(now - last_seen) if last_seen > -math.inf else None,
            software_version=rec.version,
            instance_id=rec.instance_id,
            desired_generation=self.desired[row],
            acked_generation=self.acked[row],
            last_refusal=rec.refusal,
            messages_per_s=round(rec.messages_per_s(now), 3),
            rejections=rec.rejections,
            epoch=epoch,
            backend=rec.backend,
        )
