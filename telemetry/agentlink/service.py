"""The agent-facing gRPC service: one stream per site agent, config push with acks, leases, KPIs.

Three parts with one job each:

* :class:`AgentRegistry` — thread-safe state of every site's session: who is connected, the
  lease, the desired config and its generation, the acknowledged generation (config lag), the
  KPIs received (bounded), link reports. It never calls the controller itself: what the agents'
  reports mean for the slices (site down/up, link down/up) is queued and carried out by the
  lease monitor thread (:mod:`telemetry.agentlink.lease`), so a slow healing pass never blocks a stream.
* :class:`AgentServicer` — the asyncio gRPC handler of ``SiteAgent.Connect``: checks the Hello
  and the peer's certificate, then reads messages (rate limit, validation) while pushing and
  re-pushing the site's config until it is acked.
* :func:`serve_agents` — wires both with the lease monitor and the SLA evaluator and runs the
  asyncio server in a background thread; returns an :class:`AgentServer` handle.

asyncio rather than a thread per stream: a 20,000-site city holds 20,000 open streams. Ingest
keeps per-message work small: KPI columns are checked a whole batch at a time and stored as one
tuple per batch; samples are built when read (once per SLA window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple, Protocol

import grpc
import grpc.aio
from google.protobuf.message import DecodeError
from grpc.aio import EOF

from controller.core.placement_model import Placement
from controller.core.topology import LinkKey, Topology, link_key
from controller.runtime.agent_view import AgentInfo, Refusal, SessionState
from controller.runtime.realisation import AgentProgress
from protos.edgeslice.agent.v1 import agent_ingest_pb2, agent_pb2
from slices import errors
from slices.profiles import SliceIntent
from telemetry.agentlink import kpi_store, site_config
from telemetry.agentlink.session_table import SessionColumns, SessionTable
from telemetry.agentlink.sla import KpiSample

if TYPE_CHECKING:
    from telemetry.agentlink.lease import LeaseMonitor
    from telemetry.agentlink.sla import SlaMonitor

Clock = Callable[[], float]
METHOD = "/edgeslice.agent.v1.SiteAgent/Connect"
SPIFFE_PREFIX = "spiffe://edgeslice/site/"
CONTROLLER_VERSION = "edgeslice-controller/0.1.0"
log = logging.getLogger(__name__)
_INACTIVE_STATES = ("Rejected", "Preempted")


class ControllerPort(Protocol):
    """What the agent side needs of :class:`controller.runtime.service.ControllerService`."""

    @property
    def revision(self) -> int: ...

    def topology(self) -> Topology: ...

    def list_slices(self) -> Sequence[_RecordLike]: ...

    def site_down(self, site: str, reason: str, actor: str) -> list[str]: ...

    def sites_down(self, downs: Sequence[tuple[str, str]], actor: str) -> list[str]: ...

    def site_up(self, site: str, actor: str) -> None: ...

    def link_down(self, key: LinkKey, reason: str, actor: str) -> list[str]: ...

    def link_up(self, key: LinkKey, actor: str) -> None: ...

    def set_sla(self, name: str, met: bool | None, reason: str, message: str, actor: str) -> None: ...

    def replace_slice(self, name: str, reason: str, actor: str, avoid: Collection[str] = ()) -> bool: ...

    def require_agents(self, policy: str) -> None: ...

    def record_agent_progress(self, progress: Mapping[str, AgentProgress], actor: str) -> None: ...

    @property
    def progress_pending(self) -> bool: ...

    def config_refused(
        self, site: str, generation: int, reason: str, message: str, slices: Sequence[str]
    ) -> None: ...

    def agent_sites(self) -> frozenset[str]: ...

    def remember_agent_sites(self, sites: Iterable[str]) -> None: ...

    def state_epoch(self) -> str: ...

    def site_generations(self) -> dict[str, tuple[int, str]]: ...

    def save_site_generations(self, rows: Sequence[tuple[str, int, str]]) -> None: ...


class _RecordLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def intent(self) -> SliceIntent: ...
    @property
    def placement(self) -> Placement | None: ...
    @property
    def state(self) -> str: ...


#: Which sites' acks make a slice Realised: "all" (every site its config goes to), "edge" (its edge
#: sites only: cells and aggregation run no agent, e.g. the RAN is managed elsewhere), "none" (no
#: agent confirms anything; Realised says so).
AGENT_POLICIES = ("all", "edge", "none")
#: Refusal reasons counted by name in metrics; anything else counts as "Other" (bounded labels).
KNOWN_REFUSALS = (
    "ApplyFailed",
    "BackendUnavailable",
    "InsufficientResources",
    "InvalidConfig",
    "Timeout",
    "Unsupported",
)
REFUSAL_BACKOFF_MAX_S = 60.0
MAX_NAME = 253
MAX_SHORT = 200
MAX_ACK_MESSAGE = 2000
MAX_SLICE_RECORDS = 4096
RATE_WINDOW_S = 60.0  # the message rate operators see is averaged over about a minute
MAX_GENERATION = 2**63 - 1  # generations are stored as SQLite integers (signed 64-bit)


@dataclass(frozen=True)
class AgentSettings:
    lease_s: float = 3.0
    heartbeat_interval_s: float = 1.0
    telemetry_interval_s: float = 1.0
    resend_after_s: float = 2.0  # an unacked config is pushed again this often; a refused one backs off
    hello_timeout_s: float = 30.0  # generous: a busy agent host must not be turned into a reconnect storm
    max_message_bytes: int = 256 * 1024
    rate_per_s: float = 20.0  # messages per agent, sustained
    rate_burst: float = 40.0
    kpi_window: int = 60  # telemetry batches kept per site (so at most this many samples per slice there)
    # Streams the gRPC core queues before the handler takes them. Its default (1,000 soft, 3,000
    # hard) silently stalls new streams when a city (re)connects at once: at 20,000 agents the
    # server stopped near 6,000 streams, bare grpcio included. A whole city must fit.
    max_pending_streams: int = 100_000
    # ... and how long one may wait there before the core cancels it (its default, 30 s, cancels
    # a city's Hellos while the loop works through a reconnect storm; each then retries, adding load).
    max_unrequested_s: int = 120
    max_link_reports: int = 256
    # After a controller restart, how long a site whose agent had connected before may take to
    # come back before it is marked down: a whole city reconnecting takes about a minute (see
    # bench/README.md), and marking sites down early would heal slices away from live sites.
    reconnect_grace_s: float = 120.0
    sla_window_s: float = 10.0  # KPIs are judged over this rolling window, once per window
    sla_sustain_windows: int = 3  # violating windows in a row before a re-placement attempt
    sla_hold_down_s: float = 600.0  # a slice moved away from an edge for its SLA does not go back sooner
    agent_policy: str = "all"  # see AGENT_POLICIES

    def __post_init__(self) -> None:
        if self.agent_policy not in AGENT_POLICIES:
            raise errors.InvalidSpec(
                f"agent policy {self.agent_policy!r}: must be one of {', '.join(AGENT_POLICIES)}"
            )


class SiteSessionStatus(NamedTuple):
    """One site's session as the registry sees it (a named tuple: a scrape makes one per agent,
    21,677 in a city, and a frozen dataclass costs several times more to build)."""

    site: str
    connected: bool  # a session whose lease is valid
    up: bool
    software_version: str
    desired_generation: int
    acked_generation: int
    config_lag_s: float  # how long the desired config has waited for its ack (0 when acked)
    last_seen_s: float  # seconds since the last message (inf: never)
    nack_reason: str
    nack_message: str
    messages: int
    kpi_records: int


class StreamError(Exception):
    """Ends one agent's stream with a gRPC status; never escapes the servicer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Bucket:
    """Token bucket: ``rate`` messages/s sustained, ``burst`` at once. A message over the rate
    costs half a token of debt; an agent that drives the debt down to ``-burst`` (sending at more
    than twice the rate for another burst) has ignored the in-band throttling."""

    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.tokens -= 0.5
        return False

    @property
    def exhausted(self) -> bool:
        return self.tokens <= -self.burst


