"""``slicectl demo``: generate a city, run a controller with site agents and metrics, and show
slicing end to end (the story is :mod:`controller.cli.demo`; the site side is built here because
``controller`` may not import ``telemetry``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from controller.cli import companions
from controller.cli import demo as demo_mod
from controller.core.topology import Topology
from controller.process import wiring as runtime
from controller.runtime.observer import ServiceObserver

if TYPE_CHECKING:
    from telemetry.site.simulator import SimulatorThread

# Short enough that the story (a lease expiry, SLA verdicts) plays out in seconds.
DEMO_LEASE_S = 1.5
DEMO_HEARTBEAT_S = 0.3
DEMO_SLA_WINDOW_S = 2.0


class TelemetryWorld:
    """:class:`controller.cli.demo.SiteWorld` from the telemetry package: the agent server and the
    metrics endpoint on free loopback ports, and one simulated agent per site."""

    def __init__(self) -> None:
        from telemetry import agentlink as agent_service

        settings = agent_service.AgentSettings(
            lease_s=DEMO_LEASE_S,
            heartbeat_interval_s=DEMO_HEARTBEAT_S,
            telemetry_interval_s=DEMO_HEARTBEAT_S,
            resend_after_s=1.0,
            sla_window_s=DEMO_SLA_WINDOW_S,
        )
        self.parts = companions.Companions(
            companions.AgentsOptions("127.0.0.1:0", None, True, settings), metrics_port=0
        )
        self.sim: SimulatorThread | None = None

    @property
    def observer(self) -> ServiceObserver | None:
        return self.parts.observer

    def interceptors(self) -> list[Any]:
        return self.parts.interceptors()

    def attachments(self) -> list[runtime.Attachment]:
        return self.parts.attachments()

    def start_agents(self, topology: Topology, sites: Sequence[str]) -> None:
        from controller.cli import sim_city
        from telemetry.site import simulator

        server = self.parts.agent_server
        assert server is not None, "the controller attaches the agent server first"
        city = sim_city.from_topology(topology)
        sim = simulator.Simulator(server.address, city, sites, streams_per_channel=100, backoff_max_s=0.5)
        self.sim = simulator.SimulatorThread(sim).start(wait_connected_s=30.0)

    def acks(self) -> list[demo_mod.AgentAck]:
        server = self.parts.agent_server
        if server is None:
            return []
        registry = server.registry
        kinds = registry.site_kinds()
        out = []
        for st in registry.statuses(connected_only=True):
            desired = registry.desired(st.site)
            out.append(
                demo_mod.AgentAck(
                    st.site,
                    kinds.get(st.site, "unknown"),
                    st.connected,
                    st.desired_generation,
                    st.acked_generation,
                    len(desired[0].slices) if desired else 0,
                )
            )
        return sorted(out, key=lambda a: (a.kind != "edge", a.kind, a.site))

    @property
    def sla_window_s(self) -> float:
        return DEMO_SLA_WINDOW_S

    def kill_agent(self, site: str) -> None:
        sim = self.sim
        assert sim is not None, "agents are started first"
        sim.do(lambda: sim.simulator.kill(site))

    def set_devices(self, slice_name: str, devices: int) -> None:
        sim = self.sim
        assert sim is not None, "agents are started first"
        # The simulator's cells report round(load * 100) active devices for a slice.
        sim.do(lambda: sim.simulator.model.set_load(devices / 100, slice_name))

    def close(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None


@click.command()
@click.option("--forever", is_flag=True, help="Keep the controller running after the story, for exploration.")
@click.option(
    "--cells",
    type=click.IntRange(20, 5000),
    default=60,
    show_default=True,
    help="Cells of the generated city.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the city, state and plans; the demo's own files there are replaced.",
    default=Path("edgeslice-demo"),
    show_default=True,
)
@click.option("--no-agents", is_flag=True, help="Skip the site agents, the failure and the metrics.")
def demo(forever: bool, cells: int, workdir: Path, no_agents: bool) -> None:
    """Generate a city, start the controller and site agents, apply IoT, vehicle and Wi-Fi
    slices, drain a site, fail another and watch the slices heal, then book a slice through the
    CAMARA booking API for a few seconds and watch it activate and expire."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    # Only the main thread may install handlers (CliRunner in tests runs there too).
    previous = {}
    if forever and threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        world = None if no_agents else TelemetryWorld()
        demo_mod.run_demo(workdir, cells=cells, forever=forever, echo=click.echo, world=world, stop=stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
