"""What the operator sees of the site agents: one read model, written by the agent registry
(``telemetry.agentlink.registry``), read by the operator API and ``slicectl agent``.

It lives in ``controller`` because the operator API (here) reads it and ``controller`` never
imports ``telemetry``; the registry implements :class:`AgentDirectory`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class SessionState(StrEnum):
    CONNECTED = "Connected"  # a session whose lease is valid: the one meaning of "connected"
    DISCONNECTED = "Disconnected"  # had an agent (in this run or before a restart), no valid lease now
    NEVER = "Never"  # no agent has connected for this site


@dataclass(frozen=True)
class Refusal:
    """The last config an agent refused (ConfigAck ok=false)."""

    generation: int
    reason: str  # CamelCase, as the agent sent it
    message: str
    at: datetime


@dataclass(frozen=True)
class AgentInfo:
    site: str
    kind: str  # the site's kind: cell, aggregation, edge, core
    state: SessionState
    lease_expires_in_s: float | None  # None unless connected
    last_seen_s_ago: float | None  # None: never heard from in this run
    software_version: str
    instance_id: str
    desired_generation: int  # 0: nothing desired yet
    acked_generation: int  # 0: nothing acked in this run (or since the agent's Hello)
    last_refusal: Refusal | None
    messages_per_s: float  # accepted messages, averaged over the last minute
    rejections: int  # in-band rejections sent to this agent in this run
    epoch: str  # the controller epoch the acked generation belongs to
    backend: str = ""  # the configuration backend the agent drives (Hello.backend)


class AgentDirectory(Protocol):
    """Every site's agent as the controller knows it, sorted by site id."""

    def agents(self) -> Sequence[AgentInfo]: ...

    def agent(self, site: str) -> AgentInfo | None:
        """None when ``site`` is not in the topology."""
        ...
