"""What each site of the city should be configured with, derived from the placed slices.

Pure: a function of the topology and the (intent, placement) pairs, returning plain values. The
agent service turns a :class:`SiteConfig` into the wire message and numbers it with a generation
from :class:`Generations`, which moves only when the content of that site's config changes, so an
unrelated slice elsewhere in the city never makes a site re-apply its config.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from controller.core.placement_model import Placement
from controller.core.topology import Topology, link_key
from slices.profiles import SliceIntent

PRIORITY_MAX = 1000  # slices.intent: priority is 0..1000, higher wins
ARP_HIGHEST, ARP_LOWEST = 1, 15  # TS 23.501 §5.7.2.2: ARP priority level 1 is the highest


def arp_priority_level(priority: int) -> int:
    """Map the slice priority (0..1000, higher wins) to an ARP priority level (1 highest .. 15).

    >>> arp_priority_level(1000), arp_priority_level(500), arp_priority_level(0)
    (1, 8, 15)
    """
    priority = min(max(priority, 0), PRIORITY_MAX)
    span = ARP_LOWEST - ARP_HIGHEST
    return ARP_HIGHEST + round((PRIORITY_MAX - priority) * span / PRIORITY_MAX)


@dataclass(frozen=True)
class QosConfig:
    five_qi: int
    arp_priority_level: int
    preemption_capability: bool
    preemption_vulnerability: bool
    guaranteed_dl_kbps: int
    guaranteed_ul_kbps: int
    latency_budget_ms: float
    max_packet_loss: float


@dataclass(frozen=True)
class RadioConfig:
    reserved_kbps: int
    capacity_kbps: int

    @property
    def share_ppm(self) -> int:
        return self.reserved_kbps * 1_000_000 // self.capacity_kbps if self.capacity_kbps else 0


@dataclass(frozen=True)
class LinkConfig:
    peer: str
    reserved_kbps: int
    capacity_kbps: int


@dataclass(frozen=True)
class WorkloadConfig:
    name: str
    image: str
    replicas: int
    cpu_millicores: int
    memory_mib: int


@dataclass(frozen=True)
class ComputeConfig:
    cpu_millicores: int
    memory_mib: int
    cells: int
    workloads: tuple[WorkloadConfig, ...]


@dataclass(frozen=True)
class SliceAtSite:
    name: str
    sst: int
    sd: str  # "" when absent
    qos: QosConfig
    radio: RadioConfig | None
    links: tuple[LinkConfig, ...]  # sorted by peer
    compute: ComputeConfig | None
    route: tuple[str, ...]  # cells: cell .. serving edge
    serving_edge: str


@dataclass(frozen=True)
class SiteConfig:
    site: str
    kind: str
    slices: tuple[SliceAtSite, ...]  # sorted by name

    @property
    def content_hash(self) -> str:
        """Identifies the content; equal configs hash equal (dataclass ``repr`` is deterministic)."""
        return hashlib.blake2b(repr((self.kind, self.slices)).encode(), digest_size=16).hexdigest()

    def slice_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.slices)


@dataclass
class _Acc:
    """What one slice adds up to at one site while the placement is walked."""

    radio_kbps: int = 0
    links: dict[str, int] = field(default_factory=dict)
    route: tuple[str, ...] = ()
    serving_edge: str = ""


def qos_of(intent: SliceIntent) -> QosConfig:
    return QosConfig(
        five_qi=intent.five_qi,
        arp_priority_level=arp_priority_level(intent.priority),
        preemption_capability=True,
        preemption_vulnerability=intent.preemptible,
        guaranteed_dl_kbps=intent.dl_kbps,
        guaranteed_ul_kbps=intent.ul_kbps,
        latency_budget_ms=intent.latency_ms,
        max_packet_loss=round(1.0 - intent.reliability, 12),
    )


def site_configs(
    topology: Topology, placed: Iterable[tuple[SliceIntent, Placement]]
) -> dict[str, SiteConfig]:
    """The desired config of every site of the topology (sites with no slice get an empty one).

    One pass over every placement's paths: each node on a cell's path gets the links of that path
    that touch it, the cell gets its radio share and route, each edge site its compute.
    """
    per_site: dict[str, dict[str, _Acc]] = {}
    compute: dict[tuple[str, str], ComputeConfig] = {}
    intents: dict[str, SliceIntent] = {}
    for intent, placement in placed:
        intents[intent.name] = intent
        bw = placement.kbps_per_cell
        for a in placement.assignments:
            nodes = a.nodes
            for i, node in enumerate(nodes):
                acc = per_site.setdefault(node, {}).setdefault(intent.name, _Acc())
                if i == 0:
                    acc.radio_kbps += bw
                    acc.route = nodes
                    acc.serving_edge = a.edge
                if i > 0:
                    acc.links[nodes[i - 1]] = acc.links.get(nodes[i - 1], 0) + bw
                if i + 1 < len(nodes):
                    acc.links[nodes[i + 1]] = acc.links.get(nodes[i + 1], 0) + bw
        workloads = {w.name: w for w in intent.workloads}
        for share in placement.edges:
            per_site.setdefault(share.site, {}).setdefault(intent.name, _Acc())
            compute[(share.site, intent.name)] = ComputeConfig(
                cpu_millicores=share.cpu_millicores,
                memory_mib=share.memory_mib,
                cells=share.cells,
                workloads=tuple(
                    WorkloadConfig(
                        name=name,
                        image=workloads[name].image if name in workloads else "",
                        replicas=n,
                        cpu_millicores=workloads[name].cpu_millicores if name in workloads else 0,
                        memory_mib=workloads[name].memory_mib if name in workloads else 0,
                    )
                    for name, n in sorted(share.replicas)
                ),
            )
    qos = {name: qos_of(intent) for name, intent in intents.items()}
    out: dict[str, SiteConfig] = {}
    for site_id, site in topology.sites.items():
        here = per_site.get(site_id, {})
        slices = []
        for name in sorted(here):
            acc = here[name]
            intent = intents[name]
            slices.append(
                SliceAtSite(
                    name=name,
                    sst=intent.sst,
                    sd=(intent.sd or "").lower(),
                    qos=qos[name],
                    radio=RadioConfig(acc.radio_kbps, site.radio_kbps) if acc.radio_kbps else None,
                    links=tuple(
                        LinkConfig(peer, kbps, _capacity(topology, site_id, peer))
                        for peer, kbps in sorted(acc.links.items())
                    ),
                    compute=compute.get((site_id, name)),
                    route=acc.route,
                    serving_edge=acc.serving_edge,
                )
            )
        out[site_id] = SiteConfig(site_id, site.kind.value, tuple(slices))
    return out


def _capacity(topology: Topology, a: str, b: str) -> int:
    idx = topology.link_index.get(link_key(a, b))
    return topology.links[idx].bandwidth_kbps if idx is not None else 0


class Generations:
    """A generation number per site that bumps only when the site's config content changes.

    Seeded with what was stored (site → (generation, content hash)), so generations keep rising
    across controller restarts and an unchanged config keeps its number.

    >>> g = Generations()
    >>> empty = SiteConfig("c1", "cell", ())
    >>> g.update({"c1": empty}), g.update({"c1": empty})
    ({'c1': 1}, {})
    >>> g.generation("c1"), g.raise_above("c1", 7), g.rows(["c1"])
    (1, 8, [('c1', 8, '...')])
    >>> Generations({"c1": (8, empty.content_hash)}).update({"c1": empty})
    {}
    """

    def __init__(self, stored: Mapping[str, tuple[int, str]] | None = None) -> None:
        self._gen: dict[str, int] = {site: gen for site, (gen, _) in (stored or {}).items()}
        self._hash: dict[str, str] = {site: digest for site, (_, digest) in (stored or {}).items()}

    def update(self, configs: Mapping[str, SiteConfig]) -> dict[str, int]:
        """Record the new desired configs; return the sites whose generation moved (and to what)."""
        moved: dict[str, int] = {}
        for site, config in configs.items():
            digest = config.content_hash
            if self._hash.get(site) != digest:
                self._hash[site] = digest
                self._gen[site] = self._gen.get(site, 0) + 1
                moved[site] = self._gen[site]
        return moved

    def raise_above(self, site: str, generation: int) -> int:
        """Number the site's current config above ``generation`` (an agent that applied a newer
        generation of another controller's); returns the site's generation."""
        if self._gen.get(site, 0) <= generation:
            self._gen[site] = generation + 1
        return self._gen[site]

    def generation(self, site: str) -> int:
        return self._gen.get(site, 0)

    def rows(self, sites: Iterable[str]) -> list[tuple[str, int, str]]:
        """(site, generation, content hash) of ``sites``, for the store."""
        return [(s, self._gen[s], self._hash.get(s, "")) for s in sites if s in self._gen]
