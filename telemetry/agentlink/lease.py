"""The lease monitor: the one thread that turns what agents report into controller actions.

Each tick it (1) marks down the sites whose lease ran out and lets the controller heal the
slices they served, (2) carries out the queued effects of agent reports in arrival order (a site
back, a link reported down or up), and (3) refreshes the desired per-site configs when the
controller's revision moved (healing changes placements, so the new sites get their config at
once). Doing all three on one thread keeps the order of events for a site and never blocks a
stream's event loop with a healing pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from telemetry.agentlink.ports import ControllerPort
from telemetry.agentlink.registry import AgentRegistry, Effect

log = logging.getLogger(__name__)
MAX_DOWNS_KEPT = 10_000  # detections kept for benchmarks and tests (bounded: a long run must not grow)


class LeaseMonitor:
    """Runs :meth:`tick` every ``lease_s / 10`` (and as soon as an agent report queues an effect).

    Each tick also hands the controller what the agents confirmed (per-slice agent progress, so
    ``Realised`` follows the acks), the config refusals (events on the slices) and the sites whose
    config generation moved (stored, so generations keep rising across restarts)."""

    def __init__(
        self,
        registry: AgentRegistry,
        service: ControllerPort,
        interval_s: float | None = None,
    ) -> None:
        self.registry = registry
        self.service = service
        self.interval_s = interval_s if interval_s is not None else max(0.01, registry.settings.lease_s / 10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-monitor", daemon=True)
        self.downs: deque[tuple[str, float]] = deque(maxlen=MAX_DOWNS_KEPT)  # (site, clock at detection)
        # Sites the controller remembers as having an agent (so a restart expects them back).
        self._remembered: set[str] = set(service.agent_sites())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.registry.effects_ready.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        next_scan = 0.0
        while not self._stop.is_set():
            # Leases are scanned every interval; an agent report wakes the thread early only to
            # carry out its effects (a scan of every site per Hello would not scale to a city).
            now = time.monotonic()
            scan = now >= next_scan
            if scan:
                next_scan = now + self.interval_s
            try:
                self.tick(scan_leases=scan)
            except Exception:  # a failing controller call must not end lease monitoring
                log.exception("lease monitor tick failed")
            self.registry.effects_ready.wait(max(0.0, next_scan - time.monotonic()))

    def tick(self, scan_leases: bool = True) -> None:
        registry = self.registry
        expired = registry.expire_leases() if scan_leases else []
        if expired:
            self._sites_down(expired)
        effects = registry.take_effects()
        for effect in effects:
            self._apply(effect)
        new = {e.site for e in effects if e.action == "hello"} - self._remembered
        if new:
            self.service.remember_agent_sites(new)
            self._remembered |= new
        registry.refresh()
        generations = registry.take_unsaved_generations()
        if generations:
            self.service.save_site_generations(generations)
        progress = registry.take_progress()
        if progress or self.service.progress_pending:
            self.service.record_agent_progress(progress, "controller:agents")

    def _sites_down(self, expired: list[str]) -> None:
        """One site: ``site_down`` by its agent. Several in one check (a power cut, a backhaul
        fault): one ``sites_down`` decision, so the controller re-routes and heals once rather
        than once per site; its actor is the controller, each event's reason names the lease."""
        registry = self.registry
        at = registry.clock()
        self.downs.extend((site, at) for site in expired)
        reason = f"LeaseExpired: no message from the agent for {registry.settings.lease_s:g} s"
        if len(expired) > 1:
            self.service.sites_down([(site, reason) for site in expired], "controller")
        else:
            self.service.site_down(expired[0], reason, f"agent:{expired[0]}")

    def _apply(self, effect: Effect) -> None:
        actor = f"agent:{effect.site}"
        if effect.action == "site-up":
            self.service.site_up(effect.site, actor)
        elif effect.action == "hello":
            # The controller may hold the site as down from before this session (a restart, or
            # an outage that began while no agent ran): the agent being here says it is up.
            if not self.service.topology().is_up(effect.site) and self.registry.status(effect.site).up:
                self.service.site_up(effect.site, actor)
        elif effect.action == "link-down" and effect.link is not None:
            self.service.link_down(effect.link, f"{effect.reason}: reported down by {actor}", actor)
        elif effect.action == "link-up" and effect.link is not None:
            self.service.link_up(effect.link, actor)
        elif effect.action == "refused":
            self.service.config_refused(
                effect.site, effect.generation, effect.reason, effect.message, effect.slices
            )
