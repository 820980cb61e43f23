"""Per-kind defaults and consistency rules, and the resolved form every other module uses.

Defaults follow GSMA NG.116 (Generic Network Slice Template) attribute meanings and the
standardised SST values of 3GPP TS 23.501 §5.15.2.2 (1 eMBB, 2 URLLC, 3 MIoT, 4 V2X); 5QI values
come from TS 23.501 table 5.7.4-1.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from slices import errors
from slices.intent import Coverage, Isolation, NetworkSlice, SliceKind, Workload

SST_NAMES = {1: "eMBB", 2: "URLLC", 3: "MIoT", 4: "V2X", 5: "HMTC"}


@dataclass(frozen=True)
class Profile:
    kind: SliceKind
    default_sst: int
    allowed_sst: tuple[int, ...]
    latency_ms: float
    dl_mbps_per_cell: float
    ul_mbps_per_cell: float
    max_devices: int
    reliability: float
    priority: int
    preemptible: bool
    isolation: Isolation
    five_qi: int
    workloads: tuple[Workload, ...]
    # The loosest latency bound that still makes sense for this kind (a V2X slice with a
    # 200 ms bound is not a V2X slice) and the least reliability it may ask for.
    max_latency_ms: float
    min_reliability: float


PROFILES: dict[SliceKind, Profile] = {
    SliceKind.IOT: Profile(
        kind=SliceKind.IOT,
        default_sst=3,
        allowed_sst=(3,),
        latency_ms=50.0,
        dl_mbps_per_cell=2.0,
        ul_mbps_per_cell=2.0,
        max_devices=100_000,
        reliability=0.99,
        priority=20,
        preemptible=False,
        isolation=Isolation.SHARED,
        five_qi=9,
        workloads=(
            Workload(
                name="mqtt", image="eclipse-mosquitto:2.0", cpu_millicores=500, memory_mib=512, replicas=2
            ),
        ),
        max_latency_ms=1000.0,
        min_reliability=0.0,
    ),
    SliceKind.VEHICLE: Profile(
        kind=SliceKind.VEHICLE,
        default_sst=4,
        allowed_sst=(4, 2),
        latency_ms=5.0,
        dl_mbps_per_cell=50.0,
        ul_mbps_per_cell=25.0,
        max_devices=5_000,
        reliability=0.99999,
        priority=100,
        preemptible=False,
        isolation=Isolation.DEDICATED,
        five_qi=83,
        workloads=(
            Workload(
                name="v2x-edge",
                image="eclipse/zenoh:1.0.0",
                cpu_millicores=2000,
                memory_mib=2048,
                replicas=2,
                port=7447,
            ),
        ),
        max_latency_ms=20.0,
        min_reliability=0.999,
    ),
    SliceKind.WIFI: Profile(
        kind=SliceKind.WIFI,
        default_sst=1,
        allowed_sst=(1,),
        latency_ms=30.0,
        dl_mbps_per_cell=100.0,
        ul_mbps_per_cell=20.0,
        max_devices=20_000,
        reliability=0.99,
        priority=10,
        preemptible=True,
        isolation=Isolation.SHARED,
        five_qi=9,
        workloads=(
            Workload(
                name="cache", image="nginx:1.27", cpu_millicores=1000, memory_mib=1024, replicas=2, port=80
            ),
        ),
        max_latency_ms=1000.0,
        min_reliability=0.0,
    ),
}


@dataclass(frozen=True)
class SliceIntent:
    """A slice with every default filled in, in the integer units placement reserves in.

    Bandwidth is kept in kbit/s as integers so that reserving and releasing are exact.
    """

    name: str
    kind: SliceKind
    sst: int
    sd: str | None
    coverage: Coverage
    latency_ms: float
    dl_kbps: int
    ul_kbps: int
    max_devices: int
    reliability: float
    priority: int
    preemptible: bool
    isolation: Isolation
    five_qi: int
    workloads: tuple[Workload, ...]
    spec_hash: str

    @property
    def snssai(self) -> str:
        return f"{self.sst}-{self.sd.lower()}" if self.sd else str(self.sst)

    @property
    def kbps_per_cell(self) -> int:
        """What one covered cell takes of its radio and of every link on its path (DL + UL)."""
        return self.dl_kbps + self.ul_kbps

    def replicas_at(self, workload: Workload, cells_here: int, cells_total: int) -> int:
        """Replicas of ``workload`` at an edge site serving ``cells_here`` of ``cells_total`` cells.

        >>> intent = resolve(NetworkSlice.model_validate({"metadata": {"name": "a"},
        ...     "spec": {"kind": "iot", "coverage": {"zones": ["z"]}}}))
        >>> w = intent.workloads[0]
        >>> intent.replicas_at(w, 1, 10), intent.replicas_at(w, 10, 10)
        (1, 2)
        """
        if cells_here <= 0:
            return 0
        return max(1, math.ceil(workload.replicas * cells_here / cells_total))

    def compute_at(self, cells_here: int, cells_total: int) -> tuple[int, int]:
        """(CPU millicores, memory MiB) an edge site needs to serve ``cells_here`` cells."""
        cpu = mem = 0
        for w in self.workloads:
            n = self.replicas_at(w, cells_here, cells_total)
            cpu += n * w.cpu_millicores
            mem += n * w.memory_mib
        return cpu, mem


NO_SD = "ffffff"  # TS 23.003 §28.4.2: the value that means "no SD"; never a default


def default_sd(name: str) -> str:
    """The Slice Differentiator of a slice that names none: 24 bits of a hash of its name, so
    two slices of one SST without ``snssai.sd`` get different S-NSSAIs (unless their names'
    hashes collide, about 1 in 16.7 million per pair; admission then names the clash) and the
    same slice gets the same SD on every controller and after every restart.

    >>> default_sd("cars"), default_sd("cars") == default_sd("cars"), default_sd("cars") != default_sd("bikes")
    ('f5cc7d', True, True)
    """
    sd = hashlib.blake2b(name.encode(), digest_size=3).hexdigest()
    return "fffffe" if sd == NO_SD else sd


def _mbps_to_kbps(value: float) -> int:
    return round(value * 1000)


def resolve(document: NetworkSlice) -> SliceIntent:
    """Fill defaults from the kind's profile and check the result is consistent.

    >>> doc = NetworkSlice.model_validate({"metadata": {"name": "cars"}, "spec": {
    ...     "kind": "vehicle", "snssai": {"sst": 1}, "coverage": {"zones": ["ring"]}}})
    >>> resolve(doc)
    Traceback (most recent call last):
    ...
    slices.errors.InvalidSpec: cars: spec.snssai.sst: SST 1 (eMBB) does not fit kind 'vehicle', which takes SST 4 (V2X) or 2 (URLLC)
    """
    spec = document.spec
    profile = PROFILES[spec.kind]
    where = document.name

    def bad(field: str, why: str) -> errors.InvalidSpec:
        return errors.InvalidSpec(f"{where}: spec.{field}: {why}")

    sst = spec.snssai.sst if spec.snssai else profile.default_sst
    if sst not in profile.allowed_sst:
        allowed = " or ".join(f"{s} ({SST_NAMES.get(s, '?')})" for s in profile.allowed_sst)
        raise bad(
            "snssai.sst",
            f"SST {sst} ({SST_NAMES.get(sst, 'operator-specific')}) does not fit kind "
            f"{spec.kind.value!r}, which takes SST {allowed}",
        )
    sla = spec.sla
    latency = sla.latency_ms if sla.latency_ms is not None else profile.latency_ms
    if latency > profile.max_latency_ms:
        raise bad(
            "sla.latencyMs",
            f"{latency:g} ms is too loose for kind {spec.kind.value!r} (at most {profile.max_latency_ms:g} ms)",
        )
    reliability = sla.reliability if sla.reliability is not None else profile.reliability
    if reliability < profile.min_reliability:
        raise bad(
            "sla.reliability",
            f"{reliability:g} is below what kind {spec.kind.value!r} needs (at least {profile.min_reliability:g})",
        )
    dl = sla.dl_mbps_per_cell if sla.dl_mbps_per_cell is not None else profile.dl_mbps_per_cell
    ul = sla.ul_mbps_per_cell if sla.ul_mbps_per_cell is not None else profile.ul_mbps_per_cell
    if dl + ul <= 0:
        raise bad("sla", "dlMbpsPerCell and ulMbpsPerCell are both 0: the slice would carry no traffic")
    priority = spec.priority if spec.priority is not None else profile.priority
    workloads = spec.workloads if spec.workloads is not None else profile.workloads
    if not workloads:
        raise bad("workloads", "a slice needs at least one edge workload")
    canonical = json.dumps(document.spec.to_wire(), sort_keys=True, separators=(",", ":"))
    return SliceIntent(
        name=document.name,
        kind=spec.kind,
        sst=sst,
        sd=spec.snssai.sd if spec.snssai and spec.snssai.sd else default_sd(document.name),
        coverage=spec.coverage,
        latency_ms=latency,
        dl_kbps=_mbps_to_kbps(dl),
        ul_kbps=_mbps_to_kbps(ul),
        max_devices=sla.max_devices if sla.max_devices is not None else profile.max_devices,
        reliability=reliability,
        priority=priority,
        preemptible=spec.preemptible if spec.preemptible is not None else profile.preemptible,
        isolation=spec.isolation if spec.isolation is not None else profile.isolation,
        five_qi=profile.five_qi,
        workloads=workloads,
        spec_hash=hashlib.sha256(canonical.encode()).hexdigest()[:16],
    )
