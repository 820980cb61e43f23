"""A real ``slicectl controller run`` serving site agents, with the reference agent
(``slicectl agent run``) at both edge sites as separate processes: a slice applied is pushed to
the agent of its edge site, which acks it (the controller's metrics show no config lag); when
that agent is killed its lease runs out, the site is marked down and the slice is healed onto
the other edge site, whose agent then gets and acks the new configuration."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.process.endpoints import read_endpoints
from tests.support.controller_process import ControllerProcess, start_agent, start_controller
from tests.support.runtime_helpers import doc
from tests.support.waiting import eventually

LEASE_S = 1.0


def recorded_slices(record_dir: Path, site: str) -> list[str]:
    """The slices the reference agent at ``site`` configured last (what it acked)."""
    try:
        config = json.loads((record_dir / f"{site}.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [s["name"] for s in config.get("slices", [])]


def metric(url: str, prefix: str) -> float | None:
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    for line in body.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ControllerProcess]:
    proc = start_controller(
        tmp_path,
        extra=(
            "--metrics-port",
            "0",
            "--agent-lease",
            str(LEASE_S),
            "--agent-heartbeat",
            "0.2",
            "--agent-policy",
            "edge",  # only the two edge sites run agents here
        ),
    )
    try:
        yield proc
    finally:
        proc.terminate()


def test_agents_ack_config_and_a_dead_edge_agent_heals_its_slice(
    tmp_path: Path, controller: ControllerProcess
) -> None:
    endpoints = read_endpoints(tmp_path / "state")
    assert set(endpoints) == {"operator", "agents", "metrics"}
    eventually("the start line", lambda: "serving on" in controller.log.read_text())
    log = controller.log.read_text()
    assert f"agents on {endpoints['agents']}" in log and f"metrics on {endpoints['metrics']}" in log
    records = tmp_path / "agent-config"
    agents = {
        site: start_agent(site, endpoints["agents"], records, tmp_path / f"{site}.log")
        for site in ("edge-1", "edge-2")
    }
    try:
        with controller.client() as client:
            client.apply(
                [
                    (
                        "cars.yaml",
                        doc("cars", "vehicle", coverage={"zones": ["corridor-1"]}).model_dump_json(
                            by_alias=True
                        ),
                    )
                ]
            )
            [first] = [e.site for e in client.get("cars").placement.edges]
            other = "edge-2" if first == "edge-1" else "edge-1"
            # The edge agent applied the config with the slice and acked it: no generation lag.
            eventually(f"{first}'s agent configures cars", lambda: "cars" in recorded_slices(records, first))
            lag = f'edgeslice_agent_config_generation_lag{{kind="edge",site="{first}"}}'
            eventually("the controller sees the ack", lambda: metric(endpoints["metrics"], lag) == 0.0)
            connected = 'edgeslice_agents{kind="edge",state="connected"}'
            eventually("both edge agents connected", lambda: metric(endpoints["metrics"], connected) == 2.0)

            agents[first].kill()  # SIGKILL: the agent goes silent, as a dead site does
            agents[first].wait(timeout=10)
            started = time.monotonic()
            eventually(
                "the slice is healed onto the other edge site",
                lambda: [e.site for e in client.get("cars").placement.edges] == [other],
            )
            healed_after = time.monotonic() - started
            events = client.events()
            down = next(e for e in events if e.action == "site-down")
            assert down.site == first and down.actor == f"agent:{first}"
            assert f"LeaseExpired: no message from the agent for {LEASE_S:g} s" in down.message
            assert any(e.action == "heal" and e.slice == "cars" and e.seq > down.seq for e in events)
            assert healed_after < 10 * LEASE_S
            # Ready again only once the new edge site's agent has acked the healed config.
            eventually("cars is Ready on the other edge", lambda: client.get("cars").state == "Ready")
            # The surviving edge agent is pushed the healed slice and acks it.
            eventually(f"{other}'s agent configures cars", lambda: "cars" in recorded_slices(records, other))
            lag_other = f'edgeslice_agent_config_generation_lag{{kind="edge",site="{other}"}}'
            eventually(
                "the controller sees the new ack", lambda: metric(endpoints["metrics"], lag_other) == 0.0
            )
        # Both gRPC servers' calls are counted by the metrics interceptors: the killed agent's
        # stream has ended, the other's is still open.
        url = endpoints["metrics"]
        assert (metric(url, 'edgeslice_grpc_server_handled_total{api="operator"') or 0) > 0
        connect = 'api="agent",method="Connect",service="edgeslice.agent.v1.SiteAgent"'
        assert (metric(url, f"edgeslice_grpc_server_started_total{{{connect}}}") or 0) >= 2
        body = urllib.request.urlopen(url, timeout=10).read().decode()
        handled = [  # labels in name order: the status code comes between api and method
            s.value
            for f in text_string_to_metric_families(body)
            for s in f.samples
            if s.name == "edgeslice_grpc_server_handled_total"
            and (s.labels["api"], s.labels["method"]) == ("agent", "Connect")
        ]
        assert sum(handled) >= 1
    finally:
        for proc in agents.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
