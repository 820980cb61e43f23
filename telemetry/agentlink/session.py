"""One agent's stream as the registry tracks it (:class:`Session`), and :class:`StreamError`, the
gRPC status that ends a stream."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from protos.edgeslice.agent.v1 import agent_pb2
from telemetry.agentlink.limits import TokenBucket


class StreamError(Exception):
    """Ends one agent's stream with a gRPC status; never escapes the servicer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Session:
    """One stream of a site's agent, from its Hello until it ends, is replaced or expires."""

    site: str
    row: int  # the site's row in the registry's SessionTable
    serial: int
    version: str
    instance_id: str
    wake: Callable[[], None]
    bucket: TokenBucket
    sent_generation: int = 0
    sent_at: float = -math.inf
    replaced: bool = False
    expired: bool = False
    outbox: deque[agent_pb2.ControllerMessage] = field(default_factory=deque)
    last_throttle_notice: float = -math.inf
    acked_seen: int = 0  # the generation this session's agent acked (read without the lock per heartbeat)
