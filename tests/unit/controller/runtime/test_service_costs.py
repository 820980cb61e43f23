"""The service's cheap paths give the same answers as the plain ones: a derived topology after a
failure equals one built from scratch, a ledger trial leaves no trace, the S-NSSAI index follows
the admitted set, a batch of site failures is one recorded decision, and the cached
``topology_status()`` moves with every change."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.core import admission
from controller.core.citygen import generate_city
from controller.core.ledger import Ledger
from controller.core.placement_model import Reservation
from controller.core.topology import Topology
from controller.core.topology_file import SiteKind
from controller.runtime.service import ControllerService, SliceState
from controller.runtime.store import Store
from slices import errors
from slices.intent import NetworkSlice
from slices.profiles import resolve
from tests.support.clock import FakeClock
from tests.support.runtime_helpers import doc, make_service, placement_of


@pytest.fixture(scope="module")
def city() -> Topology:
    return Topology.from_file(generate_city(600, seed=3))


def _routing(topo: Topology) -> tuple[object, ...]:
    return (
        {c: topo.homes(c) for c in topo.cells},
        {e: (dist, paths) for e, (dist, paths) in topo._trees.items()},
        [topo.nearest_routes(c, 4) for c in topo.cells[:200]],
        [topo.routes(c, 20.0) for c in topo.cells[:200]],
        sorted(tuple(sorted(e)) for e in topo._transport.edges),
    )


def test_derived_topology_routes_exactly_like_a_full_build(city: Topology) -> None:
    rng = random.Random(7)
    transport = [s.id for s in city.sites.values() if s.kind != SiteKind.CELL]
    for _ in range(6):
        sites = rng.sample(city.cells, 5) + rng.sample(transport, rng.randrange(0, 3))
        links = [ln.key for ln in rng.sample(city.links, 12)]
        warm = city.with_down(sites[:2], links[:3])  # caches filled on a derived topology first
        for c in city.cells[:200]:
            warm.nearest_routes(c, 4)
        derived = warm.with_down(sites, links)
        built = Topology(city.source, city.sites, city.links, frozenset(sites), frozenset(links))
        assert derived.down_sites == built.down_sites and derived.down_links == built.down_links
        assert _routing(derived) == _routing(built)


def test_derived_topology_reuses_trees_when_only_cells_fail(city: Topology) -> None:
    down = city.with_down([city.cells[0]])
    assert down._trees is city._trees  # a cell carries no transit: no route tree is searched again
    assert down.homes(city.cells[0]) == [] and not down.is_up(city.cells[0])
    with pytest.raises(errors.NotFound):
        city.with_down(["no-such-site"])


def test_ledger_trial_is_undone_even_when_it_fails(city: Topology) -> None:
    ledger = Ledger(city)
    cell = city.cells[0]
    ledger.reserve("a", Reservation(radio_kbps={cell: 1000}, link_kbps={0: 50}, cpu_millicores={"x": 5}))
    before = ledger.snapshot(), dict(ledger.held)
    with ledger.trial():
        ledger.release("a")
        with ledger.trial():  # nested trials undo only their own changes
            ledger.reserve("b", Reservation(radio_kbps={cell: 7}))
        assert "b" not in ledger.held and "a" not in ledger.held
        ledger.reserve("c", Reservation(link_kbps={0: 9}))
    assert (ledger.snapshot(), dict(ledger.held)) == before
    with pytest.raises(RuntimeError), ledger.trial():
        ledger.release("a")
        raise RuntimeError("boom")
    assert (ledger.snapshot(), dict(ledger.held)) == before


def test_admitted_slices_index_follows_every_change() -> None:
    def intent(name: str, sd: str) -> tuple[object, ...]:
        body = {"kind": "iot", "snssai": {"sst": 3, "sd": sd}, "coverage": {"sites": ["c1"]}}
        return (resolve(NetworkSlice.model_validate({"metadata": {"name": name}, "spec": body})), None)

    admitted = admission.AdmittedSlices()
    admitted["a"] = intent("a", "000001")  # type: ignore[assignment]
    admitted.update({"b": intent("b", "000001"), "c": intent("c", "000002")})
    assert admitted.by_snssai == {"3-000001": {"a", "b"}, "3-000002": {"c"}}
    admitted["b"] = intent("b", "000003")  # type: ignore[assignment]
    del admitted["a"]
    admitted.pop("c")
    assert admitted.pop("zz", None) is None
    assert admitted.by_snssai == {"3-000003": {"b"}}
    copy = admission.AdmittedSlices(admitted)
    copy.clear()
    assert not copy.by_snssai and admitted.by_snssai == {"3-000003": {"b"}}


def test_snssai_check_same_with_index_or_plain_mapping(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    try:
        svc.apply([doc("one", "iot", ["c1"])], "operator:a")
        clash = NetworkSlice.model_validate(
            {
                "metadata": {"name": "two"},
                "spec": {
                    "kind": "iot",
                    "snssai": svc.get("one").document.spec.snssai.model_dump(),  # type: ignore[union-attr]
                    "coverage": {"sites": ["c2"]},
                },
            }
        )
        svc.apply([clash], "operator:a")
        two = svc.get("two")
        assert two.state == SliceState.REJECTED and two.reason == "SnssaiConflict"
        world = svc._world
        ctx = admission.Context(resolve(clash), world.topology, world.ledger, world.admitted)
        plain = admission.Context(resolve(clash), world.topology, world.ledger, dict(world.admitted))
        assert admission.check_snssai_unique(ctx) == admission.check_snssai_unique(plain) is not None
    finally:
        store.close()


def test_sites_down_is_one_decision_and_heals_once(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    try:
        svc.apply([doc("cars", "vehicle", ["c1"]), doc("meters", "iot", ["c3"])], "operator:a")
        before = svc.revision
        cells_down = ["c2", "c4"]
        affected = svc.sites_down([(c, "LeaseExpired") for c in cells_down], "controller")
        assert affected == []  # nobody covers c2 or c4
        assert svc.revision == before + 1  # both site-down records in one transaction
        events = [e for e in svc.events() if e.action == "site-down"]
        assert [(e.site, e.actor) for e in events] == [("c2", "controller"), ("c4", "controller")]
        assert svc.sites_down([("c2", "again")], "controller") == []  # already down: nothing recorded
        assert svc.revision == before + 1
        with pytest.raises(errors.NotFound):
            svc.sites_down([("c1", "x"), ("nowhere", "x")], "controller")
        assert svc.topology().is_up("c1")  # refused before anything was recorded
        edge = placement_of(svc, "cars").edge_sites[0]
        affected = svc.sites_down([(edge, "LeaseExpired")], "controller")
        assert "cars" in affected
        assert edge not in placement_of(svc, "cars").edge_sites
        assert svc.over_capacity() == []
    finally:
        store.close()


def test_topology_status_cached_until_state_moves(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    try:
        first = svc.topology_status()
        assert svc.topology_status() is first  # nothing moved: the same answer
        svc.apply([doc("cars", "vehicle", ["c1"])], "operator:a")
        placed = svc.topology_status()
        assert placed is not first
        c1 = next(s for s in placed.sites if s.site == "c1")
        assert c1.radio_reserved_kbps > 0 and c1.slices == 1
        svc.site_down("c2", "lease", "agent:c2")
        down = svc.topology_status()
        c2 = next(s for s in down.sites if s.site == "c2")
        assert not c2.up and c2.reason == "lease"
        svc.delete("cars", "operator:a")
        svc.site_up("c2", "agent:c2")
        again = svc.topology_status()
        assert again.sites == first.sites and again.link_utilisation == ()
        assert [s.site for s in again.sites] == list(svc.topology().sites)  # topology order kept
        # A fresh service over the same state file computes the same figures from scratch.
        svc.apply([doc("cars", "vehicle", ["c1"])], "operator:a")
        status = svc.topology_status()
        store.close()
        fresh = ControllerService(svc.topology(), Store.open(tmp_path / "state.db"), [], FakeClock())
        assert fresh.topology_status() == status
    finally:
        store.close()


#: Every site's figures and state, the reasons, and the loaded links busiest first.
Figures = tuple[list[tuple[Any, ...]], dict[str, str], list[tuple[Any, int, int]]]


def _plain_status(svc: ControllerService) -> Figures:
    """Every site's figures and state, the reasons, and the loaded links busiest first, computed
    plainly from the ledger's dictionaries, the world's sets and the slices' placements."""
    from controller.runtime.reconciler import placement_uses

    world = svc._world
    ledger, topo = world.ledger, world.base
    users: dict[str, int] = {}
    for r in svc.list_slices():
        if r.placement is not None:
            for n in placement_uses(r.placement)[0]:
                users[n] = users.get(n, 0) + 1
    sites = [
        (
            sid,
            s.kind.value,
            sid not in world.down_sites,
            sid in world.drained_sites,
            sid in world.cordoned_sites,
            ledger.cpu_millicores.get(sid, 0),
            s.cpu_millicores,
            ledger.memory_mib.get(sid, 0),
            s.memory_mib,
            ledger.radio_kbps.get(sid, 0),
            s.radio_kbps,
            users.get(sid, 0),
        )
        for sid, s in topo.sites.items()
    ]
    reasons = {
        sid: "Drained"
        if sid in world.drained_sites
        else world.down_sites.get(sid, "") or ("Cordoned" if sid in world.cordoned_sites else "")
        for sid in topo.sites
    }
    loaded = [
        (ln.key, ledger.link_kbps[ln.index], ln.bandwidth_kbps)
        for ln in topo.links
        if ledger.link_kbps[ln.index]
    ]
    return sites, {k: v for k, v in reasons.items() if v}, sorted(loaded, key=lambda e: (-e[1] / e[2], e[0]))


