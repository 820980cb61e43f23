"""The controller process: load the topology, open the store, build the service, serve the
operator API, run the periodic reconcile pass, and stop cleanly on SIGTERM or SIGINT.

Everything has an embedded default so ``slicectl controller run`` works with no flags: a
generated sample city, the state folder holding everything (``<state-dir>/edgeslice.db``, the
dev token, the address and endpoints files, plans under ``<state-dir>/realisation`` and each
placed slice's Kubernetes manifests under ``<state-dir>/manifests/<slice>/``), the API on loopback
in dev mode. One controller per state: the folder and the state file are each locked
(``<state-dir>/controller.lock``, ``<state file>.lock``) for the life of the process.

Cluster mode is three independent choices: ``kube`` realises in the cluster instead of rendering
files; ``intents="crd"`` takes intents from NetworkSlice objects and writes their status back
(the SQLite file is then a local cache, discarded when this replica starts leading so it is
rebuilt from the objects alone); ``leader_elect`` campaigns on a Lease and does nothing but serve
health until it leads (see :class:`Controller`).
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from controller.api import auth
from controller.core import citygen
from controller.core.placement_model import Placement
from controller.core.topology import Topology, load_topology
from controller.kube.manifests import KubeSettings
from controller.runtime.agent_view import AgentDirectory
from controller.runtime.clock import Clock, RealClock
from controller.runtime.manifest_folder import build_manifest_folder_realiser
from controller.runtime.observer import ServiceObserver
from controller.runtime.plan_recorder import PlanRecorder
from controller.runtime.realisation import RealisationResult, Realiser
from controller.runtime.service import ApplyResult, ControllerService, SliceRecord
from controller.runtime.store import StateLock, Store, lock_path
from slices import errors
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent

if TYPE_CHECKING:
    # Cluster mode only: importing the kubernetes client costs a second, so embedded runs skip it.
    from controller.kube.crd_source import CrdSource
    from controller.kube.gateway import KubeGateway
    from controller.kube.leader import LeaderElector

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_STATE_FILE = "edgeslice.db"
DEFAULT_SAMPLE_CELLS = 60
RECONCILE_BATCH = 100  # slices per locked batch of the periodic pass
ADDRESS_FILE = "controller.addr"  # where a started controller writes the address it bound
ENDPOINTS_FILE = "controller.endpoints"  # "NAME ADDRESS" lines: operator, agents, metrics
FOLDER_LOCK_FILE = "controller.lock"  # <state-dir>/controller.lock: the controller using the folder
MANIFESTS_DIR = "manifests"  # <state-dir>/manifests/<slice>/: what --kube would apply
INTENT_SOURCES = ("sqlite", "crd")
DEFAULT_LEASE_NAMESPACE = "edgeslice-system"
DEFAULT_LEASE_DURATION_S = 15
DEFAULT_LEASE_RETRY_S = 2.0


class Closeable(Protocol):
    def close(self) -> None: ...


@runtime_checkable
class Serving(Protocol):
    """An attachment that serves something others connect to (named in the endpoints file)."""

    def close(self) -> None: ...

    @property
    def endpoints(self) -> Mapping[str, str]: ...


@runtime_checkable
class ServesAgents(Protocol):
    """An attachment that runs the agent server: the operator API serves its agents directory."""

    def close(self) -> None: ...

    @property
    def agent_directory(self) -> AgentDirectory: ...


#: Something started beside the service once it exists (the CLI attaches the agent server and
#: the metrics endpoint this way, so the runtime does not import telemetry); closed when the
#: controller stops. One that is also :class:`Serving` has its addresses announced.
Attachment = Callable[[ControllerService], Closeable]


def read_endpoints(state_dir: Path) -> dict[str, str]:
    """What a started controller serves, from its endpoints file (``{}`` before it serves).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / ENDPOINTS_FILE).write_text("operator 127.0.0.1:1\\nagents 127.0.0.1:2\\n")
    ...     read_endpoints(Path(d))
    {'operator': '127.0.0.1:1', 'agents': '127.0.0.1:2'}
    """
    try:
        text = (state_dir / ENDPOINTS_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    pairs = (line.split(None, 1) for line in text.splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


@dataclass
class RuntimeConfig:
    topology: str | None = None  # file path; None: a generated sample city
    sample_cells: int = DEFAULT_SAMPLE_CELLS
    sample_seed: int = 0
    state_file: Path | None = None  # the SQLite state; default <state dir>/edgeslice.db
    state_dir: Path | None = None  # token, address file, plans...; default auth.default_state_dir()
    init: bool = False  # start a new state over a 0-byte state file (never over one with data)
    #: Addresses the caller will serve beside the operator API, as (what to name, HOST:PORT),
    #: e.g. ("--metrics-port 9464", "127.0.0.1:9464"): refused in one line each when in use.
    other_ports: Sequence[tuple[str, str]] = ()
    listen: str = DEFAULT_LISTEN
    reconcile_interval_s: float = 5.0
    dev: bool = True
    token_file: Path | None = None
    tls: auth.TlsConfig | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    # Cluster mode. The connection (kubeconfig/context/in-cluster, or a bare URL in tests) serves
    # whatever needs the API server: the realiser (kube), the intents (crd), the Lease.
    kube: bool = False  # realise in the cluster; otherwise render manifests into the state folder
    kubeconfig: str | None = None
    kube_context: str | None = None
    in_cluster: bool = False
    kube_host: str | None = None  # tests: an API server URL instead of a kubeconfig
    node_label_key: str = KubeSettings.node_label_key
    intents: str = "sqlite"  # "sqlite": the operator API writes the store; "crd": NetworkSlice objects
    watch_timeout_s: int = 30  # NetworkSlice watch length before listing again
    leader_elect: bool = False
    lease_namespace: str | None = None  # default $POD_NAMESPACE or edgeslice-system
    identity: str | None = None  # default $POD_NAME or the host name
    lease_duration_s: int = DEFAULT_LEASE_DURATION_S
    lease_retry_s: float = DEFAULT_LEASE_RETRY_S
    health_listen: str | None = None  # plaintext gRPC health for kubelet probes (they speak no TLS)

    def resolved_state_dir(self) -> Path:
        return self.state_dir if self.state_dir is not None else auth.default_state_dir(self.environ)

    def resolved_state_file(self) -> Path:
        if self.state_file is not None:
            return self.state_file
        return self.resolved_state_dir() / DEFAULT_STATE_FILE

    def resolved_identity(self) -> str:
        return self.identity or self.environ.get("POD_NAME") or socket.gethostname()

    def resolved_lease_namespace(self) -> str:
        return self.lease_namespace or self.environ.get("POD_NAMESPACE") or DEFAULT_LEASE_NAMESPACE

    def needs_cluster(self) -> bool:
        return self.kube or self.intents == "crd" or self.leader_elect

    def check(self) -> None:
        """Refuse combinations that cannot work, naming the option."""
        if self.intents not in INTENT_SOURCES:
            raise errors.InvalidSpec(f"--intents: {self.intents!r} is not one of {', '.join(INTENT_SOURCES)}")
        if self.leader_elect and self.intents != "crd":
            # Each replica has its own SQLite file: a standby taking over would not know the
            # leader's intents. Only the NetworkSlice objects are shared by all replicas.
            raise errors.InvalidSpec("--leader-elect: needs --intents crd (replicas share no SQLite store)")
        if not self.needs_cluster() and (self.kubeconfig or self.kube_context or self.in_cluster):
            raise errors.InvalidSpec(
                "--kubeconfig/--context/--in-cluster: used only with --kube, --intents crd or --leader-elect"
            )
        if self.in_cluster and (self.kubeconfig or self.kube_context):
            raise errors.InvalidSpec("--in-cluster: give either it or --kubeconfig/--context, not both")
        if self.lease_duration_s < 1 or not 0 < self.lease_retry_s < self.lease_duration_s:
            raise errors.InvalidSpec(
                f"--lease-retry: {self.lease_retry_s} s must be positive and shorter than "
                f"--lease-duration {self.lease_duration_s} s"
            )

    def gateway(self, metrics: Any = None) -> KubeGateway:
        """A fresh gateway to the configured API server (one per user, each its own pool);
        ``metrics``: the process's :class:`controller.kube.gateway.RequestMetrics`."""
        from controller.kube import gateway as kube_gateway

        api = kube_gateway.api_client_for(self.kubeconfig, self.kube_context, self.in_cluster, self.kube_host)
        return kube_gateway.KubeGateway(api, metrics=metrics)


