"""Admission: an ordered chain of pure policy checks, then placement, then (if capacity bound and
the slice may) preemption of lower-priority preemptible slices.

Each check returns the first violation as ``(reason, message)`` or None, cert-manager style, so
the order below is the order an operator reads the reasons in. :func:`admit` decides only; the
caller applies the decision (releases the victims, reserves the placement).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controller.core import placement
from controller.core.ledger import Ledger
from controller.core.placement_model import Placement, Reservation
from controller.core.topology import Topology
from controller.core.topology_file import SiteKind
from slices.profiles import SliceIntent, default_sd

Admitted = Mapping[str, tuple[SliceIntent, Placement]]
Violation = tuple[str, str]


class AdmittedSlices(dict[str, tuple[SliceIntent, Placement]]):
    """The admitted slices by name, with an index by S-NSSAI kept in step with every change.

    Every decision checks that its S-NSSAI is free; with thousands of slices admitted a scan
    per decision is a cost the index avoids. Any :data:`Admitted` mapping works in :func:`admit`.

    >>> from slices.intent import NetworkSlice
    >>> from slices.profiles import resolve
    >>> cars = resolve(NetworkSlice.model_validate({"metadata": {"name": "cars"},
    ...     "spec": {"kind": "vehicle", "coverage": {"zones": ["ring"]}}}))
    >>> admitted = AdmittedSlices()
    >>> admitted["cars"] = (cars, None)  # type: ignore[assignment]
    >>> admitted.by_snssai[cars.snssai]
    {'cars'}
    >>> _ = admitted.pop("cars"); admitted.by_snssai
    {}
    """

    def __init__(self, items: Mapping[str, tuple[SliceIntent, Placement]] | None = None) -> None:
        super().__init__()
        self.by_snssai: dict[str, set[str]] = {}
        if items:
            self.update(items)

    def __setitem__(self, name: str, value: tuple[SliceIntent, Placement]) -> None:
        old = self.get(name)
        if old is not None:
            self._unindex(name, old[0])
        super().__setitem__(name, value)
        self.by_snssai.setdefault(value[0].snssai, set()).add(name)

    def __delitem__(self, name: str) -> None:
        old = self[name]
        super().__delitem__(name)
        self._unindex(name, old[0])

    def _unindex(self, name: str, intent: SliceIntent) -> None:
        names = self.by_snssai.get(intent.snssai)
        if names is not None:
            names.discard(name)
            if not names:
                del self.by_snssai[intent.snssai]

    def pop(self, name: str, *default: Any) -> Any:
        if name in self:
            value = self[name]
            del self[name]
            return value
        if default:
            return default[0]
        raise KeyError(name)

    def popitem(self) -> tuple[str, tuple[SliceIntent, Placement]]:
        name = next(reversed(self))
        return name, self.pop(name)

    def setdefault(self, name: str, default: Any = None) -> Any:
        if name not in self:
            self[name] = default
        return self[name]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for name, value in dict(*args, **kwargs).items():
            self[name] = value

    def __ior__(self, other: Any) -> AdmittedSlices:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        super().clear()
        self.by_snssai.clear()


class Outcome(StrEnum):
    ADMITTED = "admitted"
    REJECTED = "rejected"
    PREEMPTED = "preempted"


@dataclass(frozen=True)
class Decision:
    """What happened to one slice: admitted with a placement, rejected, or preempted (and why)."""

    slice_name: str
    outcome: Outcome
    placement: Placement | None
    reason: str
    message: str
    preempts: tuple[str, ...] = ()
    #: The element that bound a capacity rejection (``cell:<id>``, ``link:<a>:<b>``, ``site:<id>``).
    binding: str | None = None


@dataclass(frozen=True)
class Context:
    """What every check may look at."""

    intent: SliceIntent
    topology: Topology
    ledger: Ledger
    admitted: Admitted


def check_sites_known(ctx: Context) -> Violation | None:
    for sid in ctx.intent.coverage.sites:
        site = ctx.topology.sites.get(sid)
        if site is None:
            return (
                "UnknownSite",
                f"spec.coverage.sites: site {sid!r} is not in topology {ctx.topology.name!r}",
            )
        if site.kind != SiteKind.CELL:
            return "UnknownSite", f"spec.coverage.sites: {sid!r} is a {site.kind.value} site, not a cell"
    return None


def check_zones_known(ctx: Context) -> Violation | None:
    for zone in ctx.intent.coverage.zones:
        if not ctx.topology.has_zone(zone):
            return (
                "UnknownZone",
                f"spec.coverage.zones: no cell of topology {ctx.topology.name!r} has zone {zone!r}",
            )
    return None


def check_coverage(ctx: Context) -> Violation | None:
    if not ctx.topology.cells_in(ctx.intent.coverage):
        return "NoCoverage", "the coverage selects no cell of the topology"
    return None


def check_snssai_unique(ctx: Context) -> Violation | None:
    mine = ctx.intent.snssai
    admitted = ctx.admitted
    if isinstance(admitted, AdmittedSlices):  # the index: no scan of every admitted slice
        clash = [n for n in admitted.by_snssai.get(mine, ()) if n != ctx.intent.name]
    else:
        clash = [n for n, (other, _) in admitted.items() if other.snssai == mine and n != ctx.intent.name]
    if clash:
        hint = ""
        if ctx.intent.sd == default_sd(ctx.intent.name):
            hint = " (its SD is the default one of this name: set spec.snssai.sd to choose another)"
        return "SnssaiConflict", f"S-NSSAI {mine} is already used by admitted slice {min(clash)!r}{hint}"
    return None


#: The checks, in the order they run; placement (radio, latency, links, compute) comes after.
CHECKS: tuple[Callable[[Context], Violation | None], ...] = (
    check_sites_known,
    check_zones_known,
    check_coverage,
    check_snssai_unique,
)


def _rejected(intent: SliceIntent, reason: str, message: str, binding: str | None = None) -> Decision:
    return Decision(intent.name, Outcome.REJECTED, None, reason, message, binding=binding)


def admit(
    intent: SliceIntent,
    topology: Topology,
    ledger: Ledger,
    admitted: Admitted,
    *,
    allow_preemption: bool = True,
    protected: Container[str] = (),
) -> Decision:
    """Decide one slice: checks in order, then placement, then preemption if it may. Pure.

    If ``intent.name`` is already in ``admitted`` (a changed spec), it is placed as if its old
    reservation were released. The decision lists the slices it preempts; the caller releases
    them and reserves the placement. ``protected``: slices never taken as victims (those with a
    schedule: a booking is a promise).

    >>> from controller.core.examples import slice_intent as intent, small_city
    >>> city = small_city(radio_mbps=150)     # c1 - a1 - e1
    >>> ledger = Ledger(city)
    >>> wifi = intent("hotspot", "wifi")      # 120 Mbps, priority 10, preemptible
    >>> d = admit(wifi, city, ledger, {})
    >>> d.outcome, d.placement.edge_sites
    (<Outcome.ADMITTED: 'admitted'>, ('e1',))
    >>> ledger.reserve(wifi.name, d.placement.reservation(city))
    >>> cars = intent("cars", "vehicle")      # 75 Mbps, priority 100
    >>> d2 = admit(cars, city, ledger, {wifi.name: (wifi, d.placement)})
    >>> d2.outcome, d2.preempts
    (<Outcome.ADMITTED: 'admitted'>, ('hotspot',))
    >>> admit(cars, city, ledger, {wifi.name: (wifi, d.placement)}, allow_preemption=False).message
    'cell c1 has 30 Mbps free, needs 75 Mbps (short by 45 Mbps)'
    >>> same = intent("dup", "wifi", snssai={"sst": 1, "sd": wifi.sd})  # hotspot's default SD, given again
    >>> admit(same, city, Ledger(city), {wifi.name: (wifi, d.placement)}).reason
    'SnssaiConflict'
    """
    if intent.name in admitted and intent.name in ledger.held:
        with ledger.trial():  # as if released; the caller's ledger is unchanged on return
            ledger.release(intent.name)
            return _decide(intent, topology, ledger, admitted, allow_preemption, protected)
    return _decide(intent, topology, ledger, admitted, allow_preemption, protected)


def _decide(
    intent: SliceIntent,
    topology: Topology,
    ledger: Ledger,
    admitted: Admitted,
    allow_preemption: bool,
    protected: Container[str] = (),
) -> Decision:
    ctx = Context(intent, topology, ledger, admitted)
    for check in CHECKS:
        violation = check(ctx)
        if violation is not None:
            return _rejected(intent, *violation)
    result = placement.place(intent, topology, ledger)
    if isinstance(result, Placement):
        return Decision(intent.name, Outcome.ADMITTED, result, "Admitted", _admitted_message(result))
    if allow_preemption and result.reason in placement.CAPACITY_REASONS:
        chosen = _preempt(intent, topology, ledger, admitted, result, protected)
        if chosen is not None:
            placed, victims = chosen
            return Decision(
                intent.name,
                Outcome.ADMITTED,
                placed,
                "AdmittedByPreemption",
                f"{_admitted_message(placed)}; preempts {', '.join(victims)} ({result.message})",
                victims,
            )
    return _rejected(intent, result.reason, result.message, result.binding)


def _admitted_message(p: Placement) -> str:
    served = len(p.assignments)
    text = f"{served} cells served from {', '.join(p.edge_sites)}, worst latency {p.worst_latency_ms:.3g} ms"
    if p.unserved:
        text += f"; {len(p.unserved)} covered cells out of service"
    return text


def _held(res: Reservation, binding: str | None, topology: Topology) -> tuple[int, int]:
    """What ``res`` holds of the binding element: (kbit/s or millicores, MiB of memory)."""
    if binding is None:
        return 0, 0
    kind, _, name = binding.partition(":")
    if kind == "cell":
        return res.radio_kbps.get(name, 0), 0
    if kind == "site":
        return res.cpu_millicores.get(name, 0), res.memory_mib.get(name, 0)
    if kind == "link":
        a, _, b = name.partition(":")
        idx = topology.link_index.get((a, b))
        return (res.link_kbps.get(idx, 0), 0) if idx is not None else (0, 0)
    return 0, 0


def _size(res: Reservation) -> int:
    return sum(res.radio_kbps.values())


def _preempt(
    intent: SliceIntent,
    topology: Topology,
    ledger: Ledger,
    admitted: Admitted,
    first: placement.Rejection,
    protected: Container[str] = (),
) -> tuple[Placement, tuple[str, ...]] | None:
    """Few, unimportant victims that make room; None if the candidates cannot.

    Candidates are preemptible slices of lower priority. Each round looks at the element that
    binds now and takes, lowest priority and smallest first, just enough of the candidates that
    hold it to cover its shortfall, then places again. A binding element no candidate holds
    ends the search. Once the slice fits, every victim whose reservation fits again beside the
    new placement is given back.
    """
    pool = [
        name
        for name, (other, _) in admitted.items()
        if name != intent.name
        and other.preemptible
        and other.priority < intent.priority
        and name in ledger.held
        and name not in protected
    ]
    if not pool:
        return None
    held = {name: ledger.held[name] for name in pool}  # the trial below releases them
    rank = {name: (admitted[name][0].priority, _size(held[name]), name) for name in pool}
    pool.sort(key=rank.__getitem__)
    # Trials run on the ledger itself and are undone on return: no copy of a city's figures.
    with ledger.trial() as trial:
        victims: list[str] = []
        result: Placement | placement.Rejection = first
        while not isinstance(result, Placement):
            if result.reason not in placement.CAPACITY_REASONS:
                return None
            need, need_mem = max(result.short_by, 1), result.short_by_memory
            taken: list[str] = []
            for name in pool:
                got, got_mem = _held(held[name], result.binding, topology)
                if got or got_mem:
                    taken.append(name)
                    need -= got
                    need_mem -= got_mem
                    if need <= 0 and need_mem <= 0:
                        break
            if not taken:
                return None
            for name in taken:
                pool.remove(name)
                trial.release(name)
                victims.append(name)
            result = placement.place(intent, topology, trial)
        placed = result
        # Give back what fits beside the new placement: most important victims first.
        trial.reserve(intent.name, placed.reservation(topology))
        kept: list[str] = []
        for name in sorted(victims, key=lambda n: (-admitted[n][0].priority, -_size(held[n]), n)):
            res = held[name]
            if trial.shortfall(res) is None:
                trial.reserve(name, res)
                kept.append(name)
    return placed, tuple(v for v in victims if v not in kept)
