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

This module is the wiring: the configuration is :mod:`controller.process.config`, the parts are
runnables of a :class:`controller.process.manager.Manager` (started in one order, stopped in the
reverse one), the endpoints file, the health port, the standby server and the leadership guards
have their own modules.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from controller.api import auth
from controller.core.topology import Topology
from controller.kube.manifest_folder import build_manifest_folder_realiser
from controller.process.config import (
    FOLDER_LOCK_FILE,
    MANIFESTS_DIR,
    RuntimeConfig,
    load_city,
)
from controller.process.endpoints import (
    refuse_port,
    write_endpoints,
)
from controller.process.health import HealthPort
from controller.process.leadership import Campaign, LeaderGate, LeaderOnlySlices
from controller.process.manager import LoopThread, Manager, Serving, Step
from controller.process.standby import Standby
from controller.runtime.agent_view import AgentDirectory
from controller.runtime.clock import Clock, RealClock
from controller.runtime.observer import ServiceObserver
from controller.runtime.plan_recorder import PlanRecorder
from controller.runtime.realisation import Realiser
from controller.runtime.service import ControllerService
from controller.runtime.store import StateLock, Store, lock_path
from slices import errors

if TYPE_CHECKING:
    # Cluster mode only: importing the kubernetes client costs a second, so embedded runs skip it.
    from controller.kube.crd_source import CrdSource
    from controller.kube.gateway import KubeGateway
    from controller.kube.leader import LeaderElector


log = logging.getLogger(__name__)

RECONCILE_BATCH = 100  # slices per locked batch of the periodic pass
SCHEDULE_LOOK_S = 1.0  # how often the loop looks whether a schedule's window is due


class Closeable(Protocol):
    def close(self) -> None: ...


@runtime_checkable
class ServesAgents(Protocol):
    """An attachment that runs the agent server: the operator API serves its agents directory."""

    def close(self) -> None: ...

    @property
    def agent_directory(self) -> AgentDirectory: ...


#: Something started beside the service once it exists (the CLI attaches the agent server and
#: the metrics endpoint this way, so the runtime does not import telemetry); closed when the
#: controller stops. One that is also :class:`controller.process.manager.Serving` has its
#: addresses announced.
Attachment = Callable[[ControllerService], Closeable]


class Attached:
    """An attachment as a leader-only runnable: started with the service, closed on stop."""

    needs_leadership = True

    def __init__(self, attach: Attachment, service: Callable[[], ControllerService | None]) -> None:
        self._attach = attach
        self._service = service
        self.name = getattr(attach, "__name__", type(attach).__name__).strip("_")
        self.started: Closeable | None = None

    def start(self) -> None:
        service = self._service()
        assert service is not None
        self.started = self._attach(service)

    @property
    def endpoints(self) -> Mapping[str, str]:
        return self.started.endpoints if isinstance(self.started, Serving) else {}

    def stop(self) -> None:
        started, self.started = self.started, None
        if started is not None:
            started.close()


class OperatorApi:
    """The operator API server as a leader-only runnable: ``build`` serves it and returns the
    :class:`controller.api.server.ApiServer` (called when it starts, when the service exists)."""

    name = "operator-api"
    needs_leadership = True

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self.server: Any = None  # controller.api.server.ApiServer while it runs

    def start(self) -> None:
        self.server = self._build()

    @property
    def endpoints(self) -> Mapping[str, str]:
        return {"operator": self.server.address} if self.server is not None else {}

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(1.0)


class StateLocks:
    """One controller per state: the folder (address file, token, manifests, plans) and the
    state file, each an exclusive lock held while this runnable runs (or until the process ends)."""

    name = "state-locks"
    needs_leadership = False

    def __init__(self, config: RuntimeConfig) -> None:
        self._config = config
        self._locks: list[StateLock] = []

    def start(self) -> None:
        state_dir = self._config.resolved_state_dir()
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise errors.StoreError(f"state folder {state_dir}: cannot create: {exc.strerror}") from exc
        try:
            self._locks.append(StateLock.acquire(state_dir / FOLDER_LOCK_FILE, f"state folder {state_dir}"))
            state_file = self._config.resolved_state_file()
            self._locks.append(StateLock.acquire(lock_path(state_file), f"state file {state_file}"))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        while self._locks:
            self._locks.pop().release()


