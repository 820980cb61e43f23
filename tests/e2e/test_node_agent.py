"""A second agent implementation holds the controller to the contract in agent.proto.

``tests/node_agent/agent.js`` is a minimal site agent written with Node's @grpc/grpc-js from
``protos/edgeslice/agent/v1/agent.proto`` alone (loaded at run time by @grpc/proto-loader: no
generated code, nothing of the Python side). Each test runs the real controller (the
``ControllerService`` on a real SQLite store, ``serve_agents`` on a loopback port, short leases)
and one or more ``node agent.js`` processes, and checks both sides: the events the agent prints
(one JSON line each) and what the controller then says (conditions, the agent registry).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.runtime.agent_view import SessionState
from controller.runtime.clock import RealClock
from controller.runtime.plan_recorder import PlanRecorder
from controller.runtime.service import ControllerService
from controller.runtime.store import Store
from slices.status import ConditionStatus, ConditionType, get_condition
from telemetry import agentlink as agent_service
from telemetry.agentlink.sla import KpiSample
from telemetry.site import certs
from tests.support.cityfixtures import small_city
from tests.support.paths import TESTS
from tests.support.runtime_helpers import doc
from tests.support.waiting import eventually

NODE_AGENT = TESTS / "node_agent"
AGENT_JS = NODE_AGENT / "agent.js"
SETTINGS = agent_service.AgentSettings(
    lease_s=2.0,  # ten heartbeats: margin for a loaded machine
    heartbeat_interval_s=0.2,
    telemetry_interval_s=0.2,
    resend_after_s=0.5,
    sla_window_s=0.5,
    sla_sustain_windows=1_000,  # a violation sets the condition; no re-placement during a test
)
Event = dict[str, Any]

# KPIs inside every SLA of the slices below: a cell's (radio) and an edge site's (processing).
GOOD_CELL = {
    "dl_throughput_mbps": 20.0,
    "ul_throughput_mbps": 5.0,
    "dl_demand_mbps": 20.0,
    "ul_demand_mbps": 5.0,
    "latency_p50_ms": 1.0,
    "latency_p99_ms": 2.0,
    "packet_loss": 0.000001,
    "active_devices": 12,
    "radio_utilisation": 0.4,
}
GOOD_EDGE = {**GOOD_CELL, "latency_p50_ms": 0.5, "latency_p99_ms": 1.0, "active_devices": 0}
GOOD_EDGE["radio_utilisation"] = 0.0


def node_binary() -> str:
    """The node binary, or skip (fail in CI) when it or the agent's npm packages are missing."""
    node = shutil.which("node")
    missing = ""
    if node is None:
        missing = "node is not installed (Debian/Ubuntu: apt-get install nodejs npm)"
    elif not (NODE_AGENT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        missing = "tests/node_agent/node_modules is missing (run `npm ci` in tests/node_agent)"
    if missing:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"{missing}; in CI this test must run, not skip")
        pytest.skip(missing)
    assert node is not None
    return node


