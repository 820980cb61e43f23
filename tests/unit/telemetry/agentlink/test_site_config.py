"""Desired per-site config from placements, and generations that move only with content."""

from __future__ import annotations

from slices.profiles import default_sd
from telemetry.agentlink import site_config
from tests.support.cityfixtures import dual_homed_city
from tests.support.telemetry_fakes import intent, placement


def _configs(*items: tuple[str, str, list[tuple[str, ...]]]) -> dict[str, site_config.SiteConfig]:
    pairs = []
    for name, kind, routes in items:
        it = intent(name, kind)
        pairs.append((it, placement(it, routes)))
    return site_config.site_configs(dual_homed_city(), pairs)


def test_every_site_gets_a_config_and_only_its_own_slices() -> None:
    configs = _configs(("cars", "vehicle", [("c1", "a1", "e1"), ("c2", "a1", "e1")]))
    assert set(configs) == {"c1", "c2", "a1", "a2", "e1", "e2"}
    assert configs["a2"].slices == () and configs["e2"].slices == ()
    assert configs["c1"].kind == "cell" and configs["e1"].kind == "edge"
    assert [s.name for s in configs["a1"].slices] == ["cars"]


def test_cell_gets_radio_share_route_and_access_link() -> None:
    cars = _configs(("cars", "vehicle", [("c1", "a1", "e1")]))["c1"].slices[0]
    assert (cars.sst, cars.sd) == (4, default_sd("cars"))  # no snssai.sd: its default SD (issue 13)
    assert cars.radio == site_config.RadioConfig(reserved_kbps=75_000, capacity_kbps=1_000_000)
    assert cars.radio.share_ppm == 75_000
    assert cars.links == (site_config.LinkConfig("a1", 75_000, 10_000_000),)
    assert cars.route == ("c1", "a1", "e1") and cars.serving_edge == "e1"
    assert cars.compute is None
    assert cars.qos.five_qi == 83 and cars.qos.latency_budget_ms == 5.0
    assert cars.qos.max_packet_loss == 1e-05 and not cars.qos.preemption_vulnerability


def test_transit_site_sums_bandwidth_per_link_and_edge_gets_compute() -> None:
    configs = _configs(("cars", "vehicle", [("c1", "a1", "e1"), ("c2", "a1", "e1")]))
    a1 = configs["a1"].slices[0]
    assert {ln.peer: ln.reserved_kbps for ln in a1.links} == {"c1": 75_000, "c2": 75_000, "e1": 150_000}
    assert a1.radio is None and a1.compute is None and a1.route == ()
    e1 = configs["e1"].slices[0]
    assert e1.compute is not None
    assert (e1.compute.cells, e1.compute.cpu_millicores, e1.compute.memory_mib) == (2, 4000, 4096)
    assert [(w.name, w.replicas, w.cpu_millicores) for w in e1.compute.workloads] == [("v2x-edge", 2, 2000)]


def test_arp_follows_priority_and_preemptible_slices_are_vulnerable() -> None:
    configs = _configs(("cars", "vehicle", [("c1", "a1", "e1")]), ("wifi", "wifi", [("c1", "a2", "e2")]))
    by_name = {s.name: s for s in configs["c1"].slices}
    assert by_name["cars"].qos.arp_priority_level < by_name["wifi"].qos.arp_priority_level
    assert by_name["wifi"].qos.preemption_vulnerability and not by_name["cars"].qos.preemption_vulnerability
    assert [s.name for s in configs["c1"].slices] == ["cars", "wifi"]  # sorted, stable


def test_generation_moves_only_for_sites_whose_content_changed() -> None:
    gens = site_config.Generations()
    first = gens.update(_configs(("cars", "vehicle", [("c1", "a1", "e1")])))
    assert first == dict.fromkeys(["c1", "c2", "a1", "a2", "e1", "e2"], 1)
    # The same desired state again: nothing moves.
    assert gens.update(_configs(("cars", "vehicle", [("c1", "a1", "e1")]))) == {}
    # A new slice on c2 via a2 to e2: c1, a1 and e1 keep their generation.
    moved = gens.update(
        _configs(("cars", "vehicle", [("c1", "a1", "e1")]), ("iot", "iot", [("c2", "a2", "e2")]))
    )
    assert moved == {"c2": 2, "a2": 2, "e2": 2}
    assert gens.generation("c1") == 1 and gens.generation("e2") == 2
    # The slice re-routed: the sites on the old and on the new path move, the others do not.
    moved = gens.update(
        _configs(("cars", "vehicle", [("c1", "a2", "e2")]), ("iot", "iot", [("c2", "a2", "e2")]))
    )
    assert moved == {"c1": 2, "a1": 2, "e1": 2, "a2": 3, "e2": 3}


def test_content_hash_is_stable_and_sensitive() -> None:
    a = _configs(("cars", "vehicle", [("c1", "a1", "e1")]))["c1"]
    b = _configs(("cars", "vehicle", [("c1", "a1", "e1")]))["c1"]
    c = _configs(("cars", "vehicle", [("c1", "a2", "e2")]))["c1"]
    assert a.content_hash == b.content_hash != c.content_hash
