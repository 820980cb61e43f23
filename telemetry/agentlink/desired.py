"""What each site should run: its desired config, numbered by generation, and which acks make each
slice Realised (its agent progress).

:class:`DesiredConfigs` is not thread-safe: :class:`telemetry.agentlink.registry.AgentRegistry`
calls it under its lock. It writes the desired generation to the registry's agent table (the
table's ``desired`` column) and reads the acks and refusals there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from controller.core.placement_model import Placement
from controller.runtime.realisation import AgentProgress
from protos.edgeslice.agent.v1 import agent_pb2
from slices.profiles import SliceIntent
from telemetry.agentlink import site_config, wire
from telemetry.agentlink.session_table import SessionTable


@dataclass
class Desired:
    config: site_config.SiteConfig
    generation: int
    wire: agent_pb2.ControllerMessage = field(default_factory=agent_pb2.ControllerMessage)
    names: frozenset[str] = frozenset()
    # slice → the first generation of this site that carries the slice's current config here
    since: dict[str, int] = field(default_factory=dict)


def slice_sites(
    configs: Mapping[str, site_config.SiteConfig],
) -> tuple[dict[str, tuple[str, ...]], dict[str, frozenset[str]]]:
    """slice → the sites its config goes to, and slice → the sites expected to report its KPIs
    (those with a radio or compute share of it: its cells and its edge sites)."""
    carriers: dict[str, list[str]] = {}
    reporters: dict[str, set[str]] = {}
    for site, config in configs.items():
        for s in config.slices:
            carriers.setdefault(s.name, []).append(site)
            if s.radio is not None or s.compute is not None:
                reporters.setdefault(s.name, set()).add(site)
    return (
        {name: tuple(sites) for name, sites in carriers.items()},
        {name: frozenset(sites) for name, sites in reporters.items()},
    )


class DesiredConfigs:
    """Every site's desired config and generation, the slices' carriers and agent progress."""

    def __init__(
        self,
        table: SessionTable,
        stored: dict[str, tuple[int, str]],
        neighbours: Mapping[str, frozenset[str]],
        kinds: Mapping[str, str],
    ) -> None:
        self._table = table
        self._neighbours = neighbours
        self._kinds = kinds
        self._generations = site_config.Generations(stored)
        self.revision = -1  # the controller revision the configs were derived at
        self.by_site: dict[str, Desired] = {}
        self.intents: dict[str, SliceIntent] = {}
        self.carriers: dict[str, tuple[str, ...]] = {}  # slice → the sites its config goes to
        self.reporters: dict[str, frozenset[str]] = {}  # slice → the sites that report its KPIs
        self.slice_counts: dict[str, int] = {}  # site → how many slices are configured there
        self._unsaved: set[str] = set()  # sites whose generation moved since the last save
        self._dirty: set[str] = set()  # slices whose agent progress may have changed

    def update(
        self,
        revision: int,
        placed: Sequence[tuple[SliceIntent, Placement | None]],
        configs: Mapping[str, site_config.SiteConfig],
        carriers: dict[str, tuple[str, ...]],
        reporters: dict[str, frozenset[str]],
    ) -> list[str]:
        """Take the configs derived at ``revision``; returns the sites whose desired generation
        moved (or that had none yet)."""
        self.revision = revision
        self.intents = {intent.name: intent for intent, _ in placed}
        self._dirty.update(n for n in carriers if self.carriers.get(n) != carriers[n])
        self.carriers = carriers
        self.reporters = reporters
        changed = self._generations.update(configs)
        self._unsaved.update(changed)
        moved = dict(changed)
        # Sites whose stored generation still holds (a restart, nothing changed) are desired too.
        for site in configs.keys() - self.by_site.keys() - changed.keys():
            moved[site] = self._generations.generation(site)
        for site, generation in moved.items():
            config = configs[site]
            old = self.by_site.get(site)
            before = {s.name: s for s in old.config.slices} if old is not None else {}
            since = {
                s.name: (old.since[s.name] if old is not None and before.get(s.name) == s else generation)
                for s in config.slices
            }
            self._set(site, Desired(config, generation, names=frozenset(config.slice_names()), since=since))
            self._dirty.update(since)
            self.slice_counts[site] = len(config.slice_names())
        return list(moved)

    def raise_above(self, site: str, applied: int) -> None:
        """The agent applied a generation at or above ours from elsewhere (another controller, a
        restored state): number the current config above it, so generations never go back."""
        d = self.by_site[site]
        generation = self._generations.raise_above(site, applied)
        since = {name: generation for name in d.since}
        self._set(site, Desired(d.config, generation, names=d.names, since=since))
        self._unsaved.add(site)
        self._dirty.update(since)

    def _set(self, site: str, d: Desired) -> None:
        d.wire = wire.config_message(d.config, d.generation, self._neighbours.get(site, ()))
        self.by_site[site] = d
        row = self._table.row.get(site)
        if row is not None:
            self._table.desired[row] = d.generation

    def touched(self, site: str) -> None:
        """The site's acks or refusals changed: its slices' progress may have."""
        d = self.by_site.get(site)
        if d is not None:
            self._dirty.update(d.since)

    def take_unsaved(self) -> list[tuple[str, int, str]]:
        """(site, generation, content hash) of the sites whose generation moved since the last call."""
        rows = self._generations.rows(sorted(self._unsaved))
        self._unsaved.clear()
        return rows

    # -- agent progress (what makes a slice Realised) -------------------------------------------

    def take_progress(self, policy: str) -> dict[str, AgentProgress]:
        """The agent progress of every slice whose progress may have changed since the last call."""
        dirty, self._dirty = self._dirty, set()
        return {name: self.progress(name, policy) for name in sorted(dirty) if name in self.carriers}

    def progress(self, name: str, policy: str) -> AgentProgress:
        acked = 0
        required = 0
        exempt = 0
        waiting: list[str] = []
        refused: list[tuple[str, int, str, str]] = []
        t = self._table
        for site in self.carriers[name]:
            if policy == "none" or (policy == "edge" and self._kinds[site] not in ("edge", "core")):
                exempt += 1
                continue
            required += 1
            row = t.row[site]
            since = self.by_site[site].since.get(name, 0)
            if t.acked[row] >= since:
                acked += 1
                continue
            r = t.records[row].refusal
            if r is not None and r.generation >= since:
                refused.append((site, r.generation, r.reason, r.message))
            elif len(waiting) < 5:
                waiting.append(site)
        return AgentProgress(
            required, acked, tuple(refused[:5]), tuple(waiting), exempt, policy, self.revision
        )
