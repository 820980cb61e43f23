"""The agent-facing gRPC service: one stream per site agent, config push with acks, leases, KPIs.

Three parts with one job each:

* :class:`AgentRegistry` — thread-safe state of every site's session: who is connected, the
  lease, the desired config and its generation, the acknowledged generation (config lag), the
  KPIs received (bounded), link reports. It never calls the controller itself: what the agents'
  reports mean for the slices (site down/up, link down/up) is queued and carried out by the
  lease monitor thread (:mod:`telemetry.lease`), so a slow healing pass never blocks a stream.
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
import functools
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, NamedTuple, Protocol

import grpc
import grpc.aio
from google.protobuf.message import DecodeError

from controller.placement_model import Placement
from controller.topology import LinkKey, Topology, link_key
from protos.edgeslice.agent.v1 import agent_pb2
from slices import errors
from slices.profiles import SliceIntent
from telemetry import site_config
from telemetry.sla import KpiSample

if TYPE_CHECKING:
    from telemetry.lease import LeaseMonitor
    from telemetry.sla import SlaMonitor

Clock = Callable[[], float]
METHOD = "/edgeslice.agent.v1.SiteAgent/Connect"
SPIFFE_PREFIX = "spiffe://edgeslice/site/"
CONTROLLER_VERSION = "edgeslice-controller/0.1.0"
_INACTIVE_STATES = ("Rejected", "Preempted")


class ControllerPort(Protocol):
    """What the agent side needs of :class:`controller.service.ControllerService`."""

    @property
    def revision(self) -> int: ...

    def topology(self) -> Topology: ...

    def list_slices(self) -> Sequence[_RecordLike]: ...

    def site_down(self, site: str, reason: str, actor: str) -> list[str]: ...

    def site_up(self, site: str, actor: str) -> None: ...

    def link_down(self, key: LinkKey, reason: str, actor: str) -> list[str]: ...

    def link_up(self, key: LinkKey, actor: str) -> None: ...

    def set_sla(self, name: str, met: bool, reason: str, message: str, actor: str) -> None: ...

    def replace_slice(self, name: str, reason: str, actor: str) -> bool: ...


class _RecordLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def intent(self) -> SliceIntent: ...
    @property
    def placement(self) -> Placement | None: ...
    @property
    def state(self) -> str: ...


@dataclass(frozen=True)
class AgentSettings:
    lease_s: float = 3.0
    heartbeat_interval_s: float = 1.0
    telemetry_interval_s: float = 1.0
    resend_after_s: float = 2.0  # an unacked config is pushed again this often
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
    sla_window_s: float = 10.0  # KPIs are judged over this rolling window, once per window
    sla_sustain_windows: int = 3  # violating windows in a row before a re-placement attempt


class SiteSessionStatus(NamedTuple):
    """One site's session as the registry sees it (a named tuple: a scrape makes one per agent,
    21,677 in a city, and a frozen dataclass costs several times more to build)."""

    site: str
    connected: bool
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
    """Token bucket: ``rate`` messages/s sustained, ``burst`` at once."""

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
        return False


@dataclass
class _Session:
    site: str
    serial: int
    version: str
    wake: Callable[[], None]
    bucket: _Bucket
    sent_generation: int = 0
    sent_at: float = -math.inf
    replaced: bool = False


@dataclass
class _SiteState:
    """What the controller knows of one site, across sessions."""

    site: str
    session: _Session | None = None
    ever_connected: bool = False
    up: bool = True
    last_seen: float = -math.inf
    version: str = ""
    acked_generation: int = 0
    nack_reason: str = ""
    nack_message: str = ""
    desired_since: float = 0.0
    messages: int = 0
    kpi_records: int = 0
    health_cpu: float = 0.0


@dataclass(frozen=True)
class Effect:
    """Something the agents' reports mean for the controller, carried out by the lease monitor."""

    action: str  # "site-up" | "link-down" | "link-up" | "hello"
    site: str
    link: LinkKey | None = None
    reason: str = ""


@dataclass
class _Desired:
    config: site_config.SiteConfig
    generation: int
    wire: agent_pb2.ControllerMessage = field(default_factory=agent_pb2.ControllerMessage)
    names: frozenset[str] = frozenset()