class KubeClients:
    """The process's Kubernetes clients: a gateway per user (each its own pool), all counting
    their requests in one :class:`controller.kube.gateway.RequestMetrics`; closed when this
    runnable stops, after everything that uses them (they all start later)."""

    name = "kube-clients"
    needs_leadership = False

    def __init__(self, config: RuntimeConfig, registry: Any) -> None:
        self._config = config
        self._registry = registry  # a prometheus_client registry for the counts, or None
        self._metrics: Any = None
        self._gateways: list[KubeGateway] = []

    def metrics(self) -> Any:
        """The request counts (created on first use)."""
        if self._metrics is None:
            from controller.kube.gateway import RequestMetrics

            self._metrics = RequestMetrics()
            if self._registry is not None:
                self._metrics.register(self._registry)
        return self._metrics

    def gateway(self) -> KubeGateway:
        return self.adopt(self._config.gateway(self.metrics()))

    def adopt(self, gateway: KubeGateway) -> KubeGateway:
        """Close ``gateway`` (made elsewhere) with the others."""
        self._gateways.append(gateway)
        return gateway

    def start(self) -> None:
        pass

    def stop(self) -> None:
        while self._gateways:
            self._gateways.pop(0).close()


class KubeWatches:
    """The Kubernetes realiser's watches of what it owns (level-triggered: watch, repair, report
    the workloads' availability to the service) as a leader-only runnable."""

    name = "kube-watches"
    needs_leadership = True

    def __init__(self, realiser: Callable[[], Any], service: Callable[[], Any], active: Callable[[], bool]):
        self._realiser = realiser
        self._service = service
        self._active = active
        self._stop = threading.Event()

    def start(self) -> None:
        realiser = self._realiser()
        realiser.workloads = self._service()
        realiser.leading = self._active
        self._stop.clear()
        realiser.start(self._stop)

    def stop(self) -> None:
        self._stop.set()
        self._realiser().stop()