@dataclass
class _Session:
    site: str
    serial: int
    version: str
    instance_id: str
    wake: Callable[[], None]
    bucket: _Bucket
    sent_generation: int = 0
    sent_at: float = -math.inf
    resend_after: float = 0.0  # 0: the settings' interval; grows after refusals
    replaced: bool = False
    expired: bool = False
    outbox: deque[agent_pb2.ControllerMessage] = field(default_factory=deque)
    last_throttle_notice: float = -math.inf
    acked_seen: int = 0  # the generation this session's agent acked (read without the lock per heartbeat)


@dataclass
class _SiteState:
    """What the controller knows of one site, across sessions."""

    site: str
    session: _Session | None = None
    row: int = 0  # in the registry's SessionTable
    ever_connected: bool = False  # an agent has connected, in this run or before a restart
    lease_from: float = -math.inf  # a site known from before a restart: its lease runs from here
    up: bool = True
    last_seen: float = -math.inf
    version: str = ""
    instance_id: str = ""
    backend: str = ""
    acked_generation: int = 0
    refusal: Refusal | None = None  # the last refused generation (cleared by a good ack of a later one)
    refusals_in_row: int = 0
    desired_since: float = 0.0
    messages: int = 0
    kpi_records: int = 0
    rejections: int = 0
    health_cpu: float = 0.0
    # Message rate for operators: messages counted since rate_since; the last full minute's rate.
    rate_since: float = -math.inf
    rate_base: int = 0
    last_rate: float = 0.0


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


