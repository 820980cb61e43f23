"""``slicectl controller run``: start the controller process (wiring only; see controller.runtime)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from controller import auth, runtime
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
    )
    observer: Any = None
    attachments: list[runtime.Attachment] = []
    if metrics_port is not None:
        observer, attach = _metrics(metrics_port, auth.split_address(listen)[0])
        attachments.append(attach)
    runtime.run(config, announce=click.echo, observer=observer, attachments=attachments)


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
