"""``slicectl agent``: the agents as the controller sees them (``list``, ``get``), run a site
agent, simulate many, create dev certificates. Wiring only."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import click
import grpc

from controller.cli import agent_views, selection
from controller.cli.connect import Connection, connection_options
from controller.core import citygen
from controller.core.topology import Topology, load_topology, parse_link_key
from controller.core.topology_file import SiteKind
from slices import errors


def _city(topology: str | None, cells: int, seed: int) -> Topology:
    if topology is not None:
        return load_topology(topology)
    return Topology.from_file(citygen.generate_city(cells, seed=seed))


city_options = [
    click.option("--topology", "topology_path", type=click.Path(dir_okay=False), help="City topology file."),
    click.option(
        "--cells",
        type=click.IntRange(1, 1_000_000),
        default=60,
        show_default=True,
        help="Without --topology: the generated sample city's cells (as the controller uses).",
    ),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated city."),
]


def _with_city(fn: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(city_options):
        fn = option(fn)
    return fn


def _tls_files(
    cert: str | None, key: str | None, ca: str | None, insecure: bool
) -> tuple[str, str, str] | None:
    given = [v for v in (cert, key, ca) if v]
    if insecure:
        if given:
            raise errors.InvalidSpec("--insecure: do not combine with --tls-cert/--tls-key/--tls-ca")
        return None
    if len(given) != 3:
        raise errors.InvalidSpec(
            "--tls-cert, --tls-key and --tls-ca are all needed for mutual TLS (or --insecure for dev mode)"
        )
    assert cert and key and ca
    return cert, key, ca


def _site_file(flag: str, path: str | None, site: str) -> str | None:
    """``path`` with ``{site}`` replaced; it must exist (one line naming the flag otherwise)."""
    if path is None:
        return None
    resolved = path.replace("{site}", site)
    if not Path(resolved).is_file():
        raise errors.InvalidSpec(f"{flag}: {resolved}: no such file")
    return resolved


def site_from_node(node: str, label_key: str, kubeconfig: str | None, topology_path: str | None) -> str:
    """The site of Kubernetes node ``node``: its ``label_key`` label, mapped through the city's
    edge-site nodeLabels when ``topology_path`` is given."""
    from controller.kube import gateway as kube_gateway

    try:
        api = kube_gateway.api_client_for(kubeconfig, in_cluster=kubeconfig is None)
    except errors.InvalidSpec as exc:
        raise errors.InvalidSpec(f"--site-from-node: {exc}".replace(": --kube:", ":")) from exc
    gateway = kube_gateway.KubeGateway(api, attempts=3)
    try:
        found = gateway.get("Node", node)
    except kube_gateway.KubeApiError as exc:
        raise errors.InvalidSpec(f"--site-from-node: cannot read node {node!r}: {exc}") from exc
    finally:
        gateway.close()
    if found is None:
        raise errors.InvalidSpec(f"--site-from-node: node {node!r} does not exist")
    value = ((found.get("metadata") or {}).get("labels") or {}).get(label_key)
    if not value:
        raise errors.InvalidSpec(f"--site-from-node: node {node!r} has no label {label_key}")
    if topology_path is None:
        return str(value)
    city = load_topology(topology_path)
    for site in city.sites.values():
        if site.kind == SiteKind.EDGE and site.node_label == value:
            return site.id
    raise errors.InvalidSpec(
        f"--site-from-node: node {node!r} has {label_key}={value}, the nodeLabel of no edge site in {topology_path}"
    )


@click.group()
def agent() -> None:
    """Site agents: their status on a running controller, the reference agent, a many-site
    simulator, dev certificates."""


AGENT_STATES = ("Connected", "Disconnected", "Never")  # controller.runtime.agent_view.SessionState


@agent.command("list")
@click.option("--state", type=click.Choice(AGENT_STATES), help="Only agents in this session state.")
@selection.get_output_option
@connection_options
def list_cmd(state: str | None, fmt: selection.Format, conn: Connection) -> None:
    """Every site's agent: session state, lease, version, generations, last refusal, rate.

    Connected means the agent's lease is valid (as in the metrics and alerts).
    """
    with conn.client() as client:
        found = client.agents(state=state)
    agent_views.emit_agents(found, fmt, "no agents" + (f" in state {state}" if state else ""))


@agent.command("get")
@click.argument("site")
@selection.get_output_option
@connection_options
def get_cmd(site: str, fmt: selection.Format, conn: Connection) -> None:
    """One site's agent in full, with the reason, message and time of its last refusal."""
    with conn.client() as client:
        found = client.agent(site.removeprefix("agent/"))
    agent_views.emit_agent(found, fmt)