@dataclass
class _Desired:
    config: site_config.SiteConfig
    generation: int
    wire: agent_pb2.ControllerMessage = field(default_factory=agent_pb2.ControllerMessage)
    names: frozenset[str] = frozenset()
    # slice → the first generation of this site that carries the slice's current config here
    since: dict[str, int] = field(default_factory=dict)


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
        self._table = SessionTable(list(topology.sites))  # what a metrics scrape reads
        self._sites: dict[str, _SiteState] = {
            sid: _SiteState(sid, row=row) for sid, row in self._table.row.items()
        }
        self._generations = site_config.Generations(service.site_generations())
        self._unsaved: set[str] = set()  # sites whose generation moved since the last save
        self._desired: dict[str, _Desired] = {}
        self._intents: dict[str, SliceIntent] = {}
        self._carriers: dict[str, tuple[str, ...]] = {}  # slice → the sites its config goes to
        self._reporters: dict[str, frozenset[str]] = {}  # slice → the sites that report its KPIs
        self._dirty: set[str] = set()  # slices whose agent progress may have changed
        self._refusal_counts: dict[str, int] = {}
        # Each site's recent telemetry batches, column-wise as they arrived (see kpi_store).
        self._kpis = kpi_store.KpiStore(self.settings.kpi_window)
        self._slice_counts: dict[str, int] = {}  # site → how many slices are configured there
        self._links_down_by: dict[LinkKey, set[str]] = {}
        self._link_state: dict[str, list[tuple[str, bool]]] = {}  # site → its last (peer, up) report
        self._effects: deque[Effect] = deque()
        self._expect_returning_agents(service)
        self._revision = -1
        self._serial = 0
        self.effects_ready = threading.Event()

    def _expect_returning_agents(self, service: ControllerPort) -> None:
        """Sites whose agent connected before this controller started are agents from the start:
        disconnected until they say hello, and marked down if they have not within
        ``reconnect_grace_s``."""
        lease_from = self.clock() + self.settings.reconnect_grace_s - self.settings.lease_s
        for site in service.agent_sites():
            state = self._sites.get(site)
            if state is not None:  # a site no longer in the topology is no one's business
                state.ever_connected = True
                state.lease_from = lease_from
                self._table.ever[state.row] = 1

    # -- desired configuration ------------------------------------------------------------------

    def refresh(self, force: bool = False) -> list[str]:
        """Recompute desired configs if the controller's revision moved; wake the sites whose
        generation changed. Returns those sites. Runs on the lease monitor thread."""
        revision = self.service.revision
        if revision == self._revision and not force:
            return []
        records = self.service.list_slices()
        placed = [
            (r.intent, r.placement)
            for r in records
            if r.placement is not None and str(r.state) not in _INACTIVE_STATES
        ]
        configs = site_config.site_configs(self.service.topology(), placed)
        carriers: dict[str, list[str]] = {}
        reporters: dict[str, set[str]] = {}
        for site, config in configs.items():
            for s in config.slices:
                carriers.setdefault(s.name, []).append(site)
                if s.radio is not None or s.compute is not None:
                    reporters.setdefault(s.name, set()).add(site)
        now = self.clock()
        wakes: list[Callable[[], None]] = []
        with self._lock:
            self._revision = revision
            self._intents = {intent.name: intent for intent, _ in placed}
            new_carriers = {name: tuple(sites) for name, sites in carriers.items()}
            self._dirty.update(n for n in new_carriers if self._carriers.get(n) != new_carriers[n])
            self._carriers = new_carriers
            self._reporters = {name: frozenset(sites) for name, sites in reporters.items()}
            changed = self._generations.update(configs)
            self._unsaved.update(changed)
            moved = dict(changed)
            # Sites whose stored generation still holds (a restart, nothing changed) are desired too.
            for site in configs.keys() - self._desired.keys() - changed.keys():
                moved[site] = self._generations.generation(site)
            for site, generation in moved.items():
                config = configs[site]
                old = self._desired.get(site)
                before = {s.name: s for s in old.config.slices} if old is not None else {}
                since = {
                    s.name: (old.since[s.name] if old is not None and before.get(s.name) == s else generation)
                    for s in config.slices
                }
                self._desired[site] = _Desired(
                    config,
                    generation,
                    _to_wire(config, generation, self._neighbours.get(site, ())),
                    frozenset(config.slice_names()),
                    since,
                )
                self._dirty.update(since)
                state = self._sites.get(site)
                if state is not None:
                    state.desired_since = now
                    state.refusals_in_row = 0
                    self._table.desired[state.row] = generation
                    if state.session is not None:
                        state.session.resend_after = 0.0
                        wakes.append(state.session.wake)
            # KPIs of a slice that left a site are no longer about anything.
            for site in moved:
                names = self._desired[site].names
                self._slice_counts[site] = len(names)
                self._kpis.reconfigured(site, names)
        for wake in wakes:
            wake()
        return sorted(moved)

    def take_unsaved_generations(self) -> list[tuple[str, int, str]]:
        """(site, generation, content hash) of the sites whose generation moved since the last call."""
        with self._lock:
            rows = self._generations.rows(sorted(self._unsaved))
            self._unsaved.clear()
        return rows

    def desired(self, site: str) -> tuple[site_config.SiteConfig, int] | None:
        with self._lock:
            d = self._desired.get(site)
            return (d.config, d.generation) if d else None

    def intents(self) -> dict[str, SliceIntent]:
        with self._lock:
            return dict(self._intents)

    def reporters(self) -> dict[str, frozenset[str]]:
        """slice → the sites expected to report its KPIs (its cells and its edge sites)."""
        with self._lock:
            return dict(self._reporters)

    # -- agent progress (what makes a slice Realised) -------------------------------------------

    def take_progress(self) -> dict[str, AgentProgress]:
        """The agent progress of every slice whose progress may have changed since the last call."""
        policy = self.settings.agent_policy
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            return {name: self._progress(name, policy) for name in sorted(dirty) if name in self._carriers}

    def progress(self, name: str) -> AgentProgress | None:
        with self._lock:
            return self._progress(name, self.settings.agent_policy) if name in self._carriers else None

    def _progress(self, name: str, policy: str) -> AgentProgress:
        acked = 0
        required = 0
        exempt = 0
        waiting: list[str] = []
        refused: list[tuple[str, int, str, str]] = []
        for site in self._carriers[name]:
            if policy == "none" or (policy == "edge" and self._kinds[site] not in ("edge", "core")):
                exempt += 1
                continue
            required += 1
            state = self._sites[site]
            since = self._desired[site].since.get(name, 0)
            if state.acked_generation >= since:
                acked += 1
                continue
            r = state.refusal
            if r is not None and r.generation >= since:
                refused.append((site, r.generation, r.reason, r.message))
            elif len(waiting) < 5:
                waiting.append(site)
        return AgentProgress(
            required, acked, tuple(refused[:5]), tuple(waiting), exempt, policy, self._revision
        )

    # -- sessions -------------------------------------------------------------------------------

    def knows(self, site: str) -> bool:
        return site in self._sites

    def open(
        self,
        site: str,
        version: str,
        wake: Callable[[], None],
        instance_id: str = "",
        applied_generation: int = 0,
        epoch: str = "",
        backend: str = "",
    ) -> _Session:
        """Start a session. While another instance's session holds a valid lease the Hello is
        refused (ALREADY_EXISTS); the same instance re-dialling replaces its older stream."""
        s = self.settings
        now = self.clock()
        with self._lock:
            state = self._sites[site]
            old = state.session
            if old is not None and not old.expired:
                valid = now - state.last_seen <= s.lease_s
                if valid and (not instance_id or old.instance_id != instance_id):
                    raise StreamError(
                        grpc.StatusCode.ALREADY_EXISTS,
                        f"site {site!r} already has an agent session (instance {old.instance_id!r}, "
                        f"lease valid for {s.lease_s - (now - state.last_seen):.1f} s); retry after lease_ms",
                    )
            self._serial += 1
            session = _Session(
                site,
                self._serial,
                version,
                instance_id,
                wake,
                _Bucket(s.rate_per_s, s.rate_burst, s.rate_burst, now),
            )
            state.session = session
            state.version = version
            state.instance_id = instance_id
            state.backend = backend
            state.ever_connected = True
            state.last_seen = now
            state.lease_from = -math.inf  # back: its lease is an ordinary one from now on
            table = self._table
            table.ever[state.row] = table.connected[state.row] = 1
            table.last_seen[state.row] = now
            self._resume(state, session, applied_generation, epoch)
            if not state.up:  # first: the hello effect then finds the site up already
                state.up = True
                self._effects.append(Effect("site-up", site))
            self._effects.append(Effect("hello", site))
        if old is not None:
            old.replaced = True
            old.wake()
        self.effects_ready.set()
        return session

    def _resume(self, state: _SiteState, session: _Session, applied: int, epoch: str) -> None:
        """What the agent says it has applied (Hello): the current generation of this epoch needs
        no resend; a generation at or above ours from elsewhere (another controller, a restored
        state) makes us number the current config above it, so generations never go back."""
        d = self._desired.get(state.site)
        if d is None or applied == 0:
            return
        if epoch == self.epoch and applied == d.generation:
            session.sent_generation, session.sent_at = d.generation, self.clock()
            session.acked_seen = applied
            if state.acked_generation != applied:
                state.acked_generation = self._table.acked[state.row] = applied
                self._dirty.update(d.since)
        elif applied >= d.generation:
            generation = self._generations.raise_above(state.site, applied)
            since = {name: generation for name in d.since}
            self._desired[state.site] = _Desired(
                d.config,
                generation,
                _to_wire(d.config, generation, self._neighbours.get(state.site, ())),
                d.names,
                since,
            )
            self._table.desired[state.row] = generation
            self._unsaved.add(state.site)
            self._dirty.update(since)

    def heartbeat(self, session: _Session, applied: int) -> None:
        """The agent says which generation is in effect. Below what it acked (its backend lost or
        rolled back the config): not acked any more, and the current config is sent again."""
        with self._lock:
            state = self._sites[session.site]
            d = self._desired.get(session.site)
            if applied == 0 or applied >= state.acked_generation or state.session is not session:
                return
            state.acked_generation = self._table.acked[state.row] = applied
            session.acked_seen = applied
            session.sent_generation = 0  # resend at once
            if d is not None:
                self._dirty.update(d.since)

    def close(self, session: _Session) -> None:
        with self._lock:
            state = self._sites[session.site]
            if state.session is session:
                state.session = None
                self._table.connected[state.row] = 0

    def admit_message(self, session: _Session, kind: str = "") -> bool:
        """Count one message against the rate limit and renew the lease. False: the message is
        over the rate and dropped (a Throttled rejection is queued at most once a second).
        Raises StreamError when the session expired or the agent ignored the throttling."""
        now = self.clock()
        with self._lock:
            if session.expired or session.replaced:
                raise StreamError(
                    grpc.StatusCode.UNAVAILABLE, f"site {session.site!r}: the session has ended"
                )
            state = self._sites[session.site]
            state.last_seen = self._table.last_seen[state.row] = now
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
                        state,
                        session,
                        kind,
                        "",
                        "Throttled",
                        f"over {s.rate_per_s:g} messages/s (burst {s.rate_burst:g}): message dropped",
                        retry_after_ms=wait_ms,
                    )
                return False
            state.messages += 1
            if now - state.rate_since >= RATE_WINDOW_S:  # once a minute: the hot path only compares
                if state.rate_since > -math.inf:
                    state.last_rate = (state.messages - 1 - state.rate_base) / (now - state.rate_since)
                state.rate_since, state.rate_base = now, state.messages - 1
            return True

    def _reject(
        self,
        state: _SiteState,
        session: _Session,
        kind: str,
        where: str,
        reason: str,
        message: str,
        retry_after_ms: int = 0,
        observed_at: int = 0,
    ) -> None:
        """Queue an in-band Rejection for the session (call under the lock)."""
        out = agent_pb2.ControllerMessage()
        r = out.rejection
        r.message_kind, r.field, r.reason, r.message = kind, where, reason, message[:MAX_ACK_MESSAGE]
        r.retry_after_ms, r.observed_at_unix_ms = retry_after_ms, observed_at
        session.outbox.append(out)
        state.rejections += 1

    def take_outbox(self, session: _Session) -> list[agent_pb2.ControllerMessage]:
        with self._lock:
            out = list(session.outbox)
            session.outbox.clear()
            return out

    def next_config(self, session: _Session) -> agent_pb2.ControllerMessage | None:
        """The config to push now: the current generation if this session has not been sent it,
        or again while it is unacked (every ``resend_after_s``; after refusals with a doubling
        backoff up to REFUSAL_BACKOFF_MAX_S)."""
        now = self.clock()
        with self._lock:
            d = self._desired.get(session.site)
            if d is None or session.replaced or session.expired:
                return None
            state = self._sites[session.site]
            if session.sent_generation == d.generation and (
                state.acked_generation == d.generation or now - session.sent_at < self._resend_interval(state)
            ):
                return None
            session.sent_generation = d.generation
            session.sent_at = now
            return d.wire

    def _resend_interval(self, state: _SiteState) -> float:
        base = self.settings.resend_after_s
        if not state.refusals_in_row:
            return base
        return min(REFUSAL_BACKOFF_MAX_S, base * 2.0 ** (state.refusals_in_row - 1))

    def wait_before_resend(self, session: _Session) -> float | None:
        """How long the writer may sleep before the config is due again (None: nothing due)."""
        now = self.clock()
        with self._lock:
            d = self._desired.get(session.site)
            if d is None or session.replaced or session.expired:
                return None
            state = self._sites[session.site]
            if state.acked_generation == d.generation:
                return None
            return max(0.01, session.sent_at + self._resend_interval(state) - now)

    def ack(self, session: _Session, ack: agent_pb2.ConfigAck) -> None:
        with self._lock:
            state = self._sites[session.site]
            d = self._desired.get(session.site)
            if d is None or ack.generation != d.generation:
                return  # an ack of a superseded generation: the current one is (re)sent anyway
            if ack.ok:
                session.acked_seen = ack.generation
                if state.acked_generation != ack.generation:
                    state.acked_generation = self._table.acked[state.row] = ack.generation
                    self._dirty.update(d.since)
                state.refusal = None
                state.refusals_in_row = 0
                return
            reason = (ack.reason or "ApplyFailed")[:MAX_SHORT]
            message = ack.message[:MAX_ACK_MESSAGE]
            first = state.refusal is None or state.refusal.generation != ack.generation
            state.refusal = Refusal(ack.generation, reason, message, self.wall_clock())
            state.refusals_in_row += 1
            label = reason if reason in KNOWN_REFUSALS else "Other"
            self._refusal_counts[label] = self._refusal_counts.get(label, 0) + 1
            self._dirty.update(d.since)
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

    def record_telemetry(
        self,
        session: _Session,
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
        columns = None
        if isinstance(batch, agent_ingest_pb2.IngestTelemetryBatch):
            if not batch.slices:
                columns = kpi_store.packed_columns(batch.columns)
            if columns is None:
                batch = _as_sent(raw) if raw is not None else _reparse(batch)
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
                desired = self._desired.get(site)
                configured = desired.names if desired else frozenset()
                kept = self._kpis.add(site, now, columns, configured)
                state = self._sites[site]
                state.kpi_records += kept
                state.health_cpu = cpu
                if kept < len(columns.names):
                    unknown = next(n for n in columns.names if n not in configured)
                    self._reject(
                        state,
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
                    self._sites[site],
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
        lease = self.settings.lease_s
        out = []
        wakes = []
        with self._lock:
            for state in self._sites.values():
                if state.ever_connected and state.up and now - max(state.last_seen, state.lease_from) > lease:
                    state.up = False
                    out.append(state.site)
                    session = state.session
                    if session is not None:
                        session.expired = True
                        state.session = None
                        self._table.connected[state.row] = 0
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

    def latest_kpi_columns(self, since: float, sites: AbstractSet[str]) -> kpi_store.KpiColumns:
        """The newest record of every (slice, site) of ``sites`` taken after ``since``, as arrays:
        what a metrics scrape aggregates per slice (200,000 records in a city)."""
        with self._lock:
            return self._kpis.latest_columns(since, sites, self._slice_counts)

    def site_kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    def latest_kpi(self, slice_name: str, site: str) -> KpiSample | None:
        with self._lock:
            return self._kpis.latest_of(slice_name, site)

    def status(self, site: str) -> SiteSessionStatus:
        with self._lock:
            return self._status(self._sites[site], self.clock())

    def statuses(self, connected_only: bool = False) -> list[SiteSessionStatus]:
        now = self.clock()
        with self._lock:
            return [
                self._status(s, now) for s in self._sites.values() if s.ever_connected or not connected_only
            ]

    def session_columns(self) -> SessionColumns:
        """Every site whose agent has connected (in this run or before a restart): site, connected
        (a session whose lease is valid), seconds since its last message, desired and acked
        generation, as arrays (what a scrape lists)."""
        now = self.clock()
        with self._lock:
            return self._table.columns(now, self.settings.lease_s)

    def _connected(self, state: _SiteState, now: float) -> bool:
        return state.session is not None and now - state.last_seen <= self.settings.lease_s

    def _status(self, state: _SiteState, now: float) -> SiteSessionStatus:
        d = self._desired.get(state.site)
        desired = d.generation if d else 0
        lag = 0.0 if state.acked_generation == desired else max(0.0, now - state.desired_since)
        r = state.refusal
        return SiteSessionStatus(  # positional: the fields' order (a scrape makes one per agent)
            state.site,
            self._connected(state, now),
            state.up,
            state.version,
            desired,
            state.acked_generation,
            lag,
            now - state.last_seen,
            r.reason if r is not None else "",
            r.message if r is not None else "",
            state.messages,
            state.kpi_records,
        )

    # -- AgentDirectory (controller.runtime.agent_view) -------------------------------------------------

    def agents(self) -> list[AgentInfo]:
        now = self.clock()
        with self._lock:
            return [self._info(self._sites[site], now) for site in sorted(self._sites)]

    def agent(self, site: str) -> AgentInfo | None:
        now = self.clock()
        with self._lock:
            state = self._sites.get(site)
            return self._info(state, now) if state is not None else None

    def _info(self, state: _SiteState, now: float) -> AgentInfo:
        connected = self._connected(state, now)
        d = self._desired.get(state.site)
        if connected:
            session_state = SessionState.CONNECTED
        elif state.ever_connected:
            session_state = SessionState.DISCONNECTED
        else:
            session_state = SessionState.NEVER
        span = now - state.rate_since
        # The running minute once it holds 10 s of messages, else the last full minute's rate.
        rate = (state.messages - state.rate_base) / span if span >= 10.0 else state.last_rate
        return AgentInfo(
            site=state.site,
            kind=self._kinds[state.site],
            state=session_state,
            lease_expires_in_s=max(0.0, self.settings.lease_s - (now - state.last_seen))
            if connected
            else None,
            last_seen_s_ago=(now - state.last_seen) if state.last_seen > -math.inf else None,
            software_version=state.version,
            instance_id=state.instance_id,
            desired_generation=d.generation if d else 0,
            acked_generation=state.acked_generation,
            last_refusal=state.refusal,
            messages_per_s=round(rate, 3),
            rejections=state.rejections,
            epoch=self.epoch,
            backend=state.backend,
        )


def _reparse(batch: agent_ingest_pb2.IngestTelemetryBatch) -> agent_pb2.TelemetryBatch:
    # Only for callers without the original bytes (tests): a column split on the wire is gone by
    # now, but the view of a batch built in this process was never split.
    return agent_pb2.TelemetryBatch.FromString(batch.SerializeToString())


def _to_wire(
    config: site_config.SiteConfig, generation: int, peers: Iterable[str] = ()
) -> agent_pb2.ControllerMessage:
    msg = agent_pb2.ControllerMessage()
    sc = msg.config
    sc.site_id = config.site
    sc.generation = generation
    sc.site_kind = config.kind
    sc.peers.extend(sorted(peers))
    for s in config.slices:
        out = sc.slices.add()
        out.name = s.name
        out.snssai.sst = s.sst
        out.snssai.sd = s.sd
        q = s.qos
        out.qos.five_qi = q.five_qi
        out.qos.arp_priority_level = q.arp_priority_level
        out.qos.preemption_capability = q.preemption_capability
        out.qos.preemption_vulnerability = q.preemption_vulnerability
        out.qos.guaranteed_dl_kbps = q.guaranteed_dl_kbps
        out.qos.guaranteed_ul_kbps = q.guaranteed_ul_kbps
        out.qos.latency_budget_ms = q.latency_budget_ms
        out.qos.max_packet_loss = q.max_packet_loss
        if s.radio is not None:
            out.radio.reserved_kbps = s.radio.reserved_kbps
            out.radio.capacity_kbps = s.radio.capacity_kbps
            out.radio.share_ppm = s.radio.share_ppm
        for ln in s.links:
            out.links.add(peer=ln.peer, reserved_kbps=ln.reserved_kbps, capacity_kbps=ln.capacity_kbps)
        if s.compute is not None:
            c = s.compute
            out.compute.cpu_millicores = c.cpu_millicores
            out.compute.memory_mib = c.memory_mib
            out.compute.cells = c.cells
            for w in c.workloads:
                out.compute.workloads.add(
                    name=w.name,
                    image=w.image,
                    replicas=w.replicas,
                    cpu_millicores=w.cpu_millicores,
                    memory_mib=w.memory_mib,
                )
        out.route.extend(s.route)
        out.serving_edge = s.serving_edge
    return msg


# -- the gRPC handler ----------------------------------------------------------------------------


def peer_site_identities(context: grpc.aio.ServicerContext[bytes, agent_pb2.ControllerMessage]) -> set[str]:
    """Site ids the client certificate names: its CN and every ``spiffe://edgeslice/site/`` URI SAN
    (a certificate is good for a site only when this is exactly one id)."""
    auth = context.auth_context()
    out = {v.decode(errors="replace") for v in auth.get("x509_common_name", [])}
    for v in auth.get("x509_subject_alternative_name", []):
        text = v.decode(errors="replace")
        if text.startswith(SPIFFE_PREFIX):
            out.add(text[len(SPIFFE_PREFIX) :])
    return out


def check_identity(site: str, ids: set[str]) -> None:
    """Refuse unless the certificate names exactly one site and it is ``site`` (PERMISSION_DENIED,
    whether or not ``site`` exists: a stranger learns nothing of the topology).

    >>> check_identity("edge-1", {"edge-1"})
    >>> check_identity("edge-1", {"edge-1", "edge-2"})
    Traceback (most recent call last):
    ...
    telemetry.agentlink.service.StreamError: the client certificate names 2 sites (edge-1, edge-2); a site's certificate must name exactly one
    """
    if len(ids) != 1:
        named = f"{len(ids)} sites ({', '.join(sorted(ids))})" if ids else "no site"
        raise StreamError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"the client certificate names {named}; a site's certificate must name exactly one",
        )
    if site not in ids:
        raise StreamError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"hello.site_id: the client certificate is for {next(iter(ids))}, not site {site[:MAX_NAME]!r}",
        )


