"""KPI ingest: the wire-compatible view (columns as bytes) against agent.proto's own parse, the
fallbacks it relies on, and the whole-city columnar read against the per-sample one."""

from __future__ import annotations

import math
import random
import re
import struct
from dataclasses import asdict
from typing import Any

import pytest
from google.protobuf.message import Message

from protos.edgeslice.agent.v1 import agent_ingest_pb2, agent_pb2
from telemetry import agentlink as agent_service
from telemetry.agentlink import kpi_store
from telemetry.metrics.kpis import aggregate_kpi_columns
from tests.support.clock import FakeClock
from tests.support.kpi_oracle import SliceKpis
from tests.support.metrics_city import aggregate_kpis, kpi_rows
from tests.support.telemetry_fakes import FakeService, intent

DOUBLE_COLUMNS = [f.name for f in agent_pb2.SliceKpiColumns.DESCRIPTOR.fields if f.type == f.TYPE_DOUBLE]


def test_the_view_stays_in_step_with_agent_proto() -> None:
    """Every field of the view has its counterpart's number and name, and the same type except the
    double columns (bytes: the same wire type, length-delimited)."""
    pairs: list[tuple[type[Message], type[Message]]] = [
        (agent_pb2.AgentMessage, agent_ingest_pb2.IngestAgentMessage),
        (agent_pb2.TelemetryBatch, agent_ingest_pb2.IngestTelemetryBatch),
        (agent_pb2.SliceKpiColumns, agent_ingest_pb2.IngestSliceKpiColumns),
    ]
    for real, view in pairs:
        got = {f.number: f for f in view.DESCRIPTOR.fields}
        for f in real.DESCRIPTOR.fields:
            v = got.pop(f.number)
            assert v.name == f.name, (real.__name__, f.number)
            if f.type == f.TYPE_DOUBLE:
                assert f.is_repeated and f.is_packed and v.type == v.TYPE_BYTES and not v.is_repeated
            else:
                assert (v.type, v.is_repeated) == (f.type, f.is_repeated), (real.__name__, f.name)
            if f.message_type is not None:  # the same message, or its view (one of the pairs)
                same = f.message_type.full_name
                assert v.message_type is not None, f.name
                assert v.message_type.full_name in (same, same.replace(".v1.", ".v1.Ingest")), f.name
            assert (v.containing_oneof is None) == (f.containing_oneof is None), f.name
        assert not got, f"{view.__name__} has fields {real.__name__} lacks: {got}"


def _registry(service: FakeService) -> tuple[agent_service.AgentRegistry, FakeClock]:
    clock = FakeClock()
    registry = agent_service.AgentRegistry(service, agent_service.AgentSettings(kpi_window=5), clock)
    registry.refresh(force=True)
    return registry, clock


@pytest.fixture
def service() -> FakeService:
    svc = FakeService()
    svc.put(intent("cars"), [("c1", "a1", "e1"), ("c2", "a1", "e1")])
    svc.put(intent("bus"), [("c1", "a1", "e1")])
    return svc


def _batch(rng: random.Random, names: list[str]) -> agent_pb2.TelemetryBatch:
    c = agent_pb2.SliceKpiColumns(slice=names)
    for name in DOUBLE_COLUMNS:
        upper = 1.0 if name == "packet_loss" else 5.0
        getattr(c, name).extend(rng.choice([0.0, upper, rng.uniform(0, upper)]) for _ in names)
    c.active_devices.extend(rng.randrange(0, 1000) for _ in names)
    return agent_pb2.TelemetryBatch(columns=c)


def _ingest(registry: agent_service.AgentRegistry, session: Any, raw: bytes) -> int:
    """As the servicer does: parse with the view, keep the original bytes for the general path."""
    msg = agent_ingest_pb2.IngestAgentMessage.FromString(raw)
    return registry.record_telemetry(session, msg.telemetry, raw)