class NodeAgent:
    """One ``node agent.js`` process; a thread collects the JSON lines it prints."""

    def __init__(self, node: str, args: list[str], log: Path) -> None:
        self.log = log
        self._log = open(log, "wb")  # noqa: SIM115  (closed in close())
        self.proc = subprocess.Popen(
            [node, str(AGENT_JS), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.events: list[Event] = []
        self._exited = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                ev = {"event": "unparsed", "line": line}
            with self._cond:
                ev["_i"] = len(self.events)
                self.events.append(ev)
                self._cond.notify_all()
        with self._cond:
            self._exited = True
            self._cond.notify_all()

    def wait(
        self, name: str, where: Callable[[Event], bool] = lambda e: True, after: Event | None = None
    ) -> Event:
        """The first event ``name`` (after the event ``after``) for which ``where`` holds; ``name``
        may list several, "config|end"."""
        names = set(name.split("|"))
        start = after["_i"] + 1 if after is not None else 0
        deadline = time.monotonic() + 10.0
        with self._cond:
            while True:
                for ev in self.events[start:]:
                    if ev["event"] in names and where(ev):
                        return ev
                left = deadline - time.monotonic()
                if self._exited or left <= 0:
                    why = "the agent exited" if self._exited else "timed out after 10 s"
                    raise AssertionError(f"no {name!r} event ({why}); {self.describe()}")
                self._cond.wait(left)

    def of(self, name: str) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e["event"] == name]

    def kinds(self) -> list[str]:
        with self._cond:
            return [e["event"] for e in self.events]

    def describe(self) -> str:
        with self._cond:
            # Heartbeats are many and alike: the last one stands for them all.
            shown = [e for e in self.events if e["event"] != "heartbeat"][-30:]
            shown += [e for e in self.events if e["event"] == "heartbeat"][-1:]
            lines = [json.dumps({k: v for k, v in e.items() if k != "_i"}) for e in shown]
        return "events:\n  " + "\n  ".join(lines) + f"\nstderr: {self.log.read_text()[-2000:]}"

    def close(self) -> None:
        """Half-close the stream (stdin closed) and wait for the process to exit."""
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # the agent has exited already
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._log.close()


@dataclass
class Rig:
    tmp: Path
    node: str
    service: ControllerService
    server: agent_service.AgentServer
    target: str
    tag: str = ""  # names this controller's agent files (a test may run several controllers)
    agents: list[NodeAgent] = field(default_factory=list)

    def agent(self, site: str, *flags: str, scenario: dict[str, Any] | None = None) -> NodeAgent:
        n = f"{self.tag}{len(self.agents)}"
        args = ["--target", self.target, "--site", site, *flags]
        if scenario is not None:
            path = self.tmp / f"scenario-{n}.json"
            path.write_text(json.dumps(scenario))
            args += ["--scenario", str(path)]
        if not any(f in flags for f in ("--ca", "--insecure")):
            args.append("--insecure")
        a = NodeAgent(self.node, args, self.tmp / f"agent-{n}-{site[:40]}.log")
        self.agents.append(a)
        return a

    @property
    def registry(self) -> agent_service.AgentRegistry:
        return self.server.registry

    def condition(self, slice_name: str, type_: ConditionType) -> tuple[str, str, str]:
        c = get_condition(self.service.get(slice_name).conditions, type_)
        return (c.status.value, c.reason, c.message) if c else (ConditionStatus.UNKNOWN.value, "", "")

    def sites_of(self, slice_name: str) -> set[str]:
        p = self.service.get(slice_name).placement
        assert p is not None
        return {n for a in p.assignments for n in a.nodes}

    def latest(self, slice_name: str, site: str) -> KpiSample | None:
        """The newest KPI record the controller kept for the slice at the site."""
        samples = self.registry.kpis().get((slice_name, site), [])
        return samples[-1] if samples else None

    def edge_of(self, slice_name: str) -> str:
        p = self.service.get(slice_name).placement
        assert p is not None
        [edge] = p.edge_sites
        return edge


@contextlib.contextmanager
def controller(
    tmp_path: Path,
    tls: agent_service.TlsFiles | None = None,
    state: str = "state.db",
    tag: str = "",
    settings: agent_service.AgentSettings = SETTINGS,
) -> Iterator[Rig]:
    """A controller on the state file ``state`` serving agents on a loopback port."""
    node = node_binary()
    city = small_city()
    store = Store.open(tmp_path / state)
    service = ControllerService(city, store, [PlanRecorder(tmp_path / f"plans{tag}", city)], RealClock())
    # cars: a vehicle slice at cell c1 (served from e1); meters: an IoT slice at c1 and c2.
    service.apply([doc("cars", "vehicle", ["c1"]), doc("meters", "iot", ["c1", "c2"])], "operator:test")
    server = agent_service.serve_agents(service, "127.0.0.1:0", tls=tls, dev=tls is None, settings=settings)
    host = "localhost" if tls else "127.0.0.1"  # the controller's certificate names both; TLS wants a name
    rig = Rig(tmp_path, node, service, server, f"{host}:{server.port}", tag)
    try:
        yield rig
    finally:
        for a in rig.agents:
            a.close()
        server.stop()
        store.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with controller(tmp_path) as r:
        yield r


# -- connect, config, ack, refuse ---------------------------------------------------------------


def test_welcome_comes_first_then_the_site_config_with_the_slices_placed_there(rig: Rig) -> None:
    a = rig.agent("c1", "--no-ack")
    welcome = a.wait("welcome")
    config = a.wait("config")
    assert a.kinds()[:2] == ["connecting", "welcome"] and not a.of("protocol-error")
    assert welcome["site_id"] == "c1"
    assert (welcome["lease_ms"], welcome["heartbeat_interval_ms"], welcome["telemetry_interval_ms"]) == (
        2000,
        200,
        200,
    )
    assert welcome["max_message_bytes"] == SETTINGS.max_message_bytes
    # The limits in force and the controller's identity are advertised (agent.proto: Limits).
    assert welcome["epoch"], "Welcome.epoch is empty"
    assert welcome["max_messages_per_s"] > 0 and welcome["max_message_burst"] > 0
    assert welcome["hello_timeout_ms"] > 0
    assert config["site_id"] == "c1" and config["site_kind"] == "cell" and config["generation"] >= 1
    assert config["slices"] == ["cars", "meters"]  # the whole desired config, sorted by name
    status = rig.registry.status("c1")
    assert status.connected and status.desired_generation == config["generation"]
    assert status.acked_generation == 0 and status.software_version == "edgeslice-node-agent/0.1.0"
    info = rig.registry.agent("c1")
    assert info is not None and info.state == SessionState.CONNECTED
    assert info.instance_id == a.wait("connecting")["instance"] and info.lease_expires_in_s is not None
    # An edge site is sent the slices whose workloads it runs, and only those.
    edge = rig.agent(rig.edge_of("cars"), "--no-ack").wait("config")
    assert edge["site_kind"] == "edge" and "cars" in edge["slices"]
    assert all(rig.edge_of(s) == edge["site_id"] for s in edge["slices"])


def test_an_acked_config_shows_as_acked_and_the_slice_is_realised_once_every_site_acked(rig: Rig) -> None:
    sites = sorted(rig.sites_of("cars"))  # c1, its aggregation site and its edge site
    first = rig.agent(sites[0])
    ack = first.wait("ack")
    config = first.wait("config")
    assert ack["ok"] and ack["generation"] == config["generation"]
    eventually(
        f"{sites[0]} shows its ack",
        lambda: rig.registry.status(sites[0]).acked_generation == ack["generation"],
    )
    status = rig.registry.status(sites[0])
    assert status.desired_generation == ack["generation"] and status.config_lag_s == 0.0
    assert status.nack_reason == ""
    # One site of several has acked: the slice is not realised yet.
    eventually(
        "cars awaits the other acks",
        lambda: rig.condition("cars", ConditionType.REALISED)[:2] == ("False", "AwaitingAcks"),
    )
    assert rig.condition("cars", ConditionType.READY)[0] == "False"
    for site in sites[1:]:
        rig.agent(site).wait("ack")
    eventually("cars is realised", lambda: rig.condition("cars", ConditionType.REALISED)[0] == "True")
    assert all(rig.registry.status(s).acked_generation >= 1 for s in sites)


def test_a_heartbeat_reporting_an_older_generation_unacks_and_the_config_is_sent_again(rig: Rig) -> None:
    a = rig.agent("c1", "--rollback-after-acks", "2")  # its backend loses the second config it acks
    first = a.wait("ack")
    eventually("the first ack", lambda: rig.registry.status("c1").acked_generation == first["generation"])
    a.wait("heartbeat", after=first)  # a heartbeat reports the first generation in effect
    rig.service.apply([doc("lamps", "iot", ["c1"])], "operator:test")  # a change at the cell
    second = a.wait("ack", lambda e: e["generation"] > first["generation"])
    rollback = a.wait("rollback")
    assert rollback["applied"] == first["generation"]
    # Its heartbeats now report the older generation: not acked any more, the config is sent again.
    again = a.wait("config", lambda e: e["generation"] == second["generation"], after=rollback)
    assert "lamps" in again["slices"]
    eventually(
        "c1 is no longer acked", lambda: rig.registry.status("c1").acked_generation != second["generation"]
    )
    assert rig.registry.status("c1").desired_generation == second["generation"]
    assert rig.condition("lamps", ConditionType.REALISED)[0] == "False"


def test_a_refused_config_is_shown_with_the_site_and_the_agents_reason(rig: Rig) -> None:
    edge = rig.edge_of("cars")
    a = rig.agent(edge, "--refuse", "BackendUnavailable", "--refuse-message", "no GPU left")
    ack = a.wait("ack")
    assert ack == {**ack, "ok": False, "reason": "BackendUnavailable"}
    eventually(
        "the refusal is recorded", lambda: rig.registry.status(edge).nack_reason == "BackendUnavailable"
    )
    status = rig.registry.status(edge)
    assert status.nack_message == "no GPU left" and status.acked_generation == 0
    info = rig.registry.agent(edge)
    assert info is not None and info.last_refusal is not None
    refusal = info.last_refusal
    assert (refusal.generation, refusal.reason, refusal.message) == (
        ack["generation"],
        "BackendUnavailable",
        "no GPU left",
    )
    eventually(
        "cars shows the refusal",
        lambda: rig.condition("cars", ConditionType.REALISED)[:2] == ("False", "ConfigRefused"),
    )
    _, _, message = rig.condition("cars", ConditionType.REALISED)
    assert edge in message and "BackendUnavailable" in message
    assert rig.condition("cars", ConditionType.READY)[0] == "False"
    # ... and as an event on the slice (agent.proto: "an event").
    eventually(
        "an event on cars names the refusal",
        lambda: any("BackendUnavailable" in e.message for e in rig.service.events(slice_name="cars")),
    )
    assert a.of("end") == []  # a refusal is no reason to end the session


def test_a_long_refusal_message_is_cut_not_refused(rig: Rig) -> None:
    edge = rig.edge_of("cars")
    a = rig.agent(edge, "--refuse", "Unsupported", "--refuse-message", "x" * 3000)
    ack = a.wait("ack")
    eventually("the refusal is recorded", lambda: rig.registry.status(edge).nack_reason == "Unsupported")
    info = rig.registry.agent(edge)
    assert info is not None and info.last_refusal is not None
    assert info.last_refusal.message == "x" * 2000  # agent.proto: at most 2,000, longer is cut
    a.wait("heartbeat", after=a.wait("heartbeat", after=ack))
    assert rig.registry.status(edge).connected and a.of("end") == []


# -- telemetry ----------------------------------------------------------------------------------


def test_good_kpis_from_a_cell_and_an_edge_site_are_kept_and_the_sla_is_met(rig: Rig) -> None:
    edge = rig.edge_of("cars")
    # The cell reports one slice as a row and the other as columns; the edge site column-wise.
    cell_batch = {"rows": [{"slice": "cars", **GOOD_CELL}], "columns": [{"slice": "meters", **GOOD_CELL}]}
    cell = rig.agent("c1", scenario={"telemetry": [cell_batch]})
    edge_slices = [s for s in ("cars", "meters") if rig.edge_of(s) == edge]
    edge_agent = rig.agent(
        edge, scenario={"telemetry": [{"columns": [{"slice": s, **GOOD_EDGE} for s in edge_slices]}]}
    )
    others = [
        rig.agent(s) for s in sorted(rig.sites_of("cars") | rig.sites_of("meters")) if s not in {"c1", edge}
    ]
    cell.wait("telemetry")
    edge_agent.wait("telemetry")
    eventually("the cell's KPIs are kept", lambda: rig.latest("meters", "c1") is not None)
    eventually("the cell's rows are kept", lambda: rig.latest("cars", "c1") is not None)
    eventually("the edge's KPIs are kept", lambda: rig.latest("cars", edge) is not None)
    at_cell, at_edge = rig.latest("cars", "c1"), rig.latest("cars", edge)
    assert at_cell is not None and at_edge is not None
    assert (at_cell.dl_mbps, at_cell.latency_p99_ms, at_cell.active_devices) == (20.0, 2.0, 12)
    assert (at_cell.radio_utilisation, at_cell.packet_loss) == (0.4, 0.000001)
    assert (at_edge.latency_p50_ms, at_edge.latency_p99_ms, at_edge.active_devices) == (0.5, 1.0, 0)
    eventually("cars meets its SLA", lambda: rig.condition("cars", ConditionType.SLA_MET)[0] == "True")
    assert not cell.of("rejection") and not edge_agent.of("rejection")
    assert all(not o.of("end") for o in (cell, edge_agent, *others))


def test_bad_kpis_from_an_edge_site_fail_the_sla(rig: Rig) -> None:
    edge = rig.edge_of("cars")
    bad = {**GOOD_EDGE, "latency_p50_ms": 400.0, "latency_p99_ms": 900.0, "packet_loss": 0.5}
    a = rig.agent(edge, scenario={"telemetry": [{"columns": [{"slice": "cars", **bad}]}]})
    a.wait("telemetry")
    eventually("the edge's KPIs are kept", lambda: rig.latest("cars", edge) is not None)
    kept = rig.latest("cars", edge)
    assert kept is not None and (kept.latency_p99_ms, kept.packet_loss) == (900.0, 0.5)
    eventually("cars fails its SLA", lambda: rig.condition("cars", ConditionType.SLA_MET)[0] == "False")
    _, reason, message = rig.condition("cars", ConditionType.SLA_MET)
    assert reason in {"LatencyExceeded", "PacketLossExceeded"} and edge in message
    assert not a.of("rejection") and not a.of("end")


def _marked(**bad: Any) -> dict[str, Any]:
    """The edge site's cars record in a bad batch: p99 7 ms (the good batches say 3 ms), so a
    record kept from a bad batch would show."""
    return {"slice": "cars", **GOOD_EDGE, "latency_p99_ms": 7.0, **bad}


def _row_field(name: str) -> Callable[[str], bool]:
    return lambda f: f.startswith("slices") and f.endswith(name)


def test_connected_agents_without_kpis_leave_the_sla_unknown(rig: Rig) -> None:
    agents = [rig.agent(s) for s in sorted(rig.sites_of("cars"))]  # they ack and heartbeat, no KPIs
    for a in agents:
        a.wait("ack")
    # Several SLA windows (0.5 s) pass while they heartbeat.
    agents[0].wait("heartbeat", lambda e: e["sequence"] >= 6)
    assert rig.condition("cars", ConditionType.SLA_MET)[:2] == ("Unknown", "NoTelemetry")


@pytest.mark.parametrize(
    ("batch", "reason", "field_ok"),
    [
        pytest.param(
            {"rows": [_marked(latency_p99_ms="NaN")]}, "NotFinite", _row_field("latency_p99_ms"), id="nan-row"
        ),
        pytest.param(
            {"columns": [_marked(latency_p99_ms="NaN")]},
            "NotFinite",
            lambda f: f == "columns.latency_p99_ms[0]",
            id="nan-column",
        ),
        pytest.param(
            {"columns": [_marked(latency_p50_ms="Infinity")]},
            "NotFinite",
            lambda f: f == "columns.latency_p50_ms[0]",
            id="infinity",
        ),
        pytest.param(
            {"columns": [_marked(packet_loss=1.5)]},
            "OutOfRange",
            lambda f: f == "columns.packet_loss[0]",
            id="loss-above-1",
        ),
        pytest.param(
            {"rows": [_marked(dl_throughput_mbps=-1.0)]},
            "OutOfRange",
            _row_field("dl_throughput_mbps"),
            id="negative-rate",
        ),
        pytest.param(
            {"columns": [_marked()], "cpu": 11.0},
            "OutOfRange",
            lambda f: f == "health.cpu_utilisation",
            id="cpu-above-10",
        ),
        pytest.param(
            {"columns": [_marked()], "links": [{"peer": "a2", "up": True, "utilisation": 0.1}]},
            "UnknownPeer",
            lambda f: f.startswith("health.links") and f.endswith("peer"),
            id="unknown-peer",
        ),
        pytest.param(
            {"columns": [_marked()], "links": [{"peer": "a1", "up": True, "utilisation": 11.0}]},
            "OutOfRange",
            lambda f: f.startswith("health.links") and f.endswith("utilisation"),
            id="link-utilisation-above-10",
        ),
        pytest.param(
            {"rows": [_marked()], "columns": [_marked()]},
            "Duplicate",
            lambda f: "slice" in f,
            id="slice-twice",
        ),
    ],
)
def test_bad_data_is_rejected_in_band_naming_the_field_and_the_stream_stays_open(
    rig: Rig, batch: dict[str, Any], reason: str, field_ok: Callable[[str], bool]
) -> None:
    edge = rig.edge_of("cars")
    good = {"columns": [{"slice": "cars", **GOOD_EDGE, "latency_p99_ms": 3.0}]}
    a = rig.agent(edge, scenario={"telemetry": [batch, good]})
    sent = a.wait("telemetry", lambda e: e["batch"] == 1)
    rejection = a.wait("rejection")
    assert (rejection["message_kind"], rejection["reason"]) == ("telemetry", reason), rejection
    assert field_ok(rejection["field"]), rejection
    assert rejection["observed_at_unix_ms"] == sent["observed_at_unix_ms"]
    # The stream stays open: later heartbeats and batches are accepted, the good batch is kept.
    later = a.wait("telemetry", lambda e: e["batch"] >= 2, after=rejection)
    a.wait("heartbeat", after=later)
    messages = rig.registry.status(edge).messages
    eventually("a later message is accepted", lambda: rig.registry.status(edge).messages > messages)
    eventually("the good batch is kept", lambda: rig.latest("cars", edge) is not None)
    # Nothing of the bad batch was kept (its record says 7 ms, or the bad value).
    assert {s.latency_p99_ms for s in rig.registry.kpis()[("cars", edge)]} == {3.0}
    assert rig.registry.status(edge).connected and a.of("end") == []
    info = rig.registry.agent(edge)
    assert info is not None and info.rejections >= 1


def test_a_slice_not_configured_at_the_site_is_dropped_alone(rig: Rig) -> None:
    edge = rig.edge_of("cars")
    batch = {"columns": [{"slice": "cars", **GOOD_EDGE}, {"slice": "ghost", **GOOD_EDGE}]}
    a = rig.agent(edge, scenario={"telemetry": [batch]})
    rejection = a.wait("rejection")
    assert (rejection["message_kind"], rejection["reason"]) == ("telemetry", "UnknownSlice"), rejection
    sent = {e["observed_at_unix_ms"] for e in a.of("telemetry")}
    assert rejection["observed_at_unix_ms"] in sent
    # The rest of the batch is kept; nothing is kept for the slice the site does not carry.
    eventually("cars is kept", lambda: rig.latest("cars", edge) is not None)
    assert ("ghost", edge) not in rig.registry.kpis()
    a.wait("heartbeat", after=a.wait("telemetry", after=rejection))
    assert rig.registry.status(edge).connected and a.of("end") == []


def test_messages_over_the_advertised_rate_are_throttled_in_band(rig: Rig) -> None:
    a = rig.agent("c1", "--flood-bursts", "2")  # twice Welcome.max_message_burst, at once
    welcome = a.wait("welcome")
    assert a.wait("flood")["count"] == 2 * welcome["max_message_burst"] > 0
    rejection = a.wait("rejection", lambda e: e["reason"] == "Throttled")
    assert rejection["retry_after_ms"] > 0
    # Back under the rate, the session goes on.
    beat = a.wait("heartbeat", after=a.wait("heartbeat", after=rejection))
    messages = rig.registry.status("c1").messages
    eventually("a later heartbeat is accepted", lambda: rig.registry.status("c1").messages > messages)
    assert beat and rig.registry.status("c1").connected and a.of("end") == []


def test_an_agent_that_ignores_the_throttling_is_ended_resource_exhausted(rig: Rig) -> None:
    a = rig.agent("c1", "--flood-bursts", "6")
    assert a.wait("end")["code"] == "RESOURCE_EXHAUSTED"


# -- liveness -----------------------------------------------------------------------------------


def test_a_silent_agent_loses_its_lease_the_stream_ends_unavailable_and_the_site_is_down(
    rig: Rig,
) -> None:
    edge = rig.edge_of("cars")
    a = rig.agent(edge, "--silent-after-ms", "600")
    a.wait("ack")
    a.wait("silent")
    end = a.wait("end")
    assert end["code"] == "UNAVAILABLE" and "lease" in end["details"].lower()
    status = rig.registry.status(edge)
    assert not status.connected and not status.up
    info = rig.registry.agent(edge)
    assert info is not None and info.state == SessionState.DISCONNECTED and info.lease_expires_in_s is None
    eventually("cars is moved off the silent site", lambda: rig.edge_of("cars") != edge)
    downs = [e for e in rig.service.events() if e.action == "site-down" and e.site == edge]
    assert len(downs) == 1 and "LeaseExpired" in downs[0].message
    assert not rig.service.topology().is_up(edge)
    # The lease ran out: the next Hello, of any instance, is accepted and the site is used again.
    back = rig.agent(edge)
    back.wait("ack")
    eventually("the site is up again", lambda: rig.service.topology().is_up(edge))
    assert rig.registry.status(edge).connected and back.of("end") == []


def test_a_second_instance_is_refused_and_the_same_instance_replaces_its_stream(rig: Rig) -> None:
    edge = rig.edge_of("cars")
    first = rig.agent(edge, "--instance", "instance-a")
    first.wait("ack")
    other = rig.agent(edge, "--instance", "instance-b")
    assert other.wait("end")["code"] == "ALREADY_EXISTS" and not other.of("welcome")
    # The session in place is kept: a message sent after the refusal still renews its lease.
    beat = first.wait("heartbeat", after=first.wait("heartbeat"))
    messages = rig.registry.status(edge).messages
    eventually("the first session is still served", lambda: rig.registry.status(edge).messages > messages)
    assert first.of("end") == [] and beat
    again = rig.agent(edge, "--instance", "instance-a")  # the same agent re-dialled
    again.wait("welcome")
    assert first.wait("end")["code"] == "ABORTED"
    again.wait("heartbeat", after=again.wait("heartbeat"))
    assert rig.registry.status(edge).connected and again.of("end") == []


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(("--no-hello",), id="first-message-not-hello"),
        pytest.param(("--instance", ""), id="no-instance-id"),
        pytest.param(("--software-version", "v" * 201), id="software-version-too-long"),
        pytest.param(("--software-version", ""), id="no-software-version"),
    ],
)
def test_a_protocol_violation_ends_the_stream_invalid_argument(rig: Rig, flags: tuple[str, ...]) -> None:
    a = rig.agent("c1", *flags)
    end = a.wait("end")
    assert end["code"] == "INVALID_ARGUMENT", end
    assert not a.of("welcome")
    status = rig.registry.status("c1")
    assert not status.connected and status.messages == 0


