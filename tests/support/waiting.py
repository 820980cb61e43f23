"""Waiting for something another thread or process does: the one polling helper of the suite."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(
    what: str, cond: Callable[[], object], timeout_s: float = 20.0, interval_s: float = 0.02
) -> None:
    """Return once ``cond()`` is true; fail naming ``what`` if it is not within ``timeout_s``.

    ``cond`` is polled every ``interval_s``, and once more at the deadline, so a condition that
    becomes true just in time passes. The default timeout is generous: it only bounds how long
    a failing test takes.

    >>> eventually("one is one", lambda: 1 == 1)
    >>> eventually("never", lambda: False, timeout_s=0.05)
    Traceback (most recent call last):
    AssertionError: never: not within 0.05 s
    """
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() >= deadline:
            if cond():
                return
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(interval_s)
