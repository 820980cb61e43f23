"""The default realisation backend writes readable, idempotent plans and removes them."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from controller.core import placement
from controller.core.ledger import Ledger
from controller.core.placement_model import Placement
from controller.core.topology import Topology
from controller.runtime.plan_recorder import PlanRecorder
from slices.profiles import resolve
from tests.support.runtime_helpers import doc


def test_plan_has_sites_cells_links_and_qos(tmp_path: Path, city: Topology) -> None:
    intent = resolve(doc("cars", "vehicle", ["c1", "c3"]))
    p = placement.place(intent, city, Ledger(city))
    assert isinstance(p, Placement)
    rec = PlanRecorder(tmp_path, city)
    result = rec.realise(intent, p, 3)
    assert result.ok and result.reason == "Applied"
    plan = yaml.safe_load((tmp_path / "cars.yaml").read_text())
    assert plan["kind"] == "RealisationPlan" and plan["generation"] == 3
    assert plan["qos"]["fiveQI"] == 83 and plan["qos"]["arp"]["priorityLevel"] == 5
    assert plan["qos"]["arp"]["preemptionVulnerability"] == "NOT_PREEMPTABLE"
    assert {c["cell"]: c["radioShare"] for c in plan["cells"]} == {"c1": 0.375, "c3": 0.375}  # 75 of 200 Mbps
    edges = {e["site"]: e for e in plan["edgeSites"]}
    assert sum(e["cpuMillicores"] for e in edges.values()) == sum(e.cpu_millicores for e in p.edges)
    assert all(w["image"] == "eclipse/zenoh:1.0.0" for e in edges.values() for w in e["workloads"])
    links = {ln["link"]: ln["bandwidthKbps"] for ln in plan["links"]}
    expected: dict[str, int] = {}
    for a in p.assignments:
        for u, v in a.link_keys():
            expected[f"{u}:{v}"] = expected.get(f"{u}:{v}", 0) + 75_000
    assert links == expected


def test_idempotent_then_removed(tmp_path: Path, city: Topology) -> None:
    intent = resolve(doc("cars", "vehicle", ["c1"]))
    p = placement.place(intent, city, Ledger(city))
    assert isinstance(p, Placement)
    rec = PlanRecorder(tmp_path / "plans", city)
    rec.realise(intent, p, 1)
    path = tmp_path / "plans" / "cars.yaml"
    stamp = path.stat().st_mtime_ns
    os.utime(path, ns=(stamp - 10_000_000, stamp - 10_000_000))
    again = rec.realise(intent, p, 1)
    assert again.ok and rec.writes == 1
    assert path.stat().st_mtime_ns == stamp - 10_000_000  # not rewritten
    rec.realise(intent, p, 2)
    assert rec.writes == 2 and yaml.safe_load(path.read_text())["generation"] == 2
    assert rec.remove("cars").ok and not path.exists()
    assert rec.remove("cars").ok  # removing twice is fine
    assert list((tmp_path / "plans").iterdir()) == []  # no temporary files left


def test_unwritable_folder_is_reported_not_raised(tmp_path: Path, city: Topology) -> None:
    intent = resolve(doc("cars", "vehicle", ["c1"]))
    p = placement.place(intent, city, Ledger(city))
    assert isinstance(p, Placement)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = PlanRecorder(blocker / "plans", city).realise(intent, p, 1)
    assert not result.ok and result.reason == "WriteFailed" and "cannot write" in result.message


def test_a_hand_edited_plan_is_restored(tmp_path: Path, city: Topology) -> None:
    intent = resolve(doc("cars", "vehicle", ["c1"]))
    p = placement.place(intent, city, Ledger(city))
    assert isinstance(p, Placement)
    rec = PlanRecorder(tmp_path, city)
    rec.realise(intent, p, 1)
    path = tmp_path / "cars.yaml"
    original = path.read_text()
    assert original.startswith("# edgeslice realisation plan ")
    path.write_text(original.replace("fiveQI: 83", "fiveQI: 9"))
    assert rec.realise(intent, p, 1).ok and rec.writes == 2
    assert path.read_text() == original
