"""ExplainSlice and WhatIf as messages lose nothing: the real service's reports, turned into the
messages the API sends and back into data, are the same JSON text (what ``-o json`` printed when
the reports were JSON strings): the same keys in the same order, ints as ints, floats as floats."""

from __future__ import annotations

import json
from pathlib import Path

from controller.api import reports
from controller.core import citygen
from controller.core.topology import Topology
from slices.intent import load_slices
from tests.support.runtime_helpers import doc, make_service


def _same_json(data: object, back: object) -> None:
    assert json.dumps(back, indent=2) == json.dumps(data, indent=2)


def test_explanations_of_placed_rejected_and_degraded_slices_round_trip(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    try:
        svc.apply(
            [
                doc("cars", "vehicle", ["c1", "c3"]),
                doc("greedy", "wifi", ["c1"], sla={"dlMbpsPerCell": 5000}),
                doc("meters", "iot", ["c2", "c4"]),
            ],
            "operator:a",
        )
        svc.drain("c4", "operator:a")  # meters keeps c2, c4 is out of service
        for name in ("cars", "greedy", "meters"):
            data = svc.explain(name)
            message = reports.explanation_message(data)
            _same_json(data, reports.explanation_data(message))
        assert reports.explanation_message(svc.explain("greedy")).HasField("binding_constraint")
        meters = reports.explanation_message(svc.explain("meters"))
        assert list(meters.placement.unserved_cells) == ["c4"]
        assert [(r.cell, r.nodes[0], r.nodes[-1] == r.edge) for r in meters.placement.routes] == [
            ("c2", "c2", True)
        ]
    finally:
        store.close()


def test_what_if_reports_round_trip(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    try:
        svc.apply([doc("cars", "vehicle", ["c1"]), doc("meters", "iot", ["c3", "c4"])], "operator:a")
        for sites, links in ((["e1"], []), (["e1", "e2"], [("a1", "a2")]), ([], [("c3", "a2")])):
            data = svc.what_if(sites, links)
            message = reports.what_if_message(data)
            _same_json(data, reports.what_if_data(message))
        both = reports.what_if_message(svc.what_if(["e1", "e2"], []))
        assert [(a.slice, a.recovered) for a in both.affected] == [("cars", False), ("meters", False)]
    finally:
        store.close()


def test_a_large_explanation_is_smaller_as_a_message(tmp_path: Path) -> None:
    """One slice over every cell of a generated city: the message is smaller than the JSON text."""
    topology = Topology.from_file(citygen.generate_city(600, seed=3))
    svc, store = make_service(tmp_path, topology)
    try:
        zones = ", ".join(topology.zones())
        svc.apply(
            load_slices(f"metadata: {{name: city}}\nspec: {{kind: iot, coverage: {{zones: [{zones}]}}}}"), "t"
        )
        data = svc.explain("city")
        message = reports.explanation_message(data)
        _same_json(data, reports.explanation_data(message))
        assert len(message.placement.routes) > 100
        assert message.ByteSize() < len(json.dumps(data, separators=(",", ":")))
    finally:
        store.close()