def test_the_fast_path_keeps_what_the_general_path_keeps(service: FakeService) -> None:
    rng = random.Random(5)
    fast, _ = _registry(service)
    general, _ = _registry(service)
    sessions = {r: {s: r.open(s, "t", lambda: None) for s in ("c1", "c2")} for r in (fast, general)}
    for _ in range(30):
        site = rng.choice(["c1", "c2"])
        names = rng.sample(["cars", "bus"], rng.randrange(0, 3))
        batch = _batch(rng, names)
        raw = agent_pb2.AgentMessage(telemetry=batch).SerializeToString()
        assert _ingest(fast, sessions[fast][site], raw) == general.record_telemetry(
            sessions[general][site], batch
        )
    assert fast.kpis() == general.kpis() != {}
    assert fast.unknown_slice_reports == general.unknown_slice_reports > 0  # bus is not at c2


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("dl_throughput_mbps", -1.0, r"columns.dl_throughput_mbps\[1\] \(slice 'bus'\): -1.0 is negative"),
        (
            "latency_p99_ms",
            math.nan,
            r"columns.latency_p99_ms\[1\] \(slice 'bus'\): nan is not a finite number",
        ),
        (
            "ul_demand_mbps",
            math.inf,
            r"columns.ul_demand_mbps\[1\] \(slice 'bus'\): inf is not a finite number",
        ),
        ("packet_loss", 1.5, r"columns.packet_loss\[1\] \(slice 'bus'\): 1.5 is not in 0..1"),
        ("radio_utilisation", 11.0, r"columns.radio_utilisation\[1\] \(slice 'bus'\): 11.0 is not in"),
    ],
)
def test_a_bad_value_is_named_and_nothing_of_the_batch_is_kept(
    service: FakeService, column: str, value: float, message: str
) -> None:
    registry, _ = _registry(service)
    c1 = registry.open("c1", "t", lambda: None)
    batch = _batch(random.Random(1), ["cars", "bus"])
    getattr(batch.columns, column)[1] = value
    raw = agent_pb2.AgentMessage(telemetry=batch).SerializeToString()
    assert _ingest(registry, c1, raw) == 0  # answered in-band, the stream goes on
    [out] = registry.take_outbox(c1)
    assert re.search(message, out.rejection.message) and out.rejection.field == f"columns.{column}[1]"
    assert registry.kpis() == {} and registry.status("c1").kpi_records == 0


def test_negative_zero_and_huge_finite_values_take_the_general_path_and_are_kept(
    service: FakeService,
) -> None:
    registry, _ = _registry(service)
    c1 = registry.open("c1", "t", lambda: None)
    batch = _batch(random.Random(2), ["cars"])
    batch.columns.dl_throughput_mbps[0] = -0.0
    batch.columns.ul_throughput_mbps[0] = 1e308
    view = agent_ingest_pb2.IngestAgentMessage.FromString(
        agent_pb2.AgentMessage(telemetry=batch).SerializeToString()
    )
    assert kpi_store.packed_columns(view.telemetry.columns) is None
    assert _ingest(registry, c1, agent_pb2.AgentMessage(telemetry=batch).SerializeToString()) == 1
    sample = registry.latest_kpi("cars", "c1")
    assert sample is not None and sample.ul_mbps == 1e308


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _message_with(columns: agent_pb2.SliceKpiColumns, dl_wire: bytes) -> bytes:
    """An AgentMessage whose dl_throughput_mbps column is encoded as ``dl_wire`` (hand-made)."""
    rest = agent_pb2.SliceKpiColumns()
    rest.CopyFrom(columns)
    rest.ClearField("dl_throughput_mbps")
    return _field(4, _field(4, rest.SerializeToString() + dl_wire))


@pytest.mark.parametrize("encoding", ["unpacked", "split"])
def test_unpacked_or_split_columns_are_read_by_the_general_path(service: FakeService, encoding: str) -> None:
    """Legal encodings the bytes view cannot hold whole: each value its own field (unpacked), or
    the packed values in two records (a parser concatenates them; a bytes field keeps the last)."""
    registry, _ = _registry(service)
    c1 = registry.open("c1", "t", lambda: None)
    batch = _batch(random.Random(3), ["cars", "bus"])
    dl = list(batch.columns.dl_throughput_mbps)
    if encoding == "unpacked":
        wire = b"".join(_varint(2 << 3 | 1) + struct.pack("<d", v) for v in dl)
    else:
        wire = b"".join(_field(2, struct.pack("<d", v)) for v in dl)
    raw = _message_with(batch.columns, wire)
    assert agent_pb2.AgentMessage.FromString(raw).telemetry == batch  # what agent.proto reads
    view = agent_ingest_pb2.IngestAgentMessage.FromString(raw)
    assert kpi_store.packed_columns(view.telemetry.columns) is None
    assert _ingest(registry, c1, raw) == 2
    samples = [registry.latest_kpi(n, "c1") for n in ("cars", "bus")]
    assert [s.dl_mbps if s is not None else None for s in samples] == dl


