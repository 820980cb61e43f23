"""The readable what-if and explain views: counts, not lists; the summary first."""

from __future__ import annotations

from controller.api import reports
from controller.cli import readable
from protos.edgeslice.operator.v1 import operator_pb2 as pb


def _report(cells: int) -> dict[str, object]:
    hit = [f"cell-{i:04d}" for i in range(cells)]
    return {
        "failedSites": ["edge-1"],
        "failedLinks": [],
        "affected": [
            {
                "slice": "moved",
                "lostCells": hit,
                "lostEdges": ["edge-1"],
                "recovered": True,
                "reason": "Admitted",
                "message": "",
                "edges": ["edge-2"],
                "unserved": [],
            },
            {
                "slice": "thin",
                "lostCells": hit[:10],
                "lostEdges": [],
                "recovered": True,
                "reason": "Admitted",
                "message": "",
                "edges": ["edge-2"],
                "unserved": hit[:3],
            },
            {
                "slice": "gone",
                "lostCells": hit[:5],
                "lostEdges": ["edge-1"],
                "recovered": False,
                "reason": "EdgeCapacityExhausted",
                "message": "no room",
                "edges": [],
                "unserved": [],
            },
        ],
        "unaffected": 7,
    }


def test_what_if_shows_counts_not_a_cell_list() -> None:
    text = readable.what_if_text(reports.what_if_message(_report(2000)))
    assert "cell-0001" not in text and len(text) < 1000, text
    assert text.splitlines()[0] == (
        "What if edge-1 failed: 3 slices affected, 7 unaffected "
        "(1 moved, 1 degraded, 1 lost; 2000 cells affected)"
    )
    rows = {
        line.split()[0]: line.split()
        for line in text.splitlines()
        if line.startswith(("moved", "thin", "gone"))
    }
    assert rows["moved"] == ["moved", "moved", "2000", "edge-1", "edge-2", "0", "Admitted"]
    assert rows["thin"] == ["thin", "degraded", "10", "-", "edge-2", "3", "Admitted"]
    assert rows["gone"] == ["gone", "lost", "5", "edge-1", "-", "-", "EdgeCapacityExhausted"]


def test_explain_summary_for_a_rejected_slice() -> None:
    why = "no edge site has 64000m CPU free"
    report = pb.Explanation(
        slice="big",
        generation=2,
        state="Rejected",
        reason="EdgeCapacityExhausted",
        message=why,
        resolved=pb.ResolvedIntent(kind="wifi", latency_ms=20.0),
        conditions=[
            pb.Condition(type="Admitted", status="False", reason="EdgeCapacityExhausted", message=why)
        ],
        decision=pb.AdmissionDecision(status="False", reason="EdgeCapacityExhausted", message=why),
        checks=[pb.AdmissionCheck(check="coverage", passed=True)],
        binding_constraint=pb.BindingConstraint(reason="EdgeCapacityExhausted", message=why),
    )
    lines = readable.explain_text(report).splitlines()
    assert lines[:5] == [
        "Slice:          big (wifi, generation 2, state Rejected)",
        "Decision:       rejected: EdgeCapacityExhausted",
        "Binding:        EdgeCapacityExhausted: no edge site has 64000m CPU free",
        "Edge sites:     - (not placed)",
        "Worst latency:  -",
    ]
    # every condition is listed, the ones not set yet say so
    assert [line.split()[0] for line in lines if line.startswith(readable.CONDITIONS)] == list(
        readable.CONDITIONS
    )
    assert [line.split() for line in lines if line.startswith("Ready")] == [
        ["Ready", "-", "-", "(not", "set", "yet)"]
    ]


def test_three_significant_figures() -> None:
    assert [readable.sig3(v) for v in (1.234567, 12.34567, 0.1234567, 123.4567)] == [
        "1.23",
        "12.3",
        "0.123",
        "123",
    ]
