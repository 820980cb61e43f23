"""Profiles fill defaults per kind and refuse inconsistent specs with a reason."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slices import errors
from slices.intent import Isolation, NetworkSlice, SliceKind
from slices.profiles import PROFILES, default_sd, resolve


def doc(kind: str, **spec: Any) -> NetworkSlice:
    return NetworkSlice.model_validate(
        {"metadata": {"name": "s"}, "spec": {"kind": kind, "coverage": {"zones": ["z"]}, **spec}}
    )


@pytest.mark.parametrize(("kind", "sst"), [("iot", 3), ("vehicle", 4), ("wifi", 1)])
def test_defaults_follow_ts_23_501_sst(kind: str, sst: int) -> None:
    intent = resolve(doc(kind))
    assert intent.sst == sst
    # No snssai.sd: the default SD of the slice's name (issue 13: two such slices never clash).
    assert intent.snssai == f"{sst}-{default_sd('s')}" and re.fullmatch(r"[0-9a-f]{6}", default_sd("s"))


def test_slices_without_sd_get_different_default_sds() -> None:
    names = [f"slice-{i}" for i in range(2000)]
    sds = {default_sd(n) for n in names}
    assert len(sds) == len(names) and "ffffff" not in sds
    one = NetworkSlice.model_validate(
        {
            "metadata": {"name": "a"},
            "spec": {"kind": "iot", "snssai": {"sst": 3}, "coverage": {"zones": ["z"]}},
        }
    )
    two = NetworkSlice.model_validate(
        {"metadata": {"name": "b"}, "spec": {"kind": "iot", "coverage": {"zones": ["z"]}}}
    )
    assert resolve(one).snssai != resolve(two).snssai
    assert resolve(one).snssai == resolve(one).snssai  # the same on every resolve (restarts, replicas)
    explicit = resolve(doc("iot", snssai={"sst": 3, "sd": "0000AA"}))
    assert explicit.snssai == "3-0000aa"


def test_vehicle_is_urllc_grade_and_wifi_preemptible() -> None:
    cars, wifi, iot = resolve(doc("vehicle")), resolve(doc("wifi")), resolve(doc("iot"))
    assert cars.latency_ms <= 10 and cars.reliability >= 0.99999
    assert cars.priority > iot.priority > wifi.priority
    assert wifi.preemptible and not cars.preemptible
    assert cars.isolation == Isolation.DEDICATED


def test_spec_overrides_defaults_in_integer_units() -> None:
    intent = resolve(doc("wifi", sla={"dlMbpsPerCell": 12.5, "ulMbpsPerCell": 0.25}, priority=7))
    assert (intent.dl_kbps, intent.ul_kbps, intent.kbps_per_cell) == (12500, 250, 12750)
    assert intent.priority == 7


def test_vehicle_may_use_urllc_sst_2() -> None:
    assert resolve(doc("vehicle", snssai={"sst": 2, "sd": "000001"})).snssai == "2-000001"


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [
        (
            "vehicle",
            {"snssai": {"sst": 1}, "sla": {"latencyMs": 5}},
            "spec.snssai.sst: SST 1 (eMBB) does not fit kind 'vehicle'",
        ),
        ("iot", {"snssai": {"sst": 4}}, "SST 4 (V2X) does not fit kind 'iot', which takes SST 3 (MIoT)"),
        ("vehicle", {"sla": {"latencyMs": 50}}, "spec.sla.latencyMs: 50 ms is too loose for kind 'vehicle'"),
        (
            "vehicle",
            {"sla": {"reliability": 0.9}},
            "spec.sla.reliability: 0.9 is below what kind 'vehicle' needs",
        ),
        ("iot", {"sla": {"dlMbpsPerCell": 0, "ulMbpsPerCell": 0}}, "the slice would carry no traffic"),
        ("iot", {"workloads": []}, "spec.workloads: a slice needs at least one edge workload"),
    ],
)
def test_inconsistent_specs_say_why(kind: str, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidSpec) as info:
        resolve(doc(kind, **spec))
    assert message in str(info.value)
    assert str(info.value).startswith("s: ")


def test_spec_hash_tracks_spec_not_defaults() -> None:
    a, b = resolve(doc("iot")), resolve(doc("iot"))
    c = resolve(doc("iot", priority=21))
    assert a.spec_hash == b.spec_hash != c.spec_hash


@given(
    replicas=st.integers(1, 20),
    split=st.lists(st.integers(1, 300), min_size=1, max_size=6),
)
def test_edge_shares_cover_every_replica(replicas: int, split: list[int]) -> None:
    """However cells are split among edge sites, the replicas placed add up to at least what was asked."""
    intent = resolve(
        doc(
            "iot",
            workloads=[
                {"name": "w", "image": "i", "cpuMillicores": 100, "memoryMib": 64, "replicas": replicas}
            ],
        )
    )
    parts = split
    cells_total = sum(parts)
    w = intent.workloads[0]
    placed = [intent.replicas_at(w, n, cells_total) for n in parts]
    assert sum(placed) >= replicas
    assert all(p >= 1 for p in placed)
    cpu, mem = intent.compute_at(cells_total, cells_total)
    assert (cpu, mem) == (replicas * 100, replicas * 64)


def test_every_kind_has_a_profile() -> None:
    assert set(PROFILES) == set(SliceKind)
