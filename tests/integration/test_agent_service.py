"""The agent-facing gRPC service on loopback against a fake controller: push and ack, limits,
status codes, leases and link reports."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
import pytest

from protos.edgeslice.agent.v1 import agent_pb2
from slices import errors
from telemetry import agentlink as agent_service
from telemetry.agentlink import lease
from telemetry.site import agent
from tests.support.clock import FakeClock
from tests.support.telemetry_fakes import FAST, FakeService, intent
from tests.support.waiting import eventually


@pytest.fixture
def service() -> FakeService:
    svc = FakeService()
    svc.put(intent("cars"), [("c1", "a1", "e1"), ("c2", "a1", "e1")])
    return svc


@pytest.fixture
def server(service: FakeService) -> Iterator[agent_service.AgentServer]:
    srv = agent_service.serve_agents(service, "127.0.0.1:0", dev=True, settings=FAST)
    yield srv
    srv.stop()


def raw_stream(port: int, messages: list[bytes], read: int = 10) -> tuple[list[bytes], grpc.StatusCode, str]:
    """Send raw bytes on a Connect stream; return what came back and the final status."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        method: Any = ch.stream_stream(agent_service.METHOD)
        call: Any = method(iter(messages), timeout=5)
        got: list[bytes] = []
        try:
            for m in call:
                got.append(m)
                if len(got) >= read:
                    call.cancel()
        except grpc.RpcError:
            pass
        return got, call.code(), call.details() or ""


def rejections(got: list[bytes]) -> list[agent_pb2.Rejection]:
    """The in-band Rejections among what the controller sent."""
    msgs = [agent_pb2.ControllerMessage.FromString(m) for m in got]
    return [m.rejection for m in msgs if m.WhichOneof("body") == "rejection"]


BEAT = agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat()).SerializeToString()


def hello(site: str, instance: str = "test-instance") -> bytes:
    return agent_pb2.AgentMessage(
        hello=agent_pb2.Hello(site_id=site, software_version="test/1", instance_id=instance)
    ).SerializeToString()


def run_agents(port: int, sites: list[str], body: Callable[[dict[str, agent.SiteAgent]], object]) -> None:
    """Run reference agents for ``sites`` while ``body`` (a coroutine function) runs."""

    async def main() -> None:
        ch = agent.open_channel(f"127.0.0.1:{port}", None)
        agents = {
            s: agent.SiteAgent(s, lambda: ch, agent.MemoryBackend(), agent.IdleKpiSource()) for s in sites
        }
        tasks = [asyncio.create_task(a.run()) for a in agents.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents.values())), 5)
            await body(agents)  # type: ignore[misc]
        finally:
            for a in agents.values():
                a.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ch.close()

    asyncio.run(main())


def test_config_is_pushed_acked_and_lag_clears(
    server: agent_service.AgentServer, service: FakeService
) -> None:
    async def body(agents: dict[str, agent.SiteAgent]) -> None:
        await asyncio.wait_for(agents["c1"].applied_event.wait(), 5)
        cfg = agents["c1"].applied
        assert cfg is not None and cfg.site_id == "c1" and [s.name for s in cfg.slices] == ["cars"]
        assert list(cfg.slices[0].route) == ["c1", "a1", "e1"] and cfg.slices[0].qos.five_qi == 83
        await asyncio.to_thread(
            eventually, "c1 acks generation 1", lambda: server.registry.status("c1").acked_generation == 1
        )
        st = server.registry.status("c1")
        assert (st.connected, st.up, st.desired_generation, st.config_lag_s) == (True, True, 1, 0.0)
        assert st.software_version == agent.AGENT_VERSION
        # A change in the controller reaches the agent as a new generation.
        service.put(intent("cars"), [("c1", "a2", "e2"), ("c2", "a1", "e1")])
        await asyncio.to_thread(
            eventually, "c1 acks generation 2", lambda: server.registry.status("c1").acked_generation == 2
        )
        assert agents["c1"].applied is not None and list(agents["c1"].applied.slices[0].route) == [
            "c1",
            "a2",
            "e2",
        ]
        assert server.registry.status("c2").acked_generation == 1  # c2's config did not change

    run_agents(server.port, ["c1", "c2"], body)