def port_problem(listen: str) -> str | None:
    """Why ``listen`` cannot be bound now (``"address already in use"``...), or ``None``.

    A plain bind without SO_REUSEPORT, as the servers bind: gRPC's default would otherwise let
    two processes share a port.
    """
    host, port = auth.split_address(listen)
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host!r}: {exc.strerror}"
    family, kind, proto, _, where = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(where)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "address already in use"
            return (exc.strerror or str(exc)).lower()
    return None


def refuse_port(what: str, listen: str) -> None:
    """Raise :class:`errors.Unavailable` ``"<what>: address already in use"`` if it is."""
    problem = port_problem(listen)
    if problem:
        raise errors.Unavailable(f"{what}: {problem}")


def load_city(config: RuntimeConfig) -> Topology:
    if config.topology is not None:
        return load_topology(config.topology)
    return Topology.from_file(citygen.generate_city(config.sample_cells, seed=config.sample_seed))


class LeaderGate:
    """A realiser that writes only while this replica leads: one that lost its Lease (but has
    not stopped yet) must not touch the cluster the new leader now owns."""

    def __init__(self, inner: Realiser, leading: Callable[[], bool]) -> None:
        self.inner = inner
        self.name = inner.name
        self._leading = leading

    def realise(self, intent: SliceIntent, placement: Placement, generation: int) -> RealisationResult:
        if not self._leading():
            return RealisationResult(False, "NotLeader", "this replica does not hold the lease")
        return self.inner.realise(intent, placement, generation)

    def remove(self, name: str) -> RealisationResult:
        if not self._leading():
            return RealisationResult(False, "NotLeader", "this replica does not hold the lease")
        return self.inner.remove(name)


