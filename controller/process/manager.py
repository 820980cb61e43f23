"""The controller process as a manager of runnables, after controller-runtime's manager.

Each part of the process (the state's locks, the health port, the standby server, the leader
elector, the service, the operator API, the agent server, the metrics, the Kubernetes watches,
the NetworkSlice source, the reconcile loop) is a :class:`Runnable`: it has a name, says whether
it needs leadership, and has ``start()`` and ``stop()``. The :class:`Manager` starts them in the
order they were added and stops them in the reverse order:

- :meth:`Manager.start` starts the runnables that need no leadership;
- :meth:`Manager.lead` (leadership gained, or at once without leader election) first stops the
  ones added with ``until_leading`` (the standby server), then starts the leader-only ones;
- :meth:`Manager.step_down` (leadership lost) stops the leader-only ones;
- :meth:`Manager.stop` stops everything still running, the leader-only ones first.

A runnable whose ``start`` raises leaves no runnable of its batch running: those already
started are stopped (in reverse) and the error is raised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


class Runnable(Protocol):
    """A part of the process the manager starts and stops."""

    @property
    def name(self) -> str: ...

    @property
    def needs_leadership(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@runtime_checkable
class Serving(Protocol):
    """A runnable that serves something others connect to, named in the endpoints file."""

    @property
    def endpoints(self) -> Mapping[str, str]: ...


@dataclass
class Step:
    """A runnable made of two functions (``stop`` may be omitted when there is nothing to undo)."""

    name: str
    needs_leadership: bool
    run: Callable[[], object]
    undo: Callable[[], object] | None = None

    def start(self) -> None:
        self.run()

    def stop(self) -> None:
        if self.undo is not None:
            self.undo()


class LoopThread:
    """A runnable that runs ``target(stop)`` on a daemon thread until :meth:`stop` sets ``stop``;
    the stop waits ``join_s`` for the thread to finish."""

    def __init__(
        self,
        name: str,
        target: Callable[[threading.Event], None],
        needs_leadership: bool = True,
        join_s: float = 30.0,
    ) -> None:
        self.name = name
        self.needs_leadership = needs_leadership
        self._target = target
        self._join_s = join_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._target, args=(self._stop,), name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._join_s)
            self._thread = None


class Manager:
    """Starts and stops runnables in one order (see the module's documentation). Thread-safe:
    a :meth:`lead` in progress finishes before a :meth:`stop` undoes it, and nothing starts
    once :meth:`stop` has been called."""

    def __init__(self) -> None:
        self._runnables: list[tuple[Runnable, bool]] = []  # (runnable, until_leading)
        self._running: list[Runnable] = []  # in start order
        self._lock = threading.RLock()
        self._stopped = False
        self.leading = False

    def add(self, runnable: Runnable, *, until_leading: bool = False) -> None:
        """Add ``runnable`` after those already added (before :meth:`start`). ``until_leading``:
        stopped when this replica starts leading (what serves while it waits: the standby server)."""
        if until_leading and runnable.needs_leadership:
            raise ValueError(f"{runnable.name}: a leader-only runnable cannot run until leading")
        with self._lock:
            if self._running or self._stopped:
                raise RuntimeError(f"{runnable.name}: added after the manager started")
            self._runnables.append((runnable, until_leading))

    def running(self) -> list[Runnable]:
        """What runs now, in start order."""
        with self._lock:
            return list(self._running)

    def endpoints(self) -> dict[str, str]:
        """What the running runnables serve, in start order."""
        found: dict[str, str] = {}
        for runnable in self.running():
            if isinstance(runnable, Serving):
                found.update(runnable.endpoints)
        return found

    def start(self) -> None:
        """Start the runnables that need no leadership."""
        with self._lock:
            if self._stopped:
                return
            self._start_batch([r for r, _ in self._runnables if not r.needs_leadership])

    def lead(self) -> bool:
        """Leadership gained: stop the ``until_leading`` runnables, start the leader-only ones.
        False (and nothing started) once :meth:`stop` was called or when already leading."""
        with self._lock:
            if self._stopped or self.leading:
                return False
            self._stop_all([r for r, until in self._runnables if until])
            self._start_batch([r for r, _ in self._runnables if r.needs_leadership])
            self.leading = True
            return True

    def step_down(self) -> None:
        """Leadership lost: stop the leader-only runnables, the last started first."""
        with self._lock:
            self._stop_all([r for r in self._running if r.needs_leadership])
            self.leading = False

    def stop(self) -> None:
        """Stop everything still running, the last started first (the leader-only ones are always
        started after the others). Safe to call more than once."""
        with self._lock:
            self._stopped = True
            self.leading = False
            self._stop_all(list(self._running))

    def _start_batch(self, batch: list[Runnable]) -> None:
        started: list[Runnable] = []
        try:
            for runnable in batch:
                log.debug("starting %s", runnable.name)
                runnable.start()
                started.append(runnable)
                self._running.append(runnable)
        except BaseException:
            self._stop_all(started)
            raise

    def _stop_all(self, batch: list[Runnable]) -> None:
        """Stop those of ``batch`` that run, in reverse start order; a failing stop is logged and
        the others are still stopped."""
        for runnable in reversed([r for r in self._running if r in batch]):
            self._running.remove(runnable)
            log.debug("stopping %s", runnable.name)
            try:
                runnable.stop()
            except Exception:
                log.exception("stopping %s failed", runnable.name)