def test_the_columnar_read_matches_the_sample_read(service: FakeService) -> None:
    """What a scrape aggregates (arrays, numpy) equals what the per-sample read gives, including
    a slice left out of a site's last batch (its newest record is in an older one), a stale site,
    and a transport site (not a cell: not read)."""
    service.put(intent("tram"), [("c2", "a1", "e1")])
    registry, clock = _registry(service)
    rng = random.Random(9)
    sessions = {s: registry.open(s, "t", lambda: None) for s in ("c1", "c2", "a1")}
    registry.record_telemetry(sessions["c2"], _batch(rng, ["cars", "tram"]))
    clock.advance(1.0)
    registry.record_telemetry(sessions["c2"], _batch(rng, ["cars"]))  # tram's newest is older
    registry.record_telemetry(sessions["a1"], _batch(rng, ["cars", "bus"]))
    clock.advance(20.0)
    registry.record_telemetry(sessions["c1"], _batch(rng, ["cars", "bus"]))
    clock.advance(1.0)
    registry.record_telemetry(sessions["c1"], _batch(rng, ["bus", "cars"]))
    clock.advance(1.0)

    def both(since: float) -> tuple[dict[str, SliceKpis], dict[str, SliceKpis]]:
        cells = {"c1", "c2"}
        columnar = kpi_rows(aggregate_kpi_columns(registry.latest_kpi_columns(since, cells)))
        per_slice: dict[str, list[Any]] = {}
        for (name, site), window in registry.kpis(since).items():
            if site in cells:
                per_slice.setdefault(name, []).append(window[-1])  # the newest sample of each pair
        return columnar, {n: aggregate_kpis(n, s) for n, s in per_slice.items()}

    columnar, samples = both(-math.inf)
    assert set(columnar) == set(samples) == {"cars", "bus", "tram"}
    for name, k in samples.items():
        assert asdict(columnar[name]) == pytest.approx(asdict(k)), name
    assert registry.latest_kpi("tram", "c2") == registry.kpis()[("tram", "c2")][-1]
    columnar, samples = both(clock() - 5.0)  # c2 has gone quiet
    assert set(columnar) == set(samples) == {"cars", "bus"}
    assert asdict(columnar["cars"]) == pytest.approx(asdict(samples["cars"]))
    assert registry.latest_kpi_columns(clock(), {"c1"}).slice_ids.size == 0


@pytest.mark.parametrize(
    ("links", "message"),
    [
        ([("a1", math.nan), ("a2", 0.5)], "health.links[0].utilisation: nan is not a finite number"),
        ([("a1", 0.5), ("a2", math.nan)], "health.links[1].utilisation: nan is not a finite number"),
        ([("a1", 0.5), ("a2", 11.0)], "health.links[1].utilisation: 11.0 is not in 0..10"),
        ([("a1", -0.5)], "health.links[0].utilisation: -0.5 is not in 0..10"),
        ([("a1", 0.5), ("e1", 0.5)], "health.links[1].peer: 'e1' is not linked to this site"),
    ],
)
def test_a_bad_link_state_is_named_and_nothing_of_the_batch_is_kept(
    service: FakeService, links: list[tuple[str, float]], message: str
) -> None:
    registry, _ = _registry(service)
    c1 = registry.open("c1", "t", lambda: None)
    batch = _batch(random.Random(4), ["cars"])
    for peer, utilisation in links:
        batch.health.links.add(peer=peer, up=True, utilisation=utilisation)
    assert _ingest(registry, c1, agent_pb2.AgentMessage(telemetry=batch).SerializeToString()) == 0
    [out] = registry.take_outbox(c1)
    assert message in out.rejection.message and out.rejection.field in message
    assert registry.kpis() == {}
    batch.health.ClearField("links")
    batch.health.links.add(peer="a2", up=False, utilisation=0.25)
    assert _ingest(registry, c1, agent_pb2.AgentMessage(telemetry=batch).SerializeToString()) == 1
    assert [e.action for e in registry.take_effects()] == ["hello", "link-down"]


def test_the_columnar_read_has_every_newest_record_over_random_sites() -> None:
    """Many sites with batches of many sizes (the read groups batches by size), some slices left
    out of a site's last batch, some sites stale: the columnar read holds exactly the records the
    per-sample read gives, value for value."""
    rng = random.Random(5)
    store = kpi_store.KpiStore(window=4)
    slices = [f"s{i}" for i in range(12)]
    configured: dict[str, int] = {}
    for s in range(60):
        site = f"c{s}"
        at_site = rng.sample(slices, rng.randint(1, 9))
        configured[site] = len(at_site)
        start = rng.choice([1.0, 5.0])  # some sites stale: all their batches before ``since``
        for t in range(rng.randint(1, 4)):
            names = rng.sample(at_site, rng.randint(1, len(at_site)))
            columns = kpi_store.checked_columns(_batch(rng, names))
            store.add(site, start + t, columns, frozenset(at_site))
    since = 4.5
    got = store.latest_columns(since, {f"c{s}" for s in range(60)}, configured)
    names = [got.slice_names[i] for i in got.slice_ids.tolist()]
    columnar = sorted(
        zip(
            names,
            *(getattr(got, f).tolist() for f in (*DOUBLE_COLUMNS, "active_devices")),
            strict=True,
        )
    )
    fields: tuple[str, ...] = ("dl_mbps", "ul_mbps", "dl_demand_mbps", "ul_demand_mbps", "latency_p50_ms")
    fields += ("latency_p99_ms", "packet_loss", "radio_utilisation", "active_devices")
    # the plain implementation: every sample after ``since`` decoded, the newest of each kept
    latest = {key: samples[-1] for key, samples in store.samples(since).items()}
    per_sample = sorted((name, *(getattr(sample, f) for f in fields)) for (name, _), sample in latest.items())
    assert len(columnar) > 50 and columnar == per_sample
