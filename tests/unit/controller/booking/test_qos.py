"""qos.to_spec: the worked examples of docs/booking.md, the rules' boundaries, and over the spec's
whole ranges that a profile either maps to a spec ``slices.profiles.resolve`` accepts or is refused
with OUT_OF_RANGE naming the field."""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.booking import camara, ports, qos
from slices import intent, profiles
from tests.support.paths import ROOT

Doc = dict[str, Any]


def rate(value: int, unit: str) -> Doc:
    return {"value": value, "unit": unit}


def budget(value: int, unit: str = "Milliseconds") -> Doc:
    return {"value": value, "unit": unit}


def profile(
    devices: int | None = 5,
    down: Doc | None = None,
    up: Doc | None = None,
    down_budget: Doc | None = None,
    up_budget: Doc | None = None,
) -> Doc:
    doc: Doc = {
        "maxNumOfDevices": devices,
        "downStreamRatePerDevice": down if down is not None else rate(100, "kbps"),
        "upStreamRatePerDevice": up if up is not None else rate(100, "kbps"),
        "downStreamDelayBudget": down_budget,
        "upStreamDelayBudget": up_budget,
    }
    return {k: v for k, v in doc.items() if v is not None}


def to_spec(doc: Doc, cells: int = 1) -> qos.QosMapping:
    return qos.to_spec(camara.SliceQosProfile.model_validate(doc), [f"c{i}" for i in range(1, cells + 1)])


def resolved(mapping: qos.QosMapping) -> profiles.SliceIntent:
    return profiles.resolve(
        intent.NetworkSlice(metadata=intent.ObjectMeta(name="booking"), spec=mapping.spec)
    )


def refused(doc: Doc, cells: int = 1) -> ports.BookingError:
    with pytest.raises(ports.BookingError) as caught:
        to_spec(doc, cells)
    assert "\n" not in caught.value.message
    return caught.value


# -- the worked examples of docs/booking.md ---------------------------------------------------


@dataclass(frozen=True)
class Worked:
    title: str
    profile: Doc
    cells: int
    kind: intent.SliceKind
    sst: int
    latency_ms: float
    dl_mbps_per_cell: float
    ul_mbps_per_cell: float
    reserved_mbps: float
    priority: int


#: 10 Wi-Fi access points backhauled over 5G for a match.
STADIUM = profile(10, rate(40, "Mbps"), rate(8, "Mbps"), budget(50), budget(50))
#: 4 patrol cars and 2 drones streaming video along a route.
CORRIDOR = profile(6, rate(2, "Mbps"), rate(8, "Mbps"), budget(20), budget(10))
#: 20 flood-level sensors reporting every few seconds.
SENSORS = profile(20, rate(16, "kbps"), rate(64, "kbps"), budget(5, "Seconds"), budget(2, "Seconds"))
#: RETRIEVAL_CIRCLE's sliceQosProfile: 50 bit/s per cell, rounded up to 1 kbit/s.
SPECS_OWN = profile(5, rate(10, "bps"), rate(10, "bps"), budget(12), budget(12))

WIFI, VEHICLE, IOT = intent.SliceKind.WIFI, intent.SliceKind.VEHICLE, intent.SliceKind.IOT
WORKED = [
    # title, profile, cells -> kind, sst, latency_ms, dl and ul Mbps per cell, reserved Mbps, priority
    Worked("stadium Wi-Fi", STADIUM, 2, WIFI, 1, 50, 400, 80, 960, 10),
    Worked("police corridor", CORRIDOR, 5, VEHICLE, 2, 10, 12, 48, 300, 100),
    Worked("river sensors", SENSORS, 4, IOT, 3, 1000, 0.32, 1.28, 6.4, 20),
    Worked("the spec's own example", SPECS_OWN, 3, IOT, 3, 12, 0.001, 0.001, 0.006, 20),
]


@pytest.mark.parametrize("case", WORKED, ids=[w.title for w in WORKED])
def test_worked_example(case: Worked) -> None:
    mapping = to_spec(case.profile, case.cells)
    spec = mapping.spec
    assert (spec.kind, spec.snssai) == (case.kind, intent.Snssai(sst=case.sst))
    assert spec.sla.latency_ms == case.latency_ms
    assert spec.sla.dl_mbps_per_cell == case.dl_mbps_per_cell
    assert spec.sla.ul_mbps_per_cell == case.ul_mbps_per_cell
    assert spec.sla.max_devices == case.profile["maxNumOfDevices"]
    assert (spec.priority, spec.preemptible) == (case.priority, False)
    assert spec.coverage == intent.Coverage(sites=tuple(f"c{i}" for i in range(1, case.cells + 1)))
    assert mapping.reserved_mbps == pytest.approx(case.reserved_mbps)
    slice_intent = resolved(mapping)
    assert slice_intent.kind == case.kind
    assert slice_intent.sst == case.sst
    assert slice_intent.latency_ms == case.latency_ms
    assert (slice_intent.dl_kbps, slice_intent.ul_kbps) == (
        round(case.dl_mbps_per_cell * 1000),
        round(case.ul_mbps_per_cell * 1000),
    )