class _LeaderOnlySlices:
    """The service as the NetworkSlice source sees it, refused once this replica stops leading."""

    def __init__(self, service: ControllerService, active: Callable[[], bool]) -> None:
        self._service = service
        self._active = active

    def _check(self) -> None:
        if not self._active():
            raise errors.Unavailable("not leading: NetworkSlice changes are left to the leader")

    def apply(self, documents: list[NetworkSlice], actor: str) -> list[ApplyResult]:
        self._check()
        return self._service.apply(documents, actor)

    def delete(self, name: str, actor: str) -> None:
        self._check()
        self._service.delete(name, actor)

    def get(self, name: str) -> SliceRecord:
        return self._service.get(name)

    def list_slices(self) -> list[SliceRecord]:
        return self._service.list_slices()


@dataclass
class StandbyServer:
    """What a standby serves on the operator port: the gRPC health service (overall ``""``
    SERVING: the process is alive; the operator service NOT_SERVING: send no traffic here) and
    UNAVAILABLE for every other call."""

    server: Any
    address: str

    def stop(self, grace_s: float = 0.0) -> None:
        self.server.stop(grace_s).wait()


def serve_standby(listen: str, tls: auth.TlsConfig | None, dev: bool, identity: str) -> StandbyServer:
    from concurrent import futures

    import grpc

    from controller.api import grpc_services
    from controller.api import server as api_server

    auth.check_listen(listen, tls, dev)
    host, _ = auth.split_address(listen)
    message = f"{identity} is a standby replica: it serves when it holds the leader lease"

    def refuse(_request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.UNAVAILABLE, message)

    class _Refuse(grpc.GenericRpcHandler):
        def service(
            self, handler_call_details: grpc.HandlerCallDetails
        ) -> grpc.RpcMethodHandler[bytes, bytes] | None:
            return grpc.unary_unary_rpc_method_handler(refuse)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="standby"),
        options=[("grpc.so_reuseport", 0)],
    )
    # Health and reflection before the catch-all refusal; reflection lists what a standby serves.
    grpc_services.add_health_and_reflection(server, (), not_serving=(api_server.SERVICE_NAME,))
    server.add_generic_rpc_handlers((_Refuse(),))
    port = api_server.bind(server, listen, tls)
    server.start()
    return StandbyServer(server, f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


class HealthPort:
    """Plaintext gRPC health on a port of its own, for the kubelet's probes, which cannot speak
    TLS: overall ``""`` SERVING while the process lives, the operator service SERVING only while
    this replica serves the API (a standby is live but not ready). It tells nothing else.
    """

    def __init__(self, listen: str) -> None:
        from concurrent import futures

        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from controller.api import grpc_services
        from controller.api import server as api_server

        self._pb = health_pb2
        self._servicer = grpc_services.HealthServicer()  # with List
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"),
            options=[("grpc.so_reuseport", 0)],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, self._server)
        self._servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        self.serving(False)
        host, _ = auth.split_address(listen)
        port = api_server.bind(self._server, listen, None)
        self._server.start()
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def serving(self, on: bool) -> None:
        from controller.api import server as api_server

        status = self._pb.HealthCheckResponse.SERVING if on else self._pb.HealthCheckResponse.NOT_SERVING
        self._servicer.set(api_server.SERVICE_NAME, status)

    def stop(self) -> None:
        self._servicer.enter_graceful_shutdown()
        self._server.stop(0).wait()


