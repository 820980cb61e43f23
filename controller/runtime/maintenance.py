"""Sites and links out of service: the operator's maintenance (drain, cordon and their ends)
and the failures agents report (sites and links down and back up).

A drain or cordon is recorded where the cluster keeps it (the hook, in Kubernetes mode) and in
the store with its audit event; a failure only in the audit trail (agents report it again after
a restart). Either re-routes the topology and lets the reconciler's pass heal what it broke.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from controller.core.topology import LinkKey
from controller.runtime.reconciler import placement_uses, summary
from controller.runtime.service_core import ServiceCore
from controller.runtime.store import Transaction
from controller.runtime.world import SliceState


@dataclass(frozen=True)
class SliceMove:
    """What a drain did to one slice."""

    slice: str
    outcome: str  # "Moved", "Preempted", "NotMoved" or "CellOutOfService"
    message: str


#: Drain outcomes: re-placed off the site; lost its placement to a slice the drain moved; still on
#: the drained site (no room elsewhere: Degraded, healed when room appears); the drained site is
#: one of its covered cells, now out of service (its other cells keep being served).
MOVED, PREEMPTED, NOT_MOVED, CELL_OUT = "Moved", "Preempted", "NotMoved", "CellOutOfService"


@dataclass(frozen=True)
class DrainReport:
    site: str
    already_drained: bool
    moves: tuple[SliceMove, ...]

    @property
    def moved(self) -> list[str]:
        return [m.slice for m in self.moves if m.outcome == MOVED]


class Maintenance:
    def __init__(self, core: ServiceCore) -> None:
        self.core = core
        #: Called as (kind, name, drained, actor) before a drain or undrain is committed; raising
        #: refuses it. The runtime keeps the cluster's copy of the operator state this way.
        self.hook: Callable[[str, str, bool, str], None] | None = None

    def drain(self, site: str, actor: str) -> list[str]:
        """Take a site out of service for maintenance; returns the slices re-placed."""
        return self.drain_report(site, actor).moved

    def drain_report(self, site: str, actor: str) -> DrainReport:
        """Take a site out of service for maintenance; says what became of every slice it
        concerned: moved off it, preempted by a slice that moved, or still on it."""
        with self.core.lock:
            world = self.core.world
            world.base.site(site)
            if site in world.drained_sites:
                return DrainReport(site, True, ())
            affected = self.core.affected(site=site)
            placed_before = {n for n, s in world.slots.items() if s.placement is not None}
            self._commit_maintenance(
                "site",
                site,
                True,
                "drain",
                f"site {site} drained for maintenance; {len(affected)} slices use it",
                actor,
            )
            world.drained_sites.add(site)
            world.retopologise()
            self.core.reconciler.run(world)
            return DrainReport(site, False, tuple(self._moves(site, affected, placed_before)))

    def _moves(self, site: str, affected: Sequence[str], placed_before: set[str]) -> list[SliceMove]:
        world = self.core.world
        out: list[SliceMove] = []
        preempted = {
            n
            for n in placed_before
            if (s := world.slots.get(n)) is not None
            and s.placement is None
            and s.state == SliceState.PREEMPTED
        }
        for name in sorted({*affected, *preempted}):
            slot = world.slots.get(name)
            if slot is None:
                continue
            p = slot.placement
            if name in preempted:
                out.append(SliceMove(name, PREEMPTED, slot.message))
            elif p is None:
                out.append(SliceMove(name, NOT_MOVED, f"lost its placement: {slot.reason}: {slot.message}"))
            elif site in p.unserved:
                out.append(SliceMove(name, CELL_OUT, f"covered cell {site} is out of service; {summary(p)}"))
            elif p.uses_site(site):
                out.append(SliceMove(name, NOT_MOVED, f"{slot.reason or slot.state.value}: {slot.message}"))
            else:
                out.append(SliceMove(name, MOVED, f"now {summary(p)}"))
        return out

    def cordon(self, site: str, actor: str) -> tuple[bool, list[str]]:
        """No new placements on ``site``; nothing moves. Returns (changed, the slices placed there)."""
        with self.core.lock:
            world = self.core.world
            world.base.site(site)
            on_site = self.core.affected(site=site)
            if site in world.cordoned_sites:
                return False, on_site
            self._commit_maintenance(
                "cordon",
                site,
                True,
                "cordon",
                f"site {site} cordoned: no new placements; {len(on_site)} slices stay on it",
                actor,
            )
            world.cordoned_sites.add(site)
            world.recordon()
            return True, on_site

    def uncordon(self, site: str, actor: str) -> bool:
        """Allow new placements on a cordoned site again; False when it was not cordoned."""
        with self.core.lock:
            world = self.core.world
            world.base.site(site)
            if site not in world.cordoned_sites:
                return False
            self._commit_maintenance(
                "cordon", site, False, "uncordon", f"site {site} uncordoned: new placements allowed", actor
            )
            world.cordoned_sites.discard(site)
            world.epoch += 1  # waiting slices may fit now
            world.recordon()
            self.core.reconciler.run(world)
            return True

    def cordoned(self) -> list[str]:
        with self.core.lock:
            return sorted(self.core.world.cordoned_sites)

    def undrain(self, site: str, actor: str) -> list[str]:
        with self.core.lock:
            world = self.core.world
            world.base.site(site)
            if site not in world.drained_sites:
                return []
            self._commit_maintenance("site", site, False, "undrain", f"site {site} back in service", actor)
            world.drained_sites.discard(site)
            world.epoch += 1
            world.retopologise()
            before = {n: s.placement for n, s in world.slots.items()}
            self.core.reconciler.run(world)
            return [
                n for n, s in world.slots.items() if s.placement is not None and before.get(n) != s.placement
            ]

    def _commit_maintenance(
        self, kind: str, site: str, on: bool, action: str, message: str, actor: str
    ) -> None:
        """Record a drain or cordon of ``site`` (``on``) or its end: first where the cluster keeps
        it (the hook, in Kubernetes mode; a refusal there refuses the operation), then in the
        store with its audit event, in one transaction."""
        if self.hook is not None:
            self.hook(kind, site, on, actor)
        at = self.core.clock.now()

        def record(tx: Transaction) -> None:
            if on:
                tx.set_maintenance(kind, site, at, actor)
            else:
                tx.clear_maintenance(kind, site)

        self.core.reconciler.commit([], [(action, None, site, message)], actor, extra=record)

    def sites_down(self, downs: Sequence[tuple[str, str]], actor: str) -> list[str]:
        """Several sites stopped at once, as (site, reason): many leases expiring in one check.

        One decision: their site-down events are committed in one transaction, the topology is
        re-routed once, and one healing pass follows (each re-placement its own transaction, as
        every decision is). Sites already down are skipped; an unknown site is refused before
        anything is recorded. Returns the slices affected, in slice order.
        """
        with self.core.lock:
            world = self.core.world
            for site, _ in downs:
                world.base.site(site)
            fresh: dict[str, str] = {}
            for site, reason in downs:
                if site not in world.down_sites and site not in fresh:
                    fresh[site] = reason or "SiteDown"
            if not fresh:
                return []
            affected: list[str] = []
            hits = dict.fromkeys(fresh, 0)
            for slot in world.slots.values():
                p = slot.placement
                if p is not None:
                    used = placement_uses(p)[0].intersection(fresh)
                    if used:
                        affected.append(slot.name)
                        for site in used:
                            hits[site] += 1
            events: list[tuple[str, str | None, str | None, str]] = [
                ("site-down", None, site, f"site {site} down: {reason}; {hits[site]} slices affected")
                for site, reason in fresh.items()
            ]
            self.core.reconciler.commit([], events, actor)
            world.down_sites.update(fresh)
            world.retopologise()
            self.core.reconciler.run(world)
            return affected

    def site_up(self, site: str, actor: str) -> None:
        with self.core.lock:
            world = self.core.world
            world.base.site(site)
            if site not in world.down_sites:
                return
            self.core.reconciler.commit([], [("site-up", None, site, f"site {site} back up")], actor)
            del world.down_sites[site]
            world.epoch += 1
            world.retopologise()
            self.core.reconciler.run(world)

    def link_down(self, key: LinkKey, reason: str, actor: str) -> list[str]:
        with self.core.lock:
            world = self.core.world
            key = world.base.link(key).key
            if key in world.down_links:
                return []
            affected = self.core.affected(link=key)
            self.core.reconciler.commit(
                [],
                [
                    (
                        "link-down",
                        None,
                        None,
                        f"link {key[0]}:{key[1]} down: {reason}; {len(affected)} slices affected",
                    )
                ],
                actor,
            )
            world.down_links[key] = reason or "LinkDown"
            world.retopologise()
            self.core.reconciler.run(world)
            return affected

    def link_up(self, key: LinkKey, actor: str) -> None:
        with self.core.lock:
            world = self.core.world
            key = world.base.link(key).key
            if key not in world.down_links:
                return
            self.core.reconciler.commit(
                [], [("link-up", None, None, f"link {key[0]}:{key[1]} back up")], actor
            )
            del world.down_links[key]
            world.epoch += 1
            world.retopologise()
            self.core.reconciler.run(world)
