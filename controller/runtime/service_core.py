"""What every part of :class:`controller.runtime.service.ControllerService` shares.

The service is a facade over a few concept modules (:mod:`~controller.runtime.lifecycle`,
:mod:`~controller.runtime.maintenance`, :mod:`~controller.runtime.progress`,
:mod:`~controller.runtime.views`); each holds this one object: the lock every decision and read
takes, the in-memory world, the store, the clock, the observer and the reconciler that commits.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from controller.core.topology import LinkKey
from controller.runtime.clock import Clock
from controller.runtime.observer import ServiceObserver
from controller.runtime.reconciler import Reconciler
from controller.runtime.store import Store
from controller.runtime.world import Slot, World
from slices import errors


@dataclass
class ServiceCore:
    world: World
    store: Store
    clock: Clock
    observer: ServiceObserver
    reconciler: Reconciler = field(init=False)
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: Notified on every commit (watchers of the audit trail wait on it).
    events_cond: threading.Condition = field(default_factory=threading.Condition)

    def notify(self) -> None:
        with self.events_cond:
            self.events_cond.notify_all()

    def slot(self, name: str) -> Slot:
        slot = self.world.slots.get(name)
        if slot is None:
            raise errors.NotFound(f"slice {name!r} not found")
        return slot

    def affected(self, site: str | None = None, link: LinkKey | None = None) -> list[str]:
        """The slices whose placement uses ``site`` or ``link``, in slice order."""
        out = []
        for slot in self.world.slots.values():
            p = slot.placement
            if p is not None and (
                (site is not None and p.uses_site(site)) or (link is not None and p.uses_link(link))
            ):
                out.append(slot.name)
        return out
