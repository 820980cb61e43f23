"""Agents (``edgeslice.operator.v1.Agent``) as plain data for ``-o json|yaml`` and as text for
people: ``slicectl agent list`` and ``slicectl agent get``.

Plain data keeps every field with the API's meaning: what the controller does not know (no
lease, never heard from, nothing refused) is ``null``, never a zero that reads as a fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controller.cli import listing, output, selection
from controller.cli.views import when
from protos.edgeslice.operator.v1 import operator_pb2 as pb

AGENT_HEADERS = ["SITE", "KIND", "STATE", "LEASE", "VERSION", "DESIRED", "ACKED", "REFUSAL", "MSG/S"]


def refusal_data(r: pb.AgentRefusal) -> dict[str, Any]:
    return {"generation": r.generation, "reason": r.reason, "message": r.message, "at": when(r.at)}


def agent_data(a: pb.Agent) -> dict[str, Any]:
    return {
        "site": a.site,
        "kind": a.kind,
        "state": a.state,
        "leaseExpiresInS": round(a.lease_expires_in_s, 3) if a.HasField("lease_expires_in_s") else None,
        "lastSeenSAgo": round(a.last_seen_s_ago, 3) if a.HasField("last_seen_s_ago") else None,
        "softwareVersion": a.software_version,
        "instanceId": a.instance_id,
        "desiredGeneration": a.desired_generation,
        "ackedGeneration": a.acked_generation,
        "lastRefusal": refusal_data(a.last_refusal) if a.HasField("last_refusal") else None,
        "messagesPerS": round(a.messages_per_s, 3),
        "rejections": a.rejections,
        "epoch": a.epoch,
    }


def seconds(value: float) -> str:
    """A duration for people.

    >>> seconds(2.345), seconds(75), seconds(7300)
    ('2.3s', '1m15s', '2h01m')
    """
    if value < 60:
        return f"{value:.1f}s"
    whole = int(value)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def lease_text(a: pb.Agent) -> str:
    return seconds(a.lease_expires_in_s) if a.HasField("lease_expires_in_s") else "-"


def agent_row(a: pb.Agent) -> list[object]:
    return [
        a.site,
        a.kind,
        a.state,
        lease_text(a),
        a.software_version or "-",
        a.desired_generation,
        a.acked_generation,
        a.last_refusal.reason if a.HasField("last_refusal") else "-",
        f"{a.messages_per_s:.1f}",
    ]


def agents_table(agents: Sequence[pb.Agent]) -> str:
    return output.table(AGENT_HEADERS, [agent_row(a) for a in agents])


def agent_text(a: pb.Agent) -> str:
    """Everything known about one site's agent, the last refusal in full."""
    lines = [
        f"Site:        {a.site} ({a.kind})",
        f"State:       {a.state}",
        f"Lease:       {'expires in ' + lease_text(a) if a.HasField('lease_expires_in_s') else '-'}",
        f"Last seen:   {seconds(a.last_seen_s_ago) + ' ago' if a.HasField('last_seen_s_ago') else '-'}",
        f"Version:     {a.software_version or '-'}",
        f"Instance:    {a.instance_id or '-'}",
        f"Generation:  desired {a.desired_generation}, acked {a.acked_generation}"
        + (f" (epoch {a.epoch})" if a.epoch else ""),
        f"Messages:    {a.messages_per_s:.1f}/s over the last minute",
        f"Rejections:  {a.rejections}",
    ]
    if a.HasField("last_refusal"):
        r = a.last_refusal
        lines += [
            f"Refused:     generation {r.generation} at {when(r.at)}",
            f"  Reason:    {r.reason}",
            f"  Message:   {r.message or '-'}",
        ]
    else:
        lines.append("Refused:     -")
    return "\n".join(lines)


WIDE_HEADERS = [*AGENT_HEADERS, "LAST-SEEN", "INSTANCE", "EPOCH", "REJECTIONS"]


def wide_row(a: pb.Agent) -> list[object]:
    seen = seconds(a.last_seen_s_ago) + " ago" if a.HasField("last_seen_s_ago") else "-"
    return [*agent_row(a), seen, a.instance_id or "-", a.epoch, a.rejections]


AGENTS: listing.Printed[pb.Agent] = listing.Printed(
    name=lambda a: f"agent/{a.site}",
    data=agent_data,
    text=agent_text,
    table=agents_table,
    wide_headers=WIDE_HEADERS,
    wide_row=wide_row,
)


def emit_agents(agents: Sequence[pb.Agent], fmt: selection.Format, empty: str) -> None:
    """``agent list`` in any ``-o`` of the get/list commands."""
    listing.emit_many(AGENTS, agents, fmt, empty)


def emit_agent(a: pb.Agent, fmt: selection.Format) -> None:
    """``agent get`` in any ``-o`` of the get/list commands."""
    listing.emit_one(AGENTS, a, fmt)