def test_no_hello_in_time_is_deadline_exceeded(tmp_path: Path) -> None:
    short = dataclasses.replace(SETTINGS, hello_timeout_s=0.3)
    with controller(tmp_path, settings=short) as rig:
        welcome = rig.agent("c2").wait("welcome")
        assert welcome["hello_timeout_ms"] == 300
        late = rig.agent("c1", "--hello-delay-ms", "3000")
        assert late.wait("end")["code"] == "DEADLINE_EXCEEDED" and not late.of("welcome")


# -- the controller's state and city --------------------------------------------------------------


def test_generations_only_increase_across_a_restart_and_the_epoch_names_the_state(tmp_path: Path) -> None:
    with controller(tmp_path, tag="first-") as first:
        a = first.agent("c1")
        epoch = a.wait("welcome")["epoch"]
        initial = a.wait("config")
        # A change at the cell: its config's next generation.
        first.service.apply([doc("cams", "vehicle", ["c1"])], "operator:test")
        before = a.wait("config", lambda e: "cams" in e["slices"], after=initial)
        assert before["generation"] > initial["generation"]
        eventually("the ack", lambda: first.registry.status("c1").acked_generation == before["generation"])
    # A restart on the same state file: the same state (epoch), generations carry on.
    with controller(tmp_path, tag="again-") as again:
        b = again.agent("c1")  # a fresh agent: nothing applied
        assert b.wait("welcome")["epoch"] == epoch
        config = b.wait("config")
        assert config["generation"] >= before["generation"]
        if config["generation"] == before["generation"]:  # same epoch, same generation: same content
            assert config["slices"] == before["slices"]
        # The next change is a higher generation than any before.
        again.service.apply([doc("lamps", "iot", ["c1"])], "operator:test")
        changed = b.wait("config", lambda e: "lamps" in e["slices"], after=config)
        assert changed["generation"] > config["generation"]
    # Another state (another controller): another epoch.
    with controller(tmp_path, state="other.db", tag="other-") as other:
        assert other.agent("c1").wait("welcome")["epoch"] not in ("", epoch)