class AgentRegistry:
    """Every site's session, lease, config generation and KPIs. All methods are thread-safe."""

    def __init__(
        self,
        service: ControllerPort,
        settings: AgentSettings | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.service = service
        self.settings = settings or AgentSettings()
        self.clock = clock
        self._lock = threading.Lock()
        topology = service.topology()
        self._kinds = {sid: s.kind.value for sid, s in topology.sites.items()}
        self._neighbours: dict[str, frozenset[str]] = {sid: frozenset() for sid in topology.sites}
        nb: dict[str, set[str]] = {sid: set() for sid in topology.sites}
        for ln in topology.links:
            nb[ln.a].add(ln.b)
            nb[ln.b].add(ln.a)
        self._neighbours = {k: frozenset(v) for k, v in nb.items()}
        self._sites: dict[str, _SiteState] = {sid: _SiteState(sid) for sid in topology.sites}
        self._generations = site_config.Generations()
        self._desired: dict[str, _Desired] = {}
        self._intents: dict[str, SliceIntent] = {}
        # site → its recent telemetry batches, column-wise (see _Records), only records of slices
        # configured there: ingest stores a batch without building an object per record; samples
        # are made when read (the SLA pass, once a window).
        self._windows: dict[str, deque[_Stored]] = {}
        self._links_down_by: dict[LinkKey, set[str]] = {}
        self._link_state: dict[str, list[tuple[str, bool]]] = {}  # site → its last (peer, up) report
        self._effects: deque[Effect] = deque()
        self._revision = -1
        self._serial = 0
        self.effects_ready = threading.Event()
        self.unknown_slice_reports = 0

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
        now = self.clock()
        wakes: list[Callable[[], None]] = []
        with self._lock:
            self._revision = revision
            self._intents = {intent.name: intent for intent, _ in placed}
            moved = self._generations.update(configs)
            for site, generation in moved.items():
                config = configs[site]
                self._desired[site] = _Desired(
                    config, generation, _to_wire(config, generation), frozenset(config.slice_names())
                )
                state = self._sites.get(site)
                if state is not None:
                    state.desired_since = now
                    if state.session is not None:
                        wakes.append(state.session.wake)
            # KPIs of a slice that left a site are no longer about anything.
            for site in moved:
                old = self._windows.get(site)
                if old:
                    names = self._desired[site].names
                    kept = [(stored[0], *_retain(stored[1:], names)) for stored in old]
                    old.clear()
                    old.extend(stored for stored in kept if stored[1])
        for wake in wakes:
            wake()
        return sorted(moved)

    def _slices_at(self, site: str) -> frozenset[str]:
        desired = self._desired.get(site)
        return desired.names if desired else frozenset()

    def desired(self, site: str) -> tuple[site_config.SiteConfig, int] | None:
        with self._lock:
            d = self._desired.get(site)
            return (d.config, d.generation) if d else None

    def intents(self) -> dict[str, SliceIntent]:
        with self._lock:
            return dict(self._intents)

    # -- sessions -------------------------------------------------------------------------------

    def knows(self, site: str) -> bool:
        return site in self._sites

    def open(self, site: str, version: str, wake: Callable[[], None]) -> _Session:
        """Start a session; a previous session of the site is told it was replaced."""
        s = self.settings
        now = self.clock()
        with self._lock:
            state = self._sites[site]
            self._serial += 1
            session = _Session(
                site, self._serial, version, wake, _Bucket(s.rate_per_s, s.rate_burst, s.rate_burst, now)
            )
            old = state.session
            state.session = session
            state.version = version
            state.ever_connected = True
            state.last_seen = now
            self._effects.append(Effect("hello", site))
            if not state.up:
                state.up = True
                self._effects.append(Effect("site-up", site))
        if old is not None:
            old.replaced = True
            old.wake()
        self.effects_ready.set()
        return session

    def close(self, session: _Session) -> None:
        with self._lock:
            state = self._sites[session.site]
            if state.session is session:
                state.session = None

    def admit_message(self, session: _Session) -> None:
        """Count one message against the rate limit and renew the lease."""
        now = self.clock()
        with self._lock:
            if not session.bucket.take(now):
                raise StreamError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"site {session.site!r} exceeded {self.settings.rate_per_s:g} messages/s "
                    f"(burst {self.settings.rate_burst:g})",
                )
            state = self._sites[session.site]
            state.last_seen = now
            state.messages += 1
            if not state.up and state.session is session:
                state.up = True
                self._effects.append(Effect("site-up", session.site))
                self.effects_ready.set()

    def next_config(self, session: _Session) -> agent_pb2.ControllerMessage | None:
        """The config to push now: the current generation if this session has not been sent it,
        or again when it is still unacked ``resend_after_s`` after the last push."""
        now = self.clock()
        with self._lock:
            d = self._desired.get(session.site)
            if d is None or session.replaced:
                return None
            state = self._sites[session.site]
            # Every session gets the current config once (that is how a reconnecting agent
            # resumes); after that it is resent only while unacked.
            if session.sent_generation == d.generation and (
                (state.acked_generation == d.generation and not state.nack_reason)
                or now - session.sent_at < self.settings.resend_after_s
            ):
                return None
            session.sent_generation = d.generation
            session.sent_at = now
            return d.wire

    def awaiting_ack(self, session: _Session) -> bool:
        """Whether the site's current config still waits for a good ack (so it may be resent)."""
        with self._lock:
            d = self._desired.get(session.site)
            if d is None or session.replaced:
                return False
            state = self._sites[session.site]
            return state.acked_generation != d.generation or bool(state.nack_reason)

    def ack(self, session: _Session, ack: agent_pb2.ConfigAck) -> None:
        with self._lock:
            state = self._sites[session.site]
            d = self._desired.get(session.site)
            if d is None or ack.generation != d.generation:
                return  # an ack of a superseded generation: the current one is (re)sent anyway
            if ack.ok:
                state.acked_generation = ack.generation
                state.nack_reason = state.nack_message = ""
            else:
                state.nack_reason = ack.reason or "ApplyFailed"
                state.nack_message = ack.message[:500]

    def record_telemetry(self, session: _Session, batch: agent_pb2.TelemetryBatch) -> int:
        """Validate the whole batch, then store it (nothing is stored from a batch with a bad
        value); returns the KPI records kept. Raises StreamError."""
        site = session.site
        now = self.clock()
        records = _column_records(batch.columns, site)
        if batch.slices:
            records = _merge(_row_records(batch.slices, site), records)
        names = records[0]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise StreamError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"site {site!r}: slices: {', '.join(map(repr, twice))} reported more than once in one batch",
            )
        health = batch.health
        links = health.links[:]  # a list: iterating the protobuf container is slower
        reported: list[tuple[str, bool]] = []
        if links:
            neighbours = self._neighbours[site]
            if len(links) > self.settings.max_link_reports:
                raise StreamError(grpc.StatusCode.INVALID_ARGUMENT, f"site {site!r}: too many link states")
            for ls in links:
                peer, utilisation = ls.peer, ls.utilisation
                if peer not in neighbours:
                    raise StreamError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"site {site!r}: health.links: {peer!r} is not linked to this site",
                    )
                if not 0.0 <= utilisation <= 10.0:
                    _check_fraction(site, "health.links.utilisation", utilisation, 10.0)
                reported.append((peer, ls.up))
        cpu = health.cpu_utilisation
        if not 0.0 <= cpu <= 10.0:
            _check_fraction(site, "health.cpu_utilisation", cpu, 10.0)
        with self._lock:
            state = self._sites[site]
            if names:
                configured = self._slices_at(site)
                if not configured.issuperset(names):
                    before = len(names)
                    records = _retain(records, configured)
                    self.unknown_slice_reports += before - len(records[0])
                kept = len(records[0])
                if kept:
                    window = self._windows.get(site)
                    if window is None:
                        window = self._windows[site] = deque(maxlen=self.settings.kpi_window)
                    window.append((now, *records))
                state.kpi_records += kept
            else:
                kept = 0
            state.health_cpu = cpu
            # Most reports repeat the last one: only a change costs more than one comparison.
            last = self._link_state.get(site)
            if reported and reported != last:
                states = dict(last or ())
                for peer, up in reported:
                    if states.get(peer) is not up:
                        states[peer] = up
                        self._link_report(site, link_key(site, peer), up)
                self._link_state[site] = list(states.items())
        return kept

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
        """Mark down every site whose lease ran out; returns them (each only once per outage)."""
        now = self.clock()
        lease = self.settings.lease_s
        out = []
        with self._lock:
            for state in self._sites.values():
                if state.ever_connected and state.up and now - state.last_seen > lease:
                    state.up = False
                    out.append(state.site)
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
        out: dict[tuple[str, str], list[KpiSample]] = {}
        with self._lock:
            for site, window in self._windows.items():
                if not window or window[-1][0] <= since:
                    continue
                recent = []
                for stored in reversed(window):
                    if stored[0] <= since:
                        break
                    recent.append(stored)
                for at, names, *columns in reversed(recent):
                    for name, *values in zip(names, *columns, strict=True):
                        key = (name, site)
                        samples = out.get(key)
                        if samples is None:
                            samples = out[key] = []
                        samples.append(KpiSample(at, *values))
        return out

    def latest_kpis(self, since: float = -math.inf) -> dict[tuple[str, str], KpiSample]:
        """(slice, site) → its newest sample taken after ``since``: the last of what :meth:`kpis`
        gives, without copying the windows. Usually only each site's last batch is read (agents
        report every configured slice in every batch); older ones only for a slice it left out."""
        out: dict[tuple[str, str], KpiSample] = {}
        # A city has ~200,000 (slice, cell) pairs: one batch is turned into samples by C-level
        # iteration (zip, map, dict.update), not a Python call per pair. tuple.__new__ skips the
        # named tuple's own __new__ (a Python function); the columns have the fields' order.
        sample = functools.partial(tuple.__new__, KpiSample)
        with self._lock:
            for site, window in self._windows.items():
                if not window:
                    continue
                newest = window[-1]
                at, names = newest[0], newest[1]
                if at <= since:
                    continue
                out.update(
                    zip(zip(names, repeat(site)), map(sample, zip(repeat(at), *newest[2:])), strict=True)
                )
                configured = len(self._slices_at(site))
                if len(names) >= configured or len(window) == 1:
                    continue
                # Some slice was left out of the last batch: its newest sample is further back.
                seen = set(names)
                for stored in reversed(window):
                    at, names, columns = stored[0], stored[1], stored[2:]
                    if at <= since or len(seen) >= configured:
                        break
                    for i, name in enumerate(names):
                        if name not in seen:
                            seen.add(name)
                            out[(name, site)] = KpiSample._make((at, *(column[i] for column in columns)))
        return out

    def site_kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    def latest_kpi(self, slice_name: str, site: str) -> KpiSample | None:
        with self._lock:
            for at, names, *columns in reversed(self._windows.get(site, ())):
                if slice_name in names:
                    i = names.index(slice_name)
                    return KpiSample._make((at, *(column[i] for column in columns)))
        return None

    def status(self, site: str) -> SiteSessionStatus:
        with self._lock:
            return self._status(self._sites[site], self.clock())

    def statuses(self, connected_only: bool = False) -> list[SiteSessionStatus]:
        now = self.clock()
        with self._lock:
            return [
                self._status(s, now) for s in self._sites.values() if s.ever_connected or not connected_only
            ]

    def _status(self, state: _SiteState, now: float) -> SiteSessionStatus:
        d = self._desired.get(state.site)
        desired = d.generation if d else 0
        lag = 0.0 if state.acked_generation == desired else max(0.0, now - state.desired_since)
        return SiteSessionStatus(  # positional: the fields' order (a scrape makes one per agent)
            state.site,
            state.session is not None,
            state.up,
            state.version,
            desired,
            state.acked_generation,
            lag,
            now - state.last_seen,
            state.nack_reason,
            state.nack_message,
            state.messages,
            state.kpi_records,
        )


