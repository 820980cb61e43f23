"""Every site's session facts as flat arrays, one row per site: what a metrics scrape reads.

The agent registry keeps a state object per site; a scrape lists all of them (21,677 in a city),
which as one row tuple per site cost ~25 ms. The registry writes these arrays where it writes the
site states (a message renews ``last_seen``: one array store), and a scrape copies them whole.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from itertools import compress
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class SessionColumns(NamedTuple):
    """The sites whose agent has connected (in this run or before a restart), one entry per site."""

    sites: tuple[str, ...]
    connected: npt.NDArray[np.bool_]
    seconds_since_seen: npt.NDArray[np.float64]
    desired_generation: npt.NDArray[np.int64]
    acked_generation: npt.NDArray[np.int64]


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
        self.last_seen = array("d", [-math.inf]) * n  # registry clock of the last message
        self.desired = array("q", [0]) * n
        self.acked = array("q", [0]) * n

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
