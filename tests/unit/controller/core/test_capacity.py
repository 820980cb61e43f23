"""The ledger's capacity view (made incrementally from the previous view) equals the plain
computation from the ledger's reservations, after every kind of change: reserve, release, a
trial that is undone, many changes between two reads, and none."""

from __future__ import annotations

import random

import numpy as np
import pytest

from controller.core.citygen import generate_city
from controller.core.ledger import Ledger
from controller.core.placement_model import Reservation
from controller.core.topology import Topology


@pytest.fixture(scope="module")
def city() -> Topology:
    return Topology.from_file(generate_city(300, seed=5))


def plain_view(ledger: Ledger) -> dict[str, object]:
    """Every figure summed from the held reservations, site by site and link by link."""
    topo = ledger.topology
    radio = dict.fromkeys(topo.sites, 0)
    cpu = dict.fromkeys(topo.sites, 0)
    memory = dict.fromkeys(topo.sites, 0)
    slices = dict.fromkeys(topo.sites, 0)
    link = [0] * len(topo.links)
    for res in ledger.held.values():
        nodes: set[str] = set()
        for cell, kbps in res.radio_kbps.items():
            radio[cell] += kbps
            nodes.add(cell)
        for site, m in res.cpu_millicores.items():
            cpu[site] += m
            nodes.add(site)
        for site, m in res.memory_mib.items():
            memory[site] += m
            nodes.add(site)
        for i, kbps in res.link_kbps.items():
            link[i] += kbps
            nodes.update((topo.links[i].a, topo.links[i].b))
        for n in nodes:
            slices[n] += 1
    busiest = sorted(
        (i for i in range(len(link)) if link[i] > 0),
        key=lambda i: (-link[i] / topo.links[i].bandwidth_kbps, topo.links[i].key),
    )
    return {
        "sites": list(topo.sites),
        "kinds": [s.kind.value for s in topo.sites.values()],
        "links": [ln.key for ln in topo.links],
        "radio": list(radio.values()),
        "cpu": list(cpu.values()),
        "memory": list(memory.values()),
        "slices": list(slices.values()),
        "link": link,
        "radio_free": [ledger.free_radio(s) for s in topo.sites],
        "cpu_free": [ledger.free_cpu(s) for s in topo.sites],
        "memory_free": [ledger.free_memory(s) for s in topo.sites],
        "link_free": [ledger.free_link(i) for i in range(len(topo.links))],
        "busiest": busiest,
    }


def as_plain(ledger: Ledger) -> dict[str, object]:
    v = ledger.capacity()
    assert v.revision == ledger.revision
    return {
        "sites": list(v.sites),
        "kinds": list(v.kinds),
        "links": list(v.links),
        "radio": v.radio_reserved_kbps.tolist(),
        "cpu": v.cpu_reserved_millicores.tolist(),
        "memory": v.memory_reserved_mib.tolist(),
        "slices": v.slices.tolist(),
        "link": v.link_reserved_kbps.tolist(),
        "radio_free": v.radio_free_kbps.tolist(),
        "cpu_free": v.cpu_free_millicores.tolist(),
        "memory_free": v.memory_free_mib.tolist(),
        "link_free": v.link_free_kbps.tolist(),
        "busiest": v.busiest_links.tolist(),
    }


def random_reservation(city: Topology, rng: random.Random) -> Reservation:
    """What a slice over a few random cells, each routed to an edge site, would reserve."""
    res = Reservation()
    kbps = rng.choice([1000, 5000, 20_000])
    for cell in rng.sample(city.cells, rng.randrange(1, 6)):
        routes = city.routes(cell, 50.0)
        if not routes:
            continue
        route = rng.choice(routes)
        res.radio_kbps[cell] = res.radio_kbps.get(cell, 0) + kbps
        for i in route.links:
            res.link_kbps[i] = res.link_kbps.get(i, 0) + kbps
        res.cpu_millicores[route.edge] = res.cpu_millicores.get(route.edge, 0) + rng.randrange(1, 900)
        res.memory_mib[route.edge] = res.memory_mib.get(route.edge, 0) + rng.randrange(1, 900)
    return res


def test_view_equals_the_plain_computation_after_every_change(city: Topology) -> None:
    rng = random.Random(11)
    ledger = Ledger(city)
    assert as_plain(ledger) == plain_view(ledger)  # empty
    names = [f"s{i}" for i in range(40)]
    for step in range(400):
        name = rng.choice(names)
        roll = rng.random()
        if name in ledger.held and roll < 0.45:
            ledger.release(name)
        elif name not in ledger.held and roll < 0.9:
            ledger.reserve(name, random_reservation(city, rng))
        else:
            with ledger.trial():
                ledger.release(name)
                ledger.reserve(f"{name}-trial", random_reservation(city, rng))
                if rng.random() < 0.5:
                    assert as_plain(ledger) == plain_view(ledger)  # a read inside a trial
        if rng.random() < 0.3 or step == 399:  # often several changes between two reads
            assert as_plain(ledger) == plain_view(ledger)


def test_view_is_kept_until_a_reservation_moves_and_cannot_be_changed(city: Topology) -> None:
    ledger = Ledger(city)
    first = ledger.capacity()
    assert ledger.capacity() is first
    cell = city.cells[0]
    ledger.reserve("a", Reservation(radio_kbps={cell: 700}, link_kbps={0: 70}))
    second = ledger.capacity()
    assert second is not first and second.revision > first.revision
    assert first.radio_reserved_kbps[first.site_index[cell]] == 0  # an older view stays as it was
    assert second.radio_reserved_kbps[second.site_index[cell]] == 700
    assert second.layout is first.layout  # what does not move is shared
    with pytest.raises(ValueError):
        second.radio_reserved_kbps[0] = 1
    with pytest.raises(ValueError):
        second.link_free_kbps[0] = 1
    with ledger.trial():
        ledger.release("a")
    assert ledger.revision > second.revision  # a trial moves the revision, though it left no trace
    assert as_plain(ledger) == plain_view(ledger)


def test_copy_has_its_own_view(city: Topology) -> None:
    ledger = Ledger(city)
    ledger.reserve("a", Reservation(cpu_millicores={city.edge_sites[0]: 300}))
    view = ledger.capacity()
    other = ledger.copy()
    other.release("a")
    assert np.array_equal(ledger.capacity().cpu_reserved_millicores, view.cpu_reserved_millicores)
    assert other.capacity().cpu_reserved_millicores.sum() == 0
    assert as_plain(other) == plain_view(other)


def test_after_too_many_changes_the_view_is_made_from_scratch(
    city: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controller.core import ledger as ledger_mod

    monkeypatch.setattr(ledger_mod, "SINCE_VIEW_MAX", 5)
    rng = random.Random(3)
    ledger = Ledger(city)
    first = ledger.capacity()
    overflowed = []
    for round_ in range(6):
        for i in range(rng.choice([2, 9])):  # under the limit, or over it
            name = f"s{round_}-{i}"
            ledger.reserve(name, random_reservation(city, rng))
            if i % 3 == 2:
                ledger.release(name)
        overflowed.append(ledger._since_view is None)
        assert as_plain(ledger) == plain_view(ledger)
    assert any(overflowed) and not all(overflowed)  # both paths taken
    assert ledger.capacity().layout is first.layout
