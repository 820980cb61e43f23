"""The agent registry: thread-safe state of every site's session.

Who is connected, the lease, the desired config and its generation, the acknowledged generation
(config lag), the KPIs received (bounded), link reports. Each session fact is written once, to
the registry's :class:`telemetry.agentlink.session_table.SessionTable`, which the metrics and the
operator API read. It never calls the controller itself: what the agents' reports mean for the
slices (site down/up, link down/up) is queued as :class:`Effect` s and carried out by the lease
monitor thread (:mod:`telemetry.agentlink.lease`), so a slow healing pass never blocks a stream.

Ingest keeps per-message work small: KPI columns are checked a whole batch at a time and stored
as one tuple per batch, and read back column-wise (an SLA pass, a metrics scrape) without a
Python object per record.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc

from controller.core.topology import LinkKey, link_key
from controller.runtime.agent_view import AgentInfo, Refusal
from controller.runtime.realisation import AgentProgress
from protos.edgeslice.agent.v1 import agent_ingest_pb2, agent_pb2
from slices.profiles import SliceIntent
from telemetry.agentlink import kpi_store, site_config, wire
from telemetry.agentlink.desired import DesiredConfigs, slice_sites
from telemetry.agentlink.limits import (
    MAX_ACK_MESSAGE,
    MAX_NAME,
    MAX_SHORT,
    MAX_SLICE_RECORDS,
    REFUSAL_BACKOFF_MAX_S,
    TokenBucket,
)
from telemetry.agentlink.ports import Clock, ControllerPort
from telemetry.agentlink.session import Session, StreamError
from telemetry.agentlink.session_table import SessionColumns, SessionTable, SiteRecord, SiteSessionStatus
from telemetry.agentlink.settings import KNOWN_REFUSALS, AgentSettings
from telemetry.agentlink.sla import KpiSample, SiteWindow
from telemetry.agentlink.sla_windows import sla_windows

_INACTIVE_STATES = ("Rejected", "Preempted")


@dataclass(frozen=True)
class Effect:
    """Something the agents' reports mean for the controller, carried out by the lease monitor."""

    action: str  # "site-up" | "link-down" | "link-up" | "hello" | "refused"
    site: str
    link: LinkKey | None = None
    reason: str = ""
    generation: int = 0
    message: str = ""
    slices: tuple[str, ...] = ()  # "refused": the slices whose config the refused generation carried


