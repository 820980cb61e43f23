"""``slicectl controller run``: start the controller process (wiring only; see controller.runtime)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from controller import auth, kube_manifests, runtime
from controller.service import ControllerService


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
    default=runtime.DEFAULT_SAMPLE_CELLS,
    show_default=True,
    help="Cells of the generated sample city (without --topology).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated sample city.")
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(runtime.DEFAULT_STATE_FILE),
    show_default=True,
    help="SQLite state file.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Folder for the dev token, the address file and realisation plans (default: ${auth.STATE_DIR_ENV} or ~/.local/state/edgeslice).",
)
@click.option(
    "--listen", default=runtime.DEFAULT_LISTEN, show_default=True, help="Operator API address HOST:PORT."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus /metrics on this port.",
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
    type=click.Choice(runtime.INTENT_SOURCES),
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
    help=f"Namespace of the leader Lease (default: $POD_NAMESPACE or {runtime.DEFAULT_LEASE_NAMESPACE}).",
)
@click.option(
    "--identity", default=None, help="This replica's name in the Lease (default: $POD_NAME or the host name)."
)
@click.option(
    "--lease-duration",
    type=click.IntRange(1, 3600),
    default=runtime.DEFAULT_LEASE_DURATION_S,
    show_default=True,
    help="Seconds a standby waits for an unrenewed lease before taking over.",
)
@click.option(
    "--lease-retry",
    type=click.FloatRange(0.05, 600),
    default=runtime.DEFAULT_LEASE_RETRY_S,
    show_default=True,
    help="Seconds between renewals (leader) or attempts (standby).",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
def run(
    topology_path: str | None,
    cells: int,
    seed: int,
    state_file: Path,
    state_dir: Path | None,
    listen: str,
    metrics_port: int | None,
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
) -> None:
    """Start the controller: operator API, periodic reconcile, durable state; stops on SIGTERM/SIGINT."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("give --tls-cert and --tls-key together")
    tls = auth.TlsConfig.load(tls_cert, tls_key, client_ca) if tls_cert and tls_key else None
    config = runtime.RuntimeConfig(
        topology=topology_path,
        sample_cells=cells,
        sample_seed=seed,
        state_file=state_file,
        state_dir=state_dir,
        listen=listen,
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
    observer: Any = None
    attachments: list[runtime.Attachment] = []
    if metrics_port is not None:
        observer, attach = _metrics(metrics_port, auth.split_address(listen)[0])
        attachments.append(attach)
    code = runtime.run(config, announce=click.echo, observer=observer, attachments=attachments)
    if code:
        sys.exit(code)


def _metrics(port: int, host: str) -> tuple[Any, runtime.Attachment]:
    """Prometheus metrics: the observer the service reports to, and the /metrics endpoint."""
    from prometheus_client import CollectorRegistry

    from telemetry import metrics

    observer = metrics.ControllerMetrics(CollectorRegistry())

    def attach(service: ControllerService) -> runtime.Closeable:
        observer.watch(service)
        server = metrics.serve_metrics(observer.registry, port, host)
        click.echo(f"metrics on {server.url}")
        return server

    return observer, attach