class Controller:
    """A running controller. :meth:`start` returns once the API (or, with leader election, the
    standby's health service) is serving.

    With leader election only the leader has a service: the standby loads the topology, serves
    health and campaigns. When it wins the Lease it stops the standby server, builds the service
    (in CRD mode from the NetworkSlice objects alone), serves the full API on the same address
    and runs the reconcile loop and the NetworkSlice source. A leader that loses the Lease stops
    realising at once (every realiser is behind :class:`LeaderGate`) and the process exits with
    ``lost_leadership`` set, as client-go controllers do; its supervisor restarts it as a standby.
    """

    def __init__(
        self,
        config: RuntimeConfig,
        clock: Clock | None = None,
        realisers: list[Realiser] | None = None,
        observer: ServiceObserver | None = None,
        attachments: Sequence[Attachment] = (),
        interceptors: Sequence[Any] = (),
    ) -> None:
        self.config = config
        self._locks: list[StateLock] = []  # the state folder's and the state file's, while running
        self._attachments = list(attachments)
        self._interceptors = list(interceptors)  # grpc.ServerInterceptor for the operator API
        self._attached: list[Closeable] = []
        self.clock = clock or RealClock()
        self._extra_realisers = realisers or []
        self._observer = observer
        self._stop = threading.Event()
        self._campaign_stop = threading.Event()
        self._loop: threading.Thread | None = None
        self._crd_thread: threading.Thread | None = None
        self._campaign: threading.Thread | None = None
        self._elector: LeaderElector | None = None
        self._standby: StandbyServer | None = None
        self._health: HealthPort | None = None
        self._gateways: list[KubeGateway] = []
        self._kube_metrics: Any = None  # kube_gateway.RequestMetrics, shared by every gateway
        self._kube_realiser: Any = None  # kube_realiser.KubeRealiser with --kube
        # The Kubernetes client request counts go on the observer's prometheus_client registry
        # (telemetry.metrics.exporter.ControllerMetrics has one), beside the service's own metrics.
        self.metrics_registry: Any = getattr(observer, "registry", None)
        self._topology: Topology | None = None
        self._authenticator: auth.Authenticator | None = None
        self._lead_lock = threading.Lock()
        self.service: ControllerService | None = None
        self.store: Store | None = None
        self.crd_source: CrdSource | None = None
        self.api: Any = None
        self.address = ""
        self.endpoints: dict[str, str] = {}  # "operator" and what attachments serve ("agents", "metrics")
        self.role = "starting"  # "standby", "leader" (or the only replica)
        self.leading = threading.Event()  # set once this replica serves and reconciles
        self.lost_leadership = False
        self.started_s = 0.0  # seconds from start() to serving (restart benchmark)
        self.topology_s = 0.0  # of which loading the topology
        self.takeover_s = 0.0  # leader election: seconds from winning the Lease to serving

    def start(self) -> None:
        t0 = self.clock.monotonic()
        config = self.config
        config.check()
        try:
            self._lock_state()
            ports = [(f"--listen {config.listen}", config.listen), *config.other_ports]
            if config.health_listen is not None:
                ports.append((f"--health-listen {config.health_listen}", config.health_listen))
            for what, where in ports:
                refuse_port(what, where)
            if config.health_listen is not None:
                self._health = HealthPort(config.health_listen)
            self._start(t0)
        except BaseException:
            if self._health is not None:
                self._health.stop()
                self._health = None
            self._unlock_state()
            raise

    def _lock_state(self) -> None:
        """One controller per state: the folder (address file, token, manifests, plans) and the
        state file, each an exclusive lock held until :meth:`stop` (or the process's end)."""
        config = self.config
        state_dir = config.resolved_state_dir()
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise errors.StoreError(f"state folder {state_dir}: cannot create: {exc.strerror}") from exc
        self._locks.append(StateLock.acquire(state_dir / FOLDER_LOCK_FILE, f"state folder {state_dir}"))
        state_file = config.resolved_state_file()
        self._locks.append(StateLock.acquire(lock_path(state_file), f"state file {state_file}"))

    def _unlock_state(self) -> None:
        while self._locks:
            self._locks.pop().release()

    def _start(self, t0: float) -> None:
        config = self.config
        state_dir = config.resolved_state_dir()
        self._topology = load_city(config)
        self.topology_s = self.clock.monotonic() - t0
        self._authenticator = auth.build_authenticator(
            config.token_file, config.environ, config.dev, state_dir
        )
        if not config.leader_elect:
            self._lead(config.listen)
        else:
            from controller.kube.leader import LeaderElector

            identity = config.resolved_identity()
            self._elector = LeaderElector(
                self._gateway(),
                identity,
                config.resolved_lease_namespace(),
                self.clock,
                lease_duration_s=config.lease_duration_s,
                retry_period_s=config.lease_retry_s,
            )
            self._standby = serve_standby(config.listen, config.tls, config.dev, identity)
            self.address = self._standby.address
            self.endpoints = {"operator": self.address}
            self.role = "standby"
            self._write_address()
            self._campaign = threading.Thread(target=self._run_campaign, name="leader-election", daemon=True)
            self._campaign.start()
        self.started_s = self.clock.monotonic() - t0

    def kube_metrics(self) -> Any:
        """The Kubernetes client request counts of this process (created on first use)."""
        if self._kube_metrics is None:
            from controller.kube.gateway import RequestMetrics

            self._kube_metrics = RequestMetrics()
            if self.metrics_registry is not None:
                self._kube_metrics.register(self.metrics_registry)
        return self._kube_metrics

    def _gateway(self) -> KubeGateway:
        gateway = self.config.gateway(self.kube_metrics())
        self._gateways.append(gateway)
        return gateway

    def _is_leading(self) -> bool:
        return self._elector is None or (self._elector.is_leader and not self.lost_leadership)

    def _active(self) -> bool:
        return self._is_leading() and not self._stop.is_set()

    # -- leader election --------------------------------------------------------------------------

    def _run_campaign(self) -> None:
        assert self._elector is not None
        self._elector.run(self._campaign_stop, self._on_started_leading, self._on_stopped_leading)

    def _on_started_leading(self) -> None:
        # Not in the election thread: it must keep renewing while the service loads.
        threading.Thread(target=self._take_over, name="takeover", daemon=True).start()

    def _take_over(self) -> None:
        t0 = self.clock.monotonic()
        try:
            with self._lead_lock:
                if self._stop.is_set():
                    return
                if self._standby is not None:
                    self._standby.stop()
                    self._standby = None
                # The same address, so probes and clients need not look again.
                self._lead(self.address)
        except Exception:
            log.exception("taking over as leader failed; stopping")
            self.lost_leadership = True
            self.request_stop()
            return
        self.takeover_s = self.clock.monotonic() - t0
        log.info(
            "%s leads: serving and reconciling (took %.3f s)",
            self.config.resolved_identity(),
            self.takeover_s,
        )

    def _on_stopped_leading(self) -> None:
        if self._stop.is_set() or self._campaign_stop.is_set():
            return  # our own shutdown
        log.error("lost the leader lease: stopping (a restarted process campaigns again as a standby)")
        self.lost_leadership = True
        self.request_stop()

    # -- leading ----------------------------------------------------------------------------------

    def _main_realiser(self, state_dir: Path, topology: Topology) -> Realiser:
        config = self.config
        if not config.kube:
            return build_manifest_folder_realiser(state_dir / MANIFESTS_DIR, topology, config.node_label_key)
        from controller.kube.realiser import build_kube_realiser

        realiser = build_kube_realiser(
            topology,
            config.kubeconfig,
            config.kube_context,
            config.in_cluster,
            config.node_label_key,
            config.kube_host,
            slice_objects=config.intents == "crd",
            metrics=self.kube_metrics(),
            identity=config.resolved_identity(),
        )
        self._gateways.append(realiser.gateway)
        self._kube_realiser = realiser
        return realiser

    def _lead_cluster_mode(self, service: ControllerService) -> None:
        """NetworkSlice intents: the cluster's operator state first (drains), then the source."""
        from controller.kube import gateway as kube_gateway
        from controller.kube.crd_source import ClusterMaintenance, CrdSource

        gateway = self._gateway()
        maintenance = ClusterMaintenance(gateway, self.config.resolved_lease_namespace())
        maintenance.restore(service)  # before any slice is placed: none lands on a drained site
        service.maintenance_hook = maintenance.record
        realiser = self._kube_realiser

        def cleanup(name: str) -> bool:
            return realiser is None or bool(realiser.remove(name).ok)

        self.crd_source = CrdSource(
            gateway,
            _LeaderOnlySlices(service, self._active),
            cleanup=cleanup if realiser is None else (lambda n: self._active() and cleanup(n)),
            events=kube_gateway.EventRecorder(gateway, self.config.resolved_identity()),
            audit=lambda after: service.events(after_seq=after, limit=1000) if self._active() else [],
            evidence=realiser.reported if realiser is not None else None,
        )

    def _discard_cache(self) -> None:
        # With NetworkSlice intents the SQLite file is this replica's cache. A stale one (from an
        # earlier term) would realise slices deleted meanwhile before the first list removes
        # them; starting empty rebuilds placements and the ledger from the objects alone.
        state = self.config.resolved_state_file()
        if state.exists():
            log.info("intents from NetworkSlice objects: discarding the local cache %s", state)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{state}{suffix}").unlink(missing_ok=True)

    def _lead(self, listen: str) -> None:
        config = self.config
        topology = self._topology
        assert topology is not None and self._authenticator is not None
        state_dir = config.resolved_state_dir()
        if config.intents == "crd":
            self._discard_cache()
        self.store = Store.open(config.resolved_state_file(), init=config.init)
        try:
            realisers: list[Realiser] = [
                LeaderGate(r, self._is_leading)
                for r in (
                    PlanRecorder(state_dir / "realisation", topology),
                    self._main_realiser(state_dir, topology),
                    *self._extra_realisers,
                )
            ]
            self.service = ControllerService(
                topology,
                self.store,
                realisers,
                self.clock,
                self._observer,
                workloads_evidence=self._kube_realiser is not None,  # Realised needs Available
            )
            for attach in self._attachments:
                self._attached.append(attach(self.service))
            from controller.api import server as api_server

            self.api = api_server.serve(
                self.service,
                listen,
                self._authenticator,
                config.tls,
                config.dev,
                interceptors=self._interceptors,
                agents=next((a.agent_directory for a in self._attached if isinstance(a, ServesAgents)), None),
                slice_writes_refused=(
                    "intents come from NetworkSlice objects in this cluster (--intents crd): "
                    "use kubectl apply/delete"
                    if config.intents == "crd"
                    else None
                ),
            )
            if config.intents == "crd":
                self._lead_cluster_mode(self.service)
        except BaseException:
            self._detach()
            self.store.close()
            raise
        self.address = self.api.address
        self.endpoints = {"operator": self.address}
        if self._health is not None:
            self.endpoints["health"] = self._health.address
        for attached in self._attached:
            if isinstance(attached, Serving):
                self.endpoints.update(attached.endpoints)
        self._write_address()
        self.role = "leader"
        if self._kube_realiser is not None:
            # Level-triggered on what it owns: watch, repair, report the workloads' availability.
            self._kube_realiser.workloads = self.service
            self._kube_realiser.leading = self._active
            self._kube_realiser.start(self._stop)
        # What was loaded lives as long as the process: keep it out of future collections.
        gc.freeze()
        if self.crd_source is not None:
            self._crd_thread = threading.Thread(
                target=self._run_crd_source, name="networkslices", daemon=True
            )
            self._crd_thread.start()
        self._loop = threading.Thread(target=self._reconcile_loop, name="reconcile", daemon=True)
        self._loop.start()
        self.leading.set()
        if self._health is not None:
            self._health.serving(True)
        log.info(
            "controller serving on %s: topology %s, state %s, intents %s, realising %s, %d slices",
            self.address,
            topology.name,
            config.resolved_state_file(),
            config.intents,
            "in the cluster" if config.kube else f"into {state_dir / MANIFESTS_DIR}",
            len(self.service.list_slices()),
        )

    def _write_address(self) -> None:
        state_dir = self.config.resolved_state_dir()
        # Atomically, so a reader never sees half an address; the endpoints first, so whoever
        # waits for the address file finds them too. The address file stays one line: clients
        # (slicectl, scripts) read it whole.
        lines = "".join(f"{name} {where}\n" for name, where in self.endpoints.items())
        for name, text in ((ENDPOINTS_FILE, lines), (ADDRESS_FILE, self.address + "\n")):
            tmp = state_dir / f".{name}.{os.getpid()}"
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, state_dir / name)

    def _run_crd_source(self) -> None:
        assert self.crd_source is not None
        self.crd_source.run(self._stop, self.config.watch_timeout_s, error_pause_s=1.0)

    def _reconcile_loop(self) -> None:
        # The first pass runs at once: after a restart it re-realises what was placed.
        while not self._stop.is_set():
            assert self.service is not None
            try:
                more, full = True, True
                while more and not self._stop.is_set():
                    _, more = self.service.reconcile_batch(RECONCILE_BATCH, full=full)
                    full = False
                if self.crd_source is not None and self._active():
                    # A pass may have healed, preempted or realised: show it on the objects.
                    self.crd_source.refresh_statuses()
            except errors.EdgesliceError as exc:
                log.error("reconcile pass failed: %s", exc)
            except Exception:
                log.exception("reconcile pass failed")
            self._stop.wait(self.config.reconcile_interval_s)

    def stop(self) -> None:
        self._stop.set()
        with self._lead_lock:  # a takeover in progress finishes first, then is undone here
            if self._standby is not None:
                self._standby.stop()
                self._standby = None
            if self.api is not None:
                self.api.stop(1.0)
            if self._loop is not None:
                self._loop.join(timeout=30)
            if self._crd_thread is not None:
                # A watch notices the stop at its next event or timeout; the guard already
                # refuses any change, so it is not waited for.
                self._crd_thread.join(timeout=1.0)
            if self._kube_realiser is not None:
                self._kube_realiser.stop()
            self._detach()
            if self.store is not None:
                self.store.close()
        if self._health is not None:
            self._health.stop()
            self._health = None
        # Released last, after the final write: the next leader never overlaps with us.
        self._campaign_stop.set()
        if self._campaign is not None:
            self._campaign.join(timeout=30)
        for gateway in self._gateways:
            gateway.close()
        self._gateways.clear()
        self._unlock_state()  # last: the state is ours until everything above has let go

    def _detach(self) -> None:
        while self._attached:
            self._attached.pop().close()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._stop.wait(timeout_s)

    def request_stop(self) -> None:
        self._stop.set()


