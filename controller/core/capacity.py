"""The ledger's figures as arrays: the one read model of capacity.

Whoever reports capacity (the service's site and link status, the metrics, the operator API)
reads a :class:`CapacityView` from :meth:`controller.core.ledger.Ledger.capacity` rather than
walking the ledger's dictionaries or keeping a copy of its own. A view is immutable (its arrays
are read-only) and carries the ledger's revision, which moves with every reserve and release: a
reader that keeps something derived from a view keys it by that revision.

Sites are in the topology's order and links in their index order (``Link.index``), so position
``i`` of every site array is ``view.sites[i]`` and position ``j`` of every link array is
``view.links[j]``.

Views are made incrementally (:func:`advance`): the ledger keeps the reserves and releases made
since the last view, and the next view copies the previous arrays and rewrites only the entries
they touched. ``tests/unit/controller/core/test_capacity.py`` holds the plain computation it is
checked against.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from controller.core.placement_model import Reservation
from controller.core.topology import LinkKey, Topology


class Ledger(Protocol):
    """What a view is read from: the ledger's figures (:class:`controller.core.ledger.Ledger`;
    named here, not imported, so the ledger can own its view without an import cycle)."""

    @property
    def topology(self) -> Topology: ...
    @property
    def radio_kbps(self) -> Mapping[str, int]: ...
    @property
    def link_kbps(self) -> list[int]: ...
    @property
    def cpu_millicores(self) -> Mapping[str, int]: ...
    @property
    def memory_mib(self) -> Mapping[str, int]: ...
    @property
    def held(self) -> Mapping[str, Reservation]: ...
    @property
    def revision(self) -> int: ...


_INT = np.int64


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Layout:
    """What does not move while the topology stands: element order, kinds and capacities."""

    sites: tuple[str, ...]
    site_index: Mapping[str, int]
    kinds: tuple[str, ...]  # SiteKind values, by site
    links: tuple[LinkKey, ...]
    link_ends: np.ndarray  # (links, 2): the site positions of each link's ends
    radio_capacity_kbps: np.ndarray
    cpu_capacity_millicores: np.ndarray
    memory_capacity_mib: np.ndarray
    link_capacity_kbps: np.ndarray

    @classmethod
    def of(cls, topology: Topology) -> Layout:
        sites = tuple(topology.sites)
        index = {s: i for i, s in enumerate(sites)}
        values = list(topology.sites.values())
        links = topology.links
        ends = np.array([(index[ln.a], index[ln.b]) for ln in links], dtype=_INT).reshape(-1, 2)
        return cls(
            sites=sites,
            site_index=index,
            kinds=tuple(s.kind.value for s in values),
            links=tuple(ln.key for ln in links),
            link_ends=_frozen(ends),
            radio_capacity_kbps=_frozen(np.array([s.radio_kbps for s in values], dtype=_INT)),
            cpu_capacity_millicores=_frozen(np.array([s.cpu_millicores for s in values], dtype=_INT)),
            memory_capacity_mib=_frozen(np.array([s.memory_mib for s in values], dtype=_INT)),
            link_capacity_kbps=_frozen(np.array([ln.bandwidth_kbps for ln in links], dtype=_INT)),
        )

    @functools.cached_property
    def link_key_rank(self) -> np.ndarray:
        """Each link's position in key order (the tie-break of :attr:`CapacityView.busiest_links`)."""
        links = self.links
        rank = np.empty(len(links), dtype=_INT)
        rank[sorted(range(len(links)), key=links.__getitem__)] = np.arange(len(links))
        return _frozen(rank)


