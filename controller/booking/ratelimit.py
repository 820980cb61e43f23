"""Per-tenant request-rate limits for the booking API: one token bucket per client.

A bucket holds up to ``burst`` tokens (by default one second's worth, at least one), refills at
``rate`` tokens a second, and each request takes one; an empty bucket answers how long until the
next token, which the API sends as ``Retry-After``. Thread-safe: the API's endpoints run in a
thread pool.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float  # when ``tokens`` was last brought up to date


class TokenBuckets:
    """Token buckets by key (the tenant's client id), each with the rate it is asked with."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @staticmethod
    def burst(rate: float) -> float:
        """How many requests may come at once: one second's worth, and at least one."""
        return max(1.0, rate)

    def take(self, key: str, rate: float) -> float:
        """Take one token from ``key``'s bucket refilled at ``rate``/s: 0.0 when granted, else the
        seconds until a token is there (nothing is taken then)."""
        if rate <= 0:
            raise ValueError(f"rate {rate!r}: must be positive")
        burst = self.burst(rate)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(tokens=burst, at=now)
            else:
                # A rate changed to a lower one caps what was saved up at the new burst.
                bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
                bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate


def retry_after(wait_s: float) -> str:
    """The ``Retry-After`` value for a wait: whole seconds, rounded up, at least 1.

    >>> retry_after(0.01), retry_after(1.0), retry_after(1.2)
    ('1', '1', '2')
    """
    return str(max(1, math.ceil(wait_s)))
