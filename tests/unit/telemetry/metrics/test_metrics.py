"""Prometheus metrics: the scrape-time collector over a real service, the observer counters, the
gRPC interceptors on real loopback servers, and the HTTP endpoint. A fresh registry per test."""

from __future__ import annotations

import asyncio
import gzip
import math
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from controller.runtime.service import ControllerService
from telemetry import agentlink as agent_service
from telemetry.agentlink.kpi_store import KpiColumns
from telemetry.agentlink.session_table import SessionColumns, SessionTable
from telemetry.metrics.agents import AgentRegistryView
from telemetry.metrics.exposition import serve_metrics
from telemetry.metrics.kpi_ratios import SliceKpiColumns
from telemetry.metrics.kpis import aggregate_kpi_columns
from telemetry.metrics.observer import ControllerMetrics, build_metrics
from telemetry.metrics.scrapes import SCRAPES
from telemetry.metrics.state import MAX_LISTED_AGENTS, MAX_REASONS, link_class
from telemetry.metrics.views import AgentSnapshot, AgentsView, AgentTable
from tests.support.clock import FakeClock
from tests.support.kpi_oracle import SliceKpis
from tests.support.metrics_city import agent_table, aggregate_kpis, kpi_columns, kpi_rows, label_values
from tests.support.paths import ROOT
from tests.support.runtime_helpers import doc, make_service
from tests.support.stubs import raw_unary


class FakeAgents:
    """The agents view at our own interface: fixed snapshots and KPIs."""

    def __init__(
        self,
        snapshots: Sequence[AgentSnapshot],
        kpis: Mapping[str, SliceKpis],
        refusals: Mapping[str, int] | None = None,
    ) -> None:
        self.snapshots = list(snapshots)
        self.kpis = dict(kpis)
        self.refusals = dict(refusals or {"Other": 0})

    def agent_table(self) -> AgentTable:
        return agent_table(self.snapshots)

    def slice_kpis(self) -> SliceKpiColumns:
        return kpi_columns(self.kpis)

    def refusal_counts(self) -> Mapping[str, int]:
        return self.refusals


def _columns(latest: Mapping[tuple[str, str], Any]) -> KpiColumns:
    """The newest sample of each (slice, site), column-wise as the agent registry reads them."""
    names = sorted({name for name, _ in latest})
    rows = list(latest.items())

    def col(field: str, kind: type = float) -> Any:
        return np.array(
            [getattr(sample, field) for _, sample in rows], np.float64 if kind is float else np.int64
        )

    return KpiColumns(
        names,
        np.array([names.index(name) for (name, _), _ in rows], np.int64),
        col("dl_mbps"),
        col("ul_mbps"),
        col("dl_demand_mbps"),
        col("ul_demand_mbps"),
        np.zeros(len(rows)),
        col("latency_p99_ms"),
        col("packet_loss"),
        col("active_devices", int),
        np.zeros(len(rows)),
    )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ControllerService]:
    svc, store = make_service(tmp_path, clock=FakeClock())
    try:
        yield svc
    finally:
        store.close()


