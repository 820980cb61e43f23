"""The explanation (ExplainSlice) and the what-if report (WhatIf) as messages, and back.

The controller's service answers both as plain data (:meth:`SlicePort.explain`,
:meth:`TopologyPort.what_if` of :mod:`controller.api.ports`); :func:`explanation_message` and
:func:`what_if_message` turn that into the typed messages the API sends, and
:func:`explanation_data` and :func:`what_if_data` turn the messages back into exactly that data
(what ``slicectl ... -o json`` prints): the same keys in the same order, whole numbers as ints.
Each pair is the one place the JSON shape is read or written outside the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any, Protocol

from controller.api import messages
from controller.core.topology import parse_link_key
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices.status import Condition

# ---- explanation ----------------------------------------------------------------------------


def _edges(entries: Any) -> list[pb.EdgeShare]:
    return [
        pb.EdgeShare(
            site=e["site"], cells=e["cells"], cpu_millicores=e["cpuMillicores"], memory_mib=e["memoryMib"]
        )
        for e in entries
    ]


class Share(Protocol):
    """What an edge site runs of a slice: :class:`pb.EdgeShare` and the core's
    :class:`controller.core.placement_model.EdgeShare` both are one."""

    @property
    def site(self) -> str: ...
    @property
    def cells(self) -> int: ...
    @property
    def cpu_millicores(self) -> int: ...
    @property
    def memory_mib(self) -> int: ...


def edges_data(edges: Iterable[Share]) -> list[dict[str, Any]]:
    """The edge sites of a placement as data: the one JSON shape of a placement's edges
    (explain, ``slice get -o json``, ``plan -o json``).

    >>> edges_data([pb.EdgeShare(site="e1", cells=2, cpu_millicores=500, memory_mib=256)])
    [{'site': 'e1', 'cells': 2, 'cpuMillicores': 500, 'memoryMib': 256}]
    """
    return [
        {"site": e.site, "cells": e.cells, "cpuMillicores": e.cpu_millicores, "memoryMib": e.memory_mib}
        for e in edges
    ]


def placement_detail_message(p: Mapping[str, Any]) -> pb.PlacementDetail:
    """An explanation's ``placement`` (generation, edges, worst latency, routes, unserved)."""
    return pb.PlacementDetail(
        generation=p["generation"],
        edges=_edges(p["edges"]),
        worst_latency_ms=p["worstLatencyMs"],
        routes=[
            pb.CellRoute(cell=r["cell"], edge=r["edge"], nodes=r["path"], latency_ms=r["latencyMs"])
            for r in p["routes"]
        ],
        unserved_cells=p["unserved"],
    )


def placement_detail_data(p: pb.PlacementDetail) -> dict[str, Any]:
    return {
        "generation": p.generation,
        "edges": edges_data(p.edges),
        "worstLatencyMs": p.worst_latency_ms,
        "routes": [
            {"cell": r.cell, "edge": r.edge, "path": list(r.nodes), "latencyMs": r.latency_ms}
            for r in p.routes
        ],
        "unserved": list(p.unserved_cells),
    }


def explanation_message(report: Mapping[str, Any]) -> pb.Explanation:
    """The service's explanation as a message.

    Its keys: ``slice``, ``generation``, ``state``, ``reason``, ``message``, ``resolved`` (kind,
    snssai, latencyMs, kbpsPerCell, priority, preemptible, fiveQI), ``conditions`` (as
    :class:`slices.status.Condition` writes them), ``decision`` (status, reason, message;
    optional), ``checks`` (check, passed, and reason and message when failed), ``placement``
    (see :func:`placement_detail_message`; optional) and ``bindingConstraint`` (reason, message;
    optional).
    """
    r = report["resolved"]
    out = pb.Explanation(
        slice=report["slice"],
        generation=report["generation"],
        state=report["state"],
        reason=report["reason"],
        message=report["message"],
        resolved=pb.ResolvedIntent(
            kind=r["kind"],
            snssai=r["snssai"],
            latency_ms=r["latencyMs"],
            kbps_per_cell=r["kbpsPerCell"],
            priority=r["priority"],
            preemptible=r["preemptible"],
            five_qi=r["fiveQI"],
        ),
        conditions=[messages.condition_message(Condition.model_validate(c)) for c in report["conditions"]],
        checks=[
            pb.AdmissionCheck(
                check=c["check"], passed=c["passed"], reason=c.get("reason", ""), message=c.get("message", "")
            )
            for c in report["checks"]
        ],
    )
    if (d := report.get("decision")) is not None:
        out.decision.CopyFrom(
            pb.AdmissionDecision(status=d["status"], reason=d["reason"], message=d["message"])
        )
    if (p := report.get("placement")) is not None:
        out.placement.CopyFrom(placement_detail_message(p))
    if (b := report.get("bindingConstraint")) is not None:
        out.binding_constraint.CopyFrom(pb.BindingConstraint(reason=b["reason"], message=b["message"]))
    return out


