"""``slicectl top``: the pure screen formatter, the polling loop, and the command against a real
controller (operator API and /metrics endpoint on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from controller.cli import main, top
from controller.process import wiring as runtime
from controller.runtime.service import ControllerService
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors
from telemetry.metrics.exposition import MetricsServer, serve_metrics
from telemetry.metrics.observer import ControllerMetrics
from tests.support.runtime_helpers import loopback_config

NOW = datetime(2026, 11, 27, 20, 0, 0, tzinfo=UTC)


def _slice(
    name: str, kind: str, state: str, sla: str | None = None, reason: str = "", edges: int = 1
) -> pb.Slice:
    s = pb.Slice(name=name, kind=kind, state=state, reason=reason)
    if sla is not None:
        s.conditions.append(
            pb.Condition(type="SLAMet", status=sla, reason="LatencyTooHigh", message="p99 9 ms > 5 ms")
        )
    if state in ("Ready", "Degraded", "Admitted"):
        s.placement.CopyFrom(
            pb.PlacementSummary(
                edges=[pb.EdgeShare(site=f"edge-{i + 1}", cells=3) for i in range(edges)],
                cells_served=3 * edges,
                worst_latency_ms=1.234,
            )
        )
    return s


def _status() -> pb.TopologyStatus:
    return pb.TopologyStatus(
        name="city",
        sites=[
            pb.SiteStatus(
                site="edge-1", kind="edge", up=True, cpu_reserved_millicores=900, cpu_capacity_millicores=1000
            ),
            pb.SiteStatus(site="edge-2", kind="edge", up=False, cpu_capacity_millicores=1000),
            pb.SiteStatus(site="c1", kind="cell", up=True),
        ],
        down_links=[pb.Link(a="a", b="b")],
    )


def test_violated_slices_come_first_then_by_state() -> None:
    slices = [
        _slice("alpha", "wifi", "Ready", "True"),
        _slice("bravo", "iot", "Rejected", reason="RadioCapacity"),
        _slice("cars", "vehicle", "Ready", "False"),
        _slice("delta", "iot", "Degraded"),
    ]
    screen = top.format_top(slices, _status(), now=NOW)
    lines = screen.splitlines()
    assert lines[0] == "edgeslice top  20:00:00  slices 4: 2 Ready, 1 Rejected, 1 Degraded  |  SLA violated 1"
    assert lines[1] == (
        "topology city: 3 sites, 1 down or drained, 1 links down, busiest edge site CPU 90% reserved"
    )
    assert lines[3].split() == ["NAME", "KIND", "STATE", "SLA", "CELLS", "EDGE", "WORST-MS", "REASON"]
    names = [line.split()[0] for line in lines[4:]]
    assert names == ["cars", "delta", "bravo", "alpha"]
    assert "VIOLATED" in lines[4] and "LatencyTooHigh: p99 9 ms > 5 ms" in lines[4]
    assert lines[6].split()[-1] == "RadioCapacity"
    assert lines[7].split()[3:7] == ["met", "3", "edge-1", "1.23"]


def test_kpi_columns_and_limit() -> None:
    slices = [_slice(f"s{i:02d}", "iot", "Ready", "True") for i in range(12)]
    kpis = {"s00": {"latency": 0.5, "throughput": 1.0, "loss": 0.0, "devices": float("inf")}}
    screen = top.format_top(slices, None, kpis, now=NOW, limit=10)
    lines = screen.splitlines()
    assert lines[2].split()[7:11] == ["LAT", "THR", "LOSS", "DEV"]
    assert lines[3].split()[7:11] == ["50%", "100%", "0%", "inf"]
    assert lines[4].split()[7:11] == ["-", "-", "-", "-"]
    assert lines[-4] == "... 2 more slices (in good health) not shown"
    assert lines[-2:] == list(top.KPI_LEGEND)  # what LAT, THR, LOSS and DEV mean, below the table
    assert lines[-2].startswith("LAT LOSS DEV: ") and lines[-1].startswith("THR: ")
    assert "LAT LOSS DEV" not in top.format_top(slices, None, None, now=NOW)  # no KPIs, no legend
    assert top.format_top([], None, now=NOW).endswith("(no slices)")


def test_long_lines_fit_the_terminal_by_cutting_text_never_numbers() -> None:
    screen = top.format_top([_slice("x" * 100, "iot", "Rejected", reason="R" * 100)], None, now=NOW, width=60)
    assert max(len(line) for line in screen.splitlines()[2:]) == 60
    row = screen.splitlines()[3].split()
    assert row[0] == "x" * 7 + "…" and row[-1] == "RRRRR…"  # the name and the reason give way
    # Narrower than the numbers need: the line stays wider than the terminal, every digit whole.
    kpis = {"x" * 100: {"latency": 123456.0, "throughput": 0.5, "loss": 0.0, "devices": 1.0}}
    wide = top.format_top([_slice("x" * 100, "iot", "Ready", "True", edges=2)], None, kpis, now=NOW, width=20)
    row = wide.splitlines()[3].split()
    assert row[4:11] == ["6", "edge-…", "1.23", "123456x", "50%", "0%", "100%"], row


class FakeSource:
    def __init__(self) -> None:
        self.calls = 0

    def list_slices(self) -> list[pb.Slice]:
        self.calls += 1
        return [_slice("cars", "vehicle", "Ready", "True")]

    def topology_status(self) -> pb.TopologyStatus:
        return _status()


def test_loop_redraws_with_clear_and_sleeps_between() -> None:
    screens: list[str] = []
    sleeps: list[float] = []
    source = FakeSource()
    drawn = top.run_top(source, screens.append, interval_s=1.5, iterations=3, sleep=sleeps.append)
    assert (drawn, source.calls, sleeps) == (3, 3, [1.5, 1.5])
    assert all(s.startswith(top.CLEAR) and "cars" in s for s in screens)


def test_unreachable_metrics_endpoint_is_one_clear_error() -> None:
    with pytest.raises(errors.Unavailable, match=r"metrics endpoint http://127.0.0.1:9/metrics"):
        top.run_top(FakeSource(), print, iterations=1, metrics_url="http://127.0.0.1:9/metrics")


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[tuple[runtime.Controller, Any]]:
    observer = ControllerMetrics(CollectorRegistry())
    servers: list[MetricsServer] = []

    def attach(service: ControllerService) -> MetricsServer:
        observer.watch(service)
        servers.append(serve_metrics(observer.registry, 0))
        return servers[-1]

    config = loopback_config(tmp_path, reconcile_interval_s=60)
    c = runtime.Controller(config, observer=observer, attachments=[attach])
    c.start()
    try:
        yield c, servers[0]
    finally:
        c.stop()


def test_top_command_against_a_running_controller(controller: tuple[runtime.Controller, Any]) -> None:
    c, endpoint = controller
    assert c.service is not None
    docs = """
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: cars}
spec: {kind: vehicle, coverage: {zones: [downtown]}}
---
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: meters}
spec: {kind: iot, coverage: {zones: [downtown]}}
"""
    from slices.intent import load_slices

    c.service.apply(load_slices(docs), "operator:test")
    c.service.set_sla("meters", False, "LossTooHigh", "loss 2% > 1%", "agent:test")
    token = (c.config.resolved_state_dir() / "token").read_text().strip()
    result = CliRunner().invoke(
        main,
        ["top", "--once", "--server", c.address, "--token", token, "--metrics-url", endpoint.url],
        env={"EDGESLICE_STATE_DIR": str(c.config.resolved_state_dir())},
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("edgeslice top") and "slices 2" in lines[0] and "SLA violated 1" in lines[0]
    assert "\x1b" not in result.stdout  # --once: no screen clearing
    assert lines[3].split()[0] == "NAME" and "LAT" in lines[3]
    assert lines[4].split()[:2] == ["meters", "iot"] and lines[4].split()[3] == "VIOLATED", lines[4]
    assert "LossTooHigh: loss 2% > 1%" in lines[4]
    assert lines[5].split()[0] == "cars"