def _status_figures(svc: ControllerService) -> Figures:
    status = svc.topology_status()
    sites = [
        (
            x.site,
            x.kind,
            x.up,
            x.drained,
            x.cordoned,
            x.cpu_reserved,
            x.cpu_capacity,
            x.memory_reserved,
            x.memory_capacity,
            x.radio_reserved_kbps,
            x.radio_capacity_kbps,
            x.slices,
        )
        for x in status.sites
    ]
    assert all(
        type(v) is int for x in status.sites for v in (x.cpu_reserved, x.radio_reserved_kbps, x.slices)
    )
    return sites, {x.site: x.reason for x in status.sites if x.reason}, list(status.link_utilisation)


def test_topology_status_from_the_capacity_view_equals_the_plain_figures(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    try:
        steps: list[Callable[[], object]] = [
            lambda: svc.apply(
                [
                    doc("cars", "vehicle", ["c1"]),
                    doc("meters", "iot", ["c3"]),
                    doc("web", "wifi", ["c2", "c4"]),
                ],
                "operator:a",
            ),
            lambda: svc.drain("e2", "operator:a"),
            lambda: svc.cordon("c4", "operator:a"),
            lambda: svc.site_down("c3", "lease", "agent:c3"),
            lambda: svc.cordon("e2", "operator:a"),  # drained and cordoned: the reason stays Drained
            lambda: svc.undrain("e2", "operator:a"),
            lambda: svc.delete("meters", "operator:a"),
            lambda: svc.site_up("c3", "agent:c3"),
            lambda: svc.uncordon("c4", "operator:a"),
            lambda: svc.apply([doc("cams", "wifi", ["c3", "c4"])], "operator:a"),
        ]
        assert _status_figures(svc) == _plain_status(svc)  # the first answer, nothing placed
        for step in steps:  # each later answer redoes only what moved since the one before
            step()
            assert _status_figures(svc) == _plain_status(svc)
        assert _plain_status(svc)[2]  # links are loaded at the end
        ledger = svc._world.ledger
        assert svc.capacity() is svc.capacity() and svc.capacity().revision == ledger.revision
    finally:
        store.close()
