"""Domain values → operator API messages (slices, events, topology status, agents).

The explanation and the what-if report have their own module, :mod:`controller.api.reports`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TypeVar

from controller.api import servicing
from protos.edgeslice.operator.v1 import operator_pb2 as pb

if TYPE_CHECKING:  # for annotations only: the CLI imports this module (through reports)
    from controller.core.placement_model import Placement
    from controller.core.topology import LinkKey
    from controller.runtime import service as service_mod
    from controller.runtime.agent_view import AgentInfo
    from slices.status import Condition


def condition_message(c: Condition) -> pb.Condition:
    return pb.Condition(
        type=c.type.value,
        status=c.status.value,
        reason=c.reason,
        message=c.message,
        observed_generation=c.observed_generation,
        last_transition_time=servicing.timestamp(c.last_transition_time),
    )


def placement_message(p: Placement) -> pb.PlacementSummary:
    return pb.PlacementSummary(
        edges=[
            pb.EdgeShare(site=e.site, cells=e.cells, cpu_millicores=e.cpu_millicores, memory_mib=e.memory_mib)
            for e in p.edges
        ],
        cells_served=len(p.assignments),
        unserved_cells=list(p.unserved),
        worst_latency_ms=p.worst_latency_ms,
        kbps_per_cell=p.kbps_per_cell,
    )


def slice_message(record: service_mod.SliceRecord) -> pb.Slice:
    out = pb.Slice(
        name=record.name,
        generation=record.generation,
        kind=record.intent.kind.value,
        snssai=record.intent.snssai,
        priority=record.intent.priority,
        state=record.state.value,
        reason=record.reason,
        message=record.message,
        conditions=[condition_message(c) for c in record.conditions],
        document_json=json.dumps(record.document.to_wire(), separators=(",", ":")),
        created_at=servicing.timestamp(record.created_at),
        updated_at=servicing.timestamp(record.updated_at),
    )
    if record.placement is not None:
        out.placement.CopyFrom(placement_message(record.placement))
    return out


def event_message(e: service_mod.Event) -> pb.Event:
    return pb.Event(
        seq=e.seq,
        at=servicing.timestamp(e.at),
        actor=e.actor,
        action=e.action,
        slice=e.slice or "",
        site=e.site or "",
        message=e.message,
    )


def apply_result_message(r: service_mod.ApplyResult) -> pb.ApplyResult:
    return pb.ApplyResult(
        name=r.name,
        generation=r.generation,
        changed=r.changed,
        state=r.state.value,
        reason=r.reason,
        message=r.message,
    )


def link_message(key: LinkKey) -> pb.Link:
    return pb.Link(a=key[0], b=key[1])


def site_status_message(x: service_mod.SiteStatus) -> pb.SiteStatus:
    return pb.SiteStatus(
        site=x.site,
        kind=x.kind,
        up=x.up,
        drained=x.drained,
        reason=x.reason,
        cpu_reserved_millicores=x.cpu_reserved,
        cpu_capacity_millicores=x.cpu_capacity,
        memory_reserved_mib=x.memory_reserved,
        memory_capacity_mib=x.memory_capacity,
        radio_reserved_kbps=x.radio_reserved_kbps,
        radio_capacity_kbps=x.radio_capacity_kbps,
        slices=x.slices,
        cordoned=x.cordoned,
    )


def link_utilisation_message(entry: tuple[LinkKey, int, int]) -> pb.LinkUtilisation:
    key, used, cap = entry
    return pb.LinkUtilisation(link=link_message(key), reserved_kbps=used, capacity_kbps=cap)


def topology_status_message(s: service_mod.TopologyStatus) -> pb.TopologyStatus:
    """The whole status in one message (unpaged; the API serves it page by page)."""
    return pb.TopologyStatus(
        name=s.name,
        sites=[site_status_message(x) for x in s.sites],
        down_links=[link_message(k) for k in s.down_links],
        link_utilisation=[link_utilisation_message(u) for u in s.link_utilisation],
    )


def agent_message(a: AgentInfo) -> pb.Agent:
    out = pb.Agent(
        site=a.site,
        kind=a.kind,
        state=a.state.value,
        software_version=a.software_version,
        instance_id=a.instance_id,
        desired_generation=a.desired_generation,
        acked_generation=a.acked_generation,
        messages_per_s=a.messages_per_s,
        rejections=a.rejections,
        epoch=a.epoch,
    )
    if a.lease_expires_in_s is not None:
        out.lease_expires_in_s = a.lease_expires_in_s
    if a.last_seen_s_ago is not None:
        out.last_seen_s_ago = a.last_seen_s_ago
    if a.last_refusal is not None:
        r = a.last_refusal
        out.last_refusal.CopyFrom(
            pb.AgentRefusal(
                generation=r.generation,
                reason=r.reason,
                message=r.message,
                at=servicing.timestamp(r.at),
            )
        )
    return out


_Msg = TypeVar("_Msg", pb.Slice, pb.Event, pb.Agent)


def byte_size(message: _Msg) -> int:
    return message.ByteSize()
