"""A fake of the controller service's agent-facing methods, for the telemetry
unit tests (the end-to-end tests use the real :class:`controller.runtime.service.ControllerService`)."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from controller.core.placement_model import CellAssignment, EdgeShare, Placement
from controller.core.topology import LinkKey, Topology, link_key
from controller.runtime.realisation import AgentProgress
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent, resolve
from telemetry import agentlink as agent_service
from tests.support.cityfixtures import dual_homed_city


def intent(name: str, kind: str = "vehicle", **spec: object) -> SliceIntent:
    return resolve(
        NetworkSlice.model_validate(
            {"metadata": {"name": name}, "spec": {"kind": kind, "coverage": {"zones": ["z"]}, **spec}}
        )
    )


def placement(it: SliceIntent, routes: list[tuple[str, ...]]) -> Placement:
    """A placement whose cells follow ``routes`` (cell .. edge), with compute at each edge used."""
    assignments = tuple(CellAssignment(r[0], r[-1], r, 1.0) for r in routes)
    edges: dict[str, int] = {}
    for a in assignments:
        edges[a.edge] = edges.get(a.edge, 0) + 1
    shares = []
    for edge, cells in sorted(edges.items()):
        cpu, mem = it.compute_at(cells, len(assignments))
        reps = tuple((w.name, it.replicas_at(w, cells, len(assignments))) for w in it.workloads)
        shares.append(EdgeShare(edge, cells, cpu, mem, reps))
    return Placement(it.name, it.spec_hash, it.kbps_per_cell, assignments, tuple(shares))


# Agent settings short enough for loopback tests: a lease of 1 s, heartbeats and telemetry every 0.1 s.
FAST = agent_service.AgentSettings(
    lease_s=1.0, heartbeat_interval_s=0.1, telemetry_interval_s=0.1, resend_after_s=0.3, sla_window_s=0.5
)


@dataclass
class FakeRecord:
    name: str
    intent: SliceIntent
    placement: Placement | None
    state: str = "Ready"


@dataclass
class FakeService:
    """Records what telemetry asks of the controller; heals by moving routes off a down site."""

    base: Topology = field(default_factory=dual_homed_city)
    records: dict[str, FakeRecord] = field(default_factory=dict)
    down_sites: set[str] = field(default_factory=set)
    down_links: set[LinkKey] = field(default_factory=set)
    calls: list[tuple[object, ...]] = field(default_factory=list)
    _revision: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    replace_result: bool = False  # what replace_slice answers
    progress: dict[str, AgentProgress] = field(default_factory=dict)  # the last agent progress per slice
    known_agent_sites: set[str] = field(default_factory=set)
    epoch: str = "fake-epoch"
    generations: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def revision(self) -> int:
        return self._revision

    def put(self, it: SliceIntent, routes: list[tuple[str, ...]]) -> None:
        with self.lock:
            self.records[it.name] = FakeRecord(it.name, it, placement(it, routes))
            self._revision += 1

    def topology(self) -> Topology:
        return self.base.with_down(self.down_sites, self.down_links)

    def list_slices(self) -> list[FakeRecord]:
        with self.lock:
            return list(self.records.values())

    def _heal(self, bad: str | LinkKey) -> list[str]:
        moved = []
        topo = self.topology()
        for rec in list(self.records.values()):
            p = rec.placement
            if p is None:
                continue
            uses = p.uses_site(bad) if isinstance(bad, str) else p.uses_link(bad)
            if not uses:
                continue
            routes = []
            for a in p.assignments:
                options = topo.routes(a.cell, rec.intent.latency_ms)
                if not options:
                    break
                routes.append(options[0].nodes)
            else:
                self.records[rec.name] = replace(rec, placement=placement(rec.intent, routes))
                moved.append(rec.name)
                continue
            self.records[rec.name] = replace(rec, state="Degraded")
            moved.append(rec.name)
        return moved

    def site_down(self, site: str, reason: str, actor: str) -> list[str]:
        with self.lock:
            self.calls.append(("site_down", site, reason, actor))
            self.down_sites.add(site)
            moved = self._heal(site)
            self._revision += 1
            return moved

    def site_up(self, site: str, actor: str) -> None:
        with self.lock:
            self.calls.append(("site_up", site, actor))
            self.down_sites.discard(site)
            self._revision += 1

    def link_down(self, key: LinkKey, reason: str, actor: str) -> list[str]:
        with self.lock:
            self.calls.append(("link_down", key, reason, actor))
            self.down_links.add(link_key(*key))
            moved = self._heal(link_key(*key))
            self._revision += 1
            return moved

    def link_up(self, key: LinkKey, actor: str) -> None:
        with self.lock:
            self.calls.append(("link_up", key, actor))
            self.down_links.discard(link_key(*key))
            self._revision += 1

    def set_sla(self, name: str, met: bool | None, reason: str, message: str, actor: str) -> None:
        with self.lock:
            self.calls.append(("set_sla", name, met, reason, message, actor))

    def replace_slice(self, name: str, reason: str, actor: str, avoid: Collection[str] = ()) -> bool:
        with self.lock:
            self.calls.append(("replace_slice", name, reason, actor, list(avoid)))
            return self.replace_result

    def sites_down(self, downs: Sequence[tuple[str, str]], actor: str) -> list[str]:
        moved = []
        for site, reason in downs:
            moved += self.site_down(site, reason, actor)
        return moved

    def require_agents(self, policy: str) -> None:
        with self.lock:
            self.calls.append(("require_agents", policy))

    def record_agent_progress(self, progress: Mapping[str, AgentProgress], actor: str) -> None:
        with self.lock:
            self.progress.update(progress)

    @property
    def progress_pending(self) -> bool:
        return False

    def config_refused(
        self, site: str, generation: int, reason: str, message: str, slices: Sequence[str]
    ) -> None:
        with self.lock:
            self.calls.append(("config_refused", site, generation, reason, message, tuple(slices)))

    def agent_sites(self) -> frozenset[str]:
        return frozenset(self.known_agent_sites)

    def remember_agent_sites(self, sites: Iterable[str]) -> None:
        self.known_agent_sites |= set(sites)

    def state_epoch(self) -> str:
        return self.epoch

    def site_generations(self) -> dict[str, tuple[int, str]]:
        return dict(self.generations)

    def save_site_generations(self, rows: Sequence[tuple[str, int, str]]) -> None:
        with self.lock:
            self.generations.update({site: (gen, digest) for site, gen, digest in rows})

    def calls_of(self, kind: str) -> list[tuple[object, ...]]:
        with self.lock:
            return [c for c in self.calls if c[0] == kind]