def test_refused_config_is_reported_and_resent_until_acked(server: agent_service.AgentServer) -> None:
    async def body(agents: dict[str, agent.SiteAgent]) -> None:
        pass

    async def main() -> None:
        ch = agent.open_channel(f"127.0.0.1:{server.port}", None)
        backend = agent.MemoryBackend()
        backend.refuse = agent.ApplyResult(False, "Unsupported", "no radio scheduler here")
        a = agent.SiteAgent("c1", lambda: ch, backend, agent.IdleKpiSource())
        task = asyncio.create_task(a.run())
        await asyncio.to_thread(
            eventually,
            "c1's nack recorded",
            lambda: server.registry.status("c1").nack_reason == "Unsupported",
        )
        st = server.registry.status("c1")
        assert st.acked_generation == 0 and st.desired_generation == 1 and st.config_lag_s > 0
        assert st.nack_message == "no radio scheduler here"
        backend.refuse = None  # the backend recovers: the resend is applied
        await asyncio.to_thread(
            eventually, "c1 acks generation 1", lambda: server.registry.status("c1").acked_generation == 1
        )
        assert backend.applies == 1 and server.registry.status("c1").nack_reason == ""
        a.stop()
        await task
        await ch.close()

    asyncio.run(main())


def test_unknown_site_is_not_found(server: agent_service.AgentServer) -> None:
    _, code, details = raw_stream(server.port, [hello("nowhere")])
    assert code == grpc.StatusCode.NOT_FOUND and "'nowhere'" in details


