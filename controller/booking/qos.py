"""From a CAMARA ``sliceQosProfile`` and the cells its area covers to a ``NetworkSliceSpec``.

The rules (docs/booking.md, "QoS mapping", works them through for a stadium, a police corridor
and a sensor field):

- **Kind.** The tighter delay budget ≤ 10 ms: ``vehicle`` (URLLC, SST 2), the only profile built
  for delay-critical traffic (the 5-10 ms budgets of the delay-critical 5QIs, TS 23.501 table
  5.7.4-1). Otherwise a per-device rate (the larger of down and up) of 1 Mbps or more: ``wifi``
  (eMBB, SST 1): that is a broadband device, beyond what MIoT devices (LTE-M, NB-IoT) carry,
  whatever its budget (video streaming is eMBB at a 300 ms budget). Otherwise ``iot`` (MIoT,
  SST 3): few bits, any budget from 10 ms up.
- **Latency.** ``sla.latencyMs`` is the tighter of the two budgets in ms. Under 1 ms is refused
  (no cell-to-edge path promises that); a budget looser than 1000 ms is met by 1000 ms, the
  loosest bound a slice takes, so it is capped rather than refused. No budget at all: the kind's
  default latency.
- **Throughput.** Per cell and direction, ``maxNumOfDevices × rate per device``, rounded up to
  whole kbit/s, in *every* covered cell: the devices may all gather in one cell, and the API
  guarantees each its rate wherever it is in the area (at most 20 devices, so the worst case is
  small). ``reserved_mbps`` is what the network then holds: (down + up) per cell × cells.
- **Devices, priority, preemption.** ``sla.maxDevices`` is ``maxNumOfDevices``; the priority is
  the kind's; a booking is never preemptible, since the API promises the profile for the whole
  service time.

Fields the spec leaves optional but a reservation needs (the device count, both rates, a rate's
or a budget's value and unit) are refused with ``INVALID_ARGUMENT`` naming them; values beyond
what a slice takes with ``OUT_OF_RANGE`` naming them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from controller.booking import camara, ports
from slices import intent, profiles

#: Tighter budgets than this (ms) need the URLLC profile.
URLLC_BUDGET_MS = 10
#: A device needing this much (bit/s, down or up) is a broadband device, not an MIoT one.
BROADBAND_BPS = 1_000_000
#: The bounds of ``sla.latencyMs`` a booking is given (below: refused; above: capped).
MIN_LATENCY_MS = 1
MAX_LATENCY_MS = 1000
#: ``Sla.dl_mbps_per_cell`` and ``ul_mbps_per_cell`` take at most this (kbit/s).
MAX_KBPS_PER_CELL = 100_000 * 1000

KIND_SST = {intent.SliceKind.VEHICLE: 2, intent.SliceKind.WIFI: 1, intent.SliceKind.IOT: 3}

_BPS = {"bps": 1, "kbps": 10**3, "Mbps": 10**6, "Gbps": 10**9, "Tbps": 10**12}
_MS = {
    "Days": Fraction(86_400_000),
    "Hours": Fraction(3_600_000),
    "Minutes": Fraction(60_000),
    "Seconds": Fraction(1000),
    "Milliseconds": Fraction(1),
    "Microseconds": Fraction(1, 1000),
    "Nanoseconds": Fraction(1, 1_000_000),
}

_PROFILE = "sliceQosProfile"


@dataclass(frozen=True)
class QosMapping:
    """A booking's slice spec, what it holds against the tenant's Mbps quota, and why."""

    spec: intent.NetworkSliceSpec
    reserved_mbps: float  # (DL + UL) per cell × covered cells
    explanation: str  # one line, for the operator's audit trail and the booking's events


def to_spec(profile: camara.SliceQosProfile, cells: Sequence[str]) -> QosMapping:
    """Map ``profile`` over ``cells`` (from :func:`controller.booking.areas.covered_cells`).

    >>> p = camara.SliceQosProfile.model_validate({"maxNumOfDevices": 5,
    ...     "downStreamRatePerDevice": {"value": 10, "unit": "bps"},
    ...     "upStreamRatePerDevice": {"value": 10, "unit": "bps"},
    ...     "downStreamDelayBudget": {"value": 12, "unit": "Milliseconds"},
    ...     "upStreamDelayBudget": {"value": 12, "unit": "Milliseconds"}})
    >>> m = to_spec(p, ["c1", "c2"])
    >>> m.spec.kind.value, m.spec.sla.latency_ms, m.spec.sla.dl_mbps_per_cell, m.reserved_mbps
    ('iot', 12.0, 0.001, 0.004)
    """
    if not cells:
        raise ports.area_not_supported("serviceArea: covers no cell of this network")
    devices = profile.maxNumOfDevices
    if devices is None:
        raise ports.invalid_argument(f"{_PROFILE}.maxNumOfDevices: give the number of devices to reserve for")
    dl_bps = _bps(profile.downStreamRatePerDevice, "downStreamRatePerDevice")
    ul_bps = _bps(profile.upStreamRatePerDevice, "upStreamRatePerDevice")
    if dl_bps == 0 and ul_bps == 0:
        raise ports.out_of_range(
            f"{_PROFILE}.downStreamRatePerDevice: 0, and upStreamRatePerDevice 0 too: the slice would carry no traffic"
        )
    budgets = [
        (name, _ms(duration, name))
        for name, duration in (
            ("downStreamDelayBudget", profile.downStreamDelayBudget),
            ("upStreamDelayBudget", profile.upStreamDelayBudget),
        )
        if duration is not None
    ]
    tightest = min(budgets, key=lambda b: b[1]) if budgets else None

    if tightest is not None and tightest[1] <= URLLC_BUDGET_MS:
        kind = intent.SliceKind.VEHICLE
        why = f"URLLC, SST 2: the {_label(tightest[0])} delay budget, {_fmt_ms(tightest[1])}, is within {URLLC_BUDGET_MS} ms"
    elif max(dl_bps, ul_bps) >= BROADBAND_BPS:
        kind = intent.SliceKind.WIFI
        why = f"eMBB, SST 1: {_fmt_rate(max(dl_bps, ul_bps))} per device is broadband, beyond MIoT devices"
    else:
        kind = intent.SliceKind.IOT
        why = f"MIoT, SST 3: under {_fmt_rate(BROADBAND_BPS)} per device with no budget of {URLLC_BUDGET_MS} ms or less"
    kind_profile = profiles.PROFILES[kind]

    if tightest is None:
        latency = kind_profile.latency_ms
        latency_why = f"no delay budget, so the kind's default {latency:g} ms"
    else:
        latency = min(float(tightest[1]), float(MAX_LATENCY_MS))
        latency_why = f"{latency:g} ms from the {_label(tightest[0])} delay budget"
        if tightest[1] > MAX_LATENCY_MS:
            latency_why += f" of {_fmt_ms(tightest[1])}, capped at the loosest bound a slice takes"

    dl_kbps = _per_cell_kbps(devices, dl_bps, "downStreamRatePerDevice")
    ul_kbps = _per_cell_kbps(devices, ul_bps, "upStreamRatePerDevice")
    reserved_kbps = (dl_kbps + ul_kbps) * len(cells)
    spec = intent.NetworkSliceSpec(
        kind=kind,
        snssai=intent.Snssai(sst=KIND_SST[kind]),
        coverage=intent.Coverage(sites=tuple(cells)),
        sla=intent.Sla(
            latency_ms=latency,
            dl_mbps_per_cell=dl_kbps / 1000,
            ul_mbps_per_cell=ul_kbps / 1000,
            max_devices=devices,
        ),
        priority=kind_profile.priority,
        preemptible=False,
    )
    where = "the 1 covered cell" if len(cells) == 1 else f"each of the {len(cells)} covered cells"
    explanation = (
        f"{kind.value} ({why}); latency {latency_why}; per cell {_share(devices, dl_bps, dl_kbps)} down "
        f"and {_share(devices, ul_bps, ul_kbps)} up, in {where} (the devices may all be in one); "
        f"{_fmt_mbps(reserved_kbps)} reserved in all"
    )
    return QosMapping(spec=spec, reserved_mbps=reserved_kbps / 1000, explanation=explanation)


def _bps(rate: camara.Rate | None, field: str) -> int:
    if rate is None:
        raise ports.invalid_argument(f"{_PROFILE}.{field}: give the rate each device needs")
    if rate.value is None:
        raise ports.invalid_argument(f"{_PROFILE}.{field}.value: give the rate's value")
    if rate.unit is None:
        raise ports.invalid_argument(
            f"{_PROFILE}.{field}.unit: give the rate's unit (bps, kbps, Mbps, Gbps or Tbps)"
        )
    return rate.value * _BPS[rate.unit]


def _ms(duration: camara.Duration, field: str) -> Fraction:
    if duration.value is None:
        raise ports.invalid_argument(f"{_PROFILE}.{field}.value: give the budget's value")
    if duration.unit is None:
        raise ports.invalid_argument(f"{_PROFILE}.{field}.unit: give the budget's unit (e.g. Milliseconds)")
    ms = duration.value * _MS[duration.unit]
    if ms < MIN_LATENCY_MS:
        raise ports.out_of_range(
            f"{_PROFILE}.{field}: {duration.value} {duration.unit} is {_fmt_ms(ms)}; "
            f"this network promises no less than {MIN_LATENCY_MS} ms"
        )
    return ms


def _per_cell_kbps(devices: int, bps: int, field: str) -> int:
    kbps = -(-devices * bps // 1000)  # rounded up: never reserve less than asked
    if kbps > MAX_KBPS_PER_CELL:
        raise ports.out_of_range(
            f"{_PROFILE}.{field}: {devices} devices × {_fmt_rate(bps)} is {_fmt_mbps(kbps)} per cell, "
            f"more than a slice takes ({_fmt_mbps(MAX_KBPS_PER_CELL)})"
        )
    return kbps


def _share(devices: int, bps: int, kbps: int) -> str:
    exact = devices * bps
    rounded = "" if exact % 1000 == 0 else f" ({_fmt_rate(exact)} rounded up to whole kbit/s)"
    return f"{devices} × {_fmt_rate(bps)} = {_fmt_mbps(kbps)}{rounded}"


def _label(field: str) -> str:
    return "downstream" if field.startswith("down") else "upstream"


def _fmt_ms(ms: Fraction) -> str:
    return f"{float(ms):g} ms"


def _fmt_rate(bps: int) -> str:
    for unit, scale in reversed(_BPS.items()):
        if bps >= scale and bps % scale == 0:
            return f"{bps // scale} {unit}"
    return f"{bps} bps"


def _fmt_mbps(kbps: int) -> str:
    return f"{kbps / 1000:g} Mbps"