def explanation_data(e: pb.Explanation) -> dict[str, Any]:
    """The explanation as the service writes it (``slicectl slice explain -o json``)."""
    r = e.resolved
    out: dict[str, Any] = {
        "slice": e.slice,
        "generation": e.generation,
        "state": e.state,
        "reason": e.reason,
        "message": e.message,
        "resolved": {
            "kind": r.kind,
            "snssai": r.snssai,
            "latencyMs": r.latency_ms,
            "kbpsPerCell": r.kbps_per_cell,
            "priority": r.priority,
            "preemptible": r.preemptible,
            "fiveQI": r.five_qi,
        },
        "conditions": [
            Condition(
                type=c.type,
                status=c.status,
                reason=c.reason,
                message=c.message,
                observed_generation=c.observed_generation,
                last_transition_time=c.last_transition_time.ToDatetime(tzinfo=UTC),
            ).model_dump(mode="json", by_alias=True)
            for c in e.conditions
        ],
    }
    if e.HasField("decision"):
        d = e.decision
        out["decision"] = {"status": d.status, "reason": d.reason, "message": d.message}
    out["checks"] = [
        {
            "check": c.check,
            "passed": c.passed,
            **({} if c.passed else {"reason": c.reason, "message": c.message}),
        }
        for c in e.checks
    ]
    if e.HasField("placement"):
        out["placement"] = placement_detail_data(e.placement)
    if e.HasField("binding_constraint"):
        b = e.binding_constraint
        out["bindingConstraint"] = {"reason": b.reason, "message": b.message}
    return out


# ---- what-if --------------------------------------------------------------------------------


def what_if_message(report: Mapping[str, Any]) -> pb.WhatIfReport:
    """The service's what-if report as a message.

    Its keys (:meth:`controller.core.whatif.WhatIfReport.to_dict`): ``failedSites``,
    ``failedLinks`` (``"a:b"``), ``affected`` (slice, lostCells, lostEdges, recovered, reason,
    message, edges: the new edge sites, unserved: the cells left unserved) and ``unaffected``
    (a count).
    """
    return pb.WhatIfReport(
        failed_sites=report["failedSites"],
        failed_links=[messages.link_message(parse_link_key(k)) for k in report["failedLinks"]],
        affected=[
            pb.SliceImpact(
                slice=a["slice"],
                lost_cells=a["lostCells"],
                lost_edges=a["lostEdges"],
                recovered=a["recovered"],
                reason=a["reason"],
                message=a["message"],
                edges=a["edges"],
                unserved_cells=a["unserved"],
            )
            for a in report["affected"]
        ],
        unaffected=report["unaffected"],
    )


def what_if_data(w: pb.WhatIfReport) -> dict[str, Any]:
    """The report as the service writes it (``slicectl topology what-if -o json``)."""
    return {
        "failedSites": list(w.failed_sites),
        "failedLinks": [f"{k.a}:{k.b}" for k in w.failed_links],
        "affected": [
            {
                "slice": a.slice,
                "lostCells": list(a.lost_cells),
                "lostEdges": list(a.lost_edges),
                "recovered": a.recovered,
                "reason": a.reason,
                "message": a.message,
                "edges": list(a.edges),
                "unserved": list(a.unserved_cells),
            }
            for a in w.affected
        ],
        "unaffected": w.unaffected,
    }