def test_first_message_must_be_hello(server: agent_service.AgentServer) -> None:
    beat = agent_pb2.AgentMessage(heartbeat=agent_pb2.Heartbeat()).SerializeToString()
    _, code, details = raw_stream(server.port, [beat])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "first message must be hello" in details
    _, code, details = raw_stream(
        server.port, [agent_pb2.AgentMessage(hello=agent_pb2.Hello()).SerializeToString()]
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "hello.site_id" in details


def test_bytes_that_are_not_protobuf_are_invalid_argument(server: agent_service.AgentServer) -> None:
    _, code, details = raw_stream(server.port, [b"\xff\xff\xff\xff garbage"])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not a valid AgentMessage" in details
    _, code, _ = raw_stream(server.port, [hello("c1"), b"\x0a\xff"], read=100)
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_message_is_resource_exhausted(server: agent_service.AgentServer) -> None:
    batch = agent_pb2.AgentMessage()
    for i in range(20_000):
        batch.telemetry.slices.add(slice=f"slice-{i:06d}", latency_p99_ms=1.0)
    raw = batch.SerializeToString()
    assert len(raw) > FAST.max_message_bytes
    _, code, _ = raw_stream(server.port, [hello("c1"), raw], read=100)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The server is unharmed: the next agent is served.
    got, _, _ = raw_stream(server.port, [hello("c2")], read=1)
    assert agent_pb2.ControllerMessage.FromString(got[0]).welcome.site_id == "c2"


@pytest.mark.parametrize(
    ("kpi", "field"),
    [
        (agent_pb2.SliceKpi(slice="cars", latency_p99_ms=float("nan")), "latency_p99_ms"),
        (agent_pb2.SliceKpi(slice="cars", packet_loss=1.5), "packet_loss"),
        (agent_pb2.SliceKpi(slice="cars", dl_throughput_mbps=-1.0), "dl_throughput_mbps"),
    ],
)
def test_malformed_kpis_are_rejected_in_band_and_the_stream_stays_open(
    server: agent_service.AgentServer, kpi: agent_pb2.SliceKpi, field: str
) -> None:
    msg = agent_pb2.AgentMessage(telemetry=agent_pb2.TelemetryBatch(slices=[kpi])).SerializeToString()
    got, code, details = raw_stream(server.port, [hello("c1"), msg, BEAT], read=100)
    assert code == grpc.StatusCode.OK, details  # the agent closed it; the controller did not
    [r] = rejections(got)
    assert r.message_kind == "telemetry" and r.field == f"slices[0].{field}" and field in r.message
    assert r.reason == ("NotFinite" if field == "latency_p99_ms" else "OutOfRange")
    assert "nothing kept" in r.message and server.registry.status("c1").kpi_records == 0
    assert server.registry.status("c1").messages == 2  # the heartbeat after it was handled


def test_link_to_a_site_that_is_not_a_neighbour_is_rejected(server: agent_service.AgentServer) -> None:
    batch = agent_pb2.TelemetryBatch()
    batch.health.links.add(peer="e2", up=False)  # c1 has no link to e2
    msg = agent_pb2.AgentMessage(telemetry=batch).SerializeToString()
    got, code, _ = raw_stream(server.port, [hello("c1"), msg], read=100)
    [r] = rejections(got)
    assert code == grpc.StatusCode.OK and (r.reason, r.field) == ("UnknownPeer", "health.links[0].peer")
    assert "'e2' is not linked" in r.message


def test_over_the_rate_is_throttled_in_band_then_resource_exhausted(service: FakeService) -> None:
    settings = agent_service.AgentSettings(rate_per_s=5.0, rate_burst=5.0)
    srv = agent_service.serve_agents(service, "127.0.0.1:0", dev=True, settings=settings)
    try:
        got, code, _ = raw_stream(srv.port, [hello("c1")] + [BEAT] * 8, read=100)
        # A few over the burst: dropped and answered, the stream goes on.
        [r] = rejections(got)
        assert code == grpc.StatusCode.OK and r.reason == "Throttled" and r.retry_after_ms > 0
        assert r.message_kind == "heartbeat" and r.field == ""
        _, code, details = raw_stream(srv.port, [hello("c2")] + [BEAT] * 50, read=100)
        # Ignoring the throttling for another burst ends it.
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "above 5 messages/s" in details
    finally:
        srv.stop()


def test_a_second_instance_is_refused_the_same_instance_replaces(server: agent_service.AgentServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        method: Any = ch.stream_stream(agent_service.METHOD)
        first_requests: list[bytes] = [hello("c1")]

        def forever() -> Iterator[bytes]:
            yield from first_requests
            time.sleep(10)

        first = method(forever(), timeout=10)
        next(first)  # welcome
        # Another instance while the lease is valid: refused, the first session stays.
        _, code, details = raw_stream(server.port, [hello("c1", "other-instance")], read=1)
        assert code == grpc.StatusCode.ALREADY_EXISTS and "retry after lease_ms" in details
        assert server.registry.status("c1").connected
        # The same instance re-dialling replaces its older stream.
        got, _, _ = raw_stream(server.port, [hello("c1")], read=1)
        assert got
        with pytest.raises(grpc.RpcError) as exc:
            for _ in first:
                pass
        assert exc.value.code() == grpc.StatusCode.ABORTED


def test_kpis_are_kept_bounded_and_unknown_slices_ignored(service: FakeService) -> None:
    registry = agent_service.AgentRegistry(service, agent_service.AgentSettings(kpi_window=3), FakeClock())
    registry.refresh(force=True)
    session = registry.open("c1", "t", lambda: None)
    batch = agent_pb2.TelemetryBatch(
        slices=[agent_pb2.SliceKpi(slice="cars"), agent_pb2.SliceKpi(slice="ghost")]
    )
    for _ in range(10):
        assert registry.record_telemetry(session, batch) == 1
    assert [len(v) for v in registry.kpis().values()] == [3]
    assert registry.unknown_slice_reports == 10


def test_lease_expiry_marks_down_once_and_return_marks_up(service: FakeService) -> None:
    clock = FakeClock()
    registry = agent_service.AgentRegistry(service, agent_service.AgentSettings(lease_s=3.0), clock)
    monitor = lease.LeaseMonitor(registry, service)
    registry.refresh(force=True)
    session = registry.open("a1", "t", lambda: None)
    monitor.tick()
    assert service.calls_of("site_down") == []
    clock.advance(2.0)
    registry.admit_message(session)  # renews the lease
    clock.advance(2.5)
    monitor.tick()
    assert service.calls_of("site_down") == []
    clock.advance(1.0)
    monitor.tick()
    monitor.tick()
    [(_, site, reason, actor)] = service.calls_of("site_down")
    assert site == "a1" and str(reason).startswith("LeaseExpired") and actor == "agent:a1"
    assert not registry.status("a1").up and not registry.status("a1").connected
    # The expiry ended the session: what it sends now does not count (the agent must Hello again).
    assert session.expired
    with pytest.raises(agent_service.StreamError) as ended:
        registry.admit_message(session)
    assert ended.value.code == grpc.StatusCode.UNAVAILABLE
    monitor.tick()
    assert service.calls_of("site_up") == []
    # Healing moved the slice off a1: a1's desired config changed (now empty).
    desired = registry.desired("a1")
    assert desired is not None and desired[0].slices == () and desired[1] == 2
    # Sites that never had an agent are not marked down.
    assert all(c[1] == "a1" for c in service.calls_of("site_down"))
    registry.open("a1", "t", lambda: None)  # a new Hello
    monitor.tick()
    assert service.calls_of("site_up") == [("site_up", "a1", "agent:a1")]
    assert registry.status("a1").up


def test_links_reported_down_and_up(service: FakeService) -> None:
    registry = agent_service.AgentRegistry(service, FAST, FakeClock())
    monitor = lease.LeaseMonitor(registry, service)
    registry.refresh(force=True)
    c1, a1 = registry.open("c1", "t", lambda: None), registry.open("a1", "t", lambda: None)

    def report(session: agent_service.Session, peer: str, up: bool) -> None:
        batch = agent_pb2.TelemetryBatch()
        batch.health.links.add(peer=peer, up=up)
        registry.record_telemetry(session, batch)

    report(c1, "a1", False)
    report(a1, "c1", False)  # both ends say so: still one link-down
    monitor.tick()
    [(_, key, reason, actor)] = service.calls_of("link_down")
    assert key == ("a1", "c1") and "ReportedDown" in str(reason) and actor == "agent:c1"
    report(c1, "a1", True)
    monitor.tick()
    assert service.calls_of("link_up") == []  # a1 still reports it down
    report(a1, "c1", True)
    monitor.tick()
    assert service.calls_of("link_up") == [("link_up", ("a1", "c1"), "agent:a1")]


def test_insecure_only_in_dev_mode_and_on_loopback(service: FakeService) -> None:
    registry = agent_service.AgentRegistry(service)
    with pytest.raises(errors.InvalidSpec, match="mutual TLS"):
        agent_service.AgentServer(registry, "127.0.0.1:0", tls=None, dev=False)
    with pytest.raises(errors.InvalidSpec, match="loopback"):
        agent_service.AgentServer(registry, "0.0.0.0:0", tls=None, dev=True)


def columns(**values: list[Any]) -> agent_pb2.TelemetryBatch:
    """A batch of KPI columns: ``slice`` plus the given columns; the others get one default per slice."""
    names = values.pop("slice")
    c = agent_pb2.SliceKpiColumns(slice=names)
    for f in agent_pb2.SliceKpiColumns.DESCRIPTOR.fields[1:]:
        getattr(c, f.name).extend(values.pop(f.name, [0] * len(names)))
    assert not values, values
    return agent_pb2.TelemetryBatch(columns=c)


def test_columns_and_rows_store_the_same_samples(service: FakeService) -> None:
    service.put(intent("bus"), [("c1", "a1", "e1")])
    clock = FakeClock()
    registry = agent_service.AgentRegistry(service, FAST, clock)
    registry.refresh(force=True)
    c1, c2 = registry.open("c1", "t", lambda: None), registry.open("c2", "t", lambda: None)
    kpi = {"dl_throughput_mbps": 5.0, "latency_p99_ms": 3.5, "packet_loss": 0.01, "active_devices": 7}

    def row(name: str) -> agent_pb2.SliceKpi:  # the same KPIs as ``kpi``
        return agent_pb2.SliceKpi(
            slice=name, dl_throughput_mbps=5.0, latency_p99_ms=3.5, packet_loss=0.01, active_devices=7
        )

    rows = agent_pb2.TelemetryBatch(slices=[row("cars"), row("bus")])
    cols = columns(slice=["cars", "bus"], **{k: [v, v] for k, v in kpi.items()})
    assert registry.record_telemetry(c1, rows) == 2
    assert registry.record_telemetry(c2, cols) == 1  # bus is not configured at c2: not kept
    assert registry.unknown_slice_reports == 1
    got = registry.kpis()
    assert (
        got[("cars", "c1")]
        == got[("cars", "c2")]
        == [agent_service.KpiSample(clock(), 5.0, 0.0, 0.0, 0.0, 0.0, 3.5, 0.01, 7, 0.0)]
    )
    assert registry.latest_kpi("bus", "c1") == got[("bus", "c1")][0]
    assert registry.latest_kpi("bus", "c2") is None
    [r] = registry.take_outbox(c2)  # the agent is told, once for the batch
    assert (r.rejection.reason, r.rejection.field) == (
        "UnknownSlice",
        "slices",
    ) and "'bus'" in r.rejection.message
    assert registry.status("c2").kpi_records == 1


def test_kpis_of_a_slice_that_left_the_site_are_dropped(service: FakeService) -> None:
    registry = agent_service.AgentRegistry(service, FAST, FakeClock())
    registry.refresh(force=True)
    c1 = registry.open("c1", "t", lambda: None)
    registry.record_telemetry(c1, columns(slice=["cars"]))
    assert ("cars", "c1") in registry.kpis()
    service.put(intent("cars"), [("c2", "a1", "e1")])  # cars now only at c2
    registry.refresh()
    assert registry.kpis() == {} and registry.latest_kpi("cars", "c1") is None


def test_huge_finite_values_are_accepted(service: FakeService) -> None:
    # The fast check sums every value: an overflow to inf must not reject finite numbers.
    registry = agent_service.AgentRegistry(service, FAST, FakeClock())
    registry.refresh(force=True)
    c1 = registry.open("c1", "t", lambda: None)
    assert (
        registry.record_telemetry(
            c1, columns(slice=["cars"], dl_throughput_mbps=[1e308], ul_throughput_mbps=[1e308])
        )
        == 1
    )


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (columns(slice=["cars"], latency_p99_ms=[float("nan")]), "columns.latency_p99_ms[0] (slice 'cars')"),
        (columns(slice=["cars"], dl_demand_mbps=[float("inf")]), "columns.dl_demand_mbps[0]"),
        (columns(slice=["cars"], ul_throughput_mbps=[-0.5]), "columns.ul_throughput_mbps[0]"),
        (
            columns(slice=["cars"], packet_loss=[1.5]),
            "columns.packet_loss[0] (slice 'cars'): 1.5 is not in 0..1",
        ),
        (columns(slice=["cars"], radio_utilisation=[11.0]), "columns.radio_utilisation[0]"),
        (columns(slice=["cars"], latency_p50_ms=[1.0, 2.0]), "columns.latency_p50_ms: 2 values for 1 slices"),
        (columns(slice=[], packet_loss=[0.5]), "columns.packet_loss: 1 values for 0 slices"),
        (columns(slice=["cars", "cars"]), "'cars' reported more than once in one batch"),
        (
            agent_pb2.TelemetryBatch(
                slices=[agent_pb2.SliceKpi(slice="cars")], columns=columns(slice=["cars"]).columns
            ),
            "'cars' reported more than once",
        ),
    ],
)
def test_malformed_kpi_columns_are_invalid_and_nothing_is_kept(
    service: FakeService, batch: agent_pb2.TelemetryBatch, expected: str
) -> None:
    registry = agent_service.AgentRegistry(service, FAST, FakeClock())
    registry.refresh(force=True)
    c1 = registry.open("c1", "t", lambda: None)
    assert registry.record_telemetry(c1, batch) == 0
    [r] = registry.take_outbox(c1)
    assert expected in r.rejection.message and r.rejection.field and r.rejection.reason
    assert registry.kpis() == {} and registry.status("c1").kpi_records == 0


