"""Operator API messages as plain data (for ``-o json|yaml``) and as tables (for people).

Plain data keeps the API's camelCase names and real integers (protobuf's own JSON mapping
turns int64 into strings, which scripts would have to undo).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from google.protobuf import timestamp_pb2

from controller.api import reports
from controller.booking.ports import SLICE_ID_ANNOTATION, TENANT_LABEL
from controller.cli import output
from protos.edgeslice.operator.v1 import operator_pb2 as pb


def when(ts: timestamp_pb2.Timestamp) -> str:
    """``2026-01-01T12:00:00+00:00`` (seconds are enough for people and scripts).

    >>> when(timestamp_pb2.Timestamp(seconds=1767268800))
    '2026-01-01T12:00:00+00:00'
    """
    return ts.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds")


def apply_result_data(r: pb.ApplyResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "generation": r.generation,
        "changed": r.changed,
        "state": r.state,
        "reason": r.reason,
        "message": r.message,
    }


def placement_data(p: pb.PlacementSummary) -> dict[str, Any]:
    return {
        "edges": reports.edges_data(p.edges),
        "cellsServed": p.cells_served,
        "unservedCells": list(p.unserved_cells),
        "worstLatencyMs": round(p.worst_latency_ms, 3),
        "kbpsPerCell": p.kbps_per_cell,
    }


def slice_data(s: pb.Slice) -> dict[str, Any]:
    return {
        "name": s.name,
        "generation": s.generation,
        "kind": s.kind,
        "snssai": s.snssai,
        "priority": s.priority,
        "state": s.state,
        "reason": s.reason,
        "message": s.message,
        "conditions": [
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "observedGeneration": c.observed_generation,
                "lastTransitionTime": when(c.last_transition_time),
            }
            for c in s.conditions
        ],
        "placement": placement_data(s.placement) if s.HasField("placement") else None,
        "document": json.loads(s.document_json) if s.document_json else None,
        "createdAt": when(s.created_at),
        "updatedAt": when(s.updated_at),
    }


def event_data(e: pb.Event) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": when(e.at),
        "actor": e.actor,
        "action": e.action,
        "slice": e.slice or None,
        "site": e.site or None,
        "message": e.message,
    }


def site_data(s: pb.SiteStatus) -> dict[str, Any]:
    return {
        "site": s.site,
        "kind": s.kind,
        "up": s.up,
        "drained": s.drained,
        "cordoned": s.cordoned,
        "reason": s.reason,
        "cpuReservedMillicores": s.cpu_reserved_millicores,
        "cpuCapacityMillicores": s.cpu_capacity_millicores,
        "memoryReservedMib": s.memory_reserved_mib,
        "memoryCapacityMib": s.memory_capacity_mib,
        "radioReservedKbps": s.radio_reserved_kbps,
        "radioCapacityKbps": s.radio_capacity_kbps,
        "slices": s.slices,
    }


def topology_data(t: pb.TopologyStatus) -> dict[str, Any]:
    return {
        "name": t.name,
        "sites": [site_data(s) for s in t.sites],
        "downLinks": [f"{k.a}:{k.b}" for k in t.down_links],
        "linkUtilisation": [
            {
                "link": f"{u.link.a}:{u.link.b}",
                "reservedKbps": u.reserved_kbps,
                "capacityKbps": u.capacity_kbps,
            }
            for u in t.link_utilisation
        ],
    }


# ---- tables ---------------------------------------------------------------------------------


def edges_text(s: pb.Slice) -> str:
    if not s.HasField("placement"):
        return "-"
    return ",".join(e.site for e in s.placement.edges) or "-"


SLICE_HEADERS = ["NAME", "KIND", "S-NSSAI", "PRIO", "STATE", "REASON", "EDGES", "CELLS", "WORST-MS"]


def slice_row(s: pb.Slice) -> list[object]:
    """The columns of :data:`SLICE_HEADERS` (``-o wide`` adds more after them)."""
    placed = s.HasField("placement")
    return [
        s.name,
        s.kind,
        s.snssai,
        s.priority,
        s.state,
        s.reason or "-",
        edges_text(s),
        s.placement.cells_served if placed else 0,
        f"{s.placement.worst_latency_ms:.2f}" if placed else "-",
    ]


def slices_table(slices: Sequence[pb.Slice]) -> str:
    return output.table(SLICE_HEADERS, [slice_row(s) for s in slices])


def document_of(s: pb.Slice) -> dict[str, Any]:
    """The NetworkSlice document the slice was applied with (empty when it cannot be read)."""
    if not s.document_json:
        return {}
    try:
        document = json.loads(s.document_json)
    except json.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}


def _metadata(s: pb.Slice, key: str) -> dict[str, str]:
    found = (document_of(s).get("metadata") or {}).get(key) or {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def labels_of(s: pb.Slice) -> dict[str, str]:
    """The slice's ``metadata.labels``."""
    return _metadata(s, "labels")


def tenant_of(s: pb.Slice) -> str | None:
    """The booking tenant whose slice this is (its tenant label), None for the operator's own."""
    return labels_of(s).get(TENANT_LABEL) or None


def schedule_of(s: pb.Slice) -> tuple[datetime, datetime | None] | None:
    """``spec.schedule``'s start and end (None: no end), None when the slice has no schedule."""
    schedule = (document_of(s).get("spec") or {}).get("schedule")
    if not isinstance(schedule, dict) or not schedule.get("start"):
        return None
    try:
        start = datetime.fromisoformat(str(schedule["start"]).replace("Z", "+00:00"))
        end = schedule.get("end")
        return start, datetime.fromisoformat(str(end).replace("Z", "+00:00")) if end else None
    except ValueError:
        return None