@agent.command("run")
@click.option("--site", help="The site this agent runs at (its topology id).")
@click.option(
    "--site-from-node",
    "node_name",
    metavar="NODE",
    help="Instead of --site: read node NODE's --site-label-key label through the Kubernetes API "
    "(in a pod: --site-from-node=$(NODE_NAME) from the downward API; needs get on nodes).",
)
@click.option(
    "--site-label-key",
    default="edgeslice.io/site",
    show_default=True,
    help="With --site-from-node: the node label whose value is the site's nodeLabel.",
)
@click.option(
    "--topology",
    "topology_path",
    type=click.Path(dir_okay=False),
    help="With --site-from-node: the city, to map the label (an edge site's nodeLabel) to its site id; "
    "without it the label's value is the site id.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="With --site-from-node: kubeconfig to use (default: the pod's in-cluster config).",
)
@click.option("--controller", "target", required=True, help="Controller agent address, HOST:PORT.")
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    help="This site's certificate (PEM); {site} in the path is replaced by the site id.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False),
    help="This site's key (PEM); {site} in the path is replaced by the site id.",
)
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), help="CA that signed the controller.")
@click.option("--server-name", help="Expected name in the controller's certificate (default: the host).")
@click.option("--insecure", is_flag=True, help="Dev mode: plaintext to a loopback controller.")
@click.option(
    "--record-dir",
    type=click.Path(file_okay=False),
    default="agent-config",
    show_default=True,
    help="Where the default backend records what it would configure.",
)
def run_cmd(
    site: str | None,
    node_name: str | None,
    site_label_key: str,
    topology_path: str | None,
    kubeconfig: str | None,
    target: str,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
    server_name: str | None,
    insecure: bool,
    record_dir: str,
) -> None:
    """Run the agent of one site until interrupted (applies config, reports KPIs)."""
    from telemetry.site import agent as agent_mod

    if (site is None) == (node_name is None):
        raise errors.InvalidSpec("give exactly one of --site SITE or --site-from-node NODE")
    if site is None:
        assert node_name is not None
        site = site_from_node(node_name, site_label_key, kubeconfig, topology_path)
    tls_cert, tls_key = (
        _site_file(flag, path, site) for flag, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key))
    )
    files = _tls_files(tls_cert, tls_key, tls_ca, insecure)
    if files is None and target.rsplit(":", 1)[0] not in ("127.0.0.1", "localhost", "[::1]"):
        raise errors.InvalidSpec(f"--insecure: only to a loopback controller, not {target!r}")

    async def main() -> None:
        creds = agent_mod.channel_credentials(*files) if files else None
        channel = agent_mod.open_channel(target, creds, server_name)
        backend = agent_mod.RecordingBackend(record_dir)
        a = agent_mod.SiteAgent(site, lambda: channel, backend, agent_mod.IdleKpiSource())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, a.stop)
        task = asyncio.create_task(a.run())
        connected = asyncio.create_task(a.connected.wait())
        await asyncio.wait({task, connected}, return_when=asyncio.FIRST_COMPLETED)
        if connected.done():
            click.echo(f"site {site}: connected to {target}; recording configuration in {record_dir}/")
        try:
            await task
        finally:
            connected.cancel()
            await channel.close()
        click.echo(f"site {site}: stopped after {a.stats.configs_applied} configurations applied")

    asyncio.run(main())