def _check_fraction(site: str, name: str, value: float, upper: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= upper):
        raise StreamError(
            grpc.StatusCode.INVALID_ARGUMENT, f"site {site!r}: {name}: {value!r} is not in 0..{upper:g}"
        )


# -- validating KPI records -----------------------------------------------------------------------

# KPI records column-wise: (slice names, then one column per KpiSample field after ``at``).
_Records = tuple[
    tuple[str, ...],
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[int],
    Sequence[float],
]
# (controller clock when received, *records)
_Stored = tuple[
    float,
    tuple[str, ...],
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[int],
    Sequence[float],
]
_INF = math.inf
_RATE_FIELDS = (
    "dl_throughput_mbps",
    "ul_throughput_mbps",
    "dl_demand_mbps",
    "ul_demand_mbps",
    "latency_p50_ms",
    "latency_p99_ms",
)
_COLUMNS = (*_RATE_FIELDS, "packet_loss", "active_devices", "radio_utilisation")
_EMPTY: _Records = ((), (), (), (), (), (), (), (), (), ())


def _column_records(c: agent_pb2.SliceKpiColumns, site: str) -> _Records:
    """Check a columnar batch with four C-level passes over all its values (``min``, ``max``,
    ``sum``: a NaN or an infinity makes the sum non-finite); only a batch that fails them is
    walked value by value, to name the bad one. Columns are copied out as lists first: iterating
    a protobuf container costs several times more than slicing it."""
    names = c.slice[:]
    n = len(names)
    dl, ul = c.dl_throughput_mbps[:], c.ul_throughput_mbps[:]
    dld, uld = c.dl_demand_mbps[:], c.ul_demand_mbps[:]
    p50, p99 = c.latency_p50_ms[:], c.latency_p99_ms[:]
    loss, devices, radio = c.packet_loss[:], c.active_devices[:], c.radio_utilisation[:]
    if not (
        len(dl) == n
        and len(ul) == n
        and len(dld) == n
        and len(uld) == n
        and len(p50) == n
        and len(p99) == n
        and len(loss) == n
        and len(devices) == n
        and len(radio) == n
    ):
        _column_lengths(c, site)
    if not n:
        return _EMPTY
    values = dl + ul + dld + uld + p50 + p99 + loss + radio
    if not (min(values) >= 0.0 and max(loss) <= 1.0 and max(radio) <= 10.0 and sum(values) < _INF):
        _column_values(c, site)
    # Tuples, not lists: the garbage collector stops tracking a tuple of numbers, so the windows
    # of a whole city add nothing to every collection's work.
    return (
        tuple(names),
        tuple(dl),
        tuple(ul),
        tuple(dld),
        tuple(uld),
        tuple(p50),
        tuple(p99),
        tuple(loss),
        tuple(devices),
        tuple(radio),
    )


