"""The SLA's columnar windows (telemetry.agentlink.sla_windows) against the plain computation
over the samples (sla.windows_of): the same windows, float for float, so the same verdicts."""

from __future__ import annotations

import dataclasses
import random

from protos.edgeslice.agent.v1 import agent_pb2
from slices.profiles import SliceIntent
from telemetry.agentlink import kpi_store, sla
from telemetry.agentlink.sla_windows import sla_windows
from tests.support.telemetry_fakes import intent

KINDS = ("vehicle", "iot", "wifi")


def _batch(rng: random.Random, names: list[str]) -> agent_pb2.TelemetryBatch:
    def value(upper: float) -> float:
        return rng.choice([0.0, upper, rng.uniform(0, upper), round(rng.uniform(0, upper), 1)])

    c = agent_pb2.SliceKpiColumns(slice=names)
    for name in ("dl_throughput_mbps", "ul_throughput_mbps", "dl_demand_mbps", "ul_demand_mbps"):
        getattr(c, name).extend(value(120.0) for _ in names)  # about the guarantees, both sides
    for name in ("latency_p50_ms", "latency_p99_ms"):
        getattr(c, name).extend(value(20.0) for _ in names)
    c.packet_loss.extend(value(1.0) for _ in names)
    c.radio_utilisation.extend(value(2.0) for _ in names)
    c.active_devices.extend(rng.randrange(0, 5000) for _ in names)
    return agent_pb2.TelemetryBatch(columns=c)


def _intents(rng: random.Random, names: list[str]) -> dict[str, SliceIntent]:
    out = {}
    for name in names:
        it = intent(name, rng.choice(KINDS))
        # some guarantees zero (throughput not judged), some below and some above the demands
        dl, ul = (rng.choice([0, 1000, 50_000, 100_000]) for _ in range(2))
        out[name] = dataclasses.replace(it, dl_kbps=dl, ul_kbps=ul)
    return out


def _store(seed: int) -> tuple[kpi_store.KpiStore, list[str]]:
    rng = random.Random(seed)
    store = kpi_store.KpiStore(window=6)
    slices = [f"s{i}" for i in range(15)]
    for s in range(80):
        site = f"c{s}" if s % 5 else f"e{s}"
        at_site = rng.sample(slices, rng.randint(1, 10))
        start = rng.choice([1.0, 4.0, 6.0])  # some sites stale: all their batches before ``since``
        for t in range(rng.randint(1, 8)):
            names = rng.sample(at_site, rng.randint(1, len(at_site)))
            # the same time twice at some sites (a clock that did not move between batches)
            at = start + (t if rng.random() < 0.8 else max(0, t - 1))
            store.add(site, at, kpi_store.checked_columns(_batch(rng, names)), frozenset(at_site))
    return store, slices


def test_columnar_windows_are_the_plain_windows() -> None:
    for seed in range(6):
        store, slices = _store(seed)
        rng = random.Random(seed)
        intents = _intents(rng, slices[:-3])  # a few slices without an intent: not judged
        for since in (-float("inf"), 4.5, 8.5, 99.0):
            got = sla_windows(store.window_columns(since), intents)
            want = sla.windows_of(store.samples(since), intents)
            assert got == want, (seed, since)
            if since == 4.5:
                assert sum(map(len, got.values())) > 100
            assert not set(got) - set(intents)


def test_the_same_verdicts_either_way() -> None:
    store, slices = _store(11)
    intents = _intents(random.Random(11), slices)
    kinds = {f"c{s}": "cell" for s in range(80)} | {f"e{s}": "edge" for s in range(0, 80, 5)}
    got = sla_windows(store.window_columns(4.5), intents)
    samples = store.samples(4.5)
    reasons: set[str] = set()
    for name, it in intents.items():
        per_site = {site: w for (slice_name, site), w in samples.items() if slice_name == name}
        expected = set(per_site) | {"c999"}  # one site never reports: never Met
        want = sla.verdict(it, per_site, kinds, expected, 10.0)
        assert sla.judgement(it, got.get(name, {}), kinds, expected, 10.0) == want
        reasons.update(v.reason for v in want.violations)
    assert len(reasons) > 3  # violations of several kinds were compared


def test_an_empty_window() -> None:
    store, _ = _store(1)
    assert sla_windows(store.window_columns(1e9), {"s1": intent("s1")}) == {}
    assert sla_windows(kpi_store.KpiStore(window=3).window_columns(0.0), {}) == {}