@dataclass(frozen=True)
class _Fault:
    at_s: float
    action: str
    args: tuple[str, ...]


def _parse_faults(kill: tuple[str, ...], cut: tuple[str, ...], degrade: tuple[str, ...]) -> list[_Fault]:
    def split_at(text: str, flag: str) -> tuple[str, float]:
        what, sep, when = text.partition("@")
        try:
            return what, float(when) if sep else 0.0
        except ValueError:
            raise errors.InvalidSpec(f"{flag} {text!r}: the time after @ must be seconds, e.g. @30") from None

    faults = []
    for k in kill:
        site, at = split_at(k, "--kill")
        faults.append(_Fault(at, "kill", (site,)))
    for c in cut:
        link, at = split_at(c, "--cut")
        a, b = parse_link_key(link)
        faults.append(_Fault(at, "cut", (a, b)))
    for d in degrade:
        spec, at = split_at(d, "--degrade")
        site, sep, ms = spec.partition("=")
        try:
            float(ms)
        except ValueError:
            raise errors.InvalidSpec(
                f"--degrade {d!r}: expected SITE=MS[@SECONDS], e.g. agg-3=20@60"
            ) from None
        if not sep:
            raise errors.InvalidSpec(f"--degrade {d!r}: expected SITE=MS[@SECONDS], e.g. agg-3=20@60")
        faults.append(_Fault(at, "degrade", (site, ms)))
    return sorted(faults, key=lambda f: f.at_s)


def choose_sites(topology: Topology, count: int | None) -> list[str]:
    """``count`` sites, the transport first (edge, aggregation, core), then cells; all when None."""
    order = {SiteKind.EDGE: 0, SiteKind.AGGREGATION: 1, SiteKind.CORE: 2, SiteKind.CELL: 3}
    ranked = sorted(topology.sites.values(), key=lambda s: (order[s.kind], s.id))
    chosen = ranked if count is None else ranked[:count]
    return [s.id for s in chosen]