def _qos_section() -> str:
    text = (ROOT / "docs" / "booking.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- qos:begin -->(.*)<!-- qos:end -->", text, re.S)
    assert match is not None, "docs/booking.md has no qos:begin/qos:end section"
    return match.group(1)


@pytest.mark.parametrize("case", WORKED, ids=[w.title for w in WORKED])
def test_docs_show_each_worked_example_as_mapped(case: Worked) -> None:
    """The docs' profile and explanation are the code's: a changed rule fails here until they agree."""
    section = _qos_section()
    assert json.dumps(case.profile) in section
    assert to_spec(case.profile, case.cells).explanation in section


# -- the rules' boundaries --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "kind"),
    [
        (profile(down_budget=budget(10)), intent.SliceKind.VEHICLE),
        (profile(down_budget=budget(11)), intent.SliceKind.IOT),
        (profile(down_budget=budget(10_001, "Microseconds")), intent.SliceKind.IOT),
        (profile(down_budget=budget(11), up_budget=budget(9)), intent.SliceKind.VEHICLE),
        (profile(down_budget=budget(5), down=rate(500, "Mbps")), intent.SliceKind.VEHICLE),
        (profile(down=rate(1, "Mbps")), intent.SliceKind.WIFI),
        (profile(down=rate(999, "kbps")), intent.SliceKind.IOT),
        (profile(up=rate(1000, "kbps")), intent.SliceKind.WIFI),  # the larger direction counts
        (profile(down=rate(5, "Mbps"), down_budget=budget(300)), intent.SliceKind.WIFI),  # video
        (profile(down=rate(0, "Mbps"), up=rate(1, "Gbps")), intent.SliceKind.WIFI),
    ],
)
def test_kind(doc: Doc, kind: intent.SliceKind) -> None:
    mapping = to_spec(doc)
    assert mapping.spec.kind == kind
    assert mapping.spec.snssai == intent.Snssai(sst=qos.KIND_SST[kind])
    assert mapping.explanation.startswith(f"{kind.value} (")
    resolved(mapping)


@pytest.mark.parametrize(
    ("down_budget", "up_budget", "latency"),
    [
        (budget(1, "Seconds"), None, 1000),
        (None, budget(1000, "Microseconds"), 1),
        (budget(1_000_000, "Nanoseconds"), budget(3), 1),
        (budget(2500, "Microseconds"), None, 2.5),
        (budget(2, "Seconds"), budget(1, "Days"), 1000),  # looser than 1000 ms: capped
        (budget(1, "Minutes"), budget(40), 40),
    ],
)
def test_latency_is_the_tighter_budget_in_ms(
    down_budget: Doc | None, up_budget: Doc | None, latency: float
) -> None:
    mapping = to_spec(profile(down_budget=down_budget, up_budget=up_budget))
    assert mapping.spec.sla.latency_ms == latency
    assert resolved(mapping).latency_ms == latency


def test_capping_is_said() -> None:
    assert "capped" in to_spec(profile(down_budget=budget(2, "Seconds"))).explanation
    assert "capped" not in to_spec(profile(down_budget=budget(1, "Seconds"))).explanation


@pytest.mark.parametrize(
    ("doc", "latency"),
    [
        (profile(), profiles.PROFILES[intent.SliceKind.IOT].latency_ms),
        (profile(down=rate(20, "Mbps")), profiles.PROFILES[intent.SliceKind.WIFI].latency_ms),
    ],
)
def test_no_budget_takes_the_kinds_latency(doc: Doc, latency: float) -> None:
    mapping = to_spec(doc)
    assert mapping.spec.sla.latency_ms == latency
    assert "no delay budget" in mapping.explanation


@pytest.mark.parametrize(
    ("field", "doc"),
    [
        ("downStreamDelayBudget", profile(down_budget=budget(999, "Microseconds"))),
        ("upStreamDelayBudget", profile(up_budget=budget(999_999, "Nanoseconds"), down_budget=budget(5))),
    ],
)
def test_under_a_millisecond_is_out_of_range(field: str, doc: Doc) -> None:
    error = refused(doc)
    assert (error.status, error.code) == (400, "OUT_OF_RANGE")
    assert error.message.startswith(f"sliceQosProfile.{field}:")


