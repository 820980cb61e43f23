"""A real Prometheus server scraping a running controller with simulated agents, all on loopback.

The controller service (SQLite store, placement, healing), the agent gRPC server with its lease
monitor and SLA evaluator, the operator gRPC API and the simulated site agents are the real ones;
the metrics registry is served over HTTP and scraped every second by the ``prometheus`` binary
with our recording and alert rules loaded. The test then checks that every query of every
Grafana dashboard panel and every recording rule returns data, and that the alerts fire in the
scenario that should fire them: a killed agent (EdgesliceAgentDown) and a slice whose cells got
50 ms slower (EdgesliceSlaViolated); and that an agent gone silent on a stream it keeps open is
not connected (its lease ends the stream) and fires EdgesliceAgentDown too. The alert rules'
``for:`` durations (minutes in production, checked by the promtool unit tests) are shortened to
1 s in the temporary copy so the test runs in seconds; their expressions are unchanged.

Without the ``prometheus`` binary the test is skipped on a workstation but FAILS when ``CI`` is
set: in CI it must run (``.ci/run`` installs Debian's ``prometheus`` package).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import queue
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import yaml
from prometheus_client import CollectorRegistry

from controller.api import auth
from controller.api import client as api_client
from controller.api import server as api_server
from controller.cli import sim_city
from controller.core import citygen
from controller.core.topology import Topology
from controller.runtime.clock import RealClock
from controller.runtime.service import ControllerService
from controller.runtime.store import Store
from protos.edgeslice.agent.v1 import agent_pb2
from slices import errors
from telemetry import agentlink as agent_service
from telemetry.metrics.agents import AgentRegistryView
from telemetry.metrics.exposition import serve_metrics
from telemetry.metrics.observer import ControllerMetrics
from telemetry.site import simulator
from tests.support.binaries import required_binary
from tests.support.paths import ROOT
from tests.support.waiting import eventually

DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules"
JOB = "edgeslice-controller"
SETTINGS = agent_service.AgentSettings(
    lease_s=1.0,
    heartbeat_interval_s=0.2,
    telemetry_interval_s=0.2,
    resend_after_s=0.5,
    sla_window_s=0.5,
    sla_sustain_windows=1000,  # keep the violating slice where it is: this test watches the alert
)
# What Grafana puts in place of its variables; the slice, kind and site exist in the scenario.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "10m",
    "$__interval": "1s",
    "${datasource}": "prometheus",
    "$kind": "vehicle",
    "$slice": "cars",
    "$site": "edge-1",
}
SLICES = """
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: cars}
spec: {kind: vehicle, coverage: {zones: [corridor-1]}}
---
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: meters}
spec: {kind: iot, coverage: {zones: [downtown]}}
---
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: cafe}
spec: {kind: wifi, coverage: {zones: [hotspot-1]}}
---
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: too-fast}
spec: {kind: vehicle, coverage: {zones: [corridor-2]}, sla: {latencyMs: 0.01}}
"""


def prometheus_binary() -> str:
    return required_binary(
        "prometheus", "the prometheus binary is not installed (Debian/Ubuntu: apt-get install prometheus)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def interceptors_added(module: Any, attr: str, interceptor: object) -> Iterator[None]:
    """Give servers built inside the block our interceptor, when their factory takes no such parameter.

    ``controller.api.server.serve`` and ``telemetry.agentlink.server.serve_agents`` do not take
    interceptors yet; until they do, the servers they build get ours by wrapping the grpc
    factory for the duration of the call (the servers themselves are the real ones).
    """
    original = getattr(module, attr)

    def factory(*args: Any, **kwargs: Any) -> Any:
        kwargs["interceptors"] = [interceptor, *(kwargs.get("interceptors") or ())]
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, attr, factory)
        yield


class Prometheus:
    """A Prometheus server on a free loopback port with its own config and data folder."""

    def __init__(self, binary: str, folder: Path, metrics_port: int) -> None:
        folder.mkdir()
        alerts = (RULES / "alerts.yml").read_text()
        (folder / "alerts.yml").write_text(re.sub(r"(?m)^(\s+for:) \S+$", r"\1 1s", alerts))
        shutil.copy(RULES / "recording.yml", folder / "recording.yml")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": ["recording.yml", "alerts.yml"],
            "scrape_configs": [
                {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
            ],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.log = (folder / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        eventually(
            f"prometheus to be ready on {self.url} (log: {folder / 'prometheus.log'})",
            self._ready,
            timeout_s=30,
            interval_s=0.25,
        )

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.process.returncode}: see {self.log.name}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def firing(self, alertname: str) -> list[dict[str, str]]:
        alerts = self.get("/api/v1/alerts")["alerts"]
        return [
            a["labels"] for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"
        ]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.log.close()


@dataclass
class Stack:
    service: ControllerService
    topology: Topology
    agents: agent_service.AgentServer
    sim: simulator.SimulatorThread
    api: api_server.ApiServer
    client: api_client.ApiClient
    prometheus: Prometheus


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    binary = prometheus_binary()
    folder = tmp_path_factory.mktemp("prom-integration")
    topology = Topology.from_file(citygen.generate_city(60, seed=1))
    registry = CollectorRegistry()
    observer = ControllerMetrics(registry)
    store = Store.open(folder / "state.db")
    service = ControllerService(topology, store, [], RealClock(), observer)
    cleanups: list[Callable[[], None]] = [store.close]
    try:
        if "interceptors" in inspect.signature(agent_service.serve_agents).parameters:
            agents = agent_service.serve_agents(
                service,
                "127.0.0.1:0",
                dev=True,
                settings=SETTINGS,
                interceptors=[observer.aio_interceptor("agent")],
            )
        else:
            with interceptors_added(grpc.aio, "server", observer.aio_interceptor("agent")):
                agents = agent_service.serve_agents(service, "127.0.0.1:0", dev=True, settings=SETTINGS)
        cleanups.append(agents.stop)
        observer.watch(service, AgentRegistryView(agents.registry))
        state_dir = folder / "state"
        authenticator = auth.build_authenticator(None, {}, True, state_dir)
        if "interceptors" in inspect.signature(api_server.serve).parameters:
            api = api_server.serve(
                service,
                "127.0.0.1:0",
                authenticator,
                None,
                True,
                interceptors=[observer.interceptor("operator")],
            )
        else:
            with interceptors_added(grpc, "server", observer.interceptor("operator")):
                api = api_server.serve(service, "127.0.0.1:0", authenticator, None, True)
        cleanups.append(lambda: api.stop(1.0))
        client = api_client.ApiClient(api.address, auth.ensure_dev_token(state_dir), timeout_s=20)
        cleanups.append(client.close)
        endpoint = serve_metrics(registry, 0)
        cleanups.append(endpoint.close)

        stopping = threading.Event()

        def reconcile_loop() -> None:  # what controller.process.wiring does, faster
            while not stopping.wait(0.5):
                with contextlib.suppress(errors.EdgesliceError):
                    service.reconcile()

        loop = threading.Thread(target=reconcile_loop, name="reconcile", daemon=True)
        loop.start()

        def stop_loop() -> None:
            stopping.set()
            loop.join(10)

        cleanups.append(stop_loop)

        sim = simulator.SimulatorThread(
            simulator.Simulator(
                f"127.0.0.1:{agents.port}",
                sim_city.from_topology(topology),
                sorted(topology.sites),
                streams_per_channel=40,
            )
        )
        sim.start()
        cleanups.append(sim.stop)
        prometheus = Prometheus(binary, folder / "prometheus", endpoint.port)
        cleanups.append(prometheus.stop)
        # Decisions after Prometheus is scraping, so rates and latency quantiles see them.
        eventually(
            "the first scrape",
            lambda: bool(prometheus.query(f'up{{job="{JOB}"}} == 1')),
            timeout_s=30,
            interval_s=0.25,
        )
        client.apply([("slices.yaml", SLICES)])
        yield Stack(service, topology, agents, sim, api, client, prometheus)
    finally:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                cleanup()


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel or variable, PromQL with the variables substituted) for every query."""
    out: list[tuple[str, str, str]] = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["query"]["query"])
                assert m, f"{path.name}: variable {var['name']}: only label_values(metric, label) is used"
                out.append((path.name, f"variable {var['name']}", f"count by ({m[2]}) ({substitute(m[1])})"))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((path.name, panel["title"], substitute(target["expr"])))
    return out


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unsubstituted variable in {expr!r}"
    return expr


