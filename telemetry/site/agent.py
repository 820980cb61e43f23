"""The reference site agent: identify, keep the lease, apply config, report KPIs, reconnect.

The agent is an asyncio object, so one process can run one (``slicectl agent run``) or thousands
sharing a few channels (:mod:`telemetry.site.simulator`). What it configures and what it measures are
pluggable: a :class:`Backend` applies a ``SiteConfig`` (the default :class:`RecordingBackend`
writes what it would configure to a file per site), a :class:`KpiSource` produces each
``TelemetryBatch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
import grpc.aio
from google.protobuf import json_format

from protos.edgeslice.agent.v1 import agent_pb2
from slices import errors, files

log = logging.getLogger(__name__)
AGENT_VERSION = "edgeslice-agent/0.1.0"
METHOD = "/edgeslice.agent.v1.SiteAgent/Connect"
# A refusal no retry can fix (agent.proto, "Stream ends"): the site is unknown, the certificate
# is for another site, or the agent was built for another city. The reference agent stops.
# Writing to a call that has already ended (the controller closed the stream meanwhile) raises
# these rather than AioRpcError; the call's status then says why it ended.
_WRITE_AFTER_END = (asyncio.InvalidStateError, grpc.aio.UsageError)
_STREAM_ENDED = (grpc.aio.AioRpcError, *_WRITE_AFTER_END)

FATAL_CODES = (
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.FAILED_PRECONDITION,
)


@dataclass(frozen=True)
class ApplyResult:
    ok: bool
    reason: str = ""
    message: str = ""


class Backend(Protocol):
    name: str

    def apply(self, config: agent_pb2.SiteConfig) -> ApplyResult:
        """Make the site match ``config`` (the whole desired config; idempotent)."""
        ...


class KpiSource(Protocol):
    def sample(self, site: str, config: agent_pb2.SiteConfig | None) -> agent_pb2.TelemetryBatch: ...


class MemoryBackend:
    """Keeps the applied config in memory (the simulator's backend; tests can make it refuse)."""

    name = "memory"

    def __init__(self) -> None:
        self.applied: agent_pb2.SiteConfig | None = None
        self.applies = 0
        self.refuse: ApplyResult | None = None

    def apply(self, config: agent_pb2.SiteConfig) -> ApplyResult:
        if self.refuse is not None:
            return self.refuse
        self.applied = config
        self.applies += 1
        return ApplyResult(True)


class RecordingBackend:
    """Records what it would configure: ``<dir>/<site>.json`` (the latest, replaced atomically)
    and one line per applied generation in ``<dir>/<site>.log``."""

    name = "recorder"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.applied: agent_pb2.SiteConfig | None = None

    def apply(self, config: agent_pb2.SiteConfig) -> ApplyResult:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            document = json_format.MessageToDict(config, preserving_proto_field_name=True)
            text = json.dumps(document, indent=1, sort_keys=True)
            files.write_text_atomic(self.directory / f"{config.site_id}.json", text)
            with open(self.directory / f"{config.site_id}.log", "a", encoding="utf-8") as fh:
                names = ",".join(s.name for s in config.slices) or "-"
                fh.write(f"{time.time():.3f} generation={config.generation} slices={names}\n")
        except OSError as exc:
            return ApplyResult(
                False, "BackendUnavailable", f"cannot record to {self.directory}: {exc.strerror}"
            )
        self.applied = config
        return ApplyResult(True)


class IdleKpiSource:
    """Reports every slice configured at a cell or an edge site idle (no demand, nominal latency;
    agent.proto, "Telemetry") and every link up."""

    def sample(self, site: str, config: agent_pb2.SiteConfig | None) -> agent_pb2.TelemetryBatch:
        batch = agent_pb2.TelemetryBatch(observed_at_unix_ms=int(time.time() * 1000))
        peers: set[str] = set()
        if config is not None:
            for s in config.slices:
                if s.HasField("radio") or s.HasField("compute"):
                    batch.slices.add(slice=s.name, latency_p50_ms=0.0, latency_p99_ms=0.0, packet_loss=0.0)
                peers.update(ln.peer for ln in s.links)
        for peer in sorted(peers):
            batch.health.links.add(peer=peer, up=True)
        return batch


@dataclass
class AgentStats:
    attempts: int = 0  # streams opened (a refused Hello counts)
    connects: int = 0  # streams the controller welcomed
    configs_applied: int = 0
    messages_sent: int = 0
    last_error: str = ""
    last_code: grpc.StatusCode | None = None
    rejections: int = 0  # in-band Rejections received
    last_rejection: str = ""


class SiteAgent:
    """One site's agent. :meth:`run` keeps a session open until :meth:`stop` (or a fatal refusal)."""

    def __init__(
        self,
        site: str,
        channel: Callable[[], grpc.aio.Channel],
        backend: Backend,
        kpis: KpiSource,
        version: str = AGENT_VERSION,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        seed: int | None = None,
        topology_fingerprint: str = "",
    ) -> None:
        self.site = site
        self.instance_id = uuid.uuid4().hex  # one per agent start (agent.proto, "One session per site")
        self.topology_fingerprint = topology_fingerprint
        self.applied_epoch = ""  # the controller epoch applied_generation belongs to
        self._channel = channel
        self.backend = backend
        self.kpis = kpis
        self.version = version
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stats = AgentStats()
        self.applied: agent_pb2.SiteConfig | None = None
        self.applied_generation = 0
        self.welcome: agent_pb2.Welcome | None = None
        self.connected = asyncio.Event()
        self.paused = False  # simulator fault: a frozen agent sends nothing (no heartbeat, telemetry or ack)
        self._stop = asyncio.Event()
        self._call: grpc.aio.StreamStreamCall[agent_pb2.AgentMessage, agent_pb2.ControllerMessage] | None = (
            None
        )
        self._rng = random.Random(seed if seed is not None else hash(site))
        self.applied_event = asyncio.Event()
        self._last_sent = 0.0
        self._dropped = False

    def stop(self) -> None:
        self._stop.set()
        if self._call is not None:
            self._call.cancel()

    def drop(self) -> None:
        """Cut the current stream (the agent reconnects after its backoff)."""
        if self._call is not None:
            self._dropped = True
            self._call.cancel()

    async def run(self) -> None:
        delay = self.backoff_initial_s
        while not self._stop.is_set():
            try:
                await self._session()
                delay = self.backoff_initial_s
            except grpc.aio.AioRpcError as exc:
                self.stats.last_code = exc.code()
                self.stats.last_error = f"{exc.code().name}: {exc.details()}"
                if exc.code() in FATAL_CODES:
                    raise errors.Unavailable(
                        f"controller refused site {self.site!r}: {self.stats.last_error}"
                    ) from exc
                if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                    # Another instance holds the site: its lease may run out; never flap it.
                    lease_s = (self.welcome.lease_ms / 1000) if self.welcome is not None else 3.0
                    delay = max(delay, lease_s)
                if self.welcome is not None and exc.code() != grpc.StatusCode.UNAVAILABLE:
                    log.info("site %s: stream ended: %s", self.site, self.stats.last_error)
            except _WRITE_AFTER_END as exc:  # ended while the Hello was being written
                self.stats.last_error = f"stream ended while writing: {exc!r}"
            except asyncio.CancelledError:
                # Cancelling the call (stop or drop) surfaces here as CancelledError; only a
                # cancellation of the task itself propagates.
                current = asyncio.current_task()
                if self._stop.is_set() or (
                    self._dropped and current is not None and not current.cancelling()
                ):
                    self._dropped = False
                    if self._stop.is_set():
                        break
                else:
                    raise
            finally:
                self.connected.clear()
                self._call = None
            if self._stop.is_set():
                break
            # Exponential backoff with jitter, so a controller restart is not met by every agent at once.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay * (0.5 + self._rng.random()))
            delay = min(self.backoff_max_s, delay * 2)

    async def _session(self) -> None:
        self.stats.attempts += 1
        channel = self._channel()
        call: grpc.aio.StreamStreamCall[agent_pb2.AgentMessage, agent_pb2.ControllerMessage] = (
            channel.stream_stream(  # type: ignore[assignment]
                METHOD,
                request_serializer=agent_pb2.AgentMessage.SerializeToString,
                response_deserializer=agent_pb2.ControllerMessage.FromString,
            )()
        )
        self._call = call
        lock = asyncio.Lock()

        async def send(msg: agent_pb2.AgentMessage) -> None:
            async with lock:
                await call.write(msg)
                self.stats.messages_sent += 1
                self._last_sent = time.monotonic()

        hello = agent_pb2.AgentMessage()
        hello.hello.site_id = self.site
        hello.hello.software_version = self.version
        hello.hello.applied_generation = self.applied_generation
        hello.hello.backend = self.backend.name
        hello.hello.instance_id = self.instance_id
        hello.hello.controller_epoch = self.applied_epoch
        hello.hello.topology_fingerprint = self.topology_fingerprint
        await send(hello)
        first = await call.read()
        if first is grpc.aio.EOF:
            raise grpc.aio.AioRpcError(
                await call.code(), grpc.aio.Metadata(), grpc.aio.Metadata(), await call.details()
            )
        assert isinstance(first, agent_pb2.ControllerMessage)
        self.welcome = first.welcome
        self.stats.connects += 1
        self.connected.set()
        tasks = [
            asyncio.create_task(self._beat(send)),
            asyncio.create_task(self._report(send)),
        ]
        try:
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    break
                assert isinstance(msg, agent_pb2.ControllerMessage)
                body = msg.WhichOneof("body")
                if body == "config" and not self.paused:
                    await send(self._apply(msg.config))
                elif body == "rejection":
                    r = msg.rejection
                    self.stats.rejections += 1
                    self.stats.last_rejection = f"{r.reason} {r.field}: {r.message}"
                    log.info(
                        "site %s: controller rejected %s: %s",
                        self.site,
                        r.message_kind,
                        self.stats.last_rejection,
                    )
        except _WRITE_AFTER_END:
            pass  # the stream ended while we answered: its status, read below, says why
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, *_STREAM_ENDED):
                    await t
        code = await call.code()
        if code != grpc.StatusCode.OK:
            raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), await call.details())

    def _apply(self, config: agent_pb2.SiteConfig) -> agent_pb2.AgentMessage:
        result = self.backend.apply(config)
        out = agent_pb2.AgentMessage()
        out.ack.generation = config.generation
        out.ack.ok = result.ok
        if result.ok:
            self.applied = config
            self.applied_generation = config.generation
            self.applied_epoch = self.welcome.epoch if self.welcome is not None else ""
            self.stats.configs_applied += 1
            self.applied_event.set()
        else:
            out.ack.reason = result.reason
            out.ack.message = result.message
        return out

    async def _beat(self, send: Callable[[agent_pb2.AgentMessage], object]) -> None:
        assert self.welcome is not None
        interval = max(0.01, self.welcome.heartbeat_interval_ms / 1000)
        while True:
            await asyncio.sleep(interval)
            # Any message renews the lease: a heartbeat right after telemetry would only add load.
            if self.paused or time.monotonic() - self._last_sent < interval:
                continue
            msg = agent_pb2.AgentMessage()
            msg.heartbeat.applied_generation = self.applied_generation
            await send(msg)  # type: ignore[misc]

    async def _report(self, send: Callable[[agent_pb2.AgentMessage], object]) -> None:
        assert self.welcome is not None
        interval = max(0.01, self.welcome.telemetry_interval_ms / 1000)
        # Spread the first report over one interval, so many agents do not report in lockstep.
        await asyncio.sleep(interval * self._rng.random())
        while True:
            if not self.paused:
                msg = agent_pb2.AgentMessage(telemetry=self.kpis.sample(self.site, self.applied))
                await send(msg)  # type: ignore[misc]
            await asyncio.sleep(interval)


def channel_credentials(cert: str, key: str, ca: str) -> grpc.ChannelCredentials:
    def read(path: str) -> bytes:
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise errors.InvalidSpec(f"{path}: cannot read: {exc.strerror}") from exc

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
    )


def open_channel(
    target: str, credentials: grpc.ChannelCredentials | None, server_name: str | None = None
) -> grpc.aio.Channel:
    options: list[tuple[str, int | str]] = [("grpc.keepalive_time_ms", 30_000)]
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.aio.secure_channel(target, credentials, options=options)
