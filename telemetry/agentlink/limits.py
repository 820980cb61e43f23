"""Limits on what agents send: the per-session rate limiter (:class:`TokenBucket`) and the sizes
and ranges a message's fields may take."""

from __future__ import annotations

from dataclasses import dataclass

REFUSAL_BACKOFF_MAX_S = 60.0
MAX_NAME = 253
MAX_SHORT = 200
MAX_ACK_MESSAGE = 2000
MAX_SLICE_RECORDS = 4096
RATE_WINDOW_S = 60.0  # the message rate operators see is averaged over about a minute
MAX_GENERATION = 2**63 - 1  # generations are stored as SQLite integers (signed 64-bit)


@dataclass
class TokenBucket:
    """Token bucket: ``rate`` messages/s sustained, ``burst`` at once. A message over the rate
    costs half a token of debt; an agent that drives the debt down to ``-burst`` (sending at more
    than twice the rate for another burst) has ignored the in-band throttling.

    >>> b = TokenBucket(rate=1.0, burst=2.0, tokens=2.0, at=0.0)
    >>> [b.take(0.0) for _ in range(3)], b.tokens
    ([True, True, False], -0.5)
    >>> b.take(1.5), b.exhausted
    (True, False)
    """

    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.tokens -= 0.5
        return False

    @property
    def exhausted(self) -> bool:
        return self.tokens <= -self.burst
