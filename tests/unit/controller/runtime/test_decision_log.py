"""Every decision in the controller's log: a real ``slicectl controller run --log-format json``
process, slices applied and a site drained over the operator API, the log parsed line by line."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from controller.core.topology_file import write_topology_file
from controller.runtime import decision_log
from tests.support.api_service_rig import slice_yaml
from tests.support.cityfixtures import two_edge_file
from tests.support.controller_process import start_controller


def _log_lines(log: Path) -> tuple[list[dict[str, Any]], list[str]]:
    objects, other = [], []
    for text in log.read_text(encoding="utf-8").splitlines():
        if text.startswith("{"):
            objects.append(json.loads(text))  # every log line is one whole JSON object
        else:
            other.append(text)
    return objects, other


def test_a_real_controller_logs_every_decision_as_json_lines(tmp_path: Path) -> None:
    city = tmp_path / "city.json"
    write_topology_file(two_edge_file(), city)
    proc = start_controller(tmp_path, city, extra=("--no-agents", "--log-format", "json"))
    try:
        with proc.client() as client:
            client.apply([("cars.yaml", slice_yaml("cars"))])
            client.apply([("tight.yaml", slice_yaml("tight", extra="  sla: {latencyMs: 0.2}\n"))])
            assert client.drain("near") == ["cars"]
    finally:
        assert proc.terminate() == 0
    lines, other = _log_lines(proc.log)
    # stdout carries the start and stop announcements; everything logged is JSON
    assert [o.split(" on ")[0] for o in other] == [
        "edgeslice controller serving",
        "edgeslice controller stopped",
    ]
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    decisions = [line for line in lines if line["logger"] == decision_log.LOGGER]
    assert all(d["level"] == "INFO" for d in decisions)
    by_action: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
    for d in decisions:
        by_action.setdefault((d["action"], d["slice"], d["site"]), d)  # the first of each
    admit = by_action[("admit", "cars", None)]
    assert admit["message"].startswith(f"admit slice=cars site=- reason=- actor={admit['actor']}: ")
    assert by_action[("apply", "cars", None)]["actor"].startswith("operator:")
    reject = by_action[("reject", "tight", None)]
    assert reject["reason"] and reject["message"].startswith(
        f"reject slice=tight site=- reason={reject['reason']} "
    )
    drain = by_action[("drain", None, "near")]
    assert "site near drained for maintenance" in drain["message"]
    heal = by_action[("heal", "cars", None)]
    assert heal["seq"] > drain["seq"] > reject["seq"] > admit["seq"]
    # the same events, in the same order, as the audit trail stores them
    seqs = [d["seq"] for d in decisions]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_text_lines_name_the_slice_site_and_reason(caplog: Any) -> None:
    from datetime import UTC, datetime

    from controller.runtime.service import Event

    class Trail:
        def __init__(self) -> None:
            self.events = [
                Event(
                    1,
                    datetime(2026, 1, 1, tzinfo=UTC),
                    "agent:e1",
                    "site-down",
                    None,
                    "e1",
                    "site e1 down: MissedLease; 2 slices affected",
                ),
                Event(
                    2,
                    datetime(2026, 1, 1, tzinfo=UTC),
                    "controller",
                    "preempt",
                    "meters",
                    None,
                    "Preempted: by cars",
                ),
            ]

        first_seq_after = 0

        def wait_events(self, after_seq: int, timeout_s: float) -> list[Event]:
            return [e for e in self.events if e.seq > after_seq]

    with caplog.at_level(logging.INFO, logger=decision_log.LOGGER):
        decision_log.DecisionLog(Trail(), poll_s=3600).close()
    assert [r.getMessage() for r in caplog.records] == [
        "site-down slice=- site=e1 reason=MissedLease actor=agent:e1: site e1 down: MissedLease; 2 slices affected",
        "preempt slice=meters site=- reason=Preempted actor=controller: Preempted: by cars",
    ]
    assert [(r.levelname, r.action, r.site, r.slice) for r in caplog.records] == [
        ("INFO", "site-down", "e1", None),
        ("INFO", "preempt", None, "meters"),
    ]


def test_what_the_controller_decides_while_loading_is_logged(tmp_path: Path) -> None:
    city = tmp_path / "city.json"
    write_topology_file(two_edge_file(), city)
    first = start_controller(tmp_path, city, extra=("--no-agents", "--log-format", "json"))
    try:
        with first.client() as client:
            client.apply([("cars.yaml", slice_yaml("cars"))])
    finally:
        assert first.terminate() == 0
    before = max(line["seq"] for line in _log_lines(first.log)[0] if "seq" in line)
    # The same state on a city whose near edge site is now too small for what cars reserved there.
    write_topology_file(two_edge_file(near_cpu=1000), city)
    second = start_controller(tmp_path, city, extra=("--no-agents", "--log-format", "json"))
    assert second.terminate() == 0
    later = [line for line in _log_lines(second.log)[0] if line.get("seq", 0) > before]
    actions = [(line["action"], line["slice"]) for line in later]
    # the degrade was committed while the service loaded, before anything else started
    assert actions[:2] == [("degrade", "cars"), ("admit", "cars")], actions
    assert "stored placement does not fit the topology" in later[0]["message"]
    assert "served from far" in later[1]["message"]
