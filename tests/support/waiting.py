"""Waiting for something another thread or process does: the one polling helper of the suite."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    what: str, cond: Callable[[], T | None], timeout_s: float = 20.0, interval_s: float = 0.02
) -> T:
    """Return ``cond()``'s value once it is truthy; fail naming ``what`` if it is not within
    ``timeout_s``.

    ``cond`` is polled every ``interval_s``, and once more after the deadline, so a condition that
    becomes true just in time passes. The default timeout is generous: it only bounds how long
    a failing test takes.

    >>> eventually("one is one", lambda: 1 == 1)
    True
    >>> eventually("a value", lambda: {"spec": {}})
    {'spec': {}}
    >>> eventually("never", lambda: False, timeout_s=0.05)
    Traceback (most recent call last):
    AssertionError: never: not within 0.05 s
    """
    deadline = time.monotonic() + timeout_s
    while True:
        late = time.monotonic() >= deadline
        value = cond()
        if value:
            return value
        if late:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(interval_s)