def test_hello_applied_generation_skips_the_resend_in_one_epoch_and_raises_generations_from_another(
    rig: Rig,
) -> None:
    edge = rig.edge_of("cars")
    first = rig.agent(edge, "--instance", "agent-1")
    epoch = first.wait("welcome")["epoch"]
    generation = first.wait("ack")["generation"]
    eventually("the ack", lambda: rig.registry.status(edge).acked_generation == generation)
    # The agent re-dials (the same instance: its new stream replaces the old one, no gap in the
    # lease) with what it applied, from this controller: nothing to send again.
    flags = ("--instance", "agent-1", "--no-ack", "--applied-generation", str(generation))
    back = rig.agent(edge, *flags, "--controller-epoch", epoch)
    back.wait("welcome")
    assert first.wait("end")["code"] == "ABORTED"
    back.wait("heartbeat", lambda e: e["sequence"] >= 6)  # well past "at once" and a resend interval
    assert back.of("config") == [] and rig.registry.status(edge).acked_generation == generation
    # Ahead of us, from another controller: our next config is numbered above what it applied.
    ahead = rig.agent(
        edge,
        "--instance",
        "agent-1",
        "--no-ack",
        "--applied-generation",
        str(generation + 100),
        "--controller-epoch",
        "elsewhere",
    )
    config = ahead.wait("config")
    assert config["generation"] > generation + 100 and config["slices"] == first.wait("config")["slices"]