def test_malformed_columns_are_rejected_in_band(server: agent_service.AgentServer) -> None:
    batch = columns(slice=["cars"], packet_loss=[-1.0])
    msg = agent_pb2.AgentMessage(telemetry=batch).SerializeToString()
    got, code, _ = raw_stream(server.port, [hello("c1"), msg], read=100)
    [r] = rejections(got)
    assert code == grpc.StatusCode.OK and r.field == "columns.packet_loss[0]" and r.reason == "OutOfRange"


def test_messages_after_a_bad_one_count_and_other_streams_go_on(service: FakeService) -> None:
    """Over real streams: a batch with a bad value is rejected in-band and only it is lost; what
    came before and after it counts; the other stream, handled alongside, loses nothing."""
    unlimited = dataclasses.replace(FAST, rate_per_s=1e6, rate_burst=1e6)
    srv = agent_service.serve_agents(service, "127.0.0.1:0", dev=True, settings=unlimited)
    good = agent_pb2.AgentMessage(telemetry=columns(slice=["cars"])).SerializeToString()
    bad = agent_pb2.AgentMessage(telemetry=columns(slice=["cars"], packet_loss=[2.0])).SerializeToString()
    sent = {"c1": [good] * 20 + [bad] + [good] * 50, "c2": [good] * 100}
    ended: dict[str, tuple[grpc.StatusCode, str]] = {}

    def send(site: str) -> None:
        _, code, details = raw_stream(srv.port, [hello(site), *sent[site]], read=1000)
        ended[site] = (code, details)

    try:
        threads = [threading.Thread(target=send, args=(site,)) for site in sent]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ended["c1"] == (grpc.StatusCode.OK, "")
        assert ended["c2"] == (grpc.StatusCode.OK, "")
        assert srv.registry.status("c1").kpi_records == 70
        assert srv.registry.status("c2").kpi_records == 100
        assert srv.servicer.accepted_messages == 71 + 100
    finally:
        srv.stop()


