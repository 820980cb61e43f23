"""ControllerService against a real SQLite file, the real plan recorder and placement core."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from controller.runtime.service import ControllerService, SliceState
from slices import errors
from slices.status import ConditionStatus, ConditionType, get_condition
from tests.support.cityfixtures import small_city
from tests.support.clock import FakeClock
from tests.support.runtime_helpers import FlakyRealiser, doc, make_service, placement_of


@pytest.fixture
def svc(tmp_path: Path) -> ControllerService:
    service, _ = make_service(tmp_path)
    return service


def _cond(svc: ControllerService, name: str, type_: ConditionType) -> tuple[str, str]:
    c = get_condition(svc.get(name).conditions, type_)
    assert c is not None
    return c.status.value, c.reason


def test_apply_admits_places_realises_and_records(svc: ControllerService, tmp_path: Path) -> None:
    [result] = svc.apply([doc("sensors", "iot", ["c1", "c3"])], "operator:alice")
    assert (result.changed, result.state, result.generation) == (True, SliceState.READY, 1)
    record = svc.get("sensors")
    assert record.placement is not None and {a.cell for a in record.placement.assignments} == {"c1", "c3"}
    for type_ in (ConditionType.ADMITTED, ConditionType.PLACED, ConditionType.REALISED, ConditionType.READY):
        assert _cond(svc, "sensors", type_)[0] == "True"
    assert all(c.observed_generation == 1 for c in record.conditions)
    assert (tmp_path / "realisation" / "sensors.yaml").exists()
    actions = [(e.actor, e.action, e.slice) for e in svc.events()]
    assert actions == [("operator:alice", "apply", "sensors"), ("controller", "admit", "sensors")]


def test_applying_the_same_intent_twice_changes_nothing(svc: ControllerService) -> None:
    svc.apply([doc("sensors", "iot")], "operator:a")
    revision, events, ledger = svc.revision, svc.events(), svc.ledger_snapshot()
    [again] = svc.apply([doc("sensors", "iot")], "operator:a")
    assert again.changed is False and again.generation == 1
    assert svc.reconcile() == 0 and svc.reconcile() == 0
    assert (svc.revision, svc.events(), svc.ledger_snapshot()) == (revision, events, ledger)


def test_bad_input_is_refused_with_a_precise_error_and_no_state_change(svc: ControllerService) -> None:
    svc.apply([doc("sensors", "iot")], "operator:a")
    before = (svc.revision, svc.events(), svc.ledger_snapshot(), [r.name for r in svc.list_slices()])
    good = doc("other", "iot", ["c2"])
    too_loose = doc("fast", "vehicle", sla={"latencyMs": 500})
    with pytest.raises(errors.InvalidSpec, match=r"fast: spec.sla.latencyMs: 500 ms is too loose"):
        svc.apply([good, too_loose], "operator:a")
    with pytest.raises(
        errors.InvalidSpec, match=r"typo: spec.coverage.sites: site 'c9' is not in topology 'small'"
    ):
        svc.apply([good, doc("typo", "iot", ["c9"])], "operator:a")
    with pytest.raises(errors.InvalidSpec, match=r"zoned: spec.coverage.zones: no cell .* has zone 'west'"):
        svc.apply([doc("zoned", "iot", coverage={"zones": ["west"]})], "operator:a")
    with pytest.raises(errors.InvalidSpec, match="appears twice"):
        svc.apply([good, good], "operator:a")
    with pytest.raises(errors.InvalidSpec, match="no NetworkSlice"):
        svc.apply([], "operator:a")
    with pytest.raises(errors.NotFound, match="slice 'ghost' not found"):
        svc.delete("ghost", "operator:a")
    with pytest.raises(errors.NotFound, match="site 'nowhere'"):
        svc.drain("nowhere", "operator:a")
    with pytest.raises(errors.NotFound, match="link c1:c2"):
        svc.link_down(("c1", "c2"), "cut", "agent:x")
    with pytest.raises(errors.InvalidSpec, match="limit"):
        svc.events(limit=0)
    assert (svc.revision, svc.events(), svc.ledger_snapshot(), [r.name for r in svc.list_slices()]) == before


def test_rejection_carries_reason_and_keeps_the_intent(svc: ControllerService) -> None:
    [r] = svc.apply([doc("far", "vehicle", ["c1"], sla={"latencyMs": 0.5})], "operator:a")
    assert r.state == SliceState.REJECTED and r.reason == "LatencyUnreachable"
    assert "bound is 0.5 ms" in r.message
    assert svc.get("far").placement is None
    assert _cond(svc, "far", ConditionType.ADMITTED) == ("False", "LatencyUnreachable")
    assert svc.ledger_snapshot() == ({}, [0] * 7, {}, {})


def test_scale_in_place_and_update_that_does_not_fit_keeps_the_old_size(svc: ControllerService) -> None:
    svc.apply([doc("web", "wifi", ["c1"], sla={"dlMbpsPerCell": 50, "ulMbpsPerCell": 10})], "operator:a")
    old = svc.get("web").placement
    assert old is not None and old.kbps_per_cell == 60_000
    [up] = svc.apply(
        [doc("web", "wifi", ["c1"], sla={"dlMbpsPerCell": 150, "ulMbpsPerCell": 20})], "operator:a"
    )
    assert (up.generation, up.state) == (2, SliceState.READY)
    assert placement_of(svc, "web").kbps_per_cell == 170_000
    assert svc.ledger_snapshot()[0] == {"c1": 170_000}
    # 250 Mbps does not fit a 200 Mbps cell: the 170 Mbps generation keeps running.
    [big] = svc.apply(
        [doc("web", "wifi", ["c1"], sla={"dlMbpsPerCell": 200, "ulMbpsPerCell": 50})], "operator:a"
    )
    assert big.generation == 3 and big.reason == "UpdateRejected"
    record = svc.get("web")
    assert record.placement is not None and record.placement.kbps_per_cell == 170_000
    status, reason = _cond(svc, "web", ConditionType.ADMITTED)
    assert (status, reason) == ("False", "UpdateRejected")
    assert "generation 2 keeps running" in record.message
    assert svc.ledger_snapshot()[0] == {"c1": 170_000}
    assert svc.reconcile() == 0  # not retried until capacity is released
    [down] = svc.apply(
        [doc("web", "wifi", ["c1"], sla={"dlMbpsPerCell": 20, "ulMbpsPerCell": 5})], "operator:a"
    )
    assert (down.generation, down.state, down.reason) == (4, SliceState.READY, "")
    assert svc.ledger_snapshot()[0] == {"c1": 25_000}


def test_delete_releases_exactly_what_it_held(svc: ControllerService, tmp_path: Path) -> None:
    svc.apply([doc("sensors", "iot", ["c1", "c2"])], "operator:a")
    before = svc.ledger_snapshot()
    svc.apply([doc("cars", "vehicle", ["c1", "c3"])], "operator:a")
    svc.delete("cars", "operator:b")
    assert svc.ledger_snapshot() == before
    assert not (tmp_path / "realisation" / "cars.yaml").exists()
    with pytest.raises(errors.NotFound):
        svc.get("cars")
    assert svc.events()[-1].action == "delete" and svc.events()[-1].actor == "operator:b"


def test_preemption_and_readmission_when_capacity_returns(svc: ControllerService) -> None:
    svc.apply([doc("hotspot", "wifi", ["c1"])], "operator:a")  # 120 Mbps, priority 10, preemptible
    [cars] = svc.apply(
        [doc("cars", "vehicle", ["c1"], sla={"dlMbpsPerCell": 100, "ulMbpsPerCell": 25})], "operator:a"
    )
    assert cars.state == SliceState.READY
    hot = svc.get("hotspot")
    assert hot.state == SliceState.PREEMPTED and hot.placement is None
    assert "preempted by slice 'cars'" in hot.message
    assert svc.reconcile() == 0
    svc.delete("cars", "operator:a")
    assert svc.get("hotspot").state == SliceState.READY
    actions = [e.action for e in svc.events(slice_name="hotspot")]
    assert actions == ["apply", "admit", "preempt", "readmit"]


def test_drain_replaces_and_is_remembered_across_restart(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    svc.apply([doc("sensors", "iot", ["c1", "c2"]), doc("cars", "vehicle", ["c3"])], "operator:a")
    assert "e1" in placement_of(svc, "sensors").edge_sites
    users = {r.name for r in svc.list_slices() if r.placement and r.placement.uses_site("e1")}
    moved = svc.drain("e1", "operator:ops")
    assert set(moved) == users and "sensors" in users
    assert all(r.placement is not None and not r.placement.uses_site("e1") for r in svc.list_slices())
    assert svc.drain("e1", "operator:ops") == []  # already drained
    snapshot = svc.ledger_snapshot()
    store.close()
    svc2, store2 = make_service(tmp_path)
    assert svc2.drained() == ["e1"]
    assert svc2.ledger_snapshot() == snapshot
    assert svc2.reconcile() == 0  # realisation re-checked, nothing changes
    svc2.undrain("e1", "operator:ops")
    assert svc2.drained() == []
    store2.close()


def test_site_down_heals_and_degrades_when_impossible(svc: ControllerService) -> None:
    svc.apply([doc("sensors", "iot", ["c1"]), doc("cars", "vehicle", ["c1"])], "operator:a")
    placement = svc.get("cars").placement
    assert placement is not None and len(placement.edge_sites) == 1
    first = placement.edge_sites[0]
    other = "e2" if first == "e1" else "e1"
    affected = svc.site_down(first, "missed lease", f"agent:{first}")
    assert "cars" in affected
    assert placement_of(svc, "cars").edge_sites == (other,)
    assert svc.get("cars").state == SliceState.READY
    # Without the other edge site too there is nowhere to go: degraded with the reason, reservation kept.
    svc.site_down(other, "missed lease", f"agent:{other}")
    cars = svc.get("cars")
    assert cars.state == SliceState.DEGRADED and cars.reason == "HealingFailed"
    assert f"site {other} is out of service" in cars.message
    assert cars.placement is not None
    assert svc.reconcile() == 0
    svc.site_up(other, f"agent:{other}")
    assert svc.get("cars").state == SliceState.READY
    actions = [e.action for e in svc.events()]
    assert "site-down" in actions and "heal" in actions and "degrade" in actions and "site-up" in actions


def test_realiser_failure_keeps_the_intent_and_is_retried(tmp_path: Path) -> None:
    flaky = FlakyRealiser()
    flaky.broken = True
    svc, _ = make_service(tmp_path, extra=[flaky])
    [r] = svc.apply([doc("sensors", "iot")], "operator:a")
    assert r.state == SliceState.ADMITTED and r.reason == "Unreachable"
    assert _cond(svc, "sensors", ConditionType.REALISED) == ("False", "Unreachable")
    assert svc.get("sensors").placement is not None
    flaky.broken = False
    assert svc.reconcile() == 1
    assert svc.get("sensors").state == SliceState.READY and flaky.realised == {"sensors": 1}


def test_restart_has_the_same_slices_placements_and_ledger(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    svc.apply([doc("sensors", "iot", ["c1", "c2", "c3"]), doc("cars", "vehicle", ["c2", "c4"])], "operator:a")
    svc.apply([doc("hotspot", "wifi", ["c4"])], "operator:a")
    before = {r.name: (r.generation, r.state, r.placement) for r in svc.list_slices()}
    ledger = svc.ledger_snapshot()
    store.close()
    svc2, _ = make_service(tmp_path)
    assert {r.name: (r.generation, r.state, r.placement) for r in svc2.list_slices()} == before
    assert svc2.ledger_snapshot() == ledger and svc2.over_capacity() == []


def test_sla_condition_and_replace(svc: ControllerService) -> None:
    svc.apply([doc("cars", "vehicle", ["c1"])], "operator:a")
    svc.set_sla("cars", False, "LatencyHigh", "p99 9 ms > 5 ms", "agent:e1")
    cars = svc.get("cars")
    assert cars.state == SliceState.DEGRADED and cars.reason == "LatencyHigh"
    assert svc.events()[-1].action == "sla-violation"
    revision = svc.revision
    svc.set_sla("cars", False, "LatencyHigh", "p99 9 ms > 5 ms", "agent:e1")
    assert svc.revision == revision  # same report: nothing recorded
    assert svc.replace_slice("cars", "sustained violation", "controller") is True
    assert placement_of(svc, "cars").edge_sites == ("e2",)
    svc.set_sla("cars", True, "", "ok", "agent:e2")
    assert svc.get("cars").state == SliceState.READY
    assert _cond(svc, "cars", ConditionType.SLA_MET) == ("True", "SLAMet")


def test_explain_what_if_status_and_wait_events(svc: ControllerService) -> None:
    svc.apply([doc("cars", "vehicle", ["c1"])], "operator:a")
    why = svc.explain("cars")
    assert why["state"] == "Ready" and why["placement"]["edges"][0]["site"] == "e1"  # type: ignore[index]
    assert all(c["passed"] for c in why["checks"])  # type: ignore[attr-defined]
    report = svc.what_if(["e1"], [])
    assert report["affected"][0]["slice"] == "cars" and report["affected"][0]["recovered"]  # type: ignore[index]
    status = svc.topology_status()
    e1 = next(s for s in status.sites if s.site == "e1")
    assert e1.cpu_reserved == 4000 and e1.slices == 1
    last = svc.events()[-1].seq
    assert svc.wait_events(last, 0.05) == []
    threading.Timer(0.1, lambda: svc.drain("e2", "operator:x")).start()
    got = svc.wait_events(last, 5.0)
    assert got and got[0].action == "drain"


def test_stored_placement_that_no_longer_fits_is_decided_again(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    svc.apply([doc("cars", "vehicle", ["c1"])], "operator:a")
    store.close()
    # The same file opened on a city whose c1 has less radio than the stored reservation.
    city = small_city()
    source = city.source.model_copy(
        update={
            "sites": tuple(
                s.model_copy(update={"capacity": s.capacity.model_copy(update={"radio_mbps": 50})})
                if s.id == "c1"
                else s
                for s in city.source.sites
            )
        }
    )
    from controller.core.topology import Topology

    smaller = Topology.from_file(source)
    svc2, _ = make_service(tmp_path, topology=smaller)
    assert svc2.over_capacity() == []
    cars = svc2.get("cars")
    assert cars.state == SliceState.PENDING and cars.reason == "PlacementInvalid"
    svc2.reconcile()
    assert svc2.get("cars").state == SliceState.REJECTED
    assert svc2.get("cars").reason == "RadioCapacityExceeded"


def test_fake_clock_times_conditions(tmp_path: Path) -> None:
    clock = FakeClock()
    svc, _ = make_service(tmp_path, clock=clock)
    svc.apply([doc("sensors", "iot")], "operator:a")
    t0 = svc.get("sensors").conditions[0].last_transition_time
    clock.advance(60)
    svc.site_down("e1", "lease", "agent:e1")
    record = svc.get("sensors")
    placed = get_condition(record.conditions, ConditionType.PLACED)
    assert placed is not None and placed.status == ConditionStatus.TRUE
    assert placed.last_transition_time == t0  # still placed: the transition time does not move
    assert record.updated_at <= clock.now()


def test_concurrent_callers_never_double_book(tmp_path: Path) -> None:
    from controller.core.ledger import Ledger

    svc, store = make_service(tmp_path)
    failures: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(8):
                name = f"w{k}-{i}"
                kind = ("wifi", "vehicle", "iot")[(k + i) % 3]
                svc.apply(
                    [doc(name, kind, [f"c{1 + (k + i) % 4}"], priority=(k * 13 + i) % 200)], f"operator:{k}"
                )
                if i % 3 == 2:
                    svc.delete(f"w{k}-{i - 1}", f"operator:{k}")
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures
    records = svc.list_slices()
    assert len(records) == 4 * 8 - 4 * 2
    rebuilt = Ledger.from_placements(small_city(), [r.placement for r in records if r.placement is not None])
    assert rebuilt.snapshot() == svc.ledger_snapshot() and rebuilt.over_capacity() == []
    assert svc.reconcile() == 0
    store.close()


def test_a_refused_update_taken_back_clears_the_refusal(svc: ControllerService) -> None:
    small = doc("web", "wifi", ["c1"], sla={"dlMbpsPerCell": 50, "ulMbpsPerCell": 10})
    svc.apply([small], "operator:a")
    [big] = svc.apply(
        [doc("web", "wifi", ["c1"], sla={"dlMbpsPerCell": 400, "ulMbpsPerCell": 50})], "operator:a"
    )
    assert big.reason == "UpdateRejected" and _cond(svc, "web", ConditionType.ADMITTED)[1] == "UpdateRejected"
    [back] = svc.apply([small], "operator:a")  # generation 3: the spec generation 1 runs
    record = svc.get("web")
    assert (back.generation, record.state, record.reason) == (3, SliceState.READY, "")
    assert _cond(svc, "web", ConditionType.ADMITTED) == ("True", "Admitted")
    admitted = next(c for c in record.conditions if c.type == ConditionType.ADMITTED)
    assert admitted.observed_generation == 3 and "refused update is withdrawn" in admitted.message
    assert svc.reconcile() == 0  # settled
    assert any(e.action == "readmit" and "withdrawn" in e.message for e in svc.events())
