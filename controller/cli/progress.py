"""A progress line on stderr for long operations, shown only when stderr is a terminal.

Scripts that capture output see nothing of it; people see what is happening and for how long.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

FRAMES = "|/-\\"


class Progress:
    """``with Progress("applying 40 slices"):`` shows a spinner and the elapsed time.

    ``step(i, n)`` turns it into a counter ("reading files 3/12").

    >>> import io
    >>> with Progress("quiet", stream=io.StringIO()) as p:  # not a terminal: prints nothing
    ...     p.step(1, 2)
    >>> p.shown
    False
    """

    def __init__(self, label: str, stream: TextIO | None = None, interval_s: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.shown = bool(getattr(self.stream, "isatty", lambda: False)())
        self._interval_s = interval_s
        self._counter = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        if self.shown:
            self._thread = threading.Thread(target=self._spin, name="progress", daemon=True)
            self._thread.start()
        return self

    def step(self, done: int, total: int, label: str | None = None) -> None:
        with self._lock:
            if label is not None:
                self.label = label
            self._counter = f" {done}/{total}"

    def _spin(self) -> None:
        frame = 0
        while not self._stop.wait(self._interval_s):
            with self._lock:
                text = f"{FRAMES[frame % len(FRAMES)]} {self.label}{self._counter} ({time.monotonic() - self._started:.1f}s)"
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            frame += 1

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.stream.write("\r\033[K")  # leave the line clean for the result or the error
            self.stream.flush()