class AgentRegistry:
    """Every site's session, lease, config generation and KPIs. All methods are thread-safe.

    Implements :class:`controller.runtime.agent_view.AgentDirectory` (what operators see of agents)."""

    def __init__(
        self,
        service: ControllerPort,
        settings: AgentSettings | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.service = service
        self.settings = settings or AgentSettings()
        self.clock = clock
        self.wall_clock = wall_clock
        self._lock = threading.Lock()
        topology = service.topology()
        self.fingerprint = topology.fingerprint
        self.epoch = service.state_epoch()
        self._kinds = {sid: s.kind.value for sid, s in topology.sites.items()}
        nb: dict[str, set[str]] = {sid: set() for sid in topology.sites}
        for ln in topology.links:
            nb[ln.a].add(ln.b)
            nb[ln.b].add(ln.a)
        self._neighbours = {k: frozenset(v) for k, v in nb.items()}
        self._table = SessionTable(list(topology.sites))  # every session fact, once
        self._desired = DesiredConfigs(self._table, service.site_generations(), self._neighbours, self._kinds)
        self._refusal_counts: dict[str, int] = {}
        # Each site's recent telemetry batches, column-wise as they arrived (see kpi_store).
        self._kpis = kpi_store.KpiStore(self.settings.kpi_window)
        self._links_down_by: dict[LinkKey, set[str]] = {}
        self._link_state: dict[str, list[tuple[str, bool]]] = {}  # site → its last (peer, up) report
        self._effects: deque[Effect] = deque()
        self._expect_returning_agents(service)
        self._serial = 0
        self.effects_ready = threading.Event()

    def _expect_returning_agents(self, service: ControllerPort) -> None:
        """Sites whose agent connected before this controller started are agents from the start:
        disconnected until they say hello, and marked down if they have not within
        ``reconnect_grace_s``."""
        lease_from = self.clock() + self.settings.reconnect_grace_s - self.settings.lease_s
        t = self._table
        for site in service.agent_sites():
            row = t.row.get(site)
            if row is not None:  # a site no longer in the topology is no one's business
                t.ever[row] = 1
                t.lease_from[row] = lease_from

    # -- desired configuration ------------------------------------------------------------------

    def refresh(self, force: bool = False) -> list[str]:
        """Recompute desired configs if the controller's revision moved; wake the sites whose
        generation changed. Returns those sites. Runs on the lease monitor thread."""
        revision = self.service.revision
        if revision == self._desired.revision and not force:
            return []
        records = self.service.list_slices()
        placed = [
            (r.intent, r.placement)
            for r in records
            if r.placement is not None and str(r.state) not in _INACTIVE_STATES
        ]
        configs = site_config.site_configs(self.service.topology(), placed)
        carriers, reporters = slice_sites(configs)
        now = self.clock()
        wakes: list[Callable[[], None]] = []
        t = self._table
        with self._lock:
            moved = self._desired.update(revision, placed, configs, carriers, reporters)
            for site in moved:
                row = t.row.get(site)
                if row is not None:
                    rec = t.records[row]
                    rec.desired_since = now
                    rec.refusals_in_row = 0
                    if rec.session is not None:
                        wakes.append(rec.session.wake)
                # KPIs of a slice that left a site are no longer about anything.
                self._kpis.reconfigured(site, self._desired.by_site[site].names)
        for wake in wakes:
            wake()
        return sorted(moved)

    def take_unsaved_generations(self) -> list[tuple[str, int, str]]:
        """(site, generation, content hash) of the sites whose generation moved since the last call."""
        with self._lock:
            return self._desired.take_unsaved()

    def desired(self, site: str) -> tuple[site_config.SiteConfig, int] | None:
        with self._lock:
            d = self._desired.by_site.get(site)
            return (d.config, d.generation) if d else None

    def intents(self) -> dict[str, SliceIntent]:
        with self._lock:
            return dict(self._desired.intents)

    def reporters(self) -> dict[str, frozenset[str]]:
        """slice → the sites expected to report its KPIs (its cells and its edge sites)."""
        with self._lock:
            return dict(self._desired.reporters)

    def take_progress(self) -> dict[str, AgentProgress]:
        """The agent progress (what makes a slice Realised) of every slice whose progress may
        have changed since the last call."""
        with self._lock:
            return self._desired.take_progress(self.settings.agent_policy)

    def progress(self, name: str) -> AgentProgress | None:
        with self._lock:
            if name not in self._desired.carriers:
                return None
            return self._desired.progress(name, self.settings.agent_policy)

    # -- sessions -------------------------------------------------------------------------------

    def knows(self, site: str) -> bool:
        return site in self._table.row

    def open(
        self,
        site: str,
        version: str,
        wake: Callable[[], None],
        instance_id: str = "",
        applied_generation: int = 0,
        epoch: str = "",
        backend: str = "",
    ) -> Session:
        """Start a session. While another instance's session holds a valid lease the Hello is
        refused (ALREADY_EXISTS); the same instance re-dialling replaces its older stream."""
        s = self.settings
        now = self.clock()
        t = self._table
        with self._lock:
            row = t.row[site]
            rec = t.records[row]
            old = rec.session
            if old is not None and not old.expired:
                valid = now - t.last_seen[row] <= s.lease_s
                if valid and (not instance_id or old.instance_id != instance_id):
                    raise StreamError(
                        grpc.StatusCode.ALREADY_EXISTS,
                        f"site {site!r} already has an agent session (instance {old.instance_id!r}, "
                        f"lease valid for {s.lease_s - (now - t.last_seen[row]):.1f} s); retry after lease_ms",
                    )
            self._serial += 1
            session = Session(
                site,
                row,
                self._serial,
                version,
                instance_id,
                wake,
                TokenBucket(s.rate_per_s, s.rate_burst, s.rate_burst, now),
            )
            t.attach(row, session)
            rec.version = version
            rec.instance_id = instance_id
            rec.backend = backend
            t.last_seen[row] = now
            t.lease_from[row] = -math.inf  # back: its lease is an ordinary one from now on
            self._resume(session, applied_generation, epoch)
            if not t.up[row]:  # first: the hello effect then finds the site up already
                t.up[row] = 1
                self._effects.append(Effect("site-up", site))
            self._effects.append(Effect("hello", site))
        if old is not None:
            old.replaced = True
            old.wake()
        self.effects_ready.set()
        return session

    def _resume(self, session: Session, applied: int, epoch: str) -> None:
        """What the agent says it has applied (Hello): the current generation of this epoch needs
        no resend; a generation at or above ours from elsewhere (another controller, a restored
        state) makes us number the current config above it, so generations never go back."""
        site = session.site
        d = self._desired.by_site.get(site)
        if d is None or applied == 0:
            return
        if epoch == self.epoch and applied == d.generation:
            session.sent_generation, session.sent_at = d.generation, self.clock()
            session.acked_seen = applied
            if self._table.acked[session.row] != applied:
                self._table.acked[session.row] = applied
                self._desired.touched(site)
        elif applied >= d.generation:
            self._desired.raise_above(site, applied)

    def heartbeat(self, session: Session, applied: int) -> None:
        """The agent says which generation is in effect. Below what it acked (its backend lost or
        rolled back the config): not acked any more, and the current config is sent again."""
        t = self._table
        with self._lock:
            row = session.row
            if applied == 0 or applied >= t.acked[row] or t.records[row].session is not session:
                return
            t.acked[row] = applied
            session.acked_seen = applied
            session.sent_generation = 0  # resend at once
            self._desired.touched(session.site)

    def close(self, session: Session) -> None:
        with self._lock:
            if self._table.records[session.row].session is session:
                self._table.detach(session.row)

    def admit_message(self, session: Session, kind: str = "") -> bool:
        """Count one message against the rate limit and renew the lease. False: the message is
        over the rate and dropped (a Throttled rejection is queued at most once a second).
        Raises StreamError when the session expired or the agent ignored the throttling."""
        now = self.clock()
        with self._lock:
            if session.expired or session.replaced:
                raise StreamError(
                    grpc.StatusCode.UNAVAILABLE, f"site {session.site!r}: the session has ended"
                )
            t = self._table
            t.last_seen[session.row] = now
            rec = t.records[session.row]
            bucket = session.bucket
            if not bucket.take(now):
                s = self.settings
                if bucket.exhausted:
                    raise StreamError(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"site {session.site!r} kept sending above {s.rate_per_s:g} messages/s "
                        f"(burst {s.rate_burst:g}) after being throttled",
                    )
                if now - session.last_throttle_notice >= 1.0:
                    session.last_throttle_notice = now
                    wait_ms = math.ceil((1.0 - bucket.tokens) / s.rate_per_s * 1000)
                    self._reject(
                        rec,
                        session,
                        kind,
                        "",
                        "Throttled",
                        f"over {s.rate_per_s:g} messages/s (burst {s.rate_burst:g}): message dropped",
                        retry_after_ms=wait_ms,
                    )
                return False
            rec.count_message(now)
            return True

    def _reject(
        self,
        rec: SiteRecord,
        session: Session,
        kind: str,
        where: str,
        reason: str,
        message: str,
        retry_after_ms: int = 0,
        observed_at: int = 0,
    ) -> None:
        """Queue an in-band Rejection for the session (call under the lock)."""
        session.outbox.append(
            wire.rejection_message(
                kind, where, reason, message[:MAX_ACK_MESSAGE], retry_after_ms, observed_at
            )
        )
        rec.rejections += 1

    def take_outbox(self, session: Session) -> list[agent_pb2.ControllerMessage]:
        with self._lock:
            out = list(session.outbox)
            session.outbox.clear()
            return out

    def next_config(self, session: Session) -> agent_pb2.ControllerMessage | None:
        """The config to push now: the current generation if this session has not been sent it,
        or again while it is unacked (every ``resend_after_s``; after refusals with a doubling
        backoff up to REFUSAL_BACKOFF_MAX_S)."""
        now = self.clock()
        with self._lock:
            d = self._desired.by_site.get(session.site)
            if d is None or session.replaced or session.expired:
                return None
            rec = self._table.records[session.row]
            if session.sent_generation == d.generation and (
                self._table.acked[session.row] == d.generation
                or now - session.sent_at < self._resend_interval(rec)
            ):
                return None
            session.sent_generation = d.generation
            session.sent_at = now
            return d.wire

    def _resend_interval(self, rec: SiteRecord) -> float:
        base = self.settings.resend_after_s
        if not rec.refusals_in_row:
            return base
        return min(REFUSAL_BACKOFF_MAX_S, base * 2.0 ** (rec.refusals_in_row - 1))

    def wait_before_resend(self, session: Session) -> float | None:
        """How long the writer may sleep before the config is due again (None: nothing due)."""
        now = self.clock()
        with self._lock:
            d = self._desired.by_site.get(session.site)
            if d is None or session.replaced or session.expired:
                return None
            if self._table.acked[session.row] == d.generation:
                return None
            rec = self._table.records[session.row]
            return max(0.01, session.sent_at + self._resend_interval(rec) - now)

    def ack(self, session: Session, ack: agent_pb2.ConfigAck) -> None:
        t = self._table
        with self._lock:
            row = session.row
            rec = t.records[row]
            d = self._desired.by_site.get(session.site)
            if d is None or ack.generation != d.generation:
                return  # an ack of a superseded generation: the current one is (re)sent anyway
            if ack.ok:
                session.acked_seen = ack.generation
                if t.acked[row] != ack.generation:
                    t.acked[row] = ack.generation
                    self._desired.touched(session.site)
                rec.refusal = None
                rec.refusals_in_row = 0
                return
            reason = (ack.reason or "ApplyFailed")[:MAX_SHORT]
            message = ack.message[:MAX_ACK_MESSAGE]
            first = rec.refusal is None or rec.refusal.generation != ack.generation
            rec.refusal = Refusal(ack.generation, reason, message, self.wall_clock())
            rec.refusals_in_row += 1
            label = reason if reason in KNOWN_REFUSALS else "Other"
            self._refusal_counts[label] = self._refusal_counts.get(label, 0) + 1
            self._desired.touched(session.site)
            if first:  # one event per refused generation, not per resend
                slices = tuple(sorted(n for n, g in d.since.items() if g <= ack.generation))
                self._effects.append(
                    Effect("refused", session.site, None, reason, ack.generation, message, slices)
                )
        self.effects_ready.set()

    def refusal_counts(self) -> dict[str, int]:
        """Config refusals since start by reason (KNOWN_REFUSALS, else "Other")."""
        with self._lock:
            return dict(self._refusal_counts)

    # -- telemetry ------------------------------------------------------------------------------

    def record_telemetry(
        self,
        session: Session,
        batch: agent_pb2.TelemetryBatch | agent_ingest_pb2.IngestTelemetryBatch,
        raw: bytes | None = None,
    ) -> int:
        """Check the whole batch, then store it; returns the KPI records kept. A batch with a bad
        value keeps nothing and queues an in-band Rejection naming the field; records of slices
        not configured at the site are dropped alone (one UnknownSlice rejection per batch).

        ``batch`` is usually the ingest view (see ``agent_ingest.proto``), whose KPI columns are
        checked and kept as the bytes they arrived in; ``raw``, the whole ``AgentMessage`` as
        received, is parsed again with ``agent.proto`` for the general path (rows, unpacked
        columns, a value to name)."""
        site = session.site
        now = self.clock()
        rec = self._table.records[session.row]
        columns = None
        if isinstance(batch, agent_ingest_pb2.IngestTelemetryBatch):
            if not batch.slices:
                columns = kpi_store.packed_columns(batch.columns)
            if columns is None:
                batch = wire.as_sent(raw) if raw is not None else wire.reparse(batch)
        try:
            if columns is None:
                assert isinstance(batch, agent_pb2.TelemetryBatch)
                if len(batch.slices) + len(batch.columns.slice) > MAX_SLICE_RECORDS:
                    raise kpi_store.KpiError(
                        f"slices: more than {MAX_SLICE_RECORDS} slice records in one batch",
                        "slices",
                        "TooMany",
                    )
                columns = kpi_store.checked_columns(batch)
            health = batch.health
            cpu = health.cpu_utilisation
            if not 0.0 <= cpu <= 10.0:
                kpi_store.check_fraction("health.cpu_utilisation", cpu, 10.0)
            links = health.links
            reported = self._link_states(site, links) if links else None
            with self._lock:
                desired = self._desired.by_site.get(site)
                configured = desired.names if desired else frozenset()
                kept = self._kpis.add(site, now, columns, configured)
                rec.kpi_records += kept
                rec.health_cpu = cpu
                if kept < len(columns.names):
                    unknown = next(n for n in columns.names if n not in configured)
                    self._reject(
                        rec,
                        session,
                        "telemetry",
                        "slices",
                        "UnknownSlice",
                        f"slice {unknown!r} is not configured at site {site!r} "
                        f"({len(columns.names) - kept} records dropped; the rest kept)",
                        observed_at=batch.observed_at_unix_ms,
                    )
                # Most reports repeat the last one: only a change costs more than one comparison.
                if reported and reported != self._link_state.get(site):
                    states = dict(self._link_state.get(site) or ())
                    for peer, up in reported:
                        if states.get(peer) is not up:
                            states[peer] = up
                            self._link_report(site, link_key(site, peer), up)
                    self._link_state[site] = list(states.items())
        except kpi_store.KpiError as exc:
            with self._lock:
                self._reject(
                    rec,
                    session,
                    "telemetry",
                    exc.field,
                    exc.reason,
                    f"batch rejected, nothing kept: {exc}",
                    observed_at=batch.observed_at_unix_ms,
                )
            return 0
        return kept

    @property
    def unknown_slice_reports(self) -> int:
        """KPI records received for slices not configured at the reporting site (dropped)."""
        return self._kpis.unknown_slice_reports

    def _link_states(self, site: str, links: Sequence[agent_pb2.LinkState]) -> list[tuple[str, bool]]:
        """The batch's (peer, up) link reports, checked (a NaN fails the chained comparison).
        Raises :class:`kpi_store.KpiError` naming the first bad one."""
        if len(links) > self.settings.max_link_reports:
            raise kpi_store.KpiError(
                f"health.links: {len(links)} link states, more than {self.settings.max_link_reports}",
                "health.links",
                "TooMany",
            )
        neighbours = self._neighbours[site]
        reported = []
        for i, link in enumerate(links):
            peer, value = link.peer, link.utilisation
            if peer not in neighbours:
                raise kpi_store.KpiError(
                    f"health.links[{i}].peer: {peer[:MAX_NAME]!r} is not linked to this site",
                    f"health.links[{i}].peer",
                    "UnknownPeer",
                )
            if not 0.0 <= value <= 10.0:
                kpi_store.check_fraction(f"health.links[{i}].utilisation", value, 10.0)
            reported.append((peer, link.up))
        return reported

    def _link_report(self, site: str, key: LinkKey, up: bool) -> None:
        reporters = self._links_down_by.setdefault(key, set())
        was_down = bool(reporters)
        if up:
            reporters.discard(site)
        else:
            reporters.add(site)
        if bool(reporters) != was_down:
            action = "link-up" if was_down else "link-down"
            self._effects.append(Effect(action, site, key, "ReportedDown" if not up else ""))
            self.effects_ready.set()

    # -- leases and effects ---------------------------------------------------------------------

    def expire_leases(self) -> list[str]:
        """Mark down every site whose lease ran out and end its session (the agent must Hello
        again); returns those sites (each only once per outage)."""
        now = self.clock()
        out = []
        wakes = []
        t = self._table
        with self._lock:
            for row in t.expired_rows(now, self.settings.lease_s):
                t.up[row] = 0
                out.append(t.sites[row])
                session = t.records[row].session
                if session is not None:
                    session.expired = True
                    t.detach(row)
                    wakes.append(session.wake)
        for wake in wakes:
            wake()
        return out

    def take_effects(self) -> list[Effect]:
        with self._lock:
            out = list(self._effects)
            self._effects.clear()
            self.effects_ready.clear()
        return out

    # -- reading --------------------------------------------------------------------------------

    def kpis(self, since: float = -math.inf) -> dict[tuple[str, str], list[KpiSample]]:
        """A snapshot: (slice, site) → samples taken after ``since``, oldest first."""
        with self._lock:
            return self._kpis.samples(since)

    def sla_windows(
        self, since: float, intents: Mapping[str, SliceIntent]
    ) -> dict[str, dict[str, SiteWindow]]:
        """slice → site → its window of the KPIs taken after ``since`` (slices of ``intents``):
        what an SLA pass judges, computed column-wise (:mod:`telemetry.agentlink.sla_windows`)."""
        with self._lock:
            columns = self._kpis.window_columns(since)
        return sla_windows(columns, intents)

    def latest_kpi_columns(self, since: float, sites: AbstractSet[str]) -> kpi_store.KpiColumns:
        """The newest record of every (slice, site) of ``sites`` taken after ``since``, as arrays:
        what a metrics scrape aggregates per slice (200,000 records in a city)."""
        with self._lock:
            return self._kpis.latest_columns(since, sites, self._desired.slice_counts)

    def site_kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    def latest_kpi(self, slice_name: str, site: str) -> KpiSample | None:
        """The newest sample of ``slice_name`` at ``site`` (None: none kept)."""
        with self._lock:
            samples = self._kpis.samples(sites={site}).get((slice_name, site))
        return samples[-1] if samples else None

    def status(self, site: str) -> SiteSessionStatus:
        t = self._table
        with self._lock:
            return t.status(t.row[site], self.clock(), self.settings.lease_s)

    def statuses(self, connected_only: bool = False) -> list[SiteSessionStatus]:
        now = self.clock()
        t = self._table
        lease = self.settings.lease_s
        with self._lock:
            return [
                t.status(row, now, lease) for row in range(len(t.sites)) if t.ever[row] or not connected_only
            ]

    def session_columns(self) -> SessionColumns:
        """Every site whose agent has connected (in this run or before a restart): site, connected
        (a session whose lease is valid), seconds since its last message, desired and acked
        generation, as arrays (what a scrape lists)."""
        now = self.clock()
        with self._lock:
            return self._table.columns(now, self.settings.lease_s)

    # -- AgentDirectory (controller.runtime.agent_view) -------------------------------------------------

    def agents(self) -> list[AgentInfo]:
        now = self.clock()
        t = self._table
        lease = self.settings.lease_s
        with self._lock:
            return [t.info(t.row[site], now, lease, self._kinds[site], self.epoch) for site in sorted(t.row)]

    def agent(self, site: str) -> AgentInfo | None:
        now = self.clock()
        t = self._table
        with self._lock:
            row = t.row.get(site)
            if row is None:
                return None
            return t.info(row, now, self.settings.lease_s, self._kinds[site], self.epoch)