def recording_rules() -> list[str]:
    groups = yaml.safe_load((RULES / "recording.yml").read_text())["groups"]
    return [rule["record"] for group in groups for rule in group["rules"]]


def has_data(result: list[dict[str, Any]]) -> bool:
    return any(r["value"][1] not in ("NaN", "+Inf", "-Inf") for r in result)


def test_every_panel_and_recording_rule_returns_data_and_alerts_fire(stack: Stack) -> None:
    prom, sim = stack.prometheus, stack.sim.simulator
    cars = stack.service.get("cars")
    assert cars.placement is not None
    assert stack.service.get("too-fast").state.value == "Rejected"
    # Traffic on the operator API, one call failing (the controller-health panels show errors).
    assert {s.name for s in stack.client.list_slices()} >= {"cars", "meters", "cafe"}
    with pytest.raises(errors.NotFound):
        stack.client.get("no-such-slice")
    # The scenario: cars' cells get 50 ms slower; an agent is killed.
    slow_cell = cars.placement.assignments[0].cell
    stack.sim.do(lambda: sim.degrade(slow_cell, 50.0))
    used = {
        n
        for r in stack.service.list_slices()
        if r.placement
        for a in r.placement.assignments
        for n in a.nodes
    }
    victim = next(c for c in stack.topology.cells if c not in used)
    stack.sim.do(lambda: sim.kill(victim))

    # Steady operator traffic, as a slicectl user or a dashboard poller makes: rates need more than
    # one sample of a counter to see it move.
    polling = threading.Event()

    def poll() -> None:
        while not polling.wait(0.5):
            with contextlib.suppress(errors.EdgesliceError):
                stack.client.list_slices()
                stack.client.topology_status()

    poller = threading.Thread(target=poll, name="api-traffic", daemon=True)
    poller.start()
    queries = dashboard_queries() + [(rule, "recording rule", rule) for rule in recording_rules()]
    assert len(queries) > 60

    def missing() -> list[tuple[str, str, str]]:
        return [q for q in queries if not has_data(prom.query(q[2]))]

    def agent_down_fires() -> bool:
        return any(a.get("site") == victim for a in prom.firing("EdgesliceAgentDown"))

    def sla_alert_fires() -> bool:
        return any(a.get("slice") == "cars" for a in prom.firing("EdgesliceSlaViolated"))

    end = time.monotonic() + 120
    while time.monotonic() < end and (missing() or not agent_down_fires() or not sla_alert_fires()):
        time.sleep(1.0)
    polling.set()
    poller.join(10)
    empty = missing()
    assert not empty, "queries without data:\n" + "\n".join(f"  {b} / {p}: {q}" for b, p, q in empty)
    assert agent_down_fires(), f"EdgesliceAgentDown not firing for {victim}: {prom.get('/api/v1/alerts')}"
    assert sla_alert_fires(), f"EdgesliceSlaViolated not firing for cars: {prom.get('/api/v1/alerts')}"
    # The healthy parts do not alert.
    assert prom.firing("EdgesliceControllerDown") == []
    assert all(a.get("site") == victim for a in prom.firing("EdgesliceAgentDown"))
    # The numbers Prometheus holds are the controller's.
    ready = prom.query('sum(edgeslice_slices{state="Rejected"})')
    assert float(ready[0]["value"][1]) == 1.0
    killed = prom.query(f'edgeslice_agent_up{{site="{victim}"}}')
    assert [float(r["value"][1]) for r in killed] == [0.0]