def test_queued_messages_of_a_failed_stream_are_dropped_in_order(service: FakeService) -> None:
    """The queue of one event-loop pass, handled in arrival order: once a stream's message fails
    (a protocol violation: a second Hello), its later messages in the same pass are dropped, and
    the other stream's are handled; a bad value is answered in-band and fails nothing."""
    registry = agent_service.AgentRegistry(service, dataclasses.replace(FAST, rate_burst=100), FakeClock())
    registry.refresh(force=True)
    servicer = agent_service.AgentServicer(registry, require_identity=False)
    c1, c2 = registry.open("c1", "t", lambda: None), registry.open("c2", "t", lambda: None)
    good = agent_pb2.AgentMessage(telemetry=columns(slice=["cars"])).SerializeToString()
    bad = hello("c1")
    bad_value = agent_pb2.AgentMessage(
        telemetry=columns(slice=["cars"], latency_p50_ms=[-1.0])
    ).SerializeToString()
    failed1: list[agent_service.StreamError] = []
    failed2: list[agent_service.StreamError] = []
    woken1, woken2 = asyncio.Event(), asyncio.Event()
    servicer._queued.extend(  # what the streams' readers queue
        [
            (c1, good, failed1, woken1),
            (c2, good, failed2, woken2),
            (c2, bad_value, failed2, woken2),
            (c1, bad, failed1, woken1),
            (c1, good, failed1, woken1),
            (c2, good, failed2, woken2),
        ]
    )
    servicer._handle_queued()
    assert [(e.code, "hello: sent twice" in e.message) for e in failed1] == [
        (grpc.StatusCode.INVALID_ARGUMENT, True)
    ]
    assert woken1.is_set() and not failed2 and woken2.is_set()  # woken to send c2's rejection
    assert [m.rejection.field for m in registry.take_outbox(c2)] == ["columns.latency_p50_ms[0]"]
    assert (registry.status("c1").kpi_records, registry.status("c2").kpi_records) == (1, 2)
    assert servicer.accepted_messages == 4 and not servicer._queued