@pytest.mark.parametrize("applied", [2**63 - 1, 2**64 - 1])
def test_an_applied_generation_at_the_end_of_the_range_is_no_controller_fault(rig: Rig, applied: int) -> None:
    """Hello.applied_generation from another controller is a uint64: at the top of its range
    the controller cannot number above it; it may refuse the Hello as a bad field
    (INVALID_ARGUMENT) or serve it, but not fail (UNKNOWN / INTERNAL: "a controller fault")."""
    a = rig.agent("c1", "--applied-generation", str(applied), "--controller-epoch", "elsewhere")
    first = a.wait("config|end")
    assert first["event"] == "config" or first["code"] == "INVALID_ARGUMENT", first
    other = rig.agent("c2")  # the controller serves the next agent
    other.wait("config")


def test_an_agent_built_for_another_city_is_refused_failed_precondition(rig: Rig) -> None:
    fingerprint = rig.agent("c1").wait("welcome")["topology_fingerprint"]
    assert fingerprint
    same = rig.agent("c2", "--topology-fingerprint", fingerprint)
    assert same.wait("welcome")["site_id"] == "c2"
    other = rig.agent("c3", "--topology-fingerprint", "sha256:another-city")
    assert other.wait("end")["code"] == "FAILED_PRECONDITION" and not other.of("welcome")
    status = rig.registry.status("c3")
    assert not status.connected and status.messages == 0 and status.up