def test_per_cell_rate_is_devices_times_rate_rounded_up() -> None:
    mapping = to_spec(profile(3, rate(333, "bps"), rate(1, "kbps")), cells=7)
    assert mapping.spec.sla.dl_mbps_per_cell == 0.001  # 999 bit/s → 1 kbit/s
    assert mapping.spec.sla.ul_mbps_per_cell == 0.003
    assert mapping.reserved_mbps == pytest.approx(0.004 * 7)


def test_per_cell_limit() -> None:
    mapping = to_spec(profile(20, rate(5, "Gbps"), rate(0, "bps")))
    assert mapping.spec.sla.dl_mbps_per_cell == 100_000
    error = refused(profile(20, rate(5, "Gbps"), rate(1024, "Tbps")))
    assert (error.code, error.message.split(":")[0]) == (
        "OUT_OF_RANGE",
        "sliceQosProfile.upStreamRatePerDevice",
    )


def test_no_traffic_is_out_of_range() -> None:
    error = refused(profile(down=rate(0, "Mbps"), up=rate(0, "kbps")))
    assert error.code == "OUT_OF_RANGE"
    assert error.message.startswith("sliceQosProfile.downStreamRatePerDevice:")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (profile(devices=None), "maxNumOfDevices"),
        ({"maxNumOfDevices": 1, "upStreamRatePerDevice": rate(1, "kbps")}, "downStreamRatePerDevice"),
        ({"maxNumOfDevices": 1, "downStreamRatePerDevice": rate(1, "kbps")}, "upStreamRatePerDevice"),
        (profile(down={"unit": "kbps"}), "downStreamRatePerDevice.value"),
        (profile(up={"value": 1}), "upStreamRatePerDevice.unit"),
        (profile(down_budget={"unit": "Seconds"}), "downStreamDelayBudget.value"),
        (profile(up_budget={"value": 3}), "upStreamDelayBudget.unit"),
    ],
)
def test_what_a_reservation_needs_is_invalid_argument_when_missing(doc: Doc, field: str) -> None:
    error = refused(doc)
    assert (error.status, error.code) == (400, "INVALID_ARGUMENT")
    assert error.message.startswith(f"sliceQosProfile.{field}:")


def test_no_cells_is_area_not_supported() -> None:
    error = refused(profile(), cells=0)
    assert error.code == "NETWORK_SLICE_BOOKING.SERVICEAREA_NOT_SUPPORTED"


def test_the_spec_is_frozen_wire_shape() -> None:
    wire = to_spec(profile(down=rate(2, "Mbps")), cells=2).spec.to_wire()
    assert wire == {
        "kind": "wifi",
        "snssai": {"sst": 1},
        "coverage": {"sites": ["c1", "c2"], "zones": []},
        "sla": {"latencyMs": 30.0, "dlMbpsPerCell": 10.0, "ulMbpsPerCell": 0.5, "maxDevices": 5},
        "priority": 10,
        "preemptible": False,
    }


# -- over the spec's whole ranges -------------------------------------------------------------

rates = st.builds(rate, st.integers(0, 1024), st.sampled_from(typing.get_args(camara.RateUnit)))
budgets = st.none() | st.builds(
    budget,
    st.one_of(st.integers(1, 2000), st.integers(1, camara.INT32_MAX)),
    st.sampled_from(typing.get_args(camara.TimeUnit)),
)


@settings(max_examples=400, deadline=None)
@given(
    devices=st.integers(1, 20),
    down=rates,
    up=rates,
    down_budget=budgets,
    up_budget=budgets,
    cells=st.integers(1, 40),
)
def test_every_valid_profile_resolves_or_is_out_of_range(
    devices: int, down: Doc, up: Doc, down_budget: Doc | None, up_budget: Doc | None, cells: int
) -> None:
    doc = profile(devices, down, up, down_budget, up_budget)
    try:
        mapping = to_spec(doc, cells)
    except ports.BookingError as error:
        assert (error.status, error.code) == (400, "OUT_OF_RANGE")
        assert re.match(r"^sliceQosProfile\.(down|up)Stream(RatePerDevice|DelayBudget): ", error.message)
        assert "\n" not in error.message
        return
    slice_intent = resolved(mapping)
    # Never less than asked, per cell and direction; the quota counts what every cell holds.
    bps = {
        u: v for u, v in zip(typing.get_args(camara.RateUnit), (1, 10**3, 10**6, 10**9, 10**12), strict=True)
    }
    assert slice_intent.dl_kbps * 1000 >= devices * down["value"] * bps[down["unit"]]
    assert slice_intent.ul_kbps * 1000 >= devices * up["value"] * bps[up["unit"]]
    assert mapping.reserved_mbps == pytest.approx(
        (slice_intent.dl_kbps + slice_intent.ul_kbps) * cells / 1000
    )
    assert slice_intent.max_devices == devices
    assert 1 <= slice_intent.latency_ms <= 1000
    assert slice_intent.preemptible is False