def test_session_columns_agree_with_the_site_states(service: FakeService) -> None:
    """The arrays a scrape reads are written where the site states are: they say the same."""
    clock = FakeClock()
    registry = agent_service.AgentRegistry(service, FAST, clock)
    registry.refresh(force=True)
    c1, c2 = registry.open("c1", "t", lambda: None), registry.open("c2", "t", lambda: None)
    clock.advance(2.0)
    registry.admit_message(c1)
    desired = registry.desired("c1")
    assert desired is not None
    registry.ack(c1, agent_pb2.ConfigAck(generation=desired[1], ok=True))
    registry.close(c2)
    service.put(intent("bus"), [("c1", "a1", "e1")])
    registry.refresh()  # c1's generation moves on
    clock.advance(1.0)

    def facts(connected: bool, seen: float, desired: int, acked: int) -> tuple[bool, float, int, int]:
        return (bool(connected), float(seen), int(desired), int(acked))

    c = registry.session_columns()
    columns = {
        site: facts(*row)
        for site, *row in zip(
            c.sites, c.connected, c.seconds_since_seen, c.desired_generation, c.acked_generation, strict=True
        )
    }
    states = {
        s.site: facts(s.connected, s.last_seen_s, s.desired_generation, s.acked_generation)
        for s in registry.statuses(connected_only=True)
    }
    assert columns == states
    assert columns["c1"] == (True, 1.0, desired[1] + 1, desired[1]) and columns["c2"][0] is False


