"""The pure half of the reconcile pass (what each slice needs) and its level-based behaviour."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.core import placement
from controller.core.ledger import Ledger
from controller.core.placement_model import Placement
from controller.runtime.lifecycle import new_slot
from controller.runtime.reconciler import REMOVED, Work, broken_by, needed_work, order_work
from controller.runtime.world import SliceState, Slot
from slices.profiles import resolve
from tests.support.cityfixtures import small_city
from tests.support.runtime_helpers import doc, make_service

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CITY = small_city()


def slot(name: str = "s", kind: str = "iot", state: SliceState = SliceState.PENDING, **kw: object) -> Slot:
    d = doc(name, kind, ["c1"])
    base = new_slot(d, resolve(d), T0)
    return dataclasses.replace(base, state=state, reason="", message="", **kw)  # type: ignore[arg-type]


def placed(s: Slot) -> Slot:
    p = placement.place(s.intent, CITY, Ledger(CITY))
    assert isinstance(p, Placement)
    out = dataclasses.replace(s, placement=p, placed_intent=s.intent, placed_generation=1)
    out.realised = (1, p.spec_hash)
    return out


@pytest.mark.parametrize(
    ("make", "epoch", "topology_down", "expected"),
    [
        (slot, 0, (), Work.ADMIT),
        (lambda: slot(state=SliceState.REJECTED, tried_epoch=0), 0, (), Work.REALISE),
        (lambda: slot(state=SliceState.REJECTED, tried_epoch=0, realised=REMOVED), 0, (), None),
        (lambda: slot(state=SliceState.REJECTED, tried_epoch=0, realised=REMOVED), 1, (), Work.RETRY),
        (lambda: slot(state=SliceState.PREEMPTED, tried_epoch=3, realised=REMOVED), 3, (), None),
        (lambda: placed(slot(state=SliceState.READY)), 0, (), None),
        (lambda: placed(slot(state=SliceState.READY)), 0, ("e1", "e2"), Work.HEAL),
        (
            lambda: dataclasses.replace(placed(slot(state=SliceState.READY)), realised=None),
            0,
            (),
            Work.REALISE,
        ),
        (
            lambda: dataclasses.replace(placed(slot(state=SliceState.DEGRADED)), reason="HealingFailed"),
            0,
            (),
            Work.RECOVER,
        ),
    ],
)
def test_needed_work(make: object, epoch: int, topology_down: tuple[str, ...], expected: Work | None) -> None:
    s = make()  # type: ignore[operator]
    topology = CITY.with_down(sites=topology_down) if topology_down else CITY
    assert needed_work(s, topology, epoch) == expected


def test_spec_change_needs_update_until_rejected_then_waits_for_capacity() -> None:
    s = placed(slot(state=SliceState.READY))
    bigger = doc("s", "iot", ["c1"], sla={"dlMbpsPerCell": 50})
    changed = dataclasses.replace(s, document=bigger, intent=resolve(bigger), generation=2)
    assert needed_work(changed, CITY, 0) == Work.UPDATE
    rejected = dataclasses.replace(changed, reason="UpdateRejected", tried_epoch=0)
    assert needed_work(rejected, CITY, 0) is None
    assert needed_work(rejected, CITY, 1) == Work.UPDATE


def test_broken_by_names_the_element() -> None:
    s = placed(slot(state=SliceState.READY))
    assert s.placement is not None
    edge = s.placement.edge_sites[0]
    assert broken_by(s.placement, CITY) is None
    assert broken_by(s.placement, CITY.with_down(sites=[edge])) == f"site {edge} is out of service"
    assert broken_by(s.placement, CITY.with_down(links=[("a1", "c1")])) == "link a1:c1 is out of service"


def test_order_heals_first_and_retries_by_priority() -> None:
    low = slot("low", "wifi", SliceState.REJECTED)
    high = slot("high", "vehicle", SliceState.REJECTED)
    new = slot("new")
    heal = placed(slot("heal", state=SliceState.READY))
    items = [(Work.RETRY, low), (Work.ADMIT, new), (Work.RETRY, high), (Work.HEAL, heal)]
    assert [s.name for _, s in order_work(items)] == ["heal", "new", "high", "low"]


def test_a_pass_over_many_slices_is_idempotent(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    kinds = ["iot", "vehicle", "wifi"]
    docs = [doc(f"s{i}", kinds[i % 3], [f"c{1 + i % 4}"], priority=i % 50) for i in range(60)]
    svc.apply(docs, "operator:bulk")
    states = {r.state for r in svc.list_slices()}
    assert SliceState.READY in states and SliceState.REJECTED in states
    revision, events = svc.revision, svc.events(limit=10_000)
    assert svc.reconcile() == 0
    assert svc.reconcile() == 0
    assert (svc.revision, svc.events(limit=10_000)) == (revision, events)
    assert svc.over_capacity() == []
    store.close()


def test_batches_release_the_lock_and_finish_the_pass(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    svc.apply([doc(f"s{i}", "iot", [f"c{1 + i % 4}"]) for i in range(25)], "operator:bulk")
    store.close()
    svc2, store2 = make_service(tmp_path)  # a restart: every plan is re-checked
    batches, more, full = 0, True, True
    while more:
        _, more = svc2.reconcile_batch(10, full=full)
        full = False
        batches += 1
    assert batches == 3  # 25 slices, 10 per batch
    assert svc2.reconcile() == 0
    store2.close()
