"""The controller process's configuration: what ``slicectl controller run``'s flags set, with an
embedded default for everything (a generated sample city, the state folder, the API on loopback
in dev mode), and the checks that refuse combinations that cannot work."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.api import auth
from controller.core import citygen
from controller.core.topology import Topology, load_topology
from controller.kube.manifests import KubeSettings
from slices import errors

if TYPE_CHECKING:
    # Cluster mode only: importing the kubernetes client costs a second, so embedded runs skip it.
    from controller.kube.gateway import KubeGateway

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_STATE_FILE = "edgeslice.db"
DEFAULT_SAMPLE_CELLS = 60
FOLDER_LOCK_FILE = "controller.lock"  # <state-dir>/controller.lock: the controller using the folder
MANIFESTS_DIR = "manifests"  # <state-dir>/manifests/<slice>/: what --kube would apply
INTENT_SOURCES = ("sqlite", "crd")
DEFAULT_LEASE_NAMESPACE = "edgeslice-system"
DEFAULT_LEASE_DURATION_S = 15
DEFAULT_LEASE_RETRY_S = 2.0


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


def load_city(config: RuntimeConfig) -> Topology:
    if config.topology is not None:
        return load_topology(config.topology)
    return Topology.from_file(citygen.generate_city(config.sample_cells, seed=config.sample_seed))
