"""A controller restart with a real SQLite store and real agents over loopback gRPC: the sites
whose agent had connected are expected back; one that does not return within the grace period
is marked down (and its slices healed), one that does is left alone."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

from telemetry import agent, agent_service
from tests.runtime_helpers import doc, make_service

SETTINGS = agent_service.AgentSettings(
    lease_s=0.6, heartbeat_interval_s=0.1, telemetry_interval_s=0.1, resend_after_s=0.3
)


def wait_for(what: str, cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(0.02)


class Agents:
    """Reference agents for some sites, on an event loop of their own."""

    def __init__(self, port: int, sites: list[str]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.agents: list[agent.SiteAgent] = []

        async def start() -> list[asyncio.Task[None]]:
            ch = agent.open_channel(f"127.0.0.1:{port}", None)
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

        asyncio.run_coroutine_threadsafe(done(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def test_an_agent_that_does_not_come_back_after_a_restart_is_marked_down(tmp_path: Path) -> None:
    service, store = make_service(tmp_path)
    service.apply([doc("cars", "vehicle", ["c1"])], "operator:test")
    server = agent_service.serve_agents(service, dev=True, settings=SETTINGS)
    agents = Agents(server.port, ["e1", "e2"])
    try:
        wait_for("both agents remembered", lambda: service.agent_sites() == {"e1", "e2"})
    finally:
        agents.stop()
        server.stop()
        store.close()

    # The restart: a new service on the same state file; only e1's agent comes back.
    grace = 1.5
    service, store = make_service(tmp_path)
    server = agent_service.serve_agents(
        service, dev=True, settings=dataclasses.replace(SETTINGS, reconnect_grace_s=grace)
    )
    started = time.monotonic()
    agents = Agents(server.port, ["e1"])
    try:
        registry = server.registry
        assert {s.site for s in registry.statuses(connected_only=True)} == {"e1", "e2"}  # expected
        wait_for("e1 connected", lambda: registry.status("e1").connected)
        time.sleep(max(0.0, started + grace - 0.5 - time.monotonic()))
        assert service.topology().is_up("e2"), "marked down before the grace period ran out"
        wait_for("e2 marked down", lambda: not service.topology().is_up("e2"), timeout_s=5.0)
        assert time.monotonic() - started >= grace - 0.1
        assert service.topology().is_up("e1") and registry.status("e1").up
        events = [(e.action, e.site) for e in service.events()]
        assert ("site-down", "e2") in events and ("site-down", "e1") not in events
    finally:
        agents.stop()
        server.stop()
        store.close()
