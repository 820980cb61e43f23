"""The agent table's lease scan (one numpy pass) against the plain loop over every site."""

from __future__ import annotations

import math
import random

from telemetry.agentlink.session_table import SessionTable


def _plain_expired(t: SessionTable, now: float, lease_s: float) -> list[int]:
    return [
        row
        for row in range(len(t.sites))
        if t.ever[row] and t.up[row] and now - max(t.last_seen[row], t.lease_from[row]) > lease_s
    ]


def test_expired_rows_are_the_plain_loops() -> None:
    rng = random.Random(7)
    for _ in range(50):
        n = rng.randint(0, 300)
        t = SessionTable([f"s{i}" for i in range(n)])
        for row in range(n):
            t.ever[row] = rng.random() < 0.7
            t.up[row] = rng.random() < 0.8
            t.last_seen[row] = rng.choice([-math.inf, rng.uniform(0, 20), 10.0, 7.0])
            t.lease_from[row] = rng.choice([-math.inf, -math.inf, rng.uniform(0, 30)])
        for now, lease in ((10.0, 3.0), (20.0, 0.5), (13.0, 3.0), (0.0, 3.0)):
            assert t.expired_rows(now, lease) == _plain_expired(t, now, lease)


def test_a_site_never_heard_from_expires_only_once_it_had_an_agent() -> None:
    t = SessionTable(["a", "b"])
    t.ever[1] = 1  # b's agent connected before a restart; a never had one
    assert t.expired_rows(100.0, 3.0) == [1]
    t.lease_from[1] = 99.0  # b's lease runs from a grace period
    assert t.expired_rows(100.0, 3.0) == []