def test_server_takes_a_whole_city_of_pending_streams() -> None:
    options = dict(agent_service.server_options(agent_service.AgentSettings()))
    assert options["grpc.server.max_pending_requests"] >= 20_000
    assert options["grpc.server.max_pending_requests_hard_limit"] >= 20_000


def test_interceptors_see_every_call(service: FakeService) -> None:
    seen: list[str] = []

    class Count(grpc.aio.ServerInterceptor):
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            seen.append(details.method)
            return await continuation(details)

    srv = agent_service.serve_agents(service, "127.0.0.1:0", dev=True, settings=FAST, interceptors=[Count()])
    try:
        got, _, _ = raw_stream(srv.port, [hello("c1")], read=1)
        assert agent_pb2.ControllerMessage.FromString(got[0]).welcome.site_id == "c1"
        assert seen == [agent_service.METHOD]
    finally:
        srv.stop()


class BatchingService(FakeService):
    """The fake controller with the real one's ``sites_down`` (one decision for several sites)."""

    def sites_down(self, downs: Sequence[tuple[str, str]], actor: str) -> list[str]:
        with self.lock:
            self.calls.append(("sites_down", tuple(downs), actor))
        moved: list[str] = []
        for site, reason in downs:
            moved += FakeService.site_down(self, site, reason, actor)
        return moved


def test_several_leases_expiring_in_one_check_are_one_sites_down() -> None:
    service = BatchingService()
    service.put(intent("cars"), [("c1", "a1", "e1"), ("c2", "a1", "e1")])
    clock = FakeClock()
    registry = agent_service.AgentRegistry(service, agent_service.AgentSettings(lease_s=3.0), clock)
    monitor = lease.LeaseMonitor(registry, service)
    registry.refresh(force=True)
    sessions = {site: registry.open(site, "t", lambda: None) for site in ("c1", "c2", "a1")}
    clock.advance(2.0)
    registry.admit_message(sessions["a1"])  # a1 keeps its lease a while longer
    clock.advance(1.5)
    monitor.tick()
    reason = "LeaseExpired: no message from the agent for 3 s"
    assert service.calls_of("sites_down") == [("sites_down", (("c1", reason), ("c2", reason)), "controller")]
    assert [c[1] for c in service.calls_of("site_down")] == ["c1", "c2"]  # only through sites_down
    assert [site for site, _ in monitor.downs] == ["c1", "c2"]
    assert not registry.status("c1").up and not registry.status("c2").up and registry.status("a1").up
    monitor.tick()
    assert len(service.calls_of("sites_down")) == 1  # each outage once
    # One site alone is still its agent's site_down, as before.
    clock.advance(2.0)
    monitor.tick()
    assert len(service.calls_of("sites_down")) == 1
    assert service.calls_of("site_down")[-1] == ("site_down", "a1", reason, "agent:a1")