def _registry_with(service: ControllerService, agents: AgentsView | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    build_metrics(service, agents, registry)
    return registry


def test_slices_by_kind_and_state_are_read_at_scrape_time(service: ControllerService) -> None:
    registry = _registry_with(service)
    assert registry.get_sample_value("edgeslice_slices", {"kind": "vehicle", "state": "Ready"}) == 0
    service.apply([doc("cars", "vehicle", ["c1"]), doc("meters", "iot", ["c1", "c2"])], "operator:test")
    states = {r.name: r.state.value for r in service.list_slices()}
    for name, kind in (("cars", "vehicle"), ("meters", "iot")):
        assert registry.get_sample_value("edgeslice_slices", {"kind": kind, "state": states[name]}) == 1
    # Every kind × state is present (zeros included), so dashboards never see a gap.
    assert registry.get_sample_value("edgeslice_slices", {"kind": "wifi", "state": "Rejected"}) == 0


def test_site_capacity_in_base_units_and_link_classes(service: ControllerService) -> None:
    service.apply([doc("cars", "vehicle", ["c1", "c3"])], "operator:test")
    registry = _registry_with(service)
    status = {s.site: s for s in service.topology_status().sites}
    for site in ("e1", "e2"):
        s = status[site]
        labels = {"site": site, "kind": "edge"}
        assert registry.get_sample_value("edgeslice_site_cpu_capacity_cores", labels) == s.cpu_capacity / 1000
        assert registry.get_sample_value("edgeslice_site_cpu_reserved_cores", labels) == s.cpu_reserved / 1000
        assert (
            registry.get_sample_value("edgeslice_site_memory_capacity_bytes", labels)
            == s.memory_capacity * 2**20
        )
        assert registry.get_sample_value("edgeslice_site_up", labels) == 1
    assert sum(status[s].cpu_reserved for s in ("e1", "e2")) > 0
    # Cells and aggregation sites have no per-site series: 20,000 cells would blow the budget.
    assert registry.get_sample_value("edgeslice_site_up", {"site": "c1", "kind": "cell"}) is None
    radio = sum(s.radio_reserved_kbps for s in status.values()) * 1000
    assert registry.get_sample_value("edgeslice_radio_reserved_bits_per_second") == radio > 0
    access_cap = registry.get_sample_value(
        "edgeslice_link_class_capacity_bits_per_second", {"class": "cell-aggregation"}
    )
    assert access_cap == 4 * 10_000 * 1_000_000
    util = service.topology_status().link_utilisation
    access_reserved = sum(r for (a, b), r, _ in util if a.startswith("c") or b.startswith("c")) * 1000
    got = registry.get_sample_value(
        "edgeslice_link_class_reserved_bits_per_second", {"class": "cell-aggregation"}
    )
    assert got == access_reserved > 0
    (key, reserved, cap), *_ = util
    labels = {
        "link": f"{key[0]}:{key[1]}",
        "class": link_class(*(service.topology().sites[k].kind.value for k in key)),
    }
    assert registry.get_sample_value("edgeslice_link_reserved_bits_per_second", labels) == reserved * 1000
    assert registry.get_sample_value("edgeslice_link_capacity_bits_per_second", labels) == cap * 1000


def test_link_families_read_from_the_capacity_view_match_the_status_links() -> None:
    """Per class sums and the busiest links, from the ledger's arrays, equal a plain walk over
    the status' (link, reserved, capacity) list, busiest first."""
    from tests.support.metrics_city import build_city_state, city_registry

    state = build_city_state(cells=300, slices=30)
    registry = city_registry(state)
    kinds = {s: site.kind.value for s, site in state.topo.sites.items()}
    reserved: dict[str, float] = {}
    capacity: dict[str, float] = {}
    for ln in state.topo.links:
        cls = link_class(kinds[ln.a], kinds[ln.b])
        capacity[cls] = capacity.get(cls, 0) + ln.bandwidth_kbps * 1000
    busiest: list[tuple[dict[str, str], float, float]] = []
    for key, res, cap in state.status.link_utilisation:
        cls = link_class(kinds[key[0]], kinds[key[1]])
        reserved[cls] = reserved.get(cls, 0) + res * 1000
        if res > 0 and len(busiest) < 20:
            busiest.append(({"link": f"{key[0]}:{key[1]}", "class": cls}, res * 1000, cap * 1000))

    def family(name: str) -> list[tuple[dict[str, str], float]]:
        return [(s.labels, s.value) for f in registry.collect() if f.name == name for s in f.samples]

    assert family("edgeslice_link_class_capacity_bits_per_second") == [
        ({"class": c}, capacity[c]) for c in sorted(capacity)
    ]
    assert family("edgeslice_link_class_reserved_bits_per_second") == [
        ({"class": c}, reserved.get(c, 0.0)) for c in sorted(capacity)
    ]
    assert family("edgeslice_link_reserved_bits_per_second") == [(labels, r) for labels, r, _ in busiest]
    assert family("edgeslice_link_capacity_bits_per_second") == [(labels, c) for labels, _, c in busiest]


def test_drained_site_is_down_and_counted(service: ControllerService) -> None:
    registry = _registry_with(service)
    assert registry.get_sample_value("edgeslice_site_up", {"site": "e2", "kind": "edge"}) == 1
    assert registry.get_sample_value("edgeslice_sites_down", {"kind": "edge"}) == 0
    service.drain("e2", "operator:test")  # a committed change: the cached capacity figures go
    assert registry.get_sample_value("edgeslice_site_up", {"site": "e2", "kind": "edge"}) == 0
    assert registry.get_sample_value("edgeslice_sites_down", {"kind": "edge"}) == 1


def test_events_become_counters_read_incrementally(service: ControllerService) -> None:
    registry = _registry_with(service)
    service.apply([doc("cars", "vehicle", ["c1"])], "operator:test")
    applies = registry.get_sample_value("edgeslice_controller_events_total", {"action": "apply"})
    assert applies == 1
    service.apply([doc("bikes", "vehicle", ["c2"])], "operator:test")
    assert registry.get_sample_value("edgeslice_controller_events_total", {"action": "apply"}) == 2
    service.set_sla("cars", False, "LatencyTooHigh", "p99 9 ms > 5 ms", "agent:c1")
    assert registry.get_sample_value("edgeslice_sla_violations_total", {"kind": "vehicle"}) == sum(
        1 for e in service.events() if e.action == "sla-violation"
    )
    assert registry.get_sample_value("edgeslice_slices_sla_violated", {"kind": "vehicle"}) == 1
    assert (
        registry.get_sample_value("edgeslice_slice_sla_violated", {"slice": "cars", "kind": "vehicle"}) == 1
    )
    assert (
        registry.get_sample_value("edgeslice_slice_sla_violated", {"slice": "bikes", "kind": "vehicle"})
        is None
    )


def _agent(
    site: str, kind: str, connected: bool = True, seen: float = 1000.0, desired: int = 3, acked: int = 3
) -> AgentSnapshot:
    return AgentSnapshot(site, kind, connected, seen, desired, acked)


def test_agents_listed_for_edge_sites_and_when_down_aggregated_for_the_rest(
    service: ControllerService,
) -> None:
    cells = [_agent(f"c{i}", "cell", seen=900.0 + i) for i in range(300)]
    cells[7] = _agent("c7", "cell", connected=False, seen=500.0)
    cells[8] = _agent("c8", "cell", desired=5, acked=3)
    agents = FakeAgents([*cells, _agent("e1", "edge"), _agent("e2", "edge", desired=4, acked=3)], {})
    registry = _registry_with(service, agents)
    assert registry.get_sample_value("edgeslice_agents", {"kind": "cell", "state": "connected"}) == 299
    assert registry.get_sample_value("edgeslice_agents", {"kind": "cell", "state": "disconnected"}) == 1
    assert registry.get_sample_value("edgeslice_agents_config_lagging", {"kind": "cell"}) == 1
    assert registry.get_sample_value("edgeslice_agents_config_lagging", {"kind": "edge"}) == 1
    assert (
        registry.get_sample_value("edgeslice_agents_oldest_heartbeat_timestamp_seconds", {"kind": "cell"})
        == 900.0
    )
    assert registry.get_sample_value("edgeslice_agent_up", {"site": "e1", "kind": "edge"}) == 1
    assert (
        registry.get_sample_value("edgeslice_agent_config_generation_lag", {"site": "e2", "kind": "edge"})
        == 1
    )
    assert registry.get_sample_value("edgeslice_agent_up", {"site": "c7", "kind": "cell"}) == 0
    assert (
        registry.get_sample_value(
            "edgeslice_agent_last_heartbeat_timestamp_seconds", {"site": "c7", "kind": "cell"}
        )
        == 500.0
    )
    assert (
        registry.get_sample_value("edgeslice_agent_config_generation_lag", {"site": "c8", "kind": "cell"})
        == 2
    )
    assert registry.get_sample_value("edgeslice_agent_up", {"site": "c9", "kind": "cell"}) is None


def test_listed_agents_are_capped_worst_first(service: ControllerService) -> None:
    down = [_agent(f"c{i}", "cell", connected=False, seen=float(i)) for i in range(MAX_LISTED_AGENTS + 50)]
    registry = _registry_with(service, FakeAgents(down, {}))
    listed = [s for m in registry.collect() if m.name == "edgeslice_agent_up" for s in m.samples]
    assert len(listed) == MAX_LISTED_AGENTS
    # The longest silent come first.
    assert registry.get_sample_value("edgeslice_agent_up", {"site": "c0", "kind": "cell"}) == 0
    assert (
        registry.get_sample_value(
            "edgeslice_agent_up", {"site": f"c{MAX_LISTED_AGENTS + 10}", "kind": "cell"}
        )
        is None
    )


def test_kpi_ratios_for_placed_slices_only(service: ControllerService) -> None:
    service.apply([doc("cars", "vehicle", ["c1"])], "operator:test")
    intent = service.get("cars").intent
    kpis = {
        "cars": SliceKpis(
            "cars", intent.latency_ms * 2, intent.kbps_per_cell / 2, intent.kbps_per_cell, 10, 0.0
        ),
        "ghost": SliceKpis("ghost", 1.0, 1.0, 1.0, 1, 0.0),
    }
    registry = _registry_with(service, FakeAgents([], kpis))
    ratio = "edgeslice_slice_kpi_target_ratio"
    assert registry.get_sample_value(ratio, {"slice": "cars", "kind": "vehicle", "kpi": "latency"}) == 2.0
    assert registry.get_sample_value(ratio, {"slice": "cars", "kind": "vehicle", "kpi": "throughput"}) == 0.5
    assert (
        registry.get_sample_value(ratio, {"slice": "cars", "kind": "vehicle", "kpi": "devices"})
        == 10 / intent.max_devices
    )
    assert registry.get_sample_value(ratio, {"slice": "ghost", "kind": "vehicle", "kpi": "latency"}) is None


def test_aggregate_kpis_takes_worst_latency_and_loss_and_mean_throughput() -> None:
    class S:
        def __init__(self, lat: float, dl: float, loss: float, devices: int) -> None:
            self.dl_mbps, self.ul_mbps, self.dl_demand_mbps, self.ul_demand_mbps = dl, 0.0, 10.0, 0.0
            self.latency_p99_ms, self.packet_loss, self.active_devices = lat, loss, devices

    samples = [S(3.0, 4.0, 0.01, 5), S(7.0, 8.0, 0.0, 6)]
    k = kpi_rows(aggregate_kpi_columns(_columns({("s", f"c{i}"): s for i, s in enumerate(samples)})))["s"]
    assert k == aggregate_kpis("s", samples)  # the one-slice-at-a-time definition
    assert (k.latency_ms, k.throughput_kbps_per_cell, k.demand_kbps_per_cell, k.loss_ratio, k.devices) == (
        7.0,
        6000.0,
        10000.0,
        0.01,
        11,
    )


def test_observer_counts_decisions_preemptions_healings_and_times() -> None:
    registry = CollectorRegistry()
    m = ControllerMetrics(registry)
    m.decision("wifi", "rejected", "LinkCapacity")
    m.decision("wifi", "rejected", "LinkCapacity")
    m.preempted("wifi")
    m.healed("iot", True)
    m.healed("iot", False)
    m.reconciled(0.02, changed=3, errors=1)
    m.placement_timed(0.004)
    get = registry.get_sample_value
    assert (
        get(
            "edgeslice_admission_decisions_total",
            {"kind": "wifi", "outcome": "rejected", "reason": "LinkCapacity"},
        )
        == 2
    )
    assert get("edgeslice_preemptions_total", {"kind": "wifi"}) == 1
    assert get("edgeslice_preemptions_total", {"kind": "iot"}) == 0  # known kinds start at zero
    assert get("edgeslice_healings_total", {"kind": "iot", "result": "ok"}) == 1
    assert get("edgeslice_healings_total", {"kind": "iot", "result": "failed"}) == 1
    assert get("edgeslice_reconcile_changes_total") == 3
    assert get("edgeslice_reconcile_errors_total") == 1
    assert get("edgeslice_reconcile_duration_seconds_bucket", {"le": "0.025"}) == 1
    assert get("edgeslice_reconcile_duration_seconds_bucket", {"le": "0.01"}) == 0
    assert get("edgeslice_placement_duration_seconds_count") == 1


def test_admission_reasons_are_capped() -> None:
    registry = CollectorRegistry()
    m = ControllerMetrics(registry)
    for i in range(MAX_REASONS + 5):
        m.decision("iot", "rejected", f"Reason{i}")
    reasons = label_values(registry, "edgeslice_admission_decisions", "reason")
    assert len(reasons) == MAX_REASONS + 1
    assert (
        registry.get_sample_value(
            "edgeslice_admission_decisions_total", {"kind": "iot", "outcome": "rejected", "reason": "Other"}
        )
        == 5
    )


def test_every_metric_follows_the_naming_conventions(service: ControllerService) -> None:
    registry = CollectorRegistry()
    m = build_metrics(service, FakeAgents([_agent("e1", "edge")], {}), registry)
    m.decision("iot", "admitted", "Admitted")
    families = list(registry.collect())
    ours = [f for f in families if not f.name.startswith(("process_", "python_"))]
    assert len(ours) >= 30
    for f in ours:
        assert f.name.startswith("edgeslice_"), f.name
        assert re.fullmatch(r"[a-z_]+", f.name), f.name
        assert len(f.documentation) > 15, f.name
        assert not re.search(r"_(ms|millicores|mib|kbps|mbps|percent)(_|$)", f.name), (
            f"{f.name}: not a base unit"
        )
        if f.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in f.samples), f.name
        else:
            assert not f.name.endswith("_total"), f.name


