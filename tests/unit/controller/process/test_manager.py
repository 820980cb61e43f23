"""The runnables manager with fakes: one start order, the reverse stop order, leadership gained
and lost, a start that fails stops what its batch had started."""

from __future__ import annotations

import threading

import pytest

from controller.process.manager import LoopThread, Manager, Step


class Fake:
    def __init__(self, name: str, journal: list[str], needs_leadership: bool = False, fail: bool = False):
        self.name = name
        self.needs_leadership = needs_leadership
        self._journal = journal
        self._fail = fail

    def start(self) -> None:
        if self._fail:
            raise RuntimeError(f"{self.name} cannot start")
        self._journal.append(f"start {self.name}")

    def stop(self) -> None:
        self._journal.append(f"stop {self.name}")


def _manager(journal: list[str], *specs: tuple[str, bool]) -> Manager:
    manager = Manager()
    for name, leader in specs:
        manager.add(Fake(name, journal, leader))
    return manager


def test_always_on_start_in_order_and_stop_in_reverse() -> None:
    journal: list[str] = []
    manager = _manager(journal, ("locks", False), ("health", False), ("api", True))
    manager.start()
    assert journal == ["start locks", "start health"]
    assert [r.name for r in manager.running()] == ["locks", "health"]
    manager.stop()
    assert journal[2:] == ["stop health", "stop locks"]
    manager.stop()  # a second stop stops nothing
    assert len(journal) == 4 and manager.running() == []


def test_leader_only_runnables_start_when_leading_and_stop_first() -> None:
    journal: list[str] = []
    manager = _manager(
        journal, ("locks", False), ("service", True), ("elector", False), ("api", True), ("loop", True)
    )
    manager.start()
    assert manager.lead() and manager.leading
    assert not manager.lead()  # already leading: nothing starts twice
    assert journal == ["start locks", "start elector", "start service", "start api", "start loop"]
    journal.clear()
    manager.stop()
    assert journal == ["stop loop", "stop api", "stop service", "stop elector", "stop locks"]
    assert not manager.lead()  # never after stop
    assert journal[-1] == "stop locks"


def test_losing_leadership_stops_the_leader_only_ones_in_reverse() -> None:
    journal: list[str] = []
    manager = _manager(journal, ("elector", False), ("service", True), ("api", True))
    manager.start()
    manager.lead()
    journal.clear()
    manager.step_down()
    assert journal == ["stop api", "stop service"] and not manager.leading
    assert [r.name for r in manager.running()] == ["elector"]
    manager.stop()
    assert journal[-1] == "stop elector"


def test_until_leading_runnables_stop_before_the_leader_only_ones_start() -> None:
    journal: list[str] = []
    manager = Manager()
    manager.add(Fake("health", journal))
    manager.add(Fake("standby", journal), until_leading=True)
    manager.add(Fake("elector", journal))
    manager.add(Fake("api", journal, needs_leadership=True))
    manager.start()
    manager.lead()
    assert journal == ["start health", "start standby", "start elector", "stop standby", "start api"]
    journal.clear()
    manager.stop()
    assert journal == ["stop api", "stop elector", "stop health"]
    with pytest.raises(ValueError, match="api2: a leader-only runnable cannot run until leading"):
        Manager().add(Fake("api2", journal, needs_leadership=True), until_leading=True)


def test_a_start_that_fails_stops_what_its_batch_started() -> None:
    journal: list[str] = []
    manager = Manager()
    manager.add(Fake("locks", journal))
    manager.add(Fake("health", journal))
    manager.add(Fake("ports", journal, fail=True))
    manager.add(Fake("never", journal))
    with pytest.raises(RuntimeError, match="ports cannot start"):
        manager.start()
    assert journal == ["start locks", "start health", "stop health", "stop locks"]
    assert manager.running() == []


def test_a_leader_only_start_that_fails_leaves_the_always_on_ones_running() -> None:
    journal: list[str] = []
    manager = Manager()
    manager.add(Fake("elector", journal))
    manager.add(Fake("service", journal, needs_leadership=True))
    manager.add(Fake("api", journal, needs_leadership=True, fail=True))
    manager.start()
    with pytest.raises(RuntimeError, match="api cannot start"):
        manager.lead()
    assert journal == ["start elector", "start service", "stop service"] and not manager.leading
    assert [r.name for r in manager.running()] == ["elector"]


def test_a_failing_stop_does_not_keep_the_others_running() -> None:
    journal: list[str] = []
    manager = Manager()
    manager.add(Fake("locks", journal))

    def broken() -> None:
        raise OSError("gone")

    manager.add(Step("broken", False, lambda: journal.append("start broken"), broken))
    manager.add(Fake("health", journal))
    manager.start()
    manager.stop()
    assert journal[-2:] == ["stop health", "stop locks"] and manager.running() == []


def test_endpoints_are_what_the_running_runnables_serve() -> None:
    class Serves(Fake):
        def __init__(self, name: str, journal: list[str], leader: bool, where: str) -> None:
            super().__init__(name, journal, leader)
            self.endpoints = {name: where}

    journal: list[str] = []
    manager = Manager()
    manager.add(Serves("health", journal, False, "h:1"))
    manager.add(Serves("operator", journal, True, "o:2"))
    manager.start()
    assert manager.endpoints() == {"health": "h:1"}
    manager.lead()
    assert manager.endpoints() == {"health": "h:1", "operator": "o:2"}


def test_loop_thread_runs_until_stopped() -> None:
    ran = threading.Event()
    ended = threading.Event()

    def target(stop: threading.Event) -> None:
        ran.set()
        stop.wait()
        ended.set()

    loop = LoopThread("loop", target, join_s=5)
    assert loop.needs_leadership
    loop.start()
    assert ran.wait(5)
    loop.stop()
    assert ended.is_set()


def test_a_lead_in_progress_finishes_before_stop_undoes_it() -> None:
    journal: list[str] = []
    entered, release = threading.Event(), threading.Event()

    class Slow(Fake):
        def start(self) -> None:
            entered.set()
            release.wait(5)
            super().start()

    manager = Manager()
    manager.add(Fake("elector", journal))
    manager.add(Slow("service", journal, needs_leadership=True))
    manager.start()
    leader = threading.Thread(target=manager.lead)
    leader.start()
    assert entered.wait(5)
    stopper = threading.Thread(target=manager.stop)
    stopper.start()
    release.set()
    leader.join(5)
    stopper.join(5)
    assert journal == ["start elector", "start service", "stop service", "stop elector"]