def run(
    config: RuntimeConfig,
    announce: Callable[[str], None] = print,
    observer: ServiceObserver | None = None,
    attachments: Sequence[Attachment] = (),
    interceptors: Sequence[Any] = (),
) -> int:
    """Run until SIGTERM or SIGINT (or, with leader election, until the lease is lost: exit 1)."""
    controller = Controller(config, observer=observer, attachments=attachments, interceptors=interceptors)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        controller.request_stop()

    # Before starting: whoever sees the address file may signal at once, and a stop asked for
    # during the start is a clean stop after it, never the default handler's abrupt exit.
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        controller.start()
        state_dir = config.resolved_state_dir()
        realising = "in the cluster" if config.kube else f"manifests in {state_dir / MANIFESTS_DIR}"
        role = (
            f"standby {config.resolved_identity()} campaigning for lease "
            f"{config.resolved_lease_namespace()}/edgeslice-controller, "
            if config.leader_elect
            else ""
        )
        announce(
            f"edgeslice controller {'up' if config.leader_elect else 'serving'} on {controller.address} "
            f"({role}topology {controller._topology.name if controller._topology else '?'}, "
            f"intents {config.intents}, state {config.resolved_state_file()}, plans in {state_dir / 'realisation'}, "
            f"{realising}"
            f"{', dev mode: token in ' + str(state_dir / auth.DEV_TOKEN_FILE) if config.dev else ''})"
            + "".join(
                f"; {name} on {where}" for name, where in controller.endpoints.items() if name != "operator"
            )
        )
        try:
            while not controller.wait(1.0):
                pass
        finally:
            controller.stop()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if controller.lost_leadership:
        announce("edgeslice controller stopped: lost the leader lease")
        return 1
    announce("edgeslice controller stopped")
    return 0