def _column_lengths(c: agent_pb2.SliceKpiColumns, site: str) -> None:
    n = len(c.slice)
    for name in _COLUMNS:
        got = len(getattr(c, name))
        if got != n:
            raise StreamError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"site {site!r}: columns.{name}: {got} values for {n} slices",
            )


def _column_values(c: agent_pb2.SliceKpiColumns, site: str) -> None:
    """Raise for the first bad value; returns when there is none (a finite sum that overflowed)."""
    for i, slice_name in enumerate(c.slice):
        for name in _RATE_FIELDS:
            value = getattr(c, name)[i]
            if not (math.isfinite(value) and value >= 0.0):
                raise StreamError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"site {site!r}: columns.{name}[{i}] (slice {slice_name!r}): {value!r} must be a "
                    "finite number >= 0",
                )
        _check_fraction(site, f"columns.packet_loss[{i}] (slice {slice_name!r})", c.packet_loss[i], 1.0)
        _check_fraction(
            site, f"columns.radio_utilisation[{i}] (slice {slice_name!r})", c.radio_utilisation[i], 10.0
        )


def _row_records(rows: Iterable[agent_pb2.SliceKpi], site: str) -> _Records:
    names = []
    samples = []
    for k in rows:
        names.append(k.slice)
        samples.append(_row_values(k, site))
    columns = tuple(zip(*samples, strict=True))
    return (tuple(names), *columns)  # type: ignore[return-value]