class Controller:
    """A running controller. :meth:`start` returns once the API (or, with leader election, the
    standby's health service) is serving.

    Every part is a runnable of a :class:`Manager`; :meth:`start` adds them in their one start
    order (:meth:`stop` stops them in the reverse one). Needing no leadership: the state's
    locks, the port checks, the Kubernetes clients, the health port, the topology, and with
    leader election the standby server (until leading) and the Lease campaign. Leader-only: the
    service (store and realisers), the cluster's operator state, the attachments (decision log,
    agent server, metrics), the Kubernetes watches, the NetworkSlice source, the reconcile loop,
    the operator API, the endpoints file and the health port's readiness.

    With leader election only the leader has a service: the standby loads the topology, serves
    health and campaigns. When it wins the Lease it stops the standby server, builds the service
    (in CRD mode from the NetworkSlice objects alone), serves the full API on the same address
    and runs the reconcile loop and the NetworkSlice source. A leader that loses the Lease stops
    realising at once (every realiser is behind :class:`LeaderGate`), stops its leader-only
    runnables and the process exits with ``lost_leadership`` set, as client-go controllers do;
    its supervisor restarts it as a standby.
    """

    def __init__(
        self,
        config: RuntimeConfig,
        clock: Clock | None = None,
        realisers: list[Realiser] | None = None,
        observer: ServiceObserver | None = None,
        attachments: Sequence[Attachment] = (),
        interceptors: Sequence[Any] = (),
        kube_metrics_registry: Any = None,
    ) -> None:
        self.config = config
        self.clock = clock or RealClock()
        self._attachments = list(attachments)
        self._interceptors = list(interceptors)  # grpc.ServerInterceptor for the operator API
        self._extra_realisers = realisers or []
        self._observer = observer
        self._manager = Manager()
        self._stop = threading.Event()
        # The Kubernetes client request counts go on this prometheus_client registry (the
        # composition root passes the metrics' one), beside the service's own metrics.
        self._kube = KubeClients(config, kube_metrics_registry)
        self._kube_realiser: Any = None  # kube_realiser.KubeRealiser with --kube
        self._campaign: Campaign | None = None
        self._topology: Topology | None = None
        self._authenticator: auth.Authenticator | None = None
        self.service: ControllerService | None = None
        self.store: Store | None = None
        self.crd_source: CrdSource | None = None
        self.address = ""
        # "operator" and what else it serves ("health", "agents", "metrics")
        self.endpoints: dict[str, str] = {}
        self.role = "starting"  # "standby", "leader" (or the only replica)
        self.leading = threading.Event()  # set once this replica serves and reconciles
        self.lost_leadership = False

    # -- wiring -----------------------------------------------------------------------------------

    def _wire(self) -> None:
        config = self.config
        add = self._manager.add
        add(StateLocks(config))
        add(Step("ports", False, self._refuse_ports))
        if config.needs_cluster():
            add(self._kube)
        health = HealthPort(config.health_listen) if config.health_listen is not None else None
        if health is not None:
            add(health)
        add(Step("topology", False, self._load))
        if config.leader_elect:
            identity = config.resolved_identity()
            add(Standby(config.listen, config.tls, config.dev, identity), until_leading=True)
            add(Step("endpoints", False, lambda: self._publish("standby")))
            self._campaign = Campaign(self._elector, self._on_started_leading, self._on_stopped_leading)
            add(self._campaign)
        # Leader-only, in the order they start.
        add(Step("service", True, self._open_service, self._close_service))
        if config.intents == "crd":
            add(Step("cluster-state", True, self._restore_cluster_state))
        attached = [Attached(attach, lambda: self.service) for attach in self._attachments]
        for runnable in attached:
            add(runnable)
        # What was loaded lives as long as the process: keep it out of future collections.
        add(Step("gc-freeze", True, gc.freeze))
        if config.kube:
            add(KubeWatches(lambda: self._kube_realiser, lambda: self.service, self._active))
        if config.intents == "crd":
            add(LoopThread("networkslices", self._run_crd_source, join_s=1.0))
        add(LoopThread("reconcile", self._reconcile_loop, join_s=30))
        add(OperatorApi(lambda: self._serve_api(attached)))
        add(Step("endpoints", True, lambda: self._publish("leader")))
        if health is not None:
            add(health.readiness())

    def start(self) -> None:
        self.config.check()
        self._wire()
        try:
            self._manager.start()
            if not self.config.leader_elect:
                self._manager.lead()
                self._serving()
        except BaseException:
            self._manager.stop()
            raise

    def stop(self) -> None:
        self._stop.set()
        # Everything in the reverse start order: the leader-only runnables first, then the Lease
        # is given up (after the final write: the next leader never overlaps with us), the state
        # unlocked last (it is ours until everything else has let go).
        self._manager.stop()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._stop.wait(timeout_s)

    def request_stop(self) -> None:
        self._stop.set()

    # -- needing no leadership --------------------------------------------------------------------

    def _refuse_ports(self) -> None:
        config = self.config
        ports = [(f"--listen {config.listen}", config.listen), *config.other_ports]
        if config.health_listen is not None:
            ports.append((f"--health-listen {config.health_listen}", config.health_listen))
        for what, where in ports:
            refuse_port(what, where)

    def _load(self) -> None:
        config = self.config
        self._topology = load_city(config)
        self._authenticator = auth.build_authenticator(
            config.token_file, config.environ, config.dev, config.resolved_state_dir()
        )

    def kube_metrics(self) -> Any:
        """The Kubernetes client request counts of this process (created on first use)."""
        return self._kube.metrics()

    def _publish(self, role: str) -> None:
        """Write what this replica serves now into the endpoints and address files."""
        served = self._manager.endpoints()
        self.address = served["operator"]
        self.endpoints = {"operator": self.address, **served}
        write_endpoints(self.config.resolved_state_dir(), self.address, self.endpoints)
        self.role = role

    # -- leader election --------------------------------------------------------------------------

    def _elector(self) -> LeaderElector:
        from controller.kube.leader import LeaderElector

        config = self.config
        return LeaderElector(
            self._kube.gateway(),
            config.resolved_identity(),
            config.resolved_lease_namespace(),
            self.clock,
            lease_duration_s=config.lease_duration_s,
            retry_period_s=config.lease_retry_s,
        )

    def is_leading(self) -> bool:
        """Whether this replica may write: it holds the Lease (or there is no election)."""
        return self._campaign is None or (self._campaign.is_leader and not self.lost_leadership)

    def _active(self) -> bool:
        return self.is_leading() and not self._stop.is_set()

    def _on_started_leading(self) -> None:
        # Not in the election thread: it must keep renewing while the service loads.
        threading.Thread(target=self._take_over, name="takeover", daemon=True).start()

    def _take_over(self) -> None:
        t0 = self.clock.monotonic()
        try:
            if self._stop.is_set() or not self._manager.lead():
                return
        except Exception:
            log.exception("taking over as leader failed; stopping")
            self.lost_leadership = True
            self.request_stop()
            return
        self._serving()
        log.info(
            "%s leads: serving and reconciling (took %.3f s)",
            self.config.resolved_identity(),
            self.clock.monotonic() - t0,
        )

    def _on_stopped_leading(self, campaign_stop: threading.Event) -> None:
        if self._stop.is_set() or campaign_stop.is_set():
            return  # our own shutdown
        log.error("lost the leader lease: stopping (a restarted process campaigns again as a standby)")
        self.lost_leadership = True
        self.request_stop()
        # Not in the election thread: stopping the leader-only runnables waits for them.
        threading.Thread(target=self._manager.step_down, name="step-down", daemon=True).start()

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
        self._kube.adopt(realiser.gateway)
        self._kube_realiser = realiser
        return realiser

    def _discard_cache(self) -> None:
        # With NetworkSlice intents the SQLite file is this replica's cache. A stale one (from an
        # earlier term) would realise slices deleted meanwhile before the first list removes
        # them; starting empty rebuilds placements and the ledger from the objects alone.
        state = self.config.resolved_state_file()
        if state.exists():
            log.info("intents from NetworkSlice objects: discarding the local cache %s", state)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{state}{suffix}").unlink(missing_ok=True)

    def _open_service(self) -> None:
        config = self.config
        topology = self._topology
        assert topology is not None
        state_dir = config.resolved_state_dir()
        if config.intents == "crd":
            self._discard_cache()
        store = self.store = Store.open(config.resolved_state_file(), init=config.init)
        try:
            realisers: list[Realiser] = [
                LeaderGate(r, self.is_leading)
                for r in (
                    PlanRecorder(state_dir / "realisation", topology),
                    self._main_realiser(state_dir, topology),
                    *self._extra_realisers,
                )
            ]
            self.service = ControllerService(
                topology,
                store,
                realisers,
                self.clock,
                self._observer,
                workloads_evidence=self._kube_realiser is not None,  # Realised needs Available
            )
        except BaseException:
            store.close()
            raise

    def _close_service(self) -> None:
        if self.store is not None:
            self.store.close()

    def _restore_cluster_state(self) -> None:
        """NetworkSlice intents: the cluster's operator state first (drains), then the source."""
        from controller.kube import gateway as kube_gateway
        from controller.kube.crd_source import ClusterMaintenance, CrdSource

        service = self.service
        assert service is not None
        gateway = self._kube.gateway()
        maintenance = ClusterMaintenance(gateway, self.config.resolved_lease_namespace())
        maintenance.restore(service)  # before any slice is placed: none lands on a drained site
        service.maintenance_hook = maintenance.record
        realiser = self._kube_realiser

        def cleanup(name: str) -> bool:
            return realiser is None or bool(realiser.remove(name).ok)

        self.crd_source = CrdSource(
            gateway,
            LeaderOnlySlices(service, self._active),
            cleanup=cleanup if realiser is None else (lambda n: self._active() and cleanup(n)),
            events=kube_gateway.EventRecorder(gateway, self.config.resolved_identity()),
            audit=lambda after: service.events(after_seq=after, limit=1000) if self._active() else [],
            evidence=realiser.reported if realiser is not None else None,
        )

    def _serve_api(self, attached: Sequence[Attached]) -> Any:
        from controller.api import server as api_server

        config = self.config
        assert self.service is not None and self._authenticator is not None
        agents = next(
            (a.started.agent_directory for a in attached if isinstance(a.started, ServesAgents)), None
        )
        return api_server.serve(
            self.service,
            self.address
            or config.listen,  # a former standby: the same address, so probes and clients need not look again
            self._authenticator,
            config.tls,
            config.dev,
            interceptors=self._interceptors,
            agents=agents,
            slice_writes_refused=(
                "intents come from NetworkSlice objects in this cluster (--intents crd): "
                "use kubectl apply/delete"
                if config.intents == "crd"
                else None
            ),
        )

    def _serving(self) -> None:
        assert self.service is not None and self._topology is not None
        self.leading.set()
        config = self.config
        log.info(
            "controller serving on %s: topology %s, state %s, intents %s, realising %s, %d slices",
            self.address,
            self._topology.name,
            config.resolved_state_file(),
            config.intents,
            "in the cluster" if config.kube else f"into {config.resolved_state_dir() / MANIFESTS_DIR}",
            len(self.service.list_slices()),
        )

    def _run_crd_source(self, stop: threading.Event) -> None:
        assert self.crd_source is not None
        self.crd_source.run(stop, self.config.watch_timeout_s, error_pause_s=1.0)

    def _reconcile_loop(self, stop: threading.Event) -> None:
        # The first pass runs at once: after a restart it re-realises what was placed.
        def halted() -> bool:
            return stop.is_set() or self._stop.is_set()

        while not halted():
            assert self.service is not None
            try:
                more, full = True, True
                while more and not halted():
                    _, more = self.service.reconcile_batch(RECONCILE_BATCH, full=full)
                    full = False
                if self.crd_source is not None and self._active():
                    # A pass may have healed, preempted or realised: show it on the objects.
                    self.crd_source.refresh_statuses()
            except errors.EdgesliceError as exc:
                log.error("reconcile pass failed: %s", exc)
            except Exception:
                log.exception("reconcile pass failed")
            self._wait_for_next_pass(stop)

    def _wait_for_next_pass(self, stop: threading.Event) -> None:
        """Until the next periodic pass, or sooner when a schedule's window begins or ends: looked
        at every second, so a booking made meanwhile starts on time too."""
        assert self.service is not None
        deadline = time.monotonic() + self.config.reconcile_interval_s
        while not (stop.is_set() or self._stop.is_set()):
            left = min(deadline - time.monotonic(), self.service.seconds_until_due())
            if left <= 0:
                return
            stop.wait(min(left + 0.005, SCHEDULE_LOOK_S))


def run(
    config: RuntimeConfig,
    announce: Callable[[str], None] = print,
    observer: ServiceObserver | None = None,
    attachments: Sequence[Attachment] = (),
    interceptors: Sequence[Any] = (),
    kube_metrics_registry: Any = None,
) -> int:
    """Run until SIGTERM or SIGINT (or, with leader election, until the lease is lost: exit 1)."""
    controller = Controller(
        config,
        observer=observer,
        attachments=attachments,
        interceptors=interceptors,
        kube_metrics_registry=kube_metrics_registry,
    )

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