# -- gRPC interceptors on real loopback servers --------------------------------------------------

SERVICE = "edgeslice.test.v1.Probe"


def _behaviours() -> dict[str, grpc.RpcMethodHandler[bytes, bytes]]:
    def ok(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    def missing(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.NOT_FOUND, "no such slice")
        raise AssertionError("abort returns by raising")

    def broken(request: bytes, context: grpc.ServicerContext) -> bytes:
        raise RuntimeError("bug")

    def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield request
        yield request

    return {
        "Ok": grpc.unary_unary_rpc_method_handler(ok),
        "Missing": grpc.unary_unary_rpc_method_handler(missing),
        "Broken": grpc.unary_unary_rpc_method_handler(broken),
        "Watch": grpc.unary_stream_rpc_method_handler(stream),
    }


def test_sync_interceptor_counts_codes_and_times_calls() -> None:
    registry = CollectorRegistry()
    m = ControllerMetrics(registry)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[m.interceptor("operator")])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, _behaviours()),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert raw_unary(channel, f"/{SERVICE}/Ok")(b"x", timeout=5) == b"x"
            for method, code in (("Missing", grpc.StatusCode.NOT_FOUND), ("Broken", grpc.StatusCode.UNKNOWN)):
                with pytest.raises(grpc.RpcError) as err:
                    raw_unary(channel, f"/{SERVICE}/{method}")(b"x", timeout=5)
                assert err.value.code() == code
            watch: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(f"/{SERVICE}/Watch")
            assert list(watch(b"y", timeout=5)) == [b"y", b"y"]
    finally:
        server.stop(None)

    def handled(method: str, code: str) -> float | None:
        labels = {"api": "operator", "service": SERVICE, "method": method, "code": code}
        return registry.get_sample_value("edgeslice_grpc_server_handled_total", labels)

    assert handled("Ok", "OK") == 1
    assert handled("Missing", "NOT_FOUND") == 1
    assert handled("Broken", "UNKNOWN") == 1
    assert handled("Watch", "OK") == 1
    labels = {"api": "operator", "service": SERVICE, "method": "Ok"}
    assert registry.get_sample_value("edgeslice_grpc_server_started_total", labels) == 1
    assert registry.get_sample_value("edgeslice_grpc_server_handling_seconds_count", labels) == 1


