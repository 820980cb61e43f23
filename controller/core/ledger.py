"""What is reserved where. Derived from placements, never stored on its own: a restart rebuilds
it from the placed slices, so it cannot drift from them or double-book.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from controller.core.capacity import CapacityView, advance
from controller.core.placement_model import Placement, Reservation
from controller.core.topology import Topology


@dataclass(frozen=True)
class Shortfall:
    """The first element a reservation does not fit on, and by how much."""

    element: str  # "cell", "link", "cpu", "memory"
    name: str
    needed: int
    available: int

    @property
    def short_by(self) -> int:
        return self.needed - self.available


#: Reserves and releases kept for the next capacity view; beyond, it is made from scratch.
SINCE_VIEW_MAX = 20_000


class Ledger:
    """Reserved capacity per cell (radio), link (bandwidth) and edge site (CPU, memory)."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.radio_kbps: dict[str, int] = {}
        self.link_kbps: list[int] = [0] * len(topology.links)
        self.cpu_millicores: dict[str, int] = {}
        self.memory_mib: dict[str, int] = {}
        self.held: dict[str, Reservation] = {}
        #: Moves with every reserve and release (see :meth:`capacity`).
        self.revision = 0
        # Every reserve and release since the last capacity view, so the next one rereads only
        # what they touched; None once there were too many to be worth it (the next view is then
        # made from scratch), so a ledger nobody reads the view of does not keep them all.
        self._since_view: list[tuple[str, Reservation]] | None = []
        self._view: CapacityView | None = None
        self._counted: dict[str, tuple[Reservation, np.ndarray]] = {}
        # While a trial runs: every reserve/release, so the trial can be undone (see trial()).
        self._journal: list[tuple[bool, str, Reservation]] | None = None

    @classmethod
    def from_placements(cls, topology: Topology, placements: Iterable[Placement]) -> Ledger:
        ledger = cls(topology)
        for p in placements:
            ledger.reserve(p.slice_name, p.reservation(topology))
        return ledger

    def copy(self, topology: Topology | None = None) -> Ledger:
        """An independent ledger with the same reservations (optionally over a changed topology)."""
        other = Ledger(topology or self.topology)
        other.radio_kbps = dict(self.radio_kbps)
        other.link_kbps = list(self.link_kbps)
        other.cpu_millicores = dict(self.cpu_millicores)
        other.memory_mib = dict(self.memory_mib)
        other.held = dict(self.held)
        return other

    @contextlib.contextmanager
    def trial(self) -> Iterator[Ledger]:
        """Reserve and release freely inside; on exit every change is undone, in reverse.

        A what-if on the ledger itself: admission tries placements after releasing would-be
        victims without copying a city's worth of figures each time (trials nest).

        >>> from controller.core.placement_model import Reservation
        >>> from controller.core.topology_file import TopologyFile
        >>> city = Topology.from_file(TopologyFile.model_validate({"sites": [
        ...     {"id": "c1", "kind": "cell", "location": {"lat": 0, "lon": 0}, "capacity": {"radioMbps": 100}},
        ...     {"id": "e1", "kind": "edge", "location": {"lat": 0, "lon": 0},
        ...      "capacity": {"cpuMillicores": 8000, "memoryMib": 16384}}],
        ...   "links": [{"a": "c1", "b": "e1", "bandwidthMbps": 1000, "latencyMs": 0.5}]}))
        >>> ledger = Ledger(city)
        >>> ledger.reserve("a", Reservation(radio_kbps={"c1": 60_000}))
        >>> with ledger.trial():
        ...     _ = ledger.release("a")
        ...     ledger.reserve("b", Reservation(radio_kbps={"c1": 90_000}))
        ...     ledger.free_radio("c1")
        10000
        >>> ledger.free_radio("c1"), sorted(ledger.held)
        (40000, ['a'])
        """
        outer = self._journal
        journal: list[tuple[bool, str, Reservation]] = []
        self._journal = journal
        try:
            yield self
        finally:
            self._journal = None
            for reserved, holder, res in reversed(journal):
                if reserved:
                    self.release(holder)
                else:
                    self.reserve(holder, res)
            self._journal = outer  # the outer trial's entries stand: this one left no trace

    # -- residual capacity --------------------------------------------------------------------

    def capacity(self) -> CapacityView:
        """Every site's and link's capacity, reserved and free figures as arrays, at this
        revision: the same object until a reservation moves, then a new one made from the
        last by rereading only what moved."""
        view = self._view
        if view is None or view.revision != self.revision:
            view = self._view = advance(self, view, self._counted, self._since_view)
            self._since_view = []
        return view

    def free_radio(self, cell: str) -> int:
        return self.topology.sites[cell].radio_kbps - self.radio_kbps.get(cell, 0)

    def free_link(self, index: int) -> int:
        return self.topology.links[index].bandwidth_kbps - self.link_kbps[index]

    def free_cpu(self, site: str) -> int:
        return self.topology.sites[site].cpu_millicores - self.cpu_millicores.get(site, 0)

    def free_memory(self, site: str) -> int:
        return self.topology.sites[site].memory_mib - self.memory_mib.get(site, 0)

    # -- reserve / release --------------------------------------------------------------------

    def shortfall(self, res: Reservation) -> Shortfall | None:
        for cell, kbps in res.radio_kbps.items():
            if kbps > self.free_radio(cell):
                return Shortfall("cell", cell, kbps, self.free_radio(cell))
        for idx, kbps in res.link_kbps.items():
            if kbps > self.free_link(idx):
                return Shortfall("link", str(self.topology.links[idx]), kbps, self.free_link(idx))
        for site, cpu in res.cpu_millicores.items():
            if cpu > self.free_cpu(site):
                return Shortfall("cpu", site, cpu, self.free_cpu(site))
        for site, mem in res.memory_mib.items():
            if mem > self.free_memory(site):
                return Shortfall("memory", site, mem, self.free_memory(site))
        return None

    def _changed(self, holder: str, res: Reservation) -> None:
        """A reservation moved: a new revision, and the holder noted for the next capacity view
        (past SINCE_VIEW_MAX changes that view is rebuilt instead)."""
        self.revision += 1
        since = self._since_view
        if since is not None:
            since.append((holder, res))
            if len(since) > SINCE_VIEW_MAX:
                self._since_view = None

    def reserve(self, holder: str, res: Reservation) -> None:
        """Add a reservation; the caller has checked it fits (see :meth:`shortfall`)."""
        if holder in self.held:
            raise ValueError(f"{holder!r} already holds a reservation")
        self._changed(holder, res)
        for cell, kbps in res.radio_kbps.items():
            self.radio_kbps[cell] = self.radio_kbps.get(cell, 0) + kbps
        for idx, kbps in res.link_kbps.items():
            self.link_kbps[idx] += kbps
        for site, cpu in res.cpu_millicores.items():
            self.cpu_millicores[site] = self.cpu_millicores.get(site, 0) + cpu
        for site, mem in res.memory_mib.items():
            self.memory_mib[site] = self.memory_mib.get(site, 0) + mem
        self.held[holder] = res
        if self._journal is not None:
            self._journal.append((True, holder, res))

    def release(self, holder: str) -> Reservation | None:
        """Give back exactly what ``holder`` took; returns it (None if it held nothing)."""
        res = self.held.pop(holder, None)
        if res is None:
            return None
        self._changed(holder, res)
        for cell, kbps in res.radio_kbps.items():
            left = self.radio_kbps[cell] - kbps
            if left:
                self.radio_kbps[cell] = left
            else:
                del self.radio_kbps[cell]
        for idx, kbps in res.link_kbps.items():
            self.link_kbps[idx] -= kbps
        for site, cpu in res.cpu_millicores.items():
            left = self.cpu_millicores[site] - cpu
            if left:
                self.cpu_millicores[site] = left
            else:
                del self.cpu_millicores[site]
        for site, mem in res.memory_mib.items():
            left = self.memory_mib[site] - mem
            if left:
                self.memory_mib[site] = left
            else:
                del self.memory_mib[site]
        if self._journal is not None:
            self._journal.append((False, holder, res))
        return res

    def snapshot(self) -> tuple[dict[str, int], list[int], dict[str, int], dict[str, int]]:
        """Comparable view of everything reserved (used by tests of exact release)."""
        return dict(self.radio_kbps), list(self.link_kbps), dict(self.cpu_millicores), dict(self.memory_mib)

    def over_capacity(self) -> list[str]:
        """Elements reserved beyond capacity; always empty unless a bug slipped through."""
        out = [f"cell {c}" for c in self.radio_kbps if self.free_radio(c) < 0]
        out += [f"link {self.topology.links[i]}" for i in range(len(self.link_kbps)) if self.free_link(i) < 0]
        out += [f"site {s} cpu" for s in self.cpu_millicores if self.free_cpu(s) < 0]
        out += [f"site {s} memory" for s in self.memory_mib if self.free_memory(s) < 0]
        return out