class SilentAgent:
    """An agent at the wire level: Hello, then heartbeats (and acks) while ``beating`` is set, then
    nothing at all on a stream it never closes: a hung agent process, or a network that dropped
    its packets without a reset."""

    def __init__(self, address: str, site: str) -> None:
        self.site = site
        self.instance_id = f"silent-{uuid.uuid4()}"
        self.channel = grpc.insecure_channel(address)
        self.outbox: queue.Queue[agent_pb2.AgentMessage | None] = queue.Queue()
        self.beating = threading.Event()
        self.welcomed = threading.Event()
        self.ended = threading.Event()
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.heartbeat_s = 0.2

    def connect(self, timeout_s: float = 30.0) -> None:
        """Open the stream and send Hello until a Welcome comes back (ALREADY_EXISTS while the
        previous agent's lease is still valid: retry after the lease, as the contract says)."""
        end = time.monotonic() + timeout_s
        while True:
            self.welcomed.clear()
            self.ended.clear()
            self.outbox = queue.Queue()
            self.outbox.put(
                agent_pb2.AgentMessage(
                    hello=agent_pb2.Hello(
                        site_id=self.site, software_version="silent-test/1", instance_id=self.instance_id
                    )
                )
            )
            call = self.channel.stream_stream(
                agent_service.METHOD,
                request_serializer=agent_pb2.AgentMessage.SerializeToString,
                response_deserializer=agent_pb2.ControllerMessage.FromString,
            )(self._requests(self.outbox))
            threading.Thread(target=self._read, args=(call,), name=f"silent-{self.site}", daemon=True).start()
            while not (self.welcomed.wait(0.05) or self.ended.is_set()):
                pass
            if self.welcomed.is_set():
                self.call = call
                self.beating.set()
                threading.Thread(target=self._beat, name=f"beat-{self.site}", daemon=True).start()
                return
            assert self.code == grpc.StatusCode.ALREADY_EXISTS, (self.code, self.details)
            assert time.monotonic() < end, f"no Welcome for {self.site}: {self.code} {self.details}"
            time.sleep(SETTINGS.lease_s)

    @staticmethod
    def _requests(outbox: queue.Queue[agent_pb2.AgentMessage | None]) -> Iterator[agent_pb2.AgentMessage]:
        while (message := outbox.get()) is not None:
            yield message

    def _read(self, call: Any) -> None:
        outbox = self.outbox
        try:
            for message in call:
                kind = message.WhichOneof("body")
                if kind == "welcome":
                    self.heartbeat_s = message.welcome.heartbeat_interval_ms / 1000
                    self.welcomed.set()
                elif kind == "config" and self.beating.is_set():
                    outbox.put(
                        agent_pb2.AgentMessage(
                            ack=agent_pb2.ConfigAck(generation=message.config.generation, ok=True)
                        )
                    )
        except grpc.RpcError as exc:
            self.code, self.details = exc.code(), exc.details() or ""
        finally:
            self.ended.set()

    def _beat(self) -> None:
        outbox = self.outbox
        while self.beating.is_set() and not self.ended.is_set():
            outbox.put(agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat()))
            self.ended.wait(self.heartbeat_s)

    def go_silent(self) -> None:
        self.beating.clear()  # nothing more is sent; the stream stays open

    def close(self) -> None:
        self.beating.clear()
        self.outbox.put(None)
        self.channel.close()