# -- mutual TLS ---------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    certs.create_dev_pki(d, ["c1"])
    ca = certs.load_pair(d, "ca")
    two = certs.client_certificate(ca, "c1", uris=["spiffe://edgeslice/site/c2"], days=1)
    (d / "site-two.crt").write_bytes(two.cert)
    (d / "site-two.key").write_bytes(two.key)
    certs.write_pair(certs.site_certificate(certs.create_ca(), "c1"), d, "site-other-ca")
    return d


@pytest.fixture
def tls_rig(tmp_path: Path, pki: Path) -> Iterator[Rig]:
    tls = agent_service.TlsFiles(
        str(pki / "controller.crt"), str(pki / "controller.key"), str(pki / "ca.crt")
    )
    with controller(tmp_path, tls) as r:
        yield r


def _tls(pki: Path, stem: str) -> tuple[str, ...]:
    return (
        "--cert",
        str(pki / f"{stem}.crt"),
        "--key",
        str(pki / f"{stem}.key"),
        "--ca",
        str(pki / "ca.crt"),
    )


def test_mtls_an_agent_with_its_own_site_certificate_is_served(tls_rig: Rig, pki: Path) -> None:
    a = tls_rig.agent("c1", *_tls(pki, "site-c1"))
    assert a.wait("welcome")["site_id"] == "c1"
    eventually("c1 acks over mTLS", lambda: tls_rig.registry.status("c1").acked_generation >= 1)