def _merge(a: _Records, b: _Records) -> _Records:
    if not b[0]:
        return a
    return tuple((*x, *y) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _retain(records: _Records, names: frozenset[str]) -> _Records:
    """``records`` with only those of the slices in ``names``."""
    keep = [i for i, name in enumerate(records[0]) if name in names]
    return tuple(tuple(column[i] for i in keep) for column in records)  # type: ignore[return-value]


def _row_values(
    k: agent_pb2.SliceKpi, site: str
) -> tuple[float, float, float, float, float, float, float, int, float]:
    # One chained comparison per value (NaN fails them all); the slow path below only runs to
    # name the bad field.
    dl, ul = k.dl_throughput_mbps, k.ul_throughput_mbps
    dld, uld = k.dl_demand_mbps, k.ul_demand_mbps
    p50, p99, loss, radio = k.latency_p50_ms, k.latency_p99_ms, k.packet_loss, k.radio_utilisation
    if (
        0.0 <= dl < _INF
        and 0.0 <= ul < _INF
        and 0.0 <= dld < _INF
        and 0.0 <= uld < _INF
        and 0.0 <= p50 < _INF
        and 0.0 <= p99 < _INF
        and 0.0 <= loss <= 1.0
        and 0.0 <= radio <= 10.0
    ):
        return (dl, ul, dld, uld, p50, p99, loss, k.active_devices, radio)
    for name in _RATE_FIELDS:
        value = getattr(k, name)
        if not (math.isfinite(value) and value >= 0.0):
            raise StreamError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"site {site!r}: slices[{k.slice!r}].{name}: {value!r} must be a finite number >= 0",
            )
    _check_fraction(site, f"slices[{k.slice!r}].packet_loss", loss, 1.0)
    _check_fraction(site, f"slices[{k.slice!r}].radio_utilisation", radio, 10.0)
    raise AssertionError("unreachable: a value failed the fast check but none the slow one")


