"""``slicectl controller run``: start the controller process (wiring only; see controller.process.wiring)."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import click

from controller.api import auth
from controller.booking.settings import BookingSettings
from controller.cli import companions
from controller.cli.booking_options import booking_options
from controller.cli.state_cmd import state_options
from controller.kube import manifests as kube_manifests
from controller.process import config as runtime_config
from controller.process import wiring as runtime
from controller.runtime import decision_log
from slices import addresses, errors


@click.group()
def controller() -> None:
    """Run the edgeslice controller."""


@controller.command()
@click.option(
    "--topology",
    "topology_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="City topology file (YAML/JSON). Default: a generated sample city.",
)
@click.option(
    "--cells",
    type=click.IntRange(1, 100_000),
    default=runtime_config.DEFAULT_SAMPLE_CELLS,
    show_default=True,
    help="Cells of the generated sample city (without --topology).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated sample city.")
@state_options
@click.option(
    "--init",
    is_flag=True,
    help="Start a new, empty state over a 0-byte state file (refused over one that holds data; a missing file needs no --init).",
)
@click.option(
    "--listen",
    default=runtime_config.DEFAULT_LISTEN,
    show_default=True,
    help="Operator API address HOST:PORT.",
)
@click.option(
    "--health-listen",
    default=None,
    help="Also serve plaintext gRPC health on HOST:PORT (kubelet probes cannot speak TLS).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus /metrics on this port.",
)
@click.option(
    "--agents-listen",
    default=None,
    help="Agent-facing gRPC address HOST:PORT (default: 127.0.0.1:50052; port 0 when --listen uses port 0).",
)
@click.option(
    "--no-agents", is_flag=True, help="Do not serve site agents (no leases, config push or SLA checks)."
)
@click.option(
    "--agents-tls-cert",
    type=click.Path(dir_okay=False),
    default=None,
    help="Agent server certificate chain (PEM); with --agents-tls-key and --agents-client-ca: mutual TLS.",
)
@click.option(
    "--agents-tls-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="Agent server key (PEM).",
)
@click.option(
    "--agents-client-ca",
    type=click.Path(dir_okay=False),
    default=None,
    help="CA that signs the site agents' certificates (PEM).",
)
@click.option(
    "--agent-lease",
    "--lease",
    "agent_lease",
    type=click.FloatRange(0.1, 3600),
    default=3.0,
    show_default=True,
    help="Seconds without a message from a site's agent before the site is marked down and its slices healed.",
)
@click.option(
    "--agent-reconnect-grace",
    type=click.FloatRange(0, 86400),
    default=120.0,
    show_default=True,
    help="After a restart, seconds a site whose agent had connected before may take to come back "
    "before it is marked down (a whole city reconnecting takes about a minute).",
)
@click.option(
    "--agent-policy",
    type=click.Choice(["all", "edge", "none"]),
    default="all",
    show_default=True,
    help="Which sites' agents must ack a slice's config before it is Realised: all (every site its "
    "config goes to), edge (edge sites only: cells and aggregation have no agent), none (no agent "
    "confirms anything; Realised says so).",
)
@click.option(
    "--agent-heartbeat",
    type=click.FloatRange(0.05, 600),
    default=1.0,
    show_default=True,
    help="Seconds between agent heartbeats (told to agents; shorter than --agent-lease).",
)
@click.option(
    "--sla-window",
    type=click.FloatRange(0.1, 3600),
    default=10.0,
    show_default=True,
    help="Seconds of agent KPIs judged together against each slice's SLA.",
)
@click.option(
    "--reconcile-interval",
    type=click.FloatRange(0.05, 3600),
    default=5.0,
    show_default=True,
    help="Seconds between periodic reconcile passes.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="API tokens (name: token lines).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TLS certificate chain (PEM).",
)
@click.option(
    "--tls-key", type=click.Path(dir_okay=False, path_type=Path), default=None, help="TLS private key (PEM)."
)
@click.option(
    "--client-ca",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CA of client certificates (mTLS).",
)
@click.option(
    "--kube",
    is_flag=True,
    help="Realise slices in the Kubernetes cluster (default: render manifests into <state-dir>/manifests).",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).",
)
@click.option(
    "--context", "kube_context", default=None, help="Kubeconfig context (default: the current one)."
)
@click.option("--in-cluster", is_flag=True, help="Use the pod's service account instead of a kubeconfig.")
@click.option(
    "--node-label-key",
    default=kube_manifests.KubeSettings.node_label_key,
    show_default=True,
    help="Node label whose value is an edge site's nodeLabel (workloads are pinned by it).",
)
@click.option(
    "--intents",
    type=click.Choice(runtime_config.INTENT_SOURCES),
    default="sqlite",
    show_default=True,
    help="Where intents live: the SQLite store (operator API) or NetworkSlice objects in the cluster.",
)
@click.option(
    "--leader-elect",
    is_flag=True,
    help="Run as one of several replicas: only the holder of a Lease serves and reconciles (needs --intents crd).",
)
@click.option(
    "--lease-namespace",
    default=None,
    help=f"Namespace of the leader Lease (default: $POD_NAMESPACE or {runtime_config.DEFAULT_LEASE_NAMESPACE}).",
)
@click.option(
    "--identity", default=None, help="This replica's name in the Lease (default: $POD_NAME or the host name)."
)
@click.option(
    "--lease-duration",
    type=click.IntRange(1, 3600),
    default=runtime_config.DEFAULT_LEASE_DURATION_S,
    show_default=True,
    help="Seconds a standby waits for an unrenewed lease before taking over.",
)
@click.option(
    "--lease-retry",
    type=click.FloatRange(0.05, 600),
    default=runtime_config.DEFAULT_LEASE_RETRY_S,
    show_default=True,
    help="Seconds between renewals (leader) or attempts (standby).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Least severe log lines written (to stderr); every decision is logged at info.",
)
@click.option(
    "--log-format",
    type=click.Choice(decision_log.FORMATS),
    default="text",
    show_default=True,
    help="Log lines as text, or as JSON Lines (time, level, logger, message and a decision's fields).",
)
@booking_options
def run(
    topology_path: str | None,
    cells: int,
    seed: int,
    state_file: Path | None,
    state_dir: Path | None,
    init: bool,
    listen: str,
    health_listen: str | None,
    metrics_port: int | None,
    agents_listen: str | None,
    no_agents: bool,
    agents_tls_cert: str | None,
    agents_tls_key: str | None,
    agents_client_ca: str | None,
    agent_lease: float,
    agent_reconnect_grace: float,
    agent_policy: str,
    agent_heartbeat: float,
    sla_window: float,
    reconcile_interval: float,
    token_file: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    client_ca: Path | None,
    kube: bool,
    kubeconfig: str | None,
    kube_context: str | None,
    in_cluster: bool,
    node_label_key: str,
    intents: str,
    leader_elect: bool,
    lease_namespace: str | None,
    identity: str | None,
    lease_duration: int,
    lease_retry: float,
    log_level: str,
    log_format: str,
    booking: BookingSettings | None,
) -> None:
    """Start the controller: operator API, periodic reconcile, durable state; stops on SIGTERM/SIGINT."""
    decision_log.configure(log_level, log_format)
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("give --tls-cert and --tls-key together")
    tls = auth.TlsConfig.load(tls_cert, tls_key, client_ca) if tls_cert and tls_key else None
    config = runtime_config.RuntimeConfig(
        topology=topology_path,
        sample_cells=cells,
        sample_seed=seed,
        state_file=state_file,
        state_dir=state_dir,
        init=init,
        listen=listen,
        health_listen=health_listen,
        reconcile_interval_s=reconcile_interval,
        dev=tls is None,
        token_file=token_file,
        tls=tls,
        kube=kube,
        kubeconfig=kubeconfig,
        kube_context=kube_context,
        in_cluster=in_cluster,
        node_label_key=node_label_key,
        intents=intents,
        leader_elect=leader_elect,
        lease_namespace=lease_namespace,
        identity=identity,
        lease_duration_s=lease_duration,
        lease_retry_s=lease_retry,
    )
    config.check()  # a bad combination is one line before anything starts
    agents = None
    if not no_agents:
        agents = _agents_options(
            agents_listen or companions.default_agents_listen(listen),
            (agents_tls_cert, agents_tls_key, agents_client_ca),
            config.dev,
            agent_lease,
            agent_heartbeat,
            sla_window,
            agent_reconnect_grace,
            agent_policy,
        )
    elif agents_listen or agents_tls_cert or agents_tls_key or agents_client_ca:
        raise errors.InvalidSpec("--no-agents: do not combine with --agents-listen or --agents-tls-*")
    if booking is not None:
        if config.intents == "crd":
            # Bookings are NetworkSlices of the SQLite state; the CRD source would remove them.
            raise errors.InvalidSpec(
                "--booking-listen: needs --intents sqlite (bookings live in the SQLite state)"
            )
        booking = dataclasses.replace(booking, dev=config.dev)  # plain HTTP only as the operator API
        booking.check()
    host = addresses.split_address(listen)[0]
    parts = companions.Companions(agents, metrics_port, host, booking=booking)
    # Refused in one line each, after the state's lock (a second controller is named as such).
    config.other_ports = [
        *([(f"--agents-listen {agents.listen}", agents.listen)] if agents is not None else []),
        *([(f"--metrics-port {metrics_port}", f"{host}:{metrics_port}")] if metrics_port else []),
        *([(f"--booking-listen {booking.listen}", booking.listen)] if booking is not None else []),
    ]
    code = runtime.run(
        config,
        announce=click.echo,
        observer=parts.observer,
        attachments=[decision_log.DecisionLog, *parts.attachments()],
        interceptors=parts.interceptors(),
        kube_metrics_registry=parts.metrics.registry if parts.metrics is not None else None,
    )
    if code:
        sys.exit(code)


def _agents_options(
    listen: str,
    tls_files: tuple[str | None, str | None, str | None],
    dev: bool,
    lease_s: float,
    heartbeat_s: float,
    sla_window_s: float,
    reconnect_grace_s: float,
    agent_policy: str = "all",
) -> companions.AgentsOptions:
    from telemetry import agentlink as agent_service

    given = [f for f in tls_files if f]
    if given and len(given) != 3:
        raise errors.InvalidSpec("give --agents-tls-cert, --agents-tls-key and --agents-client-ca together")
    cert, key, ca = tls_files
    for flag, path in zip(
        ("--agents-tls-cert", "--agents-tls-key", "--agents-client-ca"), tls_files, strict=True
    ):
        if path and not os.access(path, os.R_OK):
            raise errors.InvalidSpec(f"{flag} {path}: cannot read (missing or not readable)")
    tls = agent_service.TlsFiles(cert, key, ca) if cert and key and ca else None
    settings = agent_service.AgentSettings(
        lease_s=lease_s,
        heartbeat_interval_s=heartbeat_s,
        telemetry_interval_s=heartbeat_s,
        resend_after_s=max(0.5, min(2.0, lease_s / 2)),
        sla_window_s=sla_window_s,
        reconnect_grace_s=reconnect_grace_s,
        agent_policy=agent_policy,
    )
    options = companions.AgentsOptions(listen, tls, dev, settings)
    options.check()
    return options
