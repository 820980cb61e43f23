"""Many site agents in one process, over real gRPC, with KPIs that respond to load, and faults.

Every simulated site runs the reference :class:`telemetry.site.agent.SiteAgent`; the agents share a
few channels (one HTTP/2 connection multiplexes many streams) — or, with mutual TLS, each site
dials with its own certificate. :class:`LoadModel` turns what the agents were configured with into
KPIs: each slice offers ``load × guarantee`` on every cell, links carry that plus a background
share, and utilisation drives queueing delay (latency) and drops (loss). Fault injection:
``kill`` a site (its agent goes silent; traffic through it is lost), ``cut_link`` (both ends report
it down; traffic over it is lost), ``degrade`` (extra latency through a site), ``set_load``.

The city arrives as plain data (:class:`City`): the site side imports nothing of the controller,
whose caller converts its topology (``controller.cli.sim_city``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import grpc
import grpc.aio

from protos.edgeslice.agent.v1 import agent_pb2
from slices import errors
from telemetry.site import agent

T = TypeVar("T")
RADIO_BASE_MS = 0.5  # scheduling delay of an idle cell
HOP_SERVICE_MS = 0.02  # per-hop serialisation/switching delay at zero load
TAIL_FACTOR = math.log(100)  # p99 of an exponential queueing delay is ln(100) × its mean
LOSS_KNEE = 0.85  # utilisation above which queues start to drop
EDGE_SERVICE_MS = 0.3  # an edge site's processing time per request at zero load

LinkKey = tuple[str, str]


def link_key(a: str, b: str) -> LinkKey:
    """Links are undirected; their key orders the endpoints.

    >>> link_key("b", "a")
    ('a', 'b')
    """
    return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class Site:
    """What the load model needs of a site: its capacities (0 where it has none)."""

    cpu_millicores: int = 0
    radio_kbps: int = 0


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    bandwidth_kbps: int
    latency_ms: float

    @property
    def key(self) -> LinkKey:
        return link_key(self.a, self.b)


@dataclass(frozen=True)
class City:
    """The city as plain data: sites by id, links, and the fingerprint the controller gave it
    (sent in every agent's Hello; a controller running another city refuses it).

    >>> city = City("two", {"c1": Site(radio_kbps=1000), "e1": Site(cpu_millicores=8000)},
    ...             (Link("e1", "c1", 10_000, 0.5),), "f00d")
    >>> city.link("c1", "e1").key, city.link_index[("c1", "e1")]
    (('c1', 'e1'), 0)
    >>> city.site("e9")
    Traceback (most recent call last):
    slices.errors.NotFound: site 'e9' is not in topology 'two'
    """

    name: str
    sites: Mapping[str, Site]
    links: Sequence[Link]
    fingerprint: str

    @cached_property
    def link_index(self) -> dict[LinkKey, int]:
        return {ln.key: i for i, ln in enumerate(self.links)}

    def site(self, site_id: str) -> Site:
        try:
            return self.sites[site_id]
        except KeyError:
            raise errors.NotFound(f"site {site_id!r} is not in topology {self.name!r}") from None

    def link(self, a: str, b: str) -> Link:
        try:
            return self.links[self.link_index[link_key(a, b)]]
        except KeyError:
            raise errors.NotFound(f"link {a}:{b} is not in topology {self.name!r}") from None


class LoadModel:
    """KPIs from load. Thread-safe enough for one asyncio loop (all calls come from it)."""

    def __init__(self, city: City, seed: int = 0, background: float = 0.2, columnar: bool = True) -> None:
        self.city = city
        self.background = background
        self.columnar = columnar  # KPIs as SliceKpiColumns (cheaper for everyone) or SliceKpi rows
        self.surge = 1.0
        self._rng = random.Random(seed)
        self._load: dict[str, float] = {}
        self.applied: dict[str, agent_pb2.SiteConfig] = {}
        self.killed: set[str] = set()
        self.cut: set[LinkKey] = set()
        self.degraded_ms: dict[str, float] = {}
        self._link_demand: dict[LinkKey, float] = {}
        self._radio_demand: dict[str, float] = {}
        self._dirty = True
        self._computed_at = -math.inf
        self._site_links: dict[str, list[tuple[str, LinkKey]]] = {sid: [] for sid in city.sites}
        for ln in city.links:
            self._site_links[ln.a].append((ln.b, ln.key))
            self._site_links[ln.b].append((ln.a, ln.key))

    def load(self, slice_name: str) -> float:
        """The share of its guarantee a slice's users offer (drawn once per slice, 0.3–0.7)."""
        value = self._load.get(slice_name)
        if value is None:
            value = self._load[slice_name] = 0.3 + 0.4 * self._rng.random()
        return value * self.surge

    def set_load(self, factor: float, slice_name: str | None = None) -> None:
        if slice_name is None:
            self.surge = factor
        else:
            self._load[slice_name] = factor
        self._dirty = True

    def on_applied(self, config: agent_pb2.SiteConfig) -> None:
        self.applied[config.site_id] = config
        self._dirty = True

    def _recompute(self) -> None:
        # Rebuilding is O(all configs); at most every 5 s so 20,000 agents' first applies do not
        # make it quadratic.
        now = time.monotonic()
        if not self._dirty or now - self._computed_at < 5.0:
            return
        links: dict[tuple[str, str], float] = {}
        radio: dict[str, float] = {}
        for site, config in self.applied.items():
            for s in config.slices:
                load = self.load(s.name)
                for ln in s.links:
                    links[(site, ln.peer)] = links.get((site, ln.peer), 0.0) + ln.reserved_kbps * load
                if s.HasField("radio"):
                    radio[site] = radio.get(site, 0.0) + s.radio.reserved_kbps * load
        demand: dict[LinkKey, float] = {}
        for (a, b), kbps in links.items():
            key = link_key(a, b)
            demand[key] = max(demand.get(key, 0.0), kbps)
        self._link_demand, self._radio_demand = demand, radio
        self._dirty = False
        self._computed_at = now

    def link_utilisation(self, key: LinkKey) -> float:
        idx = self.city.link_index.get(key)
        if idx is None:
            return 0.0
        return self.background + self._link_demand.get(key, 0.0) / self.city.links[idx].bandwidth_kbps

    def sample(self, site: str, config: agent_pb2.SiteConfig | None) -> agent_pb2.TelemetryBatch:
        self._recompute()
        batch = agent_pb2.TelemetryBatch(observed_at_unix_ms=int(time.time() * 1000))
        info = self.city.sites.get(site)
        cpu = 0.0
        if config is not None and info is not None and info.cpu_millicores:
            used = sum(
                s.compute.cpu_millicores * self.load(s.name) for s in config.slices if s.HasField("compute")
            )
            cpu = min(1.0, used / info.cpu_millicores)
        if config is not None:
            capacity = info.radio_kbps if info is not None else 0
            radio_util = self.background + (self._radio_demand.get(site, 0.0) / capacity if capacity else 0.0)
            # Cells report what users experience; edge sites their processing (agent.proto, "Telemetry").
            rows = [
                self._slice_kpi(agent_pb2.SliceKpi(), s, radio_util)
                if s.HasField("radio")
                else self._edge_kpi(agent_pb2.SliceKpi(), s, site, cpu)
                for s in config.slices
                if s.HasField("radio") or s.HasField("compute")
            ]
            if not self.columnar:
                batch.slices.extend(rows)
            elif rows:
                columns = batch.columns
                for field in _KPI_FIELDS:
                    getattr(columns, field).extend(getattr(k, field) for k in rows)
        batch.health.cpu_utilisation = cpu
        for peer, key in self._site_links.get(site, ()):
            util = min(1.0, self.link_utilisation(key))
            batch.health.links.add(peer=peer, up=key not in self.cut, utilisation=util)
        return batch

    def _slice_kpi(
        self, out: agent_pb2.SliceKpi, s: agent_pb2.SliceConfig, radio_util: float
    ) -> agent_pb2.SliceKpi:
        load = self.load(s.name)
        dl_demand = s.qos.guaranteed_dl_kbps / 1000 * load
        ul_demand = s.qos.guaranteed_ul_kbps / 1000 * load
        route = list(s.route)
        broken = any(n in self.killed for n in route) or any(
            link_key(u, v) in self.cut for u, v in itertools.pairwise(route)
        )
        u_radio = min(radio_util, 0.98)
        base = RADIO_BASE_MS
        queue = RADIO_BASE_MS * u_radio / (1 - u_radio)
        deliver = 1.0
        worst = u_radio
        for u, v in itertools.pairwise(route):
            key = link_key(u, v)
            idx = self.city.link_index.get(key)
            if idx is not None:
                base += self.city.links[idx].latency_ms
            util = self.link_utilisation(key)
            worst = max(worst, util)
            capped = min(util, 0.98)
            base += HOP_SERVICE_MS
            queue += HOP_SERVICE_MS * capped / (1 - capped)
            deliver *= 1.0 - _loss(util)
        base += sum(self.degraded_ms.get(n, 0.0) for n in route)
        loss = 1.0 if broken else min(1.0, max(0.0, 1.0 - deliver * (1.0 - _loss(radio_util))))
        share = 0.0 if broken else (1.0 - loss) * min(1.0, 1.0 / worst if worst > 1.0 else 1.0)
        out.slice = s.name
        out.dl_demand_mbps = dl_demand
        out.ul_demand_mbps = ul_demand
        out.dl_throughput_mbps = dl_demand * share
        out.ul_throughput_mbps = ul_demand * share
        out.latency_p50_ms = base + queue * math.log(2)
        out.latency_p99_ms = base + queue * TAIL_FACTOR
        out.packet_loss = loss
        out.active_devices = round(load * 100)
        out.radio_utilisation = min(1.0, radio_util)
        return out

    def _edge_kpi(
        self, out: agent_pb2.SliceKpi, s: agent_pb2.SliceConfig, site: str, cpu: float
    ) -> agent_pb2.SliceKpi:
        """An edge site's view of a slice it serves: processing latency that queues with CPU use,
        the aggregate of its cells' demand, no radio and no devices."""
        load = self.load(s.name)
        cells = max(1, s.compute.cells)
        dl_demand = s.qos.guaranteed_dl_kbps / 1000 * load * cells
        ul_demand = s.qos.guaranteed_ul_kbps / 1000 * load * cells
        busy = min(cpu, 0.98)
        queue = EDGE_SERVICE_MS * busy / (1 - busy)
        base = EDGE_SERVICE_MS + self.degraded_ms.get(site, 0.0)
        loss = _loss(cpu)
        out.slice = s.name
        out.dl_demand_mbps, out.ul_demand_mbps = dl_demand, ul_demand
        out.dl_throughput_mbps, out.ul_throughput_mbps = dl_demand * (1 - loss), ul_demand * (1 - loss)
        out.latency_p50_ms = base + queue * math.log(2)
        out.latency_p99_ms = base + queue * TAIL_FACTOR
        out.packet_loss = loss
        return out


_KPI_FIELDS = tuple(f.name for f in agent_pb2.SliceKpiColumns.DESCRIPTOR.fields)
assert tuple(f.name for f in agent_pb2.SliceKpi.DESCRIPTOR.fields) == _KPI_FIELDS, "columns mirror SliceKpi"


def _loss(util: float) -> float:
    """Drop rate of a queue at ``util``: none below the knee, rising to 2 % at 100 %, then overflow.

    >>> _loss(0.5), round(_loss(1.0), 3), round(_loss(2.0), 2)
    (0.0, 0.02, 0.52)
    """
    if util <= LOSS_KNEE:
        return 0.0
    if util <= 1.0:
        return 0.02 * ((util - LOSS_KNEE) / (1 - LOSS_KNEE)) ** 2
    return min(1.0, 0.02 + (util - 1.0) / util)


class _ModelBackend:
    """The simulator's backend: keeps the config and tells the load model."""

    name = "simulated"

    def __init__(self, model: LoadModel) -> None:
        self.model = model
        self.refuse: agent.ApplyResult | None = None

    def apply(self, config: agent_pb2.SiteConfig) -> agent.ApplyResult:
        if self.refuse is not None:
            return self.refuse
        self.model.on_applied(config)
        return agent.ApplyResult(True)


class Simulator:
    """Simulated agents for ``sites`` talking to the controller at ``target`` (run on one loop)."""

    def __init__(
        self,
        target: str,
        city: City,
        sites: Sequence[str],
        credentials: Callable[[str], grpc.ChannelCredentials] | None = None,
        server_name: str | None = None,
        streams_per_channel: int = 1000,
        seed: int = 0,
        backoff_max_s: float = 2.0,
    ) -> None:
        self.target = target
        self.model = LoadModel(city, seed)
        self.sites = list(sites)
        self._credentials = credentials
        self._server_name = server_name
        self._per_channel = max(1, streams_per_channel)
        self._backoff_max_s = backoff_max_s
        self.agents: dict[str, agent.SiteAgent] = {}
        self.backends: dict[str, _ModelBackend] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._channels: list[grpc.aio.Channel] = []
        self._site_channel: dict[str, grpc.aio.Channel] = {}

    def _channel_for(self, index: int, site: str) -> grpc.aio.Channel:
        if self._credentials is not None:
            # The certificate is per site, so is the connection.
            ch = agent.open_channel(self.target, self._credentials(site), self._server_name)
            self._channels.append(ch)
            return ch
        if index % self._per_channel == 0:
            self._channels.append(agent.open_channel(self.target, None))
        return self._channels[-1]

    async def start(self, ramp_per_s: float | None = None) -> None:
        """Start every agent; with ``ramp_per_s``, that many per second (a whole city dialling
        in the same instant is a thundering herd no real city produces)."""
        for i, site in enumerate(self.sites):
            if ramp_per_s and i and i % max(1, int(ramp_per_s / 10)) == 0:
                await asyncio.sleep(0.1)
            ch = self._channel_for(i, site)
            self._site_channel[site] = ch
            backend = _ModelBackend(self.model)
            self.backends[site] = backend
            self.agents[site] = agent.SiteAgent(
                site,
                lambda ch=ch: ch,  # type: ignore[misc]
                backend,
                self.model,
                version="edgeslice-simulator/0.1.0",
                backoff_max_s=self._backoff_max_s,
                seed=i,
                topology_fingerprint=self.model.city.fingerprint,
            )
            self._start(site)

    def _start(self, site: str) -> None:
        self._tasks[site] = asyncio.create_task(self._guard(self.agents[site]))

    async def _guard(self, a: agent.SiteAgent) -> None:
        with contextlib.suppress(Exception):
            await a.run()

    async def wait_connected(self, timeout_s: float = 30.0) -> None:
        await asyncio.wait_for(
            asyncio.gather(
                *(a.connected.wait() for s, a in self.agents.items() if s not in self.model.killed)
            ),
            timeout_s,
        )

    # -- faults ---------------------------------------------------------------------------------

    def kill(self, site: str) -> None:
        """The site dies: its agent stops (no heartbeat, no telemetry) and traffic through it is lost."""
        self.model.killed.add(site)
        self.model._dirty = True
        a = self.agents[site]
        a.stop()

    def revive(self, site: str) -> None:
        self.model.killed.discard(site)
        old = self.agents[site]
        self.agents[site] = agent.SiteAgent(
            site,
            lambda ch=self._site_channel[site]: ch,  # type: ignore[misc]
            self.backends[site],
            self.model,
            version=old.version,
            backoff_max_s=self._backoff_max_s,
            topology_fingerprint=old.topology_fingerprint,
        )
        self._start(site)

    def cut_link(self, a: str, b: str) -> None:
        self.model.city.link(a, b)  # NotFound for a link that does not exist
        self.model.cut.add(link_key(a, b))

    def restore_link(self, a: str, b: str) -> None:
        self.model.cut.discard(link_key(a, b))

    def degrade(self, site: str, extra_ms: float) -> None:
        """Add ``extra_ms`` of latency to every path through ``site`` (0 to undo)."""
        self.model.city.site(site)
        if extra_ms > 0:
            self.model.degraded_ms[site] = extra_ms
        else:
            self.model.degraded_ms.pop(site, None)

    async def stop(self) -> None:
        for a in self.agents.values():
            a.stop()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=5)
        for ch in self._channels:
            await ch.close()

    def messages_sent(self) -> int:
        return sum(a.stats.messages_sent for a in self.agents.values())


class SimulatorThread:
    """A :class:`Simulator` on its own event loop in a background thread, driven from sync code."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="simulator", daemon=True)

    def start(
        self, wait_connected_s: float | None = 30.0, ramp_per_s: float | None = None
    ) -> SimulatorThread:
        self._thread.start()
        self.call(self.simulator.start(ramp_per_s), timeout_s=3600)
        if wait_connected_s is not None:
            self.call(self.simulator.wait_connected(wait_connected_s), wait_connected_s + 5)
        return self

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def do(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the simulator's loop (faults touch agents owned by that loop)."""

        async def run() -> T:
            return fn()

        return self.call(run())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self.simulator.stop(), 15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