class AgentServicer:
    """Handles ``SiteAgent.Connect`` streams. Requests arrive as raw bytes so a message that is
    not valid protobuf gets INVALID_ARGUMENT from us rather than an opaque INTERNAL.

    Each stream's reader only queues what it reads; the messages every stream delivered in one
    pass of the event loop are then handled together, in arrival order, by :meth:`_handle_queued`.
    One tight loop over many messages costs less CPU per message than the same work done a
    message at a time between gRPC's own callbacks (measured: bench/README.md, telemetry ingest).
    Bad data inside a message is answered in-band (a Rejection) and the stream goes on; a protocol
    violation ends the stream, and the stream's later messages are never handled."""

    def __init__(self, registry: AgentRegistry, require_identity: bool) -> None:
        self.registry = registry
        self.require_identity = require_identity
        self.accepted_messages = 0
        self._queued: list[tuple[_Session, bytes, list[StreamError], asyncio.Event]] = []

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "edgeslice.agent.v1.SiteAgent",
            {
                "Connect": grpc.stream_stream_rpc_method_handler(
                    self.connect,
                    request_deserializer=None,
                    response_serializer=agent_pb2.ControllerMessage.SerializeToString,
                )
            },
        )

    async def connect(
        self,
        requests: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, agent_pb2.ControllerMessage],
    ) -> None:
        try:
            session = await self._hello(context)
        except StreamError as exc:
            await context.abort(exc.code, exc.message)
            return
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wake_up() -> None:
            loop.call_soon_threadsafe(wake.set)

        session.wake = wake_up
        failure: list[StreamError] = []
        reader = asyncio.create_task(self._read(context, session, wake, failure))
        try:
            await self._write_loop(session, context, wake, reader, failure)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            self.registry.close(session)
        if session.expired:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"site {session.site!r}: lease expired (no message for "
                f"{self.registry.settings.lease_s * 1000:.0f} ms); reconnect and send Hello again",
            )
        if failure:
            await context.abort(failure[0].code, failure[0].message)
        if session.replaced:
            await context.abort(
                grpc.StatusCode.ABORTED, f"site {session.site!r}: replaced by a newer stream of this agent"
            )

    async def _hello(self, context: grpc.aio.ServicerContext[bytes, agent_pb2.ControllerMessage]) -> _Session:
        registry = self.registry
        try:
            raw = await asyncio.wait_for(context.read(), registry.settings.hello_timeout_s)
        except TimeoutError:
            raise StreamError(
                grpc.StatusCode.DEADLINE_EXCEEDED, "no Hello within the hello timeout"
            ) from None
        if raw is EOF:  # type: ignore[comparison-overlap]  # grpc's stubs leave EOF out of read()
            raise StreamError(grpc.StatusCode.INVALID_ARGUMENT, "stream closed before Hello")
        msg = parse_agent_message(raw)
        if msg.WhichOneof("body") != "hello":
            raise StreamError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the first message must be hello, got {msg.WhichOneof('body') or 'an empty message'}",
            )
        hello = msg.hello
        site = hello.site_id
        for name, value, limit in (
            ("site_id", site, MAX_NAME),
            ("instance_id", hello.instance_id, MAX_NAME),
            ("software_version", hello.software_version, MAX_SHORT),
        ):
            if not value:
                raise StreamError(grpc.StatusCode.INVALID_ARGUMENT, f"hello.{name}: must not be empty")
            if len(value.encode()) > limit:
                raise StreamError(
                    grpc.StatusCode.INVALID_ARGUMENT, f"hello.{name}: longer than {limit} bytes"
                )
        if hello.applied_generation >= MAX_GENERATION:
            raise StreamError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"hello.applied_generation: {hello.applied_generation} leaves no generation above it "
                f"(at most {MAX_GENERATION - 1})",
            )
        if len(hello.backend.encode()) > MAX_SHORT:
            raise StreamError(
                grpc.StatusCode.INVALID_ARGUMENT, f"hello.backend: longer than {MAX_SHORT} bytes"
            )
        if self.require_identity:  # identity before existence
            check_identity(site, peer_site_identities(context))
        if not registry.knows(site):
            raise StreamError(
                grpc.StatusCode.NOT_FOUND, f"hello.site_id: site {site!r} is not in the topology"
            )
        if hello.topology_fingerprint and hello.topology_fingerprint != registry.fingerprint:
            raise StreamError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"hello.topology_fingerprint: the agent was built for topology {hello.topology_fingerprint}, "
                f"this controller runs {registry.fingerprint}: another city",
            )
        session = registry.open(
            site,
            hello.software_version,
            lambda: None,
            hello.instance_id,
            hello.applied_generation,
            hello.controller_epoch,
            hello.backend,
        )
        s = registry.settings
        welcome = agent_pb2.ControllerMessage()
        w = welcome.welcome
        w.site_id = site
        w.lease_ms = round(s.lease_s * 1000)
        w.heartbeat_interval_ms = round(s.heartbeat_interval_s * 1000)
        w.telemetry_interval_ms = round(s.telemetry_interval_s * 1000)
        w.max_message_bytes = s.max_message_bytes
        w.controller_version = CONTROLLER_VERSION
        w.epoch = registry.epoch
        w.max_messages_per_s = math.floor(s.rate_per_s)
        w.max_message_burst = math.floor(s.rate_burst)
        w.hello_timeout_ms = round(s.hello_timeout_s * 1000)
        w.topology_fingerprint = registry.fingerprint
        w.config_resend_ms = round(s.resend_after_s * 1000)
        await context.write(welcome)
        return session

    async def _write_loop(
        self,
        session: _Session,
        context: grpc.aio.ServicerContext[bytes, agent_pb2.ControllerMessage],
        wake: asyncio.Event,
        reader: asyncio.Task[None],
        failure: list[StreamError],
    ) -> None:
        registry = self.registry
        while not reader.done() and not session.replaced and not session.expired and not failure:
            wake.clear()
            if session.outbox:
                for out in registry.take_outbox(session):
                    await context.write(out)
            msg = registry.next_config(session)
            if msg is not None:
                await context.write(msg)
            # Only an unacked config needs a timer; otherwise sleep until woken (a new config, an
            # ack, a rejection to send, a replacement, an expiry) or the stream ends. 20,000 idle
            # sessions waking every second each would keep the loop busy enough to leave new
            # streams unaccepted.
            timeout = registry.wait_before_resend(session)
            if wake.is_set() or session.outbox:
                continue
            waiter = asyncio.ensure_future(wake.wait())
            await asyncio.wait({waiter, reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        if not failure and not session.replaced and not session.expired:
            # The agent closed its side: what it is owed (rejections of its last messages) still goes.
            for out in registry.take_outbox(session):
                await context.write(out)

    async def _read(
        self,
        context: grpc.aio.ServicerContext[bytes, agent_pb2.ControllerMessage],
        session: _Session,
        wake: asyncio.Event,
        failure: list[StreamError],
    ) -> None:
        """Queue the stream's messages until it ends or one of them failed."""
        read = context.read
        queued = self._queued
        call_soon = asyncio.get_running_loop().call_soon
        try:
            # grpc's stubs leave EOF, the end of the stream, out of read()'s type
            while not failure and (raw := await read()) is not EOF:  # type: ignore[comparison-overlap]
                if not queued:
                    call_soon(self._handle_queued)
                queued.append((session, raw, failure, wake))
        finally:
            self._handle_queued()  # what this stream sent before it ended still counts
            wake.set()

    def _handle_queued(self) -> None:
        """Handle every queued message in arrival order; a failing one fails its stream (its
        writer, woken, ends it) and the stream's later messages are dropped."""
        queued = self._queued[:]
        self._queued.clear()
        registry = self.registry
        accepted = 0
        for session, raw, failure, wake in queued:
            if failure:
                continue
            try:
                msg = parse_agent_message(raw)
                kind = msg.WhichOneof("body")
                if kind == "hello":
                    raise StreamError(grpc.StatusCode.INVALID_ARGUMENT, "hello: sent twice on one stream")
                if kind is None:
                    raise StreamError(grpc.StatusCode.INVALID_ARGUMENT, "message: empty body")
                if not registry.admit_message(session, kind):
                    if session.outbox:
                        wake.set()
                    continue
                if kind == "telemetry":
                    registry.record_telemetry(session, msg.telemetry, raw)
                elif kind == "ack":
                    registry.ack(session, msg.ack)
                    wake.set()
                elif 0 < msg.heartbeat.applied_generation < session.acked_seen:
                    registry.heartbeat(session, msg.heartbeat.applied_generation)
                    wake.set()
                if session.outbox:
                    wake.set()
                accepted += 1
            except StreamError as exc:
                failure.append(exc)
                wake.set()
            except Exception:  # a bug of ours: end this stream, keep serving the others
                log.exception("site %s: handling a message failed", session.site)
                failure.append(StreamError(grpc.StatusCode.INTERNAL, "the controller failed"))
                wake.set()
        self.accepted_messages += accepted


def parse_agent_message(raw: bytes) -> agent_ingest_pb2.IngestAgentMessage:
    """An agent's message, parsed with the ingest view (KPI columns kept as bytes)."""
    try:
        return agent_ingest_pb2.IngestAgentMessage.FromString(raw)
    except DecodeError as exc:
        raise StreamError(
            grpc.StatusCode.INVALID_ARGUMENT, f"message is not a valid AgentMessage: {exc}"
        ) from None


def _as_sent(raw: bytes) -> agent_pb2.TelemetryBatch:
    """The message parsed again as agent.proto has it (it parsed as the view, so it parses)."""
    return agent_pb2.AgentMessage.FromString(raw).telemetry


# -- running it ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for mutual TLS: the controller's certificate and key, and the CA that signs agents."""

    cert: str
    key: str
    ca: str

    def server_credentials(self) -> grpc.ServerCredentials:
        def read(path: str) -> bytes:
            with open(path, "rb") as fh:
                return fh.read()

        return grpc.ssl_server_credentials(
            [(read(self.key), read(self.cert))], root_certificates=read(self.ca), require_client_auth=True
        )


def server_options(settings: AgentSettings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", 16 * 1024 * 1024),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.server.max_pending_requests", settings.max_pending_streams),
        ("grpc.server.max_pending_requests_hard_limit", settings.max_pending_streams),
        ("grpc.server_max_unrequested_time_in_server", settings.max_unrequested_s),
        ("grpc.so_reuseport", 0),  # a second server on a port in use fails instead of sharing it
    ]


class AgentServer:
    """The agent gRPC server running on its own asyncio loop in a background thread."""

    def __init__(
        self,
        registry: AgentRegistry,
        listen: str,
        tls: TlsFiles | None,
        dev: bool,
        background: Iterable[_Stoppable] = (),
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        if tls is None and not dev:
            raise errors.InvalidSpec(
                "agents need mutual TLS; insecure listening is for explicit dev mode only"
            )
        if tls is None and not _is_loopback(listen):
            raise errors.InvalidSpec(f"dev mode listens on loopback only, not {listen!r}")
        self.registry = registry
        self.servicer = AgentServicer(registry, require_identity=tls is not None)
        self._listen = listen
        self._tls = tls
        self._background = list(background)
        self._interceptors = list(interceptors)
        self._loop = asyncio.new_event_loop()
        self._server: grpc.aio.Server | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.port = 0
        self.lease_monitor: LeaseMonitor | None = None
        self.sla_monitor: SlaMonitor | None = None
        self._thread = threading.Thread(target=self._run, name="agent-grpc", daemon=True)

    def start(self) -> AgentServer:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error
        for b in self._background:
            b.start()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        server = grpc.aio.server(
            options=server_options(self.registry.settings), interceptors=self._interceptors or None
        )
        server.add_generic_rpc_handlers((self.servicer.handler(),))
        from controller.api import grpc_services  # health (Check, Watch, List) and reflection v1 + v1alpha

        await grpc_services.add_health_and_reflection_aio(
            server, (agent_pb2.DESCRIPTOR.services_by_name["SiteAgent"].full_name,)
        )
        if self._tls is not None:
            self.port = server.add_secure_port(self._listen, self._tls.server_credentials())
        else:
            self.port = server.add_insecure_port(self._listen)
        await server.start()
        self._server = server

    def stop(self, grace: float = 0.5) -> None:
        for b in self._background:
            b.stop()
        if self._server is not None and self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._server.stop(grace), self._loop)
            with contextlib.suppress(Exception):
                fut.result(grace + 5)
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread.is_alive():
            self._thread.join(5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    @property
    def address(self) -> str:
        host = self._listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"


class _Stoppable(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def _is_loopback(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def serve_agents(
    service: ControllerPort,
    listen: str = "127.0.0.1:0",
    tls: TlsFiles | None = None,
    dev: bool = False,
    clock: Clock = time.monotonic,
    settings: AgentSettings | None = None,
    sla: bool = True,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> AgentServer:
    """Start the agent-facing server with its lease monitor (and SLA evaluator); returns the
    running handle (``.port``, ``.registry``, ``.stop()``). ``interceptors`` wrap every call
    (metrics, for instance)."""
    from telemetry.agentlink import lease
    from telemetry.agentlink import sla as sla_mod

    registry = AgentRegistry(service, settings, clock)
    # From now on a slice is Realised only when the agents the policy requires have acked it.
    service.require_agents(registry.settings.agent_policy)
    registry.refresh(force=True)
    monitor = lease.LeaseMonitor(registry, service)
    background: list[_Stoppable] = [monitor]
    sla_monitor = None
    if sla:
        s = registry.settings
        evaluator = sla_mod.SlaEvaluator(
            registry, service, s.sla_window_s, s.sla_sustain_windows, hold_down_s=s.sla_hold_down_s
        )
        sla_monitor = sla_mod.SlaMonitor(evaluator)
        background.append(sla_monitor)
    server = AgentServer(registry, listen, tls, dev, background, interceptors)
    server.lease_monitor, server.sla_monitor = monitor, sla_monitor
    return server.start()
