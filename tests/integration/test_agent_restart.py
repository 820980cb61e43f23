"""A controller restart with a real SQLite store and real agents over loopback gRPC: the sites
whose agent had connected are expected back; one that does not return within the grace period
is marked down, one that does is left alone, and one that returns and dies again is marked down
after an ordinary lease, not the grace period."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

from telemetry import agentlink as agent_service
from telemetry.site import agent
from tests.support.runtime_helpers import doc, make_service
from tests.support.waiting import eventually

SETTINGS = agent_service.AgentSettings(
    lease_s=0.6, heartbeat_interval_s=0.1, telemetry_interval_s=0.1, resend_after_s=0.3
)


class Agents:
    """Reference agents for some sites, on an event loop of their own."""

    def __init__(self, port: int, sites: list[str]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.agents: list[agent.SiteAgent] = []
        self._channel: Any = None

        async def start() -> list[asyncio.Task[None]]:
            ch = self._channel = agent.open_channel(f"127.0.0.1:{port}", None)
            self.agents = [
                agent.SiteAgent(s, lambda: ch, agent.MemoryBackend(), agent.IdleKpiSource()) for s in sites
            ]
            return [asyncio.ensure_future(a.run()) for a in self.agents]

        self._tasks = asyncio.run_coroutine_threadsafe(start(), self._loop).result(5)

    def stop(self) -> None:
        for a in self.agents:
            self._loop.call_soon_threadsafe(a.stop)

        async def done() -> None:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._channel.close()

        try:
            asyncio.run_coroutine_threadsafe(done(), self._loop).result(5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()  # its self-pipe sockets too: left to the collector, they warn later


def test_an_agent_that_does_not_come_back_after_a_restart_is_marked_down(tmp_path: Path) -> None:
    service, store = make_service(tmp_path)
    service.apply([doc("cars", "vehicle", ["c1"])], "operator:test")
    server = agent_service.serve_agents(service, dev=True, settings=SETTINGS)
    agents = Agents(server.port, ["e1", "e2", "a1"])
    try:
        eventually("the agents remembered", lambda: service.agent_sites() == {"e1", "e2", "a1"})
    finally:
        agents.stop()
        server.stop()
        store.close()

    # The restart: a new service on the same state file; e1's and a1's agents come back, a1's dies.
    grace = 3.0
    service, store = make_service(tmp_path)
    server = agent_service.serve_agents(
        service, dev=True, settings=dataclasses.replace(SETTINGS, reconnect_grace_s=grace)
    )
    started = time.monotonic()
    agents = Agents(server.port, ["e1"])
    returning = Agents(server.port, ["a1"])
    try:
        registry = server.registry
        assert {s.site for s in registry.statuses(connected_only=True)} == {"e1", "e2", "a1"}  # expected
        eventually(
            "e1 and a1 connected", lambda: registry.status("e1").connected and registry.status("a1").connected
        )
        returning.stop()
        eventually("a1 marked down", lambda: not service.topology().is_up("a1"), timeout_s=5.0)
        assert time.monotonic() - started < grace - 0.5, "a1 waited for the grace period"
        assert service.topology().is_up("e2"), "e2 marked down before the grace period ran out"
        eventually("e2 marked down", lambda: not service.topology().is_up("e2"), timeout_s=5.0)
        assert time.monotonic() - started >= grace - 0.1
        assert service.topology().is_up("e1") and registry.status("e1").up
        events = [(e.action, e.site) for e in service.events()]
        assert ("site-down", "e2") in events and ("site-down", "e1") not in events
    finally:
        agents.stop()
        server.stop()
        store.close()
