"""The controller's :class:`Topology` as the site simulator's plain :class:`simulator.City`
(the site side imports nothing of the controller; whoever builds a simulator converts)."""

from __future__ import annotations

from controller.core.topology import Topology
from telemetry.site import simulator


def from_topology(topology: Topology) -> simulator.City:
    """Sites' capacities, links, and the fingerprint the controller checks in every Hello."""
    return simulator.City(
        topology.name,
        {s.id: simulator.Site(s.cpu_millicores, s.radio_kbps) for s in topology.sites.values()},
        tuple(simulator.Link(ln.a, ln.b, ln.bandwidth_kbps, ln.latency_ms) for ln in topology.links),
        topology.fingerprint,
    )
