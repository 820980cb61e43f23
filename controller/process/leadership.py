"""Leadership in the controller process: the realiser gate and the NetworkSlice guard that refuse
writes once this replica stops leading, and the Lease campaign as a runnable."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from controller.core.placement_model import Placement
from controller.process.manager import LoopThread
from controller.runtime.realisation import RealisationResult, Realiser
from controller.runtime.service import ApplyResult, ControllerService, SliceRecord
from slices import errors
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent

if TYPE_CHECKING:
    from controller.kube.leader import LeaderElector


class LeaderGate:
    """A realiser that writes only while this replica leads: one that lost its Lease (but has
    not stopped yet) must not touch the cluster the new leader now owns."""

    def __init__(self, inner: Realiser, leading: Callable[[], bool]) -> None:
        self.inner = inner
        self.name = inner.name
        self._leading = leading

    def realise(self, intent: SliceIntent, placement: Placement, generation: int) -> RealisationResult:
        if not self._leading():
            return RealisationResult(False, "NotLeader", "this replica does not hold the lease")
        return self.inner.realise(intent, placement, generation)

    def remove(self, name: str) -> RealisationResult:
        if not self._leading():
            return RealisationResult(False, "NotLeader", "this replica does not hold the lease")
        return self.inner.remove(name)


class LeaderOnlySlices:
    """The service as the NetworkSlice source sees it, refused once this replica stops leading."""

    def __init__(self, service: ControllerService, active: Callable[[], bool]) -> None:
        self._service = service
        self._active = active

    def _check(self) -> None:
        if not self._active():
            raise errors.Unavailable("not leading: NetworkSlice changes are left to the leader")

    def apply(self, documents: list[NetworkSlice], actor: str) -> list[ApplyResult]:
        self._check()
        return self._service.apply(documents, actor)

    def delete(self, name: str, actor: str) -> None:
        self._check()
        self._service.delete(name, actor)

    def get(self, name: str) -> SliceRecord:
        return self._service.get(name)

    def list_slices(self) -> list[SliceRecord]:
        return self._service.list_slices()


class Campaign:
    """The Lease campaign as a runnable that needs no leadership: ``make_elector`` builds the
    elector when it starts; ``on_started`` and ``on_stopped(stop)`` are called from the campaign
    thread as leadership comes and goes (``stop`` set: the campaign itself is stopping). Its stop
    gives the Lease up, after every leader-only runnable has stopped (they started later)."""

    name = "leader-election"
    needs_leadership = False

    def __init__(
        self,
        make_elector: Callable[[], LeaderElector],
        on_started: Callable[[], None],
        on_stopped: Callable[[threading.Event], None],
    ) -> None:
        self._make_elector = make_elector
        self._on_started = on_started
        self._on_stopped = on_stopped
        self.elector: LeaderElector | None = None
        self._loop = LoopThread(self.name, self._run, needs_leadership=False, join_s=30)

    @property
    def is_leader(self) -> bool:
        return self.elector is not None and self.elector.is_leader

    def start(self) -> None:
        self.elector = self._make_elector()
        self._loop.start()

    def _run(self, stop: threading.Event) -> None:
        assert self.elector is not None
        self.elector.run(stop, self._on_started, lambda: self._on_stopped(stop))

    def stop(self) -> None:
        self._loop.stop()
