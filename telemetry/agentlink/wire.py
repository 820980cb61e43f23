"""Translation between agent.proto messages and the controller's model: a site's config as the
``ControllerMessage`` pushed to its agent, the Welcome, and the parsing of what agents send.

Agents' messages are parsed with the wire-compatible view in ``agent_ingest.proto`` (KPI columns
kept as the bytes they arrived in, see :mod:`telemetry.agentlink.kpi_store`); the general path
parses the same bytes again with ``agent.proto``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import grpc
from google.protobuf.message import DecodeError

from protos.edgeslice.agent.v1 import agent_ingest_pb2, agent_pb2
from telemetry.agentlink import site_config
from telemetry.agentlink.session import StreamError
from telemetry.agentlink.settings import AgentSettings

METHOD = "/edgeslice.agent.v1.SiteAgent/Connect"
CONTROLLER_VERSION = "edgeslice-controller/0.1.0"


def parse_agent_message(raw: bytes) -> agent_ingest_pb2.IngestAgentMessage:
    """An agent's message, parsed with the ingest view (KPI columns kept as bytes)."""
    try:
        return agent_ingest_pb2.IngestAgentMessage.FromString(raw)
    except DecodeError as exc:
        raise StreamError(
            grpc.StatusCode.INVALID_ARGUMENT, f"message is not a valid AgentMessage: {exc}"
        ) from None


def as_sent(raw: bytes) -> agent_pb2.TelemetryBatch:
    """The message parsed again as agent.proto has it (it parsed as the view, so it parses)."""
    return agent_pb2.AgentMessage.FromString(raw).telemetry


def reparse(batch: agent_ingest_pb2.IngestTelemetryBatch) -> agent_pb2.TelemetryBatch:
    """The view's batch as agent.proto has it. Only for callers without the original bytes
    (tests): a column split on the wire is gone by now, but the view of a batch built in this
    process was never split."""
    return agent_pb2.TelemetryBatch.FromString(batch.SerializeToString())


def welcome_message(
    settings: AgentSettings, site: str, epoch: str, fingerprint: str
) -> agent_pb2.ControllerMessage:
    """The Welcome answering a site's Hello: the session's terms."""
    s = settings
    welcome = agent_pb2.ControllerMessage()
    w = welcome.welcome
    w.site_id = site
    w.lease_ms = round(s.lease_s * 1000)
    w.heartbeat_interval_ms = round(s.heartbeat_interval_s * 1000)
    w.telemetry_interval_ms = round(s.telemetry_interval_s * 1000)
    w.max_message_bytes = s.max_message_bytes
    w.controller_version = CONTROLLER_VERSION
    w.epoch = epoch
    w.max_messages_per_s = math.floor(s.rate_per_s)
    w.max_message_burst = math.floor(s.rate_burst)
    w.hello_timeout_ms = round(s.hello_timeout_s * 1000)
    w.topology_fingerprint = fingerprint
    w.config_resend_ms = round(s.resend_after_s * 1000)
    return welcome


def rejection_message(
    kind: str, where: str, reason: str, message: str, retry_after_ms: int = 0, observed_at: int = 0
) -> agent_pb2.ControllerMessage:
    """An in-band Rejection (``message`` cut to MAX_ACK_MESSAGE by the caller)."""
    out = agent_pb2.ControllerMessage()
    r = out.rejection
    r.message_kind, r.field, r.reason, r.message = kind, where, reason, message
    r.retry_after_ms, r.observed_at_unix_ms = retry_after_ms, observed_at
    return out


def config_message(
    config: site_config.SiteConfig, generation: int, peers: Iterable[str] = ()
) -> agent_pb2.ControllerMessage:
    """The site's config numbered ``generation`` as pushed to its agent."""
    msg = agent_pb2.ControllerMessage()
    sc = msg.config
    sc.site_id = config.site
    sc.generation = generation
    sc.site_kind = config.kind
    sc.peers.extend(sorted(peers))
    for s in config.slices:
        out = sc.slices.add()
        out.name = s.name
        out.snssai.sst = s.sst
        out.snssai.sd = s.sd
        q = s.qos
        out.qos.five_qi = q.five_qi
        out.qos.arp_priority_level = q.arp_priority_level
        out.qos.preemption_capability = q.preemption_capability
        out.qos.preemption_vulnerability = q.preemption_vulnerability
        out.qos.guaranteed_dl_kbps = q.guaranteed_dl_kbps
        out.qos.guaranteed_ul_kbps = q.guaranteed_ul_kbps
        out.qos.latency_budget_ms = q.latency_budget_ms
        out.qos.max_packet_loss = q.max_packet_loss
        if s.radio is not None:
            out.radio.reserved_kbps = s.radio.reserved_kbps
            out.radio.capacity_kbps = s.radio.capacity_kbps
            out.radio.share_ppm = s.radio.share_ppm
        for ln in s.links:
            out.links.add(peer=ln.peer, reserved_kbps=ln.reserved_kbps, capacity_kbps=ln.capacity_kbps)
        if s.compute is not None:
            c = s.compute
            out.compute.cpu_millicores = c.cpu_millicores
            out.compute.memory_mib = c.memory_mib
            out.compute.cells = c.cells
            for w in c.workloads:
                out.compute.workloads.add(
                    name=w.name,
                    image=w.image,
                    replicas=w.replicas,
                    cpu_millicores=w.cpu_millicores,
                    memory_mib=w.memory_mib,
                )
        out.route.extend(s.route)
        out.serving_edge = s.serving_edge
    return msg