@pytest.mark.parametrize(
    ("stem", "claim"),
    [
        ("site-two", "c1"),  # CN=c1 with a SAN for c2: names two sites
        ("site-two", "c2"),
        ("site-c1", "c2"),  # another site
        ("site-c1", "nowhere"),  # identity before existence: not NOT_FOUND
    ],
)
def test_mtls_a_certificate_not_naming_exactly_the_claimed_site_is_permission_denied(
    tls_rig: Rig, pki: Path, stem: str, claim: str
) -> None:
    a = tls_rig.agent(claim, *_tls(pki, stem))
    end = a.wait("end")
    assert end["code"] == "PERMISSION_DENIED", end
    assert not a.of("welcome") and not a.of("config")
    for site in ("c1", "c2"):
        status = tls_rig.registry.status(site)
        assert not status.connected and status.messages == 0


@pytest.mark.parametrize("stem", ["", "site-other-ca"])
def test_mtls_no_client_certificate_or_another_cas_fails_the_tls_handshake(
    tls_rig: Rig, pki: Path, stem: str
) -> None:
    """agent.proto: UNAVAILABLE with a TLS handshake error, no status from the controller."""
    flags = _tls(pki, stem) if stem else ("--ca", str(pki / "ca.crt"))
    a = tls_rig.agent("c1", *flags)
    end = a.wait("end")
    assert end["code"] == "UNAVAILABLE", end
    assert not a.of("welcome")
    status = tls_rig.registry.status("c1")
    assert not status.connected and status.messages == 0