def test_aio_interceptor_counts_streams() -> None:
    registry = CollectorRegistry()
    m = ControllerMetrics(registry)

    async def echo(
        requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> AsyncIterator[bytes]:
        async for r in requests:
            yield r

    async def refuse(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")
        raise AssertionError("abort returns by raising")

    async def main() -> None:
        server = grpc.aio.server(interceptors=[m.aio_interceptor("agent")])
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    SERVICE,
                    {
                        "Echo": grpc.stream_stream_rpc_method_handler(echo),
                        "Refuse": grpc.unary_unary_rpc_method_handler(refuse),
                    },
                ),
            )
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                echo_call: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(
                    f"/{SERVICE}/Echo"
                )
                call = echo_call(iter([b"a", b"b"]), timeout=5)
                assert [r async for r in call] == [b"a", b"b"]
                refuse_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                    f"/{SERVICE}/Refuse"
                )
                with pytest.raises(grpc.aio.AioRpcError):
                    await refuse_call(b"x", timeout=5)
        finally:
            await server.stop(None)

    asyncio.run(main())
    base = {"api": "agent", "service": SERVICE}
    assert (
        registry.get_sample_value(
            "edgeslice_grpc_server_handled_total", {**base, "method": "Echo", "code": "OK"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "edgeslice_grpc_server_handled_total", {**base, "method": "Refuse", "code": "PERMISSION_DENIED"}
        )
        == 1
    )


def test_metrics_endpoint_serves_the_registry(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    try:
        registry = CollectorRegistry()
        build_metrics(svc, None, registry)
        server = serve_metrics(registry, 0)
        try:
            with urllib.request.urlopen(server.url, timeout=5) as resp:
                body = resp.read().decode()
        finally:
            server.close()
    finally:
        store.close()
    assert "# HELP edgeslice_slices Slices by kind and state" in body
    assert "# TYPE edgeslice_admission_decisions_total counter" in body
    assert 'edgeslice_site_up{kind="edge",site="e1"} 1.0' in body


def _get(url: str, headers: Mapping[str, str] | None = None) -> tuple[Mapping[str, str], bytes]:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=10) as resp:
        return dict(resp.headers.items()), resp.read()


@pytest.fixture
def endpoint(service: ControllerService) -> Iterator[str]:
    """/metrics of a service with one slice, over HTTP on loopback."""
    service.apply([doc("cars", "vehicle", ["c1"])], "operator:test")
    registry = CollectorRegistry()
    build_metrics(service, FakeAgents([_agent("e1", "edge")], {}), registry, process=False)
    server = serve_metrics(registry, 0)
    try:
        yield server.url
    finally:
        server.close()


def test_metrics_endpoint_gzips_when_asked(endpoint: str) -> None:
    headers, plain = _get(endpoint)
    assert "Content-Encoding" not in headers
    headers, packed = _get(endpoint, {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(packed)
    assert b'edgeslice_slices{kind="vehicle",state="Ready"} 1.0' in body
    assert body.count(b"# HELP") == plain.count(b"# HELP")


def test_metrics_endpoint_speaks_openmetrics_when_asked(endpoint: str) -> None:
    headers, body = _get(endpoint)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    headers, body = _get(endpoint, {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    assert b"# TYPE edgeslice_admission_decisions counter" in body  # OpenMetrics: no _total in the family


def test_metrics_endpoint_serves_only_the_families_named(endpoint: str) -> None:
    _, body = _get(f"{endpoint}?name[]=edgeslice_slices&name[]=edgeslice_sites_down")
    families = {line.split()[2] for line in body.decode().splitlines() if line.startswith("# TYPE")}
    assert families == {"edgeslice_slices", "edgeslice_sites_down"}
    assert b'edgeslice_slices{kind="vehicle",state="Ready"} 1.0' in body


def test_metrics_endpoint_serves_only_metrics(endpoint: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(endpoint.replace("/metrics", "/other"))
    err.value.close()  # the error holds the response
    assert err.value.code == 404


def test_watch_twice_is_refused(tmp_path: Path) -> None:
    svc, store = make_service(tmp_path)
    try:
        m = build_metrics(svc)
        with pytest.raises(RuntimeError, match="already"):
            m.watch(svc)
    finally:
        store.close()


def test_the_endpoint_serves_the_library_exposition(service: ControllerService) -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    service.apply([doc("cars", "vehicle", ["c1"])], "operator:test")
    registry = CollectorRegistry()
    kpis = {"cars": SliceKpis("cars", 3.0, 1000.0, 2000.0, 5, 0.0)}  # the column-wise KPI-ratio family
    m = build_metrics(
        service, FakeAgents([_agent("e1", "edge", connected=False)], kpis), registry, process=False
    )
    m.decision("iot", "rejected", 'Odd"Reason\\with\nescapes')
    m.reconciled(0.2, 1, 0)

    def parsed(text: bytes) -> list[tuple[str, str, list[tuple[str, list[tuple[str, str]], float]]]]:
        return [
            (f.name, f.type, sorted((s.name, sorted(s.labels.items()), s.value) for s in f.samples))
            for f in text_string_to_metric_families(text.decode())
        ]

    server = serve_metrics(registry, 0)
    try:
        _, ours = _get(server.url)
    finally:
        server.close()
    theirs = generate_latest(registry)
    assert b'edgeslice_slice_kpi_target_ratio{kind="vehicle",kpi="latency",slice="cars"}' in ours
    assert parsed(ours) == parsed(theirs)
    assert ours.count(b"# HELP") == theirs.count(b"# HELP")


def test_every_metric_is_documented(service: ControllerService) -> None:
    registry = CollectorRegistry()
    build_metrics(service, FakeAgents([_agent("e1", "edge")], {}), registry)
    documented = (ROOT / "docs" / "observability.md").read_text()
    for family in registry.collect():
        if family.name.startswith("edgeslice_"):
            name = family.name + ("_total" if family.type == "counter" else "")
            assert f"`{name}`" in documented, f"{name} is not in docs/observability.md"


def test_agent_registry_view_reads_sessions_and_only_cells_kpis() -> None:
    from telemetry.agentlink.sla import KpiSample

    def sample(at: float, latency: float, dl: float) -> KpiSample:
        return KpiSample(at, dl, 0.0, 10.0, 0.0, latency / 2, latency, 0.001, 7, 0.5)

    class Registry:
        clock = staticmethod(lambda: 100.0)
        since: float | None = None
        sites: set[str] | None = None

        def session_columns(self) -> SessionColumns:
            table = SessionTable(["c1", "c2", "e1"])
            for site, connected, seen, desired, acked in (("c1", 1, 99.5, 3, 3), ("e1", 0, -math.inf, 4, 2)):
                row = table.row[site]
                table.ever[row], table.connected[row], table.last_seen[row] = 1, connected, seen
                table.desired[row], table.acked[row] = desired, acked
            return table.columns(self.clock(), 3.0)

        def latest_kpi_columns(self, since: float, sites: AbstractSet[str]) -> KpiColumns:
            self.since, self.sites = since, set(sites)
            windows = {
                ("cars", "c1"): [sample(90.0, 9.0, 1.0), sample(99.0, 3.0, 2.0)],
                ("cars", "c2"): [sample(99.0, 5.0, 4.0)],
                ("cars", "a1"): [sample(99.0, 80.0, 0.0)],  # transport sites are not judged
                ("idle", "c1"): [],
            }
            return _columns({key: w[-1] for key, w in windows.items() if key[1] in sites and w})

        def site_kinds(self) -> dict[str, str]:
            return {"c1": "cell", "c2": "cell", "a1": "aggregation", "e1": "edge"}

        def refusal_counts(self) -> dict[str, int]:
            return {"Timeout": 2, "Other": 1}

    registry = Registry()
    view = AgentRegistryView(registry, wall_clock=lambda: 1_000.0, kpi_max_age_s=30.0)
    # Every known reason from zero, the registry's counts over them.
    assert view.refusal_counts() == {
        **dict.fromkeys(agent_service.KNOWN_REFUSALS, 0),
        "Timeout": 2,
        "Other": 1,
    }
    snaps = {a.site: a for a in view.agent_table().snapshots()}
    assert snaps["c1"] == AgentSnapshot("c1", "cell", True, 999.5, 3, 3)
    assert snaps["e1"].last_heartbeat_unix is None and snaps["e1"].generation_lag == 2
    kpis = kpi_rows(view.slice_kpis())
    assert registry.since == 70.0
    assert registry.sites == {"c1", "c2"}  # only cells count
    assert set(kpis) == {"cars"}
    assert (kpis["cars"].latency_ms, kpis["cars"].throughput_kbps_per_cell, kpis["cars"].devices) == (
        5.0,
        3000.0,
        14,
    )


def test_agent_registry_view_reads_the_real_registry_column_wise() -> None:
    """With the real registry the view takes the columnar read (tests/unit/telemetry/agentlink/test_kpi_ingest.py checks it
    against the per-sample read); only cells count."""
    from protos.edgeslice.agent.v1 import agent_pb2
    from tests.support.telemetry_fakes import FakeService, intent

    service = FakeService()
    service.put(intent("cars"), [("c1", "a1", "e1"), ("c2", "a1", "e1")])
    registry = agent_service.AgentRegistry(service, clock=FakeClock())
    registry.refresh(force=True)
    for site, latency, dl in (("c1", 3.0, 2.0), ("c2", 5.0, 4.0), ("a1", 80.0, 0.0)):
        kpi = agent_pb2.SliceKpi(
            slice="cars", dl_throughput_mbps=dl, latency_p99_ms=latency, active_devices=7, packet_loss=0.001
        )
        registry.record_telemetry(
            registry.open(site, "t", lambda: None), agent_pb2.TelemetryBatch(slices=[kpi])
        )
    registry.kpis = None  # type: ignore[assignment,method-assign]  # the view must not take the per-sample read
    view = AgentRegistryView(registry, wall_clock=lambda: 5_000.0, kpi_max_age_s=30.0)
    kpis = kpi_rows(view.slice_kpis())
    # Only sites that have connected are agents (e1, a2, e2 never did: not agents that are down).
    assert sorted(view.agent_table().snapshots()) == [
        AgentSnapshot(site, kind, True, 5_000.0, generation, 0)
        for site, kind, generation in (("a1", "aggregation", 1), ("c1", "cell", 1), ("c2", "cell", 1))
    ]
    assert (kpis["cars"].latency_ms, kpis["cars"].throughput_kbps_per_cell, kpis["cars"].devices) == (
        5.0,
        3000.0,
        14,
    )
    assert kpis["cars"].loss_ratio == 0.001


def test_config_refusals_are_a_counter_by_reason_read_at_scrape_time(service: ControllerService) -> None:
    agents = FakeAgents([_agent("e1", "edge")], {}, {"Timeout": 0, "Other": 0})
    registry = _registry_with(service, agents)

    def refusals() -> dict[str, float]:
        return {
            s.labels["reason"]: s.value
            for f in registry.collect()
            if f.name == "edgeslice_agent_config_refusals"
            for s in f.samples
            if s.name == "edgeslice_agent_config_refusals_total"
        }

    assert refusals() == {"Timeout": 0.0, "Other": 0.0}
    agents.refusals = {"Timeout": 3, "Other": 1}  # what the registry counts now
    assert refusals() == {"Timeout": 3.0, "Other": 1.0}
    # More reasons than the cap: the rest count as Other, so the series stay bounded.
    agents.refusals = {f"R{i:02d}": 1 for i in range(MAX_REASONS + 5)} | {"Other": 2}
    got = refusals()
    assert len(got) == MAX_REASONS + 1 and got["Other"] == 2 + 5
    assert sum(got.values()) == MAX_REASONS + 5 + 2


def test_agent_registry_view_counts_the_real_registrys_refusals() -> None:
    """Refused acks of the real registry, through the view: a known reason by name, an unknown
    one as Other, the other known reasons at zero; a good ack counts nothing."""
    from protos.edgeslice.agent.v1 import agent_pb2
    from tests.support.telemetry_fakes import FakeService, intent

    service = FakeService()
    service.put(intent("cars"), [("c1", "a1", "e1")])
    registry = agent_service.AgentRegistry(service, clock=FakeClock())
    registry.refresh(force=True)
    view = AgentRegistryView(registry)
    assert view.refusal_counts() == dict.fromkeys((*agent_service.KNOWN_REFUSALS, "Other"), 0)
    session = registry.open("c1", "t", lambda: None, instance_id="i1")
    row = list(registry.session_columns().sites).index("c1")
    generation = int(registry.session_columns().desired_generation[row])
    assert generation > 0
    for reason in ("Timeout", "Timeout", "NoSuchReasonAnywhere"):
        registry.ack(session, agent_pb2.ConfigAck(generation=generation, ok=False, reason=reason))
    registry.ack(session, agent_pb2.ConfigAck(generation=generation, ok=True))
    assert view.refusal_counts() == {
        **dict.fromkeys(agent_service.KNOWN_REFUSALS, 0),
        "Timeout": 2,
        "Other": 1,
    }


def test_follow_changes_rebuilds_the_topology_families_off_the_scrape(service: ControllerService) -> None:
    """A scrape that finds the topology families behind a change serves the previous revision's
    and wakes the follower, which rebuilds them; without a follower the scrape rebuilds them."""
    registry = CollectorRegistry()
    m = build_metrics(service, None, registry, process=False)
    assert m.state is not None

    def e1_slices() -> float | None:
        return registry.get_sample_value("edgeslice_site_slices", {"site": "e1", "kind": "edge"})

    stop = m.state.follow_changes(interval_s=60.0)  # it only runs when woken
    try:
        assert e1_slices() == 0.0  # nothing built yet: the scrape builds
        service.apply([doc("cars", "vehicle", ["c1"])], "operator:test")
        assert e1_slices() == 0.0  # the revision before, served at once; the follower is woken
        deadline = time.monotonic() + 5
        while m.state._topology_samples[0] != service.revision and time.monotonic() < deadline:  # type: ignore[index]
            time.sleep(0.01)
        assert e1_slices() == 1.0  # rebuilt by the follower
    finally:
        stop()
    service.delete("cars", "operator:test")
    assert e1_slices() == 0.0  # no follower: the scrape rebuilds


class _WatchedIdle:
    """``SCRAPES.idle`` that tells who waits at it: the follower's gate, observed."""

    def __init__(self, real: threading.Event) -> None:
        self._real = real
        self._changed = threading.Condition()
        self.entered = 0  # waits begun
        self.waiting = 0  # waits not returned yet

    def wait(self, timeout: float | None = None) -> bool:
        with self._changed:
            self.entered += 1
            self.waiting += 1
            self._changed.notify_all()
        try:
            return self._real.wait(timeout)
        finally:
            with self._changed:
                self.waiting -= 1

    def someone_waits_since(self, entered: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.entered > entered and self.waiting > 0, timeout)

    def __getattr__(self, name: str) -> Any:  # set, clear, is_set
        return getattr(self._real, name)


def test_the_follower_waits_for_scrapes_in_progress(
    service: ControllerService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The topology rebuild would share the GIL with a scrape: it starts once none is running."""
    m = build_metrics(service, None, CollectorRegistry(), process=False)
    assert m.state is not None
    state = m.state
    list(state.collect())  # built for the revision before the change
    idle = _WatchedIdle(SCRAPES.idle)
    monkeypatch.setattr(SCRAPES, "idle", idle)
    stop = state.follow_changes(interval_s=0.01)
    try:
        with SCRAPES.running():
            # The follower comes to the gate while the scrape runs, and is held there.
            assert idle.someone_waits_since(idle.entered, timeout=5)
            service.apply([doc("cars", "vehicle", ["c1"])], "operator:test")
            assert idle.waiting  # still held after the change
            assert state._topology_samples[0] != service.revision  # type: ignore[index]
        deadline = time.monotonic() + 5
        while state._topology_samples[0] != service.revision and time.monotonic() < deadline:  # type: ignore[index]
            time.sleep(0.01)
        assert state._topology_samples[0] == service.revision  # type: ignore[index]
    finally:
        stop()


def test_conditions_are_counted_by_status_and_no_evidence_is_unknown(service: ControllerService) -> None:
    registry = _registry_with(service)
    service.apply([doc("cars", "vehicle", ["c1"])], "operator:test")

    def n(condition: str, status: str) -> float | None:
        labels = {"kind": "vehicle", "condition": condition, "status": status}
        return registry.get_sample_value("edgeslice_slice_conditions", labels)

    assert (n("Ready", "True"), n("SLAMet", "Unknown"), n("SLAMet", "True")) == (1, 1, 0)  # no KPIs yet
    service.set_sla("cars", None, "NoTelemetry", "no KPIs", "controller:sla")
    assert (n("SLAMet", "Unknown"), n("SLAMet", "False")) == (1, 0)
    service.set_sla("cars", False, "LatencyExceeded", "p99 9 ms > 5 ms", "controller:sla")
    assert (n("SLAMet", "Unknown"), n("SLAMet", "False"), n("Ready", "False")) == (0, 1, 1)
