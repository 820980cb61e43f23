"""Planning many slices: online vs batch order, preemption recorded, re-admission on release,
and a ledger that always equals the sum of the admitted placements."""

from __future__ import annotations

import pytest

from controller.core import planner
from controller.core.admission import Outcome
from controller.core.ledger import Ledger
from controller.core.planner import PlanState
from slices import errors
from slices.profiles import SliceIntent
from tests.support import cityfixtures as cf


def wifi(name: str, mbps: float, priority: int = 10, cell: str = "c1") -> SliceIntent:
    return cf.intent(name, "wifi", cells=[cell], dl_mbps=mbps, ul_mbps=0, priority=priority, cpu=100)


def cars(name: str = "cars", cell: str = "c1") -> SliceIntent:
    return cf.intent(name, "vehicle", cells=[cell], cpu=100)  # 75 Mbps, priority 100


def assert_consistent(state: PlanState) -> None:
    """The ledger is exactly the admitted placements, nothing over capacity, no slice twice."""
    rebuilt = Ledger.from_placements(state.topology, (p for _, p in state.admitted.values()))
    assert state.ledger.snapshot() == rebuilt.snapshot()
    assert state.ledger.over_capacity() == []
    assert set(state.ledger.held) == set(state.admitted)
    assert not set(state.admitted) & set(state.preempted)
    assert not set(state.admitted) & set(state.rejected)


def test_online_admits_in_given_order_and_preempts_when_a_higher_priority_arrives() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=150)
    result = planner.plan([wifi("hotspot", 100), cars()], city)
    got = [(d.slice_name, d.outcome, d.reason) for d in result.decisions]
    assert got == [
        ("hotspot", Outcome.ADMITTED, "Admitted"),
        ("cars", Outcome.ADMITTED, "AdmittedByPreemption"),
        ("hotspot", Outcome.PREEMPTED, "Preempted"),
    ]
    state = result.state
    assert set(state.admitted) == {"cars"}
    intent, why = state.preempted["hotspot"]
    assert intent.name == "hotspot"
    assert why.startswith("preempted by slice 'cars' (priority 100 over 10): ")
    assert "cell c1 has 50 Mbps free, needs 75 Mbps" in why
    assert result.final()["hotspot"].outcome == Outcome.PREEMPTED
    assert_consistent(state)


def test_batch_puts_priority_first_so_nothing_is_preempted() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=150)
    result = planner.plan_batch([wifi("hotspot", 100), cars()], city)
    assert [(d.slice_name, d.outcome) for d in result.decisions] == [
        ("cars", Outcome.ADMITTED),
        ("hotspot", Outcome.REJECTED),
    ]
    assert result.state.pending.keys() == {"hotspot"}


def test_batch_prefers_denser_revenue_within_a_priority() -> None:
    # One cell of 200 Mbps: either the 150 Mbps slice or the two 90s... the 150 one is listed
    # last but earns the most per unit of the radio that runs out.
    city = cf.two_edge_city(cells=1, radio_mbps=200)
    intents = [wifi("a-small", 60), wifi("b-small", 60), wifi("c-big", 190)]
    online = planner.plan(intents, city).state
    batch = planner.plan_batch(intents, city).state
    assert set(online.admitted) == {"a-small", "b-small"}
    assert set(batch.admitted) == {"c-big"}
    assert planner.revenue(intents[2], city) == 190.0


def test_revenue_order_ignores_priority() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=200)
    # Both want most of the one cell; the small one also takes a whole edge site's CPU.
    hungry = cf.intent("high-small", "wifi", cells=["c1"], dl_mbps=60, ul_mbps=0, priority=50, cpu=16_000)
    intents = [wifi("low-big", 150, priority=5), hungry]
    assert set(planner.plan_batch(intents, city).state.admitted) == {"high-small"}
    assert set(planner.plan_batch(intents, city, order="revenue").state.admitted) == {"low-big"}


def test_release_restores_the_ledger_exactly() -> None:
    city = cf.ring_city(aggs=4, cells_per_agg=2, edges_at=(0, 2))
    state = planner.plan([cf.intent("iot-a", zones=["z0", "z1"])], city).state
    before = state.ledger.snapshot()
    planner.plan([cf.intent("cars", "vehicle", zones=["city"])], city, state)
    assert state.ledger.snapshot() != before
    assert planner.release(state, "cars") == []
    assert state.ledger.snapshot() == before
    assert_consistent(state)


def test_preempted_slice_comes_back_when_capacity_returns() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=150)
    state = planner.plan([wifi("hotspot", 100), cars()], city).state
    back = planner.release(state, "cars")
    assert [(d.slice_name, d.outcome) for d in back] == [("hotspot", Outcome.ADMITTED)]
    assert set(state.admitted) == {"hotspot"} and not state.preempted
    assert_consistent(state)


def test_waiting_slices_return_highest_priority_first() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=100)
    state = planner.plan(
        [wifi("blocker", 100, priority=60), wifi("low", 80, priority=5), wifi("high", 80, priority=40)], city
    ).state
    assert set(state.pending) == {"low", "high"}
    back = planner.release(state, "blocker")
    assert [d.slice_name for d in back] == ["high"]
    assert set(state.pending) == {"low"}
    assert_consistent(state)


def test_release_of_unknown_or_waiting_slice() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=100)
    state = planner.plan([wifi("a", 100), wifi("b", 100)], city).state
    assert planner.release(state, "b") == []
    assert "b" not in state.pending and "b" not in state.rejected
    with pytest.raises(errors.NotFound, match="slice 'zzz' is not in the plan"):
        planner.release(state, "zzz")


def test_a_changed_spec_that_does_not_fit_keeps_the_old_placement() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=100)
    state = planner.plan([wifi("a", 50)], city).state
    old = state.admitted["a"][1]
    (d,) = planner.submit(state, wifi("a", 150))
    assert d.outcome == Outcome.REJECTED and d.message.startswith("update rejected, previous placement kept")
    assert state.admitted["a"][1] == old
    (d,) = planner.submit(state, wifi("a", 90))
    assert d.outcome == Outcome.ADMITTED
    assert state.ledger.radio_kbps["c1"] == 90_000
    assert_consistent(state)


def test_plan_batch_with_a_state_updates_it() -> None:
    city = cf.two_edge_city(cells=2)
    state = PlanState.empty(city)
    result = planner.plan_batch([cf.intent("s1", cells=["c1"]), cf.intent("s2", cells=["c2"])], city, state)
    assert result.state is state
    assert set(state.admitted) == {"s1", "s2"}
    assert_consistent(state)


def test_batch_takes_the_callers_idea_of_worth() -> None:
    city = cf.two_edge_city(cells=1, radio_mbps=200)
    hungry = cf.intent("pricey", "wifi", cells=["c1"], dl_mbps=60, ul_mbps=0, cpu=16_000)
    intents = [wifi("cheap", 150), hungry]
    assert set(planner.plan_batch(intents, city, order="revenue").state.admitted) == {"cheap"}

    def worth(intent: SliceIntent, topology: object) -> float:
        return 1000.0 if intent.name == "pricey" else 1.0

    assert set(planner.plan_batch(intents, city, order="revenue", worth=worth).state.admitted) == {"pricey"}
