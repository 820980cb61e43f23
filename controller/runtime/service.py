"""The controller's one entry point for everything that changes or reads slice state.

The operator gRPC API, the agent link, the Kubernetes NetworkSlice watcher and the demo all
call this class; none of them touches the store or the ledger directly. It is thread-safe (one
lock: decisions are serialised, reads see committed state).

The names and signatures below are the agreed interface between the runtime (controller.runtime.service
/ store / reconciler), the operator API (controller.api, through controller.api.ports), the agent
link (telemetry.agentlink, through telemetry.agentlink.ports), Kubernetes (controller.kube) and
metrics (telemetry.metrics.observer). The service does the operator's and agents' operations
itself (each a committed decision) and leaves the rest to the level-based pass in
:mod:`controller.runtime.reconciler`.

This class is a facade: it loads the state and delegates each operation to the module of its
concept, which all share one :class:`~controller.runtime.service_core.ServiceCore`:
:mod:`~controller.runtime.lifecycle` (apply, delete, moving a slice),
:mod:`~controller.runtime.maintenance` (drain, cordon, failures),
:mod:`~controller.runtime.progress` (SLA, agents' acks, workloads: the Realised condition) and
:mod:`~controller.runtime.views` (slices, events, topology and capacity, read only).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

import pydantic

from controller.core import whatif
from controller.core.capacity import CapacityView
from controller.core.topology import LinkKey, Topology, parse_link_key
from controller.core.topology_file import TopologyFile
from controller.runtime.clock import Clock
from controller.runtime.lifecycle import ApplyResult, Lifecycle
from controller.runtime.maintenance import (
    CELL_OUT,
    MOVED,
    NOT_MOVED,
    PREEMPTED,
    DrainReport,
    Maintenance,
    SliceMove,
)
from controller.runtime.observer import NullObserver, ServiceObserver
from controller.runtime.progress import Progress
from controller.runtime.realisation import AgentProgress, Realiser
from controller.runtime.reconciler import RealisationPolicy, Reconciler, set_cond
from controller.runtime.service_core import ServiceCore
from controller.runtime.store import Store, Transaction
from controller.runtime.store_rows import bad_row
from controller.runtime.views import Event, SiteStatus, SliceRecord, TopologyStatus, Views
from controller.runtime.world import SliceState, Slot, World
from slices import errors
from slices.intent import NetworkSlice
from slices.status import ConditionStatus, ConditionType

__all__ = [
    "CELL_OUT",
    "MOVED",
    "NOT_MOVED",
    "PREEMPTED",
    "ApplyResult",
    "ControllerService",
    "DrainReport",
    "Event",
    "SiteStatus",
    "SliceMove",
    "SliceRecord",
    "SliceState",
    "TopologyStatus",
]


class ControllerService:
    def __init__(
        self,
        topology: Topology,
        store: Store,
        realisers: Sequence[Realiser],
        clock: Clock,
        observer: ServiceObserver | None = None,
        workloads_evidence: bool = False,
    ) -> None:
        """Load the stored slices and maintenance, rebuild the ledger from the placements.

        ``workloads_evidence``: a realiser reports workload availability (Kubernetes mode), and a
        slice is Realised only once it says Available (:meth:`record_workloads`)."""
        core = self._core = ServiceCore(World(topology), store, clock, observer or NullObserver())
        core.reconciler = Reconciler(store, realisers, clock.now, clock.monotonic, core.observer, core.notify)
        core.reconciler.policy = RealisationPolicy(None, workloads_evidence)
        self._lock, self._world = core.lock, core.world
        self._lifecycle = Lifecycle(core)
        self._maintenance = Maintenance(core)
        self._progress = Progress(core)
        self._views = Views(core)
        #: The newest audit event before this service loaded: what it decides, from loading on
        #: (a stored placement that no longer fits), comes after (the decision log starts here).
        self.first_seq_after = store.last_event_seq()
        self._load()

    # -- start-up -----------------------------------------------------------------------------

    def _load(self) -> None:
        # Thousands of long-lived objects are created here and none is garbage: its passes over
        # them would be wasted, so the cyclic collector is paused meanwhile (bench/README.md, restart).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._load_rows()
        finally:
            if was_enabled:
                gc.enable()

    def _load_rows(self) -> None:
        world = self._world
        for m in self._core.store.maintenance():
            if m.kind == "site" and m.name in world.base.sites:
                world.drained_sites.add(m.name)
            elif m.kind == "cordon" and m.name in world.base.sites:
                world.cordoned_sites.add(m.name)
            elif m.kind == "link":
                key = parse_link_key(m.name)
                if key in world.base.link_index:
                    world.drained_links.add(key)
        if world.drained_sites or world.drained_links:
            world.retopologise()
        elif world.cordoned_sites:
            world.recordon()
        invalid: list[Slot] = []
        slots: list[Slot] = []
        for row in self._core.store.load_slices():
            if row.deleted_at is not None:
                world.deleting.add(row.name)
                continue
            try:
                slots.append(Slot.from_row(row))
            except (errors.EdgesliceError, pydantic.ValidationError, KeyError, ValueError, TypeError) as exc:
                raise bad_row(self._core.store.path, row.name, exc) from exc  # one line, names the slice
        # Rebuild reservations, most important first; a placement that no longer fits the
        # topology (a changed file) is dropped and decided again, never double-booked.
        at = self._core.clock.now()
        for slot in sorted(
            slots, key=lambda s: (-(s.placed_intent or s.intent).priority, s.created_at, s.name)
        ):
            world.slots[slot.name] = slot
            if slot.booked is not None and slot.window is not None:
                world.book(slot, slot.booked)  # the calendar only: its window has not begun
                continue
            p = slot.placement
            if p is None or slot.placed_intent is None:
                continue
            try:
                res = p.reservation(world.base)
                short = world.ledger.shortfall(res)
            except errors.NotFound as exc:
                short, why = None, str(exc)
            else:
                why = f"{short.element} {short.name} no longer has room" if short else ""
            if why:
                slot.set_placed(None, None, None)
                slot.state, slot.reason = SliceState.PENDING, "PlacementInvalid"
                slot.message = f"stored placement does not fit the topology ({why}); deciding again"
                set_cond(slot, ConditionType.PLACED, ConditionStatus.FALSE, slot.reason, slot.message, at)
                invalid.append(slot)
                continue
            world.ledger.reserve(slot.name, res)
            world.admitted[slot.name] = (slot.placed_intent, p)
            window = slot.window
            if window is not None:
                world.calendar.put(slot.name, window, res)
        world.slots = dict(sorted(world.slots.items(), key=lambda kv: (kv[1].created_at, kv[0])))
        if invalid:
            self._core.reconciler.commit(
                invalid, [("degrade", s.name, None, s.message) for s in invalid], "controller"
            )
        world.dirty.update(world.slots)

    # -- slices: apply, delete, move (controller.runtime.lifecycle) ---------------------------

    def apply(
        self, documents: Sequence[NetworkSlice], actor: str, dry_run: bool = False
    ) -> list[ApplyResult]:
        """Validate, store and reconcile the documents: :meth:`controller.runtime.lifecycle.Lifecycle.apply`."""
        return self._lifecycle.apply(documents, actor, dry_run)

    def book(
        self, document: NetworkSlice, actor: str, extra: Callable[[Transaction], None] | None = None
    ) -> ApplyResult:
        """Admit a new slice over its schedule's window or store nothing (:class:`errors.AdmissionRejected`);
        ``extra`` writes commit with it."""
        return self._lifecycle.book(document, actor, extra)

    def delete(self, name: str, actor: str, extra: Callable[[Transaction], None] | None = None) -> None:
        self._lifecycle.delete(name, actor, extra)

    def replace_slice(self, name: str, reason: str, actor: str, avoid: Collection[str] = ()) -> bool:
        """Try to move a slice away from its edge sites and ``avoid`` (sustained SLA violation);
        True if it moved."""
        return self._lifecycle.replace_slice(name, reason, actor, avoid)

    # -- reads (controller.runtime.views) -----------------------------------------------------

    def get(self, name: str) -> SliceRecord:
        return self._views.get(name)

    def list_slices(self) -> list[SliceRecord]:
        return self._views.list_slices()

    def explain(self, name: str) -> dict[str, object]:
        """Why the slice is where it is: the decision, checks passed/failed, binding constraint, routes."""
        return self._views.explain(name)

    def events(self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None) -> list[Event]:
        return self._views.events(after_seq, limit, slice_name)

    def wait_events(self, after_seq: int, timeout_s: float) -> list[Event]:
        """Block until events newer than ``after_seq`` exist or the timeout passes (for watch/follow)."""
        return self._views.wait_events(after_seq, timeout_s)

    @property
    def store(self) -> Store:
        """The state file this service commits to (packages with tables of their own use it)."""
        return self._core.store

    def city(self) -> Topology:
        """The city as its topology file describes it (nothing down or drained)."""
        return self._world.base

    def topology(self) -> Topology:
        """The topology as the controller sees it now (with down and drained elements)."""
        return self._views.topology()

    def topology_file(self) -> TopologyFile:
        """The topology file the controller runs on (what a simulator of this city needs)."""
        return self._views.topology_file()

    def capacity(self) -> CapacityView:
        """Every site's and link's capacity, reserved and free figures (the ledger's view; the
        same object until a reservation moves). Which sites are up, drained or cordoned is
        :meth:`topology_status`'s (or :meth:`topology`'s and :meth:`cordoned`'s) to say."""
        return self._views.capacity()

    def topology_status(self) -> TopologyStatus:
        """Every site's and busy link's capacity figures, derived from :meth:`capacity` and the
        sites' state; the same answer until the state moves."""
        return self._views.topology_status()

    def what_if(self, fail_sites: Sequence[str], fail_links: Sequence[LinkKey]) -> dict[str, object]:
        with self._lock:
            world = self._world
            report = whatif.what_if(
                world.topology, dict(world.admitted), fail_sites, fail_links, world.ledger
            )
        return report.to_dict()

    @property
    def revision(self) -> int:
        """Increments on every committed change; cheap to poll (agents push config when it moves)."""
        return self._core.reconciler.revision

    # -- maintenance and failures (controller.runtime.maintenance) ----------------------------

    @property
    def maintenance_hook(self) -> Callable[[str, str, bool, str], None] | None:
        """Called as (kind, name, drained, actor) before a drain or undrain is committed; raising
        refuses it. The runtime keeps the cluster's copy of the operator state this way."""
        return self._maintenance.hook

    @maintenance_hook.setter
    def maintenance_hook(self, hook: Callable[[str, str, bool, str], None] | None) -> None:
        self._maintenance.hook = hook

    def drain(self, site: str, actor: str) -> list[str]:
        """Take a site out of service for maintenance; returns the slices re-placed."""
        return self._maintenance.drain(site, actor)

    def drain_report(self, site: str, actor: str) -> DrainReport:
        """Take a site out of service for maintenance; says what became of every slice it
        concerned: moved off it, preempted by a slice that moved, or still on it."""
        return self._maintenance.drain_report(site, actor)

    def undrain(self, site: str, actor: str) -> list[str]:
        return self._maintenance.undrain(site, actor)

    def drained(self) -> list[str]:
        with self._lock:
            return sorted(self._world.drained_sites)

    def cordon(self, site: str, actor: str) -> tuple[bool, list[str]]:
        """No new placements on ``site``; nothing moves. Returns (changed, the slices placed there)."""
        return self._maintenance.cordon(site, actor)

    def uncordon(self, site: str, actor: str) -> bool:
        """Allow new placements on a cordoned site again; False when it was not cordoned."""
        return self._maintenance.uncordon(site, actor)

    def cordoned(self) -> list[str]:
        return self._maintenance.cordoned()

    def site_down(self, site: str, reason: str, actor: str) -> list[str]:
        """A site stopped (missed lease); heal the slices it served. Returns the slices affected."""
        return self._maintenance.sites_down([(site, reason)], actor)

    def sites_down(self, downs: Sequence[tuple[str, str]], actor: str) -> list[str]:
        """Several sites stopped at once, as (site, reason): one recorded decision, one re-route
        and one healing pass. Returns the slices affected, in slice order."""
        return self._maintenance.sites_down(downs, actor)

    def site_up(self, site: str, actor: str) -> None:
        self._maintenance.site_up(site, actor)

    def link_down(self, key: LinkKey, reason: str, actor: str) -> list[str]:
        return self._maintenance.link_down(key, reason, actor)

    def link_up(self, key: LinkKey, actor: str) -> None:
        self._maintenance.link_up(key, actor)

    # -- what agents and workloads report (controller.runtime.progress) -----------------------

    def set_sla(self, name: str, met: bool | None, reason: str, message: str, actor: str) -> None:
        """Record the SLAMet condition (agents' KPIs evaluated by telemetry.agentlink.sla); ``met`` None is
        Unknown: no evidence either way."""
        self._progress.set_sla(name, met, reason, message, actor)

    def require_agents(self, policy: str) -> None:
        """An agent server runs: from now on a slice is Realised only when the site agents the
        ``policy`` requires have acked it (telemetry.agentlink.settings.AGENT_POLICIES)."""
        self._progress.require_agents(policy)

    def record_agent_progress(self, progress: Mapping[str, AgentProgress], actor: str) -> None:
        """What the site agents confirmed of each slice. A change of status or reason is stored at
        once; a count that only grew is stored at most every few seconds (the message says "at
        least", so it stays true meanwhile)."""
        self._progress.record_agent_progress(progress, actor)

    @property
    def progress_pending(self) -> bool:
        """Whether an agent-progress count waits to be stored (:meth:`record_agent_progress`
        stores it once due, even when called with nothing new)."""
        return self._progress.progress_pending

    def record_workloads(self, name: str, status: ConditionStatus, reason: str, message: str) -> None:
        """Whether the slice's workloads are available (a Kubernetes realiser's watch reports it)."""
        self._progress.record_workloads(name, status, reason, message)

    def config_refused(
        self, site: str, generation: int, reason: str, message: str, slices: Sequence[str]
    ) -> None:
        """A site agent refused a config generation: an event on every slice it carried."""
        self._progress.config_refused(site, generation, reason, message, slices)

    # -- the level-based pass (controller.runtime.reconciler) ---------------------------------

    def reconcile(self) -> int:
        """One level-based pass; returns how many slices changed. Running it twice changes nothing."""
        with self._lock:
            return self._core.reconciler.run(self._world, full=True).changed

    def seconds_until_due(self) -> float:
        """How long until a schedule's window begins or ends (inf when none will)."""
        with self._lock:
            return max(0.0, self._world.calendar.next_boundary() - self._core.clock.now().timestamp())

    def reconcile_batch(self, max_steps: int, full: bool = False) -> tuple[int, bool]:
        """Part of a pass, at most ``max_steps`` slices, so the lock is released between batches
        (a restart re-realising thousands of slices does not stall the API). Returns (changed,
        more work left)."""
        with self._lock:
            result = self._core.reconciler.run(self._world, full=full, max_steps=max_steps)
            return result.changed, result.more

    # -- for tests, benchmarks and the runtime -------------------------------------------------
    def ledger_snapshot(self) -> tuple[dict[str, int], list[int], dict[str, int], dict[str, int]]:
        with self._lock:
            return self._world.ledger.snapshot()

    def over_capacity(self) -> list[str]:
        with self._lock:
            return self._world.ledger.over_capacity()

    def state_epoch(self) -> str:
        """Identifies this controller's state (agents tell two controllers apart by it)."""
        return self._core.store.epoch()

    def site_generations(self) -> dict[str, tuple[int, str]]:
        """site → (its last config generation, that config's content hash), as stored."""
        return self._core.store.site_generations()

    def save_site_generations(self, rows: Sequence[tuple[str, int, str]]) -> None:
        self._core.store.save_site_generations(rows)

    def agent_sites(self) -> frozenset[str]:
        """Sites whose agent has connected at some time (kept across restarts): after a restart
        their leases run from the start, so an agent that never returns is noticed."""
        return frozenset(self._core.store.agent_sites())

    def remember_agent_sites(self, sites: Iterable[str]) -> None:
        self._core.store.add_agent_sites(sites, self._core.clock.now())