def test_a_heartbeat_below_the_acked_generation_means_not_acked_and_a_resend(service: FakeService) -> None:
    registry = agent_service.AgentRegistry(service, FAST, FakeClock())
    registry.refresh(force=True)
    c1 = registry.open("c1", "t", lambda: None, "i1")
    service.put(intent("bus"), [("c1", "a1", "e1")])
    registry.refresh()
    desired = registry.desired("c1")
    assert desired is not None and desired[1] == 2
    assert registry.next_config(c1) is not None
    registry.ack(c1, agent_pb2.ConfigAck(generation=2, ok=True))
    registry.take_progress()
    for applied in (0, 2):  # not reported, or what it acked: nothing changes
        registry.heartbeat(c1, applied)
        assert registry.status("c1").acked_generation == 2 and registry.next_config(c1) is None
    registry.heartbeat(c1, 1)  # its backend rolled back
    assert registry.status("c1").acked_generation == 1
    again = registry.next_config(c1)
    assert again is not None and again.config.generation == 2
    assert "bus" in registry.take_progress()  # bus is no longer acked at c1


def test_an_applied_generation_with_nothing_above_it_is_invalid(server: agent_service.AgentServer) -> None:
    top = agent_pb2.AgentMessage(
        hello=agent_pb2.Hello(
            site_id="c1", software_version="t", instance_id="i", applied_generation=2**64 - 1
        )
    ).SerializeToString()
    _, code, details = raw_stream(server.port, [top])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "hello.applied_generation" in details
    got, _, _ = raw_stream(server.port, [hello("c2")], read=1)  # the next agent is served
    assert agent_pb2.ControllerMessage.FromString(got[0]).welcome.site_id == "c2"


def test_the_message_rate_operators_see_is_averaged_over_the_minute(service: FakeService) -> None:
    clock = FakeClock()
    registry = agent_service.AgentRegistry(service, dataclasses.replace(FAST, rate_per_s=100.0), clock)
    registry.refresh(force=True)
    c1 = registry.open("c1", "t", lambda: None, "i1")
    for _ in range(30):  # 2 messages/s for 15 s
        registry.admit_message(c1)
        clock.advance(0.5)
    info = registry.agent("c1")
    assert info is not None and info.messages_per_s == pytest.approx(2.0, rel=0.05)
    for _ in range(100):  # then 1 message/s: the next minute reports it
        registry.admit_message(c1)
        clock.advance(1.0)
    info = registry.agent("c1")
    assert info is not None and info.messages_per_s == pytest.approx(1.0, rel=0.1)


def test_welcome_tells_the_resend_interval_and_every_config_names_the_links_to_report(
    server: agent_service.AgentServer,
) -> None:
    got, _, _ = raw_stream(server.port, [hello("c1")], read=2)
    welcome, config = (agent_pb2.ControllerMessage.FromString(m) for m in got)
    assert welcome.welcome.config_resend_ms == round(FAST.resend_after_s * 1000)
    assert list(config.config.peers) == ["a1", "a2"]  # c1 is dual-homed
    got, _, _ = raw_stream(server.port, [hello("e2")], read=2)  # no slice at e2: its link all the same
    e2 = agent_pb2.ControllerMessage.FromString(got[1]).config
    assert list(e2.slices) == [] and list(e2.peers) == ["a2"]
