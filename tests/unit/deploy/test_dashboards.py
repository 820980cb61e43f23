"""The Grafana dashboards and their provisioning: the four boards, their variables, one datasource.

That every panel's query returns data is checked against a live controller and a real
Prometheus in tests/e2e/test_prometheus_integration.py."""

from __future__ import annotations

import json

import yaml

from tests.support.paths import ROOT

GRAFANA = ROOT / "deploy" / "grafana"


def boards() -> dict[str, dict[str, object]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    found = boards()
    assert set(found) == {"city-overview", "slice-sla", "agents", "controller-health"}
    uids = [b["uid"] for b in found.values()]
    assert len(set(uids)) == len(uids)


def test_variables_for_slice_kind_and_site() -> None:
    names = {
        stem: {v["name"] for v in board["templating"]["list"]}  # type: ignore[index]
        for stem, board in boards().items()
    }
    assert {"kind", "site"} <= names["city-overview"]
    assert {"kind", "slice"} <= names["slice-sla"]
    assert "site" in names["agents"]


def test_panels_use_the_provisioned_datasource_and_do_not_overlap() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "edgeslice.yml").read_text())
    assert [d["uid"] for d in provisioned["datasources"]] == ["prometheus"]
    for stem, board in boards().items():
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:  # type: ignore[attr-defined]
            assert panel["targets"], f"{stem}: {panel['title']} has no query"
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
            g = panel["gridPos"]
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, f"{stem}: {panel['title']} overlaps another panel"
            cells |= mine


def test_dashboard_provider_points_at_a_folder() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "edgeslice.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    assert provider["providers"][0]["options"]["path"]
