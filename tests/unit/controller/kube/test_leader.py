"""Lease-based leader election between two controller instances, over HTTP to the emulator."""

from __future__ import annotations

import threading
import time

from controller.kube.leader import LeaderElector
from tests.support.clock import FakeClock
from tests.support.kube_emulator import KubeEmulator
from tests.support.kube_fixtures import gateway


def _pair(emu: KubeEmulator) -> tuple[LeaderElector, LeaderElector, FakeClock, FakeClock]:
    # Each instance has its own clock, as two pods on two nodes would.
    ca, cb = FakeClock(), FakeClock()
    a = LeaderElector(gateway(emu.url), "controller-a", "edgeslice-system", ca, lease_duration_s=15)
    b = LeaderElector(gateway(emu.url), "controller-b", "edgeslice-system", cb, lease_duration_s=15)
    return a, b, ca, cb


def _lease(emu: KubeEmulator) -> dict[str, object]:
    spec: dict[str, object] = emu.stored("leases", "edgeslice-system")["edgeslice-controller"]["spec"]
    return spec


def test_one_leader_and_a_standby_takes_over_when_renewals_stop(emu: KubeEmulator) -> None:
    a, b, ca, cb = _pair(emu)
    assert a.try_acquire_or_renew() and a.is_leader
    assert not b.try_acquire_or_renew() and not b.is_leader
    assert _lease(emu)["holderIdentity"] == "controller-a"
    # A keeps renewing: B never sees an unchanged record for a whole lease duration.
    for _ in range(5):
        ca.advance(10)
        cb.advance(10)
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    # A stops (crashed): B waits a full lease duration from when it last saw a change.
    cb.advance(10)
    assert not b.try_acquire_or_renew()
    cb.advance(5)
    assert b.try_acquire_or_renew() and b.is_leader
    lease = _lease(emu)
    assert lease["holderIdentity"] == "controller-b" and lease["leaseTransitions"] == 1
    # A comes back: it sees B's fresh lease and stays a standby.
    ca.advance(1)
    assert not a.try_acquire_or_renew() and not a.is_leader


def test_a_leader_that_cannot_renew_steps_down_before_a_standby_may_take_over(emu: KubeEmulator) -> None:
    a, _, ca, _ = _pair(emu)
    assert a.try_acquire_or_renew()
    emu.fail("GET", "/leases/", 503, times=100)
    ca.advance(10)
    assert a.try_acquire_or_renew()  # still within the lease it last renewed
    ca.advance(5)
    assert not a.try_acquire_or_renew() and not a.is_leader


def test_racing_for_an_expired_lease_has_one_winner(emu: KubeEmulator) -> None:
    a, b, _ca, cb = _pair(emu)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    cb.advance(20)
    # Another replica wrote between B's read and B's write: the resourceVersion check refuses B.
    emu.fail("PUT", "/leases/edgeslice-controller", 409, times=1, message="the object has been modified")
    assert not b.try_acquire_or_renew()
    assert _lease(emu)["holderIdentity"] == "controller-a"
    assert b.try_acquire_or_renew()
    assert _lease(emu)["holderIdentity"] == "controller-b"


def test_release_hands_over_without_waiting(emu: KubeEmulator) -> None:
    a, b, _, cb = _pair(emu)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    a.release()
    assert _lease(emu)["holderIdentity"] == ""
    cb.advance(1)
    assert b.try_acquire_or_renew()


def test_run_calls_back_on_leadership_changes(emu: KubeEmulator) -> None:
    a = LeaderElector(gateway(emu.url), "a", "edgeslice-system", FakeClock(), retry_period_s=0.01)
    seen: list[str] = []
    started = threading.Event()
    stop = threading.Event()

    def on_start() -> None:
        seen.append("start")
        started.set()

    thread = threading.Thread(target=a.run, args=(stop, on_start, lambda: seen.append("stop")))
    thread.start()
    assert started.wait(5)
    stop.set()
    thread.join(5)
    assert seen == ["start", "stop"]
    deadline = time.monotonic() + 2
    while _lease(emu)["holderIdentity"] != "" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _lease(emu)["holderIdentity"] == ""