def _to_wire(config: site_config.SiteConfig, generation: int) -> agent_pb2.ControllerMessage:
    msg = agent_pb2.ControllerMessage()
    sc = msg.config
    sc.site_id = config.site
    sc.generation = generation
    sc.site_kind = config.kind
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
    """Site ids the client certificate vouches for: its CN and any ``spiffe://edgeslice/site/`` URI SAN."""
    auth = context.auth_context()
    out = {v.decode() for v in auth.get("x509_common_name", [])}
    for v in auth.get("x509_subject_alternative_name", []):
        text = v.decode()
        if text.startswith(SPIFFE_PREFIX):
            out.add(text[len(SPIFFE_PREFIX) :])
    return out


class AgentServicer:
    """Handles ``SiteAgent.Connect`` streams. Requests arrive as raw bytes so a message that is
    not valid protobuf gets INVALID_ARGUMENT from us rather than an opaque INTERNAL."""

    def __init__(self, registry: AgentRegistry, require_identity: bool) -> None:
        self.registry = registry
        self.require_identity = require_identity
        self.accepted_messages = 0

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
            session = await self._hello(requests, context)
        except StreamError as exc:
            await context.abort(exc.code, exc.message)
            return
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wake_up() -> None:
            loop.call_soon_threadsafe(wake.set)

        session.wake = wake_up
        failure: list[StreamError] = []
        reader = asyncio.create_task(self._read(requests, session, wake, failure))
        try:
            await self._write_loop(session, context, wake, reader)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            self.registry.close(session)
        if failure:
            await context.abort(failure[0].code, failure[0].message)
        if session.replaced:
            await context.abort(
                grpc.StatusCode.ABORTED, f"site {session.site!r}: replaced by a newer session"
            )

    async def _hello(
        self,
        requests: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, agent_pb2.ControllerMessage],
    ) -> _Session:
        registry = self.registry
        try:
            raw = await asyncio.wait_for(anext(requests), registry.settings.hello_timeout_s)
        except TimeoutError:
            raise StreamError(
                grpc.StatusCode.DEADLINE_EXCEEDED, "no Hello within the hello timeout"
            ) from None
        except StopAsyncIteration:
            raise StreamError(grpc.StatusCode.INVALID_ARGUMENT, "stream closed before Hello") from None
        msg = _parse(raw)
        if msg.WhichOneof("body") != "hello":
            raise StreamError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the first message must be hello, got {msg.WhichOneof('body') or 'an empty message'}",
            )
        hello = msg.hello
        site = hello.site_id
        if not site:
            raise StreamError(grpc.StatusCode.INVALID_ARGUMENT, "hello.site_id: must not be empty")
        if len(hello.software_version) > 200:
            raise StreamError(grpc.StatusCode.INVALID_ARGUMENT, "hello.software_version: longer than 200")
        if not registry.knows(site):
            raise StreamError(
                grpc.StatusCode.NOT_FOUND, f"hello.site_id: site {site!r} is not in the topology"
            )
        if self.require_identity:
            ids = peer_site_identities(context)
            if site not in ids:
                who = ", ".join(sorted(ids)) or "no site identity"
                raise StreamError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"hello.site_id: the client certificate is for {who}, not site {site!r}",
                )
        session = registry.open(site, hello.software_version, lambda: None)
        s = registry.settings
        welcome = agent_pb2.ControllerMessage()
        welcome.welcome.site_id = site
        welcome.welcome.lease_ms = round(s.lease_s * 1000)
        welcome.welcome.heartbeat_interval_ms = round(s.heartbeat_interval_s * 1000)
        welcome.welcome.telemetry_interval_ms = round(s.telemetry_interval_s * 1000)
        welcome.welcome.max_message_bytes = s.max_message_bytes
        welcome.welcome.controller_version = CONTROLLER_VERSION
        await context.write(welcome)
        return session

    async def _write_loop(
        self,
        session: _Session,
        context: grpc.aio.ServicerContext[bytes, agent_pb2.ControllerMessage],
        wake: asyncio.Event,
        reader: asyncio.Task[None],
    ) -> None:
        registry = self.registry
        resend = registry.settings.resend_after_s
        while not reader.done() and not session.replaced:
            wake.clear()
            msg = registry.next_config(session)
            if msg is not None:
                await context.write(msg)
            # Only an unacked config needs a timer; otherwise sleep until woken (a new config, an
            # ack, a replacement) or the stream ends. 20,000 idle sessions waking every second
            # each would keep the loop busy enough to leave new streams unaccepted.
            timeout = resend / 2 if registry.awaiting_ack(session) else None
            waiter = asyncio.ensure_future(wake.wait())
            await asyncio.wait({waiter, reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    async def _read(
        self,
        requests: AsyncIterator[bytes],
        session: _Session,
        wake: asyncio.Event,
        failure: list[StreamError],
    ) -> None:
        registry = self.registry
        try:
            async for raw in requests:
                registry.admit_message(session)
                msg = _parse(raw)
                kind = msg.WhichOneof("body")
                if kind == "heartbeat":
                    pass
                elif kind == "telemetry":
                    registry.record_telemetry(session, msg.telemetry)
                elif kind == "ack":
                    registry.ack(session, msg.ack)
                    wake.set()
                elif kind == "hello":
                    raise StreamError(grpc.StatusCode.INVALID_ARGUMENT, "hello: sent twice on one stream")
                else:
                    raise StreamError(grpc.StatusCode.INVALID_ARGUMENT, "message: empty body")
                self.accepted_messages += 1
        except StreamError as exc:
            failure.append(exc)
        finally:
            wake.set()


def _parse(raw: bytes) -> agent_pb2.AgentMessage:
    try:
        return agent_pb2.AgentMessage.FromString(raw)
    except DecodeError as exc:
        raise StreamError(
            grpc.StatusCode.INVALID_ARGUMENT, f"message is not a valid AgentMessage: {exc}"
        ) from None


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
    from telemetry import lease
    from telemetry import sla as sla_mod

    registry = AgentRegistry(service, settings, clock)
    registry.refresh(force=True)
    monitor = lease.LeaseMonitor(registry, service)
    background: list[_Stoppable] = [monitor]
    sla_monitor = None
    if sla:
        s = registry.settings
        evaluator = sla_mod.SlaEvaluator(registry, service, s.sla_window_s, s.sla_sustain_windows)
        sla_monitor = sla_mod.SlaMonitor(evaluator)
        background.append(sla_monitor)
    server = AgentServer(registry, listen, tls, dev, background, interceptors)
    server.lease_monitor, server.sla_monitor = monitor, sla_monitor
    return server.start()
