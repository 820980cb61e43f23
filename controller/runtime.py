"""The controller process: load the topology, open the store, build the service, serve the
operator API, run the periodic reconcile pass, and stop cleanly on SIGTERM or SIGINT.

Everything has an embedded default so ``slicectl controller run`` works with no flags: a
generated sample city, ``edgeslice.db`` in the working folder, the API on loopback in dev mode
(with a generated token in the state folder), plans recorded under ``<state-dir>/realisation``.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from controller import auth, citygen
from controller.clock import Clock, RealClock
from controller.observer import ServiceObserver
from controller.plan_recorder import PlanRecorder
from controller.realisation import Realiser
from controller.service import ControllerService
from controller.store import Store
from controller.topology import Topology, load_topology
from slices import errors

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_STATE_FILE = "edgeslice.db"
DEFAULT_SAMPLE_CELLS = 60
RECONCILE_BATCH = 100  # slices per locked batch of the periodic pass
ADDRESS_FILE = "controller.addr"  # where a started controller writes the address it bound


class Closeable(Protocol):
    def close(self) -> None: ...


#: Something started beside the service once it exists (the CLI attaches the metrics endpoint
#: this way, so the runtime does not import telemetry); closed when the controller stops.
Attachment = Callable[[ControllerService], Closeable]


@dataclass
class RuntimeConfig:
    topology: str | None = None  # file path; None: a generated sample city
    sample_cells: int = DEFAULT_SAMPLE_CELLS
    sample_seed: int = 0
    state_file: Path = field(default_factory=lambda: Path(DEFAULT_STATE_FILE))
    state_dir: Path | None = None  # token, address file, realisation plans; default auth.default_state_dir()
    listen: str = DEFAULT_LISTEN
    reconcile_interval_s: float = 5.0
    dev: bool = True
    token_file: Path | None = None
    tls: auth.TlsConfig | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def resolved_state_dir(self) -> Path:
        return self.state_dir if self.state_dir is not None else auth.default_state_dir(self.environ)


def load_city(config: RuntimeConfig) -> Topology:
    if config.topology is not None:
        return load_topology(config.topology)
    return Topology.from_file(citygen.generate_city(config.sample_cells, seed=config.sample_seed))


class Controller:
    """A running controller. :meth:`start` returns once the API is serving."""

    def __init__(
        self,
        config: RuntimeConfig,
        clock: Clock | None = None,
        realisers: list[Realiser] | None = None,
        observer: ServiceObserver | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> None:
        self.config = config
        self._attachments = list(attachments)
        self._attached: list[Closeable] = []
        self.clock = clock or RealClock()
        self._extra_realisers = realisers or []
        self._observer = observer
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None
        self.service: ControllerService | None = None
        self.store: Store | None = None
        self.api: Any = None
        self.address = ""
        self.started_s = 0.0  # seconds from start() to serving (restart benchmark)
        self.topology_s = 0.0  # of which loading the topology

    def start(self) -> None:
        t0 = self.clock.monotonic()
        config = self.config
        state_dir = config.resolved_state_dir()
        state_dir.mkdir(parents=True, exist_ok=True)
        topology = load_city(config)
        self.topology_s = self.clock.monotonic() - t0
        self.store = Store.open(config.state_file)
        try:
            realisers: list[Realiser] = [
                PlanRecorder(state_dir / "realisation", topology),
                *self._extra_realisers,
            ]
            self.service = ControllerService(topology, self.store, realisers, self.clock, self._observer)
            for attach in self._attachments:
                self._attached.append(attach(self.service))
            from controller import api_server

            authenticator = auth.build_authenticator(config.token_file, config.environ, config.dev, state_dir)
            self.api = api_server.serve(self.service, config.listen, authenticator, config.tls, config.dev)
        except BaseException:
            self._detach()
            self.store.close()
            raise
        self.address = self.api.address
        # Atomically, so a reader never sees half an address.
        tmp = state_dir / f".{ADDRESS_FILE}.{os.getpid()}"
        tmp.write_text(self.address + "\n", encoding="utf-8")
        os.replace(tmp, state_dir / ADDRESS_FILE)
        self.started_s = self.clock.monotonic() - t0
        # What was loaded lives as long as the process: keep it out of future collections.
        gc.freeze()
        self._loop = threading.Thread(target=self._reconcile_loop, name="reconcile", daemon=True)
        self._loop.start()
        log.info(
            "controller serving on %s: topology %s, state %s, %d slices, ready in %.3f s (topology %.3f s)",
            self.address,
            topology.name,
            config.state_file,
            len(self.service.list_slices()),
            self.started_s,
            self.topology_s,
        )

    def _reconcile_loop(self) -> None:
        # The first pass runs at once: after a restart it re-realises what was placed.
        while not self._stop.is_set():
            assert self.service is not None
            try:
                more, full = True, True
                while more and not self._stop.is_set():
                    _, more = self.service.reconcile_batch(RECONCILE_BATCH, full=full)
                    full = False
            except errors.EdgesliceError as exc:
                log.error("reconcile pass failed: %s", exc)
            except Exception:
                log.exception("reconcile pass failed")
            self._stop.wait(self.config.reconcile_interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self.api is not None:
            self.api.stop(1.0)
        if self._loop is not None:
            self._loop.join(timeout=30)
        self._detach()
        if self.store is not None:
            self.store.close()

    def _detach(self) -> None:
        while self._attached:
            self._attached.pop().close()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._stop.wait(timeout_s)

    def request_stop(self) -> None:
        self._stop.set()


def run(
    config: RuntimeConfig,
    announce: Callable[[str], None] = print,
    observer: ServiceObserver | None = None,
    attachments: Sequence[Attachment] = (),
) -> int:
    """Run until SIGTERM or SIGINT; returns the exit code."""
    controller = Controller(config, observer=observer, attachments=attachments)
    controller.start()
    state_dir = config.resolved_state_dir()
    announce(
        f"edgeslice controller serving on {controller.address} "
        f"(topology {controller.service.topology().name if controller.service else '?'}, "
        f"state {config.state_file}, plans in {state_dir / 'realisation'}"
        f"{', dev mode: token in ' + str(state_dir / auth.DEV_TOKEN_FILE) if config.dev else ''})"
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        controller.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not controller.wait(1.0):
            pass
    finally:
        controller.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    announce("edgeslice controller stopped")
    return 0