def _minute(at: datetime) -> str:
    """A window's end for a column: UTC, to the minute unless it has seconds.

    >>> _minute(datetime(2026, 12, 5, 9, 0, tzinfo=UTC)), _minute(datetime(2026, 12, 5, 9, 0, 30, tzinfo=UTC))
    ('2026-12-05T09:00Z', '2026-12-05T09:00:30Z')
    """
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ" if at.second or at.microsecond else "%Y-%m-%dT%H:%MZ")


def window_column(s: pb.Slice) -> str:
    """``spec.schedule`` as one ISO 8601 interval without spaces (``START/END``, ``START/..``
    without an end), ``-`` without a schedule: the WINDOW column of ``-o wide``."""
    schedule = schedule_of(s)
    if schedule is None:
        return "-"
    start, end = schedule
    return f"{_minute(start)}/{_minute(end) if end is not None else '..'}"


def _people_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def window_text(s: pb.Slice) -> str | None:
    """``spec.schedule`` for people, with where the slice stands in it (None without one)."""
    schedule = schedule_of(s)
    if schedule is None:
        return None
    start, end = schedule
    text = f"{_people_time(start)} to {_people_time(end) if end is not None else '(no end)'}"
    stage = {
        "Scheduled": "not begun: capacity booked, nothing realised",
        "Expired": "ended: capacity released",
    }
    return text + (f" ({stage[s.state]})" if s.state in stage else "")


def slice_text(s: pb.Slice) -> str:
    lines = [
        f"Name:        {s.name}",
        f"Kind:        {s.kind} (S-NSSAI {s.snssai}, priority {s.priority})",
        f"State:       {s.state}" + (f" ({s.reason})" if s.reason and s.reason != s.state else ""),
        f"Message:     {s.message or '-'}",
    ]
    tenant = tenant_of(s)
    if tenant is not None:
        booking = _metadata(s, "annotations").get(SLICE_ID_ANNOTATION)
        lines.append(f"Tenant:      {tenant}" + (f" (booking {booking})" if booking else ""))
    window = window_text(s)
    if window is not None:
        lines.append(f"Window:      {window}")
    lines += [
        f"Generation:  {s.generation}",
        f"Updated:     {when(s.updated_at)}",
    ]
    if s.HasField("placement"):
        p = s.placement
        lines.append(
            f"Placement:   {p.cells_served} cells served, worst latency {p.worst_latency_ms:.2f} ms, "
            f"{p.kbps_per_cell} kbit/s per cell"
            + (f", {len(p.unserved_cells)} cells unserved" if p.unserved_cells else "")
        )
        lines += [
            "",
            output.table(
                ["EDGE", "CELLS", "CPU-M", "MEMORY-MIB"],
                [[e.site, e.cells, e.cpu_millicores, e.memory_mib] for e in p.edges],
            ),
        ]
    if s.conditions:
        lines += [
            "",
            output.table(
                ["CONDITION", "STATUS", "REASON", "SINCE", "MESSAGE"],
                [[c.type, c.status, c.reason, when(c.last_transition_time), c.message] for c in s.conditions],
            ),
        ]
    return "\n".join(lines)


EVENT_HEADERS = ["SEQ", "TIME", "ACTOR", "ACTION", "SLICE", "SITE", "MESSAGE"]


def event_row(e: pb.Event) -> list[object]:
    return [e.seq, when(e.at), e.actor, e.action, e.slice or "-", e.site or "-", e.message]


def _event_columns(
    seq: object, at: object, actor: object, action: object, name: object, site: object, message: object
) -> str:
    return f"{seq!s:>6}  {at!s:<25} {actor!s:<20} {action!s:<14} {name!s:<20} {site!s:<12} {message}".rstrip()


def event_line_header() -> str:
    return _event_columns(*EVENT_HEADERS)


def event_line(e: pb.Event) -> str:
    """One event on one line with fixed columns, for ``--follow`` (no table to align later)."""
    return _event_columns(*event_row(e))


def report_text(data: Mapping[str, Any]) -> str:
    """A nested report (explain, what-if) for people: scalars as ``key: value``, lists of
    records as tables, anything else as YAML.

    >>> print(report_text({"slice": "a", "checks": [{"check": "latency", "passed": True}], "n": 2}))
    slice: a
    n: 2
    <BLANKLINE>
    checks:
    CHECK    PASSED
    latency  True
    """
    scalars = [
        f"{k}: {_cell(v) if v != '' else '-'}" for k, v in data.items() if not isinstance(v, Mapping | list)
    ]
    blocks: list[str] = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            headers: list[str] = []
            for item in value:
                headers += [h for h in item if h not in headers]
            rows = [[_cell(item.get(h)) for h in headers] for item in value]
            blocks.append(f"{key}:\n" + output.table([_header(h) for h in headers], rows))
        elif isinstance(value, Mapping | list):
            dumped = yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=110).rstrip()
            blocks.append(
                f"{key}:\n" + "\n".join("  " + line for line in dumped.splitlines())
                if value
                else f"{key}: []"
            )
    return "\n\n".join(["\n".join(scalars), *blocks]) if scalars else "\n\n".join(blocks)


def _header(key: str) -> str:
    """``observedGeneration`` → ``OBSERVED-GENERATION``.

    >>> _header("observedGeneration"), _header("slice")
    ('OBSERVED-GENERATION', 'SLICE')
    """
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", key).upper()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
