"""The controller's end of the agent link: sessions and leases, site configs and their generations, KPIs and the SLA verdicts.

One concept per module: :mod:`~telemetry.agentlink.ports` (what the link needs of the controller),
:mod:`~telemetry.agentlink.settings`, :mod:`~telemetry.agentlink.limits` (rate limiter, field
limits), :mod:`~telemetry.agentlink.session` and :mod:`~telemetry.agentlink.session_table` (the one
agent table), :mod:`~telemetry.agentlink.registry`, :mod:`~telemetry.agentlink.desired` (what each
site should run), :mod:`~telemetry.agentlink.wire` (proto ⇄ model),
:mod:`~telemetry.agentlink.servicer` (the gRPC handler), :mod:`~telemetry.agentlink.lease`,
:mod:`~telemetry.agentlink.kpi_store`, :mod:`~telemetry.agentlink.sla` and its columnar windows
:mod:`~telemetry.agentlink.sla_windows`, :mod:`~telemetry.agentlink.site_config` and
:mod:`~telemetry.agentlink.server` (running it all). The names below are what its callers use.
"""

from telemetry.agentlink.limits import MAX_GENERATION
from telemetry.agentlink.ports import ControllerPort
from telemetry.agentlink.registry import AgentRegistry, Effect
from telemetry.agentlink.server import AgentServer, TlsFiles, serve_agents, server_options
from telemetry.agentlink.servicer import AgentServicer, check_identity, peer_site_identities
from telemetry.agentlink.session import Session, StreamError
from telemetry.agentlink.session_table import SessionColumns, SiteSessionStatus
from telemetry.agentlink.settings import AGENT_POLICIES, KNOWN_REFUSALS, AgentSettings
from telemetry.agentlink.sla import KpiSample
from telemetry.agentlink.wire import METHOD, parse_agent_message

__all__ = [
    "AGENT_POLICIES",
    "KNOWN_REFUSALS",
    "MAX_GENERATION",
    "METHOD",
    "AgentRegistry",
    "AgentServer",
    "AgentServicer",
    "AgentSettings",
    "ControllerPort",
    "Effect",
    "KpiSample",
    "Session",
    "SessionColumns",
    "SiteSessionStatus",
    "StreamError",
    "TlsFiles",
    "check_identity",
    "parse_agent_message",
    "peer_site_identities",
    "serve_agents",
    "server_options",
]