@dataclass(frozen=True, eq=False)
class CapacityView:
    """Capacity, reserved and free figures of every site and link at one ledger revision.

    ``slices`` counts, per site, the holders whose reservation is at the site or routes through
    it (a cell it serves, an edge it runs at, an end of a link it uses).
    """

    revision: int
    layout: Layout
    radio_reserved_kbps: np.ndarray
    cpu_reserved_millicores: np.ndarray
    memory_reserved_mib: np.ndarray
    slices: np.ndarray
    link_reserved_kbps: np.ndarray

    @property
    def sites(self) -> tuple[str, ...]:
        return self.layout.sites

    @property
    def site_index(self) -> Mapping[str, int]:
        return self.layout.site_index

    @property
    def kinds(self) -> tuple[str, ...]:
        return self.layout.kinds

    @property
    def links(self) -> tuple[LinkKey, ...]:
        return self.layout.links

    @property
    def radio_capacity_kbps(self) -> np.ndarray:
        return self.layout.radio_capacity_kbps

    @property
    def cpu_capacity_millicores(self) -> np.ndarray:
        return self.layout.cpu_capacity_millicores

    @property
    def memory_capacity_mib(self) -> np.ndarray:
        return self.layout.memory_capacity_mib

    @property
    def link_capacity_kbps(self) -> np.ndarray:
        return self.layout.link_capacity_kbps

    @functools.cached_property
    def radio_free_kbps(self) -> np.ndarray:
        return _frozen(self.layout.radio_capacity_kbps - self.radio_reserved_kbps)

    @functools.cached_property
    def cpu_free_millicores(self) -> np.ndarray:
        return _frozen(self.layout.cpu_capacity_millicores - self.cpu_reserved_millicores)

    @functools.cached_property
    def memory_free_mib(self) -> np.ndarray:
        return _frozen(self.layout.memory_capacity_mib - self.memory_reserved_mib)

    @functools.cached_property
    def link_free_kbps(self) -> np.ndarray:
        return _frozen(self.layout.link_capacity_kbps - self.link_reserved_kbps)

    @functools.cached_property
    def busiest_links(self) -> np.ndarray:
        """Indices of the links with a reservation, by utilisation (highest first), then by key."""
        reserved = self.link_reserved_kbps
        loaded = np.flatnonzero(reserved > 0)
        ratio = reserved[loaded] / self.layout.link_capacity_kbps[loaded]
        return _frozen(loaded[np.lexsort((self.layout.link_key_rank[loaded], -ratio))])


def nodes_of(res: Reservation, layout: Layout) -> np.ndarray:
    """The site positions a reservation is at or routes through, each once."""
    index = layout.site_index
    names = {*res.radio_kbps, *res.cpu_millicores, *res.memory_mib}
    at = np.fromiter(map(index.__getitem__, names), dtype=_INT, count=len(names))
    if res.link_kbps:
        ends = layout.link_ends[np.fromiter(res.link_kbps, dtype=_INT, count=len(res.link_kbps))]
        at = np.concatenate((at, ends.ravel()))
    return np.unique(at)


def advance(
    ledger: Ledger,
    previous: CapacityView | None,
    counted: dict[str, tuple[Reservation, np.ndarray]],
    changes: Iterable[tuple[str, Reservation]] | None,
) -> CapacityView:
    """The view at ``ledger.revision``: ``previous`` with what ``changes`` (the reserves and
    releases since, as (holder, reservation)) touched read again from the ledger; everything
    read again when there is no previous view or ``changes`` is None.

    ``counted`` is the caller's record, per holder, of the reservation last counted in
    ``slices`` and the site positions it was counted at; this updates it."""
    sites: Collection[str]
    links: Collection[int]
    holders: Iterable[str]
    layout = previous.layout if previous is not None else Layout.of(ledger.topology)
    if previous is not None and changes is not None:
        sites, links, holders = set(), set(), set()
        for holder, res in changes:
            sites.update(res.radio_kbps, res.cpu_millicores, res.memory_mib)
            links.update(res.link_kbps)
            holders.add(holder)
        radio = previous.radio_reserved_kbps.copy()
        cpu = previous.cpu_reserved_millicores.copy()
        memory = previous.memory_reserved_mib.copy()
        slices = previous.slices.copy()
        link = previous.link_reserved_kbps.copy()
    else:
        n = len(layout.sites)
        radio, cpu, memory, slices = (np.zeros(n, dtype=_INT) for _ in range(4))
        link = np.zeros(len(layout.links), dtype=_INT)
        sites = {*ledger.radio_kbps, *ledger.cpu_millicores, *ledger.memory_mib}
        links = range(len(layout.links))
        counted.clear()
        holders = ledger.held
    if sites:
        names = list(sites)
        at = np.fromiter(map(layout.site_index.__getitem__, names), dtype=_INT, count=len(names))
        for target, source in (
            (radio, ledger.radio_kbps),
            (cpu, ledger.cpu_millicores),
            (memory, ledger.memory_mib),
        ):
            target[at] = np.fromiter((source.get(s, 0) for s in names), dtype=_INT, count=len(names))
    if links:
        if isinstance(links, range):
            link[:] = ledger.link_kbps
        else:
            idx = list(links)
            kbps = ledger.link_kbps
            link[idx] = [kbps[i] for i in idx]
    held, by_holder = ledger.held, counted
    for holder in holders:
        now = held.get(holder)
        old = by_holder.get(holder)
        if old is not None and old[0] is now:
            continue
        if old is not None:
            slices[old[1]] -= 1
            del by_holder[holder]
        if now is not None:
            at_nodes = nodes_of(now, layout)
            slices[at_nodes] += 1
            by_holder[holder] = (now, at_nodes)
    return CapacityView(
        revision=ledger.revision,
        layout=layout,
        radio_reserved_kbps=_frozen(radio),
        cpu_reserved_millicores=_frozen(cpu),
        memory_reserved_mib=_frozen(memory),
        slices=_frozen(slices),
        link_reserved_kbps=_frozen(link),
    )