@agent.command("simulate")
@click.option(
    "--controller",
    "target",
    default=None,
    metavar="HOST:PORT",
    help="Controller agent address [default: the context's agents address, else the one the local "
    "controller wrote to its endpoints file].",
)
@click.option("--sites", "count", type=click.IntRange(1), help="Simulate this many sites (transport first).")
@click.option("--all", "all_sites", is_flag=True, help="Simulate every site of the city.")
@_with_city
@click.option(
    "--tls-dir", type=click.Path(exists=True, file_okay=False), help="Certificates from `agent certs`."
)
@click.option(
    "--duration", type=click.FloatRange(min=0), help="Stop after this many seconds (default: Ctrl-C)."
)
@click.option("--load", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Load multiplier.")
@click.option("--kill", multiple=True, help="SITE[@SECONDS]: the site dies (repeatable).")
@click.option("--cut", multiple=True, help="A:B[@SECONDS]: the link is cut (repeatable).")
@click.option(
    "--degrade", multiple=True, help="SITE=MS[@SECONDS]: extra latency through a site (repeatable)."
)
@connection_options
def simulate_cmd(
    target: str | None,
    count: int | None,
    all_sites: bool,
    topology_path: str | None,
    cells: int,
    seed: int,
    tls_dir: str | None,
    duration: float | None,
    load: float,
    kill: tuple[str, ...],
    cut: tuple[str, ...],
    degrade: tuple[str, ...],
    conn: Connection,
) -> None:
    """Run many simulated site agents over real gRPC, with KPIs that follow load, and faults.

    The city is the controller's own (read over the operator API, found like every other
    client: --server, the local controller's address file), unless --topology or --cells names
    another. A controller running another city refuses the simulator's agents; that is one line
    and exit code 1.
    """
    from controller.cli import sim_city
    from telemetry.site import agent as agent_mod
    from telemetry.site import simulator

    if (count is None) == (not all_sites):
        raise errors.InvalidSpec("give exactly one of --sites N or --all")
    target = target or conn.agents_address()
    ctx = click.get_current_context()
    generated = any(
        ctx.get_parameter_source(p) == click.core.ParameterSource.COMMANDLINE for p in ("cells", "seed")
    )
    if topology_path is None and not generated:
        city = _controller_city(conn)
    else:
        city = _city(topology_path, cells, seed)
    sites = choose_sites(city, None if all_sites else count)
    faults = _parse_faults(kill, cut, degrade)
    for f in faults:
        if f.action == "cut":
            city.link((f.args[0], f.args[1]))
        else:
            city.site(f.args[0])
    credentials = None
    if tls_dir is not None:
        d = Path(tls_dir)

        def credentials(site: str) -> grpc.ChannelCredentials:
            return agent_mod.channel_credentials(
                str(d / f"site-{site}.crt"), str(d / f"site-{site}.key"), str(d / "ca.crt")
            )

    elif target.rsplit(":", 1)[0] not in ("127.0.0.1", "localhost", "[::1]"):
        raise errors.InvalidSpec(f"--controller {target!r}: without --tls-dir only a loopback controller")
    sim = simulator.Simulator(target, sim_city.from_topology(city), sites, credentials)
    sim.model.set_load(load)
    runner = simulator.SimulatorThread(sim).start(wait_connected_s=None)
    click.echo(f"simulating {len(sites)} sites of {city.name!r} against {target} (Ctrl-C to stop)")
    start = time.monotonic()
    pending = list(faults)
    try:
        while duration is None or time.monotonic() - start < duration:
            time.sleep(0.2)
            refused = runner.do(lambda: _refusal(sim))
            if refused:
                raise errors.EdgesliceError(f"the controller at {target} refused the simulator: {refused}")
            elapsed = time.monotonic() - start
            while pending and pending[0].at_s <= elapsed:
                f = pending.pop(0)
                _inject(runner, f)
                click.echo(f"[{elapsed:6.1f}s] {f.action} {' '.join(f.args)}")
            if int(elapsed * 5) % 25 == 0:
                up = runner.do(lambda: sum(1 for a in sim.agents.values() if a.connected.is_set()))
                click.echo(
                    f"[{elapsed:6.1f}s] {up}/{len(sites)} agents connected, {sim.messages_sent()} messages sent"
                )
    except KeyboardInterrupt:
        pass
    finally:
        with contextlib.suppress(Exception):
            runner.stop()
    click.echo(f"stopped: {sim.messages_sent()} messages sent")


def _controller_city(conn: Connection) -> Topology:
    """The topology the controller runs on (GetTopology)."""
    from controller.core.topology_file import parse_topology

    with conn.client() as client:
        fingerprint, document = client.topology_file()
        where = f"the topology of the controller at {client.address}"
    city = Topology.from_file(parse_topology(document, where))
    if city.fingerprint != fingerprint:
        raise errors.EdgesliceError(
            f"{where}: fingerprint {city.fingerprint} is not the {fingerprint} it named"
        )
    click.echo(
        f"topology {city.name!r} ({len(city.sites)} sites, fingerprint {fingerprint}) from the controller"
    )
    return city


def _refusal(sim: object) -> str:
    """A refusal no retry can fix (another city, an unknown site), as the agent recorded it."""
    from telemetry.site import agent as agent_mod
    from telemetry.site import simulator

    assert isinstance(sim, simulator.Simulator)
    for a in sim.agents.values():
        if a.stats.last_code in agent_mod.FATAL_CODES:
            return a.stats.last_error
    return ""


def _inject(runner: object, fault: _Fault) -> None:
    from telemetry.site import simulator

    assert isinstance(runner, simulator.SimulatorThread)
    sim = runner.simulator
    if fault.action == "kill":
        runner.do(lambda: sim.kill(fault.args[0]))
    elif fault.action == "cut":
        runner.do(lambda: sim.cut_link(fault.args[0], fault.args[1]))
    else:
        runner.do(lambda: sim.degrade(fault.args[0], float(fault.args[1])))


@agent.command("certs")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default="pki",
    show_default=True,
    help="Folder of the CA and certificates (an existing CA there is reused).",
)
@click.option("--site", "site_ids", multiple=True, help="A site to issue a certificate for (repeatable).")
@click.option("--all", "all_sites", is_flag=True, help="Every site of the city.")
@_with_city
@click.option(
    "--host",
    "hosts",
    multiple=True,
    default=("localhost", "127.0.0.1"),
    show_default=True,
    help="Names agents dial the controller by (its certificate's SANs).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=365,
    show_default=True,
    help="Validity of the new certificates.",
)
@click.option(
    "--secrets",
    "secrets_path",
    type=click.Path(dir_okay=False),
    help="Also write the Kubernetes Secrets deploy/ mounts (edgeslice-tls for the controller, "
    "edgeslice-agent-tls with every site's pair) to this YAML file, for kubectl apply -f.",
)
@click.option(
    "--namespace",
    default="edgeslice-system",
    show_default=True,
    help="With --secrets: the namespace of the Secrets.",
)
def certs_cmd(
    directory: str,
    site_ids: tuple[str, ...],
    all_sites: bool,
    topology_path: str | None,
    cells: int,
    seed: int,
    hosts: tuple[str, ...],
    days: int,
    secrets_path: str | None,
    namespace: str,
) -> None:
    """Create a dev CA (or reuse the one in --dir), the controller's and per-site certificates."""
    from telemetry.site import certs

    sites = list(site_ids)
    if all_sites or topology_path is not None:
        city = _city(topology_path, cells, seed)
        for s in sites:
            city.site(s)
        if all_sites:
            sites = sorted(city.sites)
    if not sites:
        raise errors.InvalidSpec("give --site ID (repeatable) or --all")
    written = certs.create_dev_pki(Path(directory), sites, hosts, days)
    click.echo(f"wrote CA, controller and {len(written) - 2} site certificates to {directory}/")
    click.echo(
        f"controller: certificate {directory}/controller.crt, key {directory}/controller.key, "
        f"client CA {directory}/ca.crt; site X: {directory}/site-X.crt and .key"
    )
    if secrets_path is not None:
        text = tls_secrets_yaml(Path(directory), sites, namespace)
        try:
            Path(secrets_path).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise errors.InvalidSpec(f"--secrets: cannot write {secrets_path}: {exc.strerror}") from exc
        click.echo(f"wrote Secrets edgeslice-tls and edgeslice-agent-tls ({namespace}) to {secrets_path}")


def tls_secrets_yaml(directory: Path, sites: list[str], namespace: str) -> str:
    """The two Secrets deploy/ mounts, from the files ``create_dev_pki`` wrote in ``directory``:
    ``edgeslice-tls`` (controller: tls.crt, tls.key, ca.crt) and ``edgeslice-agent-tls`` (agents:
    ca.crt and site-<id>.crt/.key for every site; each agent picks its own by its site)."""
    import base64

    import yaml

    def data(files: dict[str, str]) -> dict[str, str]:
        return {
            key: base64.b64encode((directory / name).read_bytes()).decode() for key, name in files.items()
        }

    labels = {"app.kubernetes.io/part-of": "edgeslice"}
    controller = {"tls.crt": "controller.crt", "tls.key": "controller.key", "ca.crt": "ca.crt"}
    agents = {"ca.crt": "ca.crt"}
    for site in sites:
        agents[f"site-{site}.crt"] = f"site-{site}.crt"
        agents[f"site-{site}.key"] = f"site-{site}.key"
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "type": "Opaque",
            "data": data(files),
        }
        for name, files in (("edgeslice-tls", controller), ("edgeslice-agent-tls", agents))
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)