def test_a_silent_agent_is_not_connected_and_agent_down_fires(stack: Stack) -> None:
    """An agent that stops talking but keeps its stream open is down: its lease runs out, the
    controller ends the stream (UNAVAILABLE), ``edgeslice_agent_up`` goes to 0, the connected
    count drops and EdgesliceAgentDown fires, from the shipped rule (only ``for:`` shortened)."""
    prom, sim = stack.prometheus, stack.sim.simulator
    used = {
        n
        for r in stack.service.list_slices()
        if r.placement
        for a in r.placement.assignments
        for n in a.nodes
    }
    # A core site: every edge and core agent has an agent_up series (cells only while down), and
    # with no slice through it, its going down moves nothing.
    idle = [
        s
        for s in sorted(stack.topology.sites)
        if stack.topology.sites[s].kind.value == "core" and s not in used
    ]
    assert idle, f"the scenario needs a core site no slice uses (used: {sorted(used)})"
    site = idle[0]
    kind = stack.topology.sites[site].kind.value
    up = f'edgeslice_agent_up{{site="{site}"}}'
    connected = f'sum(edgeslice_agents{{kind="{kind}",state="connected"}})'

    def value(expr: str) -> float | None:
        result = prom.query(expr)
        return float(result[0]["value"][1]) if result else None

    def down_fires() -> bool:
        return any(a.get("site") == site for a in prom.firing("EdgesliceAgentDown"))

    def scraped(after: float, want: float) -> bool:
        """The site's agent_up, as last scraped, is ``want`` in a scrape later than ``after``."""
        at = value(f"timestamp({up})")
        return at is not None and at > after and value(up) == want

    stack.sim.do(lambda: sim.kill(site))  # the simulated agent goes away (its stream closes)
    agent = SilentAgent(f"127.0.0.1:{stack.agents.port}", site)
    try:
        agent.connect()
        since = time.time()
        # Connected, as Prometheus sees it: a scrape after the Hello says up, the alert is not firing.
        eventually(
            f"{site}'s agent to be up in Prometheus",
            lambda: scraped(since, 1.0) and not down_fires(),
            timeout_s=60,
            interval_s=0.25,
        )
        before = value(connected)
        assert before is not None and before >= 1

        agent.go_silent()
        assert agent.ended.wait(30), f"the controller kept {site}'s silent stream open"
        assert agent.code == grpc.StatusCode.UNAVAILABLE, (agent.code, agent.details)
        ended = time.time()
        eventually(
            f"edgeslice_agent_up of the silent {site} to be 0",
            lambda: scraped(ended, 0.0),
            timeout_s=60,
            interval_s=0.25,
        )
        eventually(
            f"{connected} to drop below {before}",
            lambda: (value(connected) or 0.0) < before,
            timeout_s=60,
            interval_s=0.25,
        )
        eventually(
            f"EdgesliceAgentDown to fire for the silent {site}", down_fires, timeout_s=60, interval_s=0.25
        )
    finally:
        agent.close()
        stack.sim.do(lambda: sim.revive(site))
    # Back: the alert resolves once the agent is (so other tests see only their own alerts).
    eventually(
        f"{site}'s revived agent to be up again",
        lambda: value(up) == 1.0 and not down_fires(),
        timeout_s=60,
        interval_s=0.25,
    )
