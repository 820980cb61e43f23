"""Readable views of the controller's reports: ``slice explain`` and ``what-if`` for people.

The operator API answers both with messages (``pb.Explanation``, ``pb.WhatIfReport``; ``-o json``
prints them whole, as :mod:`controller.api.reports` turns them into data); these functions lead
with what a person asks first and fold the long parts (per-cell routes, cell lists) into counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.cli import output
from protos.edgeslice.operator.v1 import operator_pb2 as pb

CONDITIONS = ("Admitted", "Placed", "Realised", "SLAMet", "Ready")


def sig3(value: float) -> str:
    """A number to 3 significant figures, never in exponent form, never cutting integer digits.

    >>> sig3(1.5), sig3(12.3456), sig3(0.012345), sig3(4567.8), sig3(0.0)
    ('1.50', '12.3', '0.0123', '4568', '0.00')
    """
    if value == 0:
        return "0.00"
    if abs(value) >= 1000:
        return f"{value:.0f}"
    text = f"{value:#.3g}"
    return text.rstrip(".") if "e" not in text else f"{value:.3f}"


def _decision(report: pb.Explanation) -> str:
    if report.HasField("decision"):
        decision = report.decision
        admitted = decision.status == "True"
        verb = "admitted" if admitted else "rejected" if decision.status == "False" else "undecided"
        why = decision.reason
        message = decision.message
        if why.lower() == verb:
            why = ""  # "admitted (Admitted: ...)" says it twice
        if not admitted and why:
            return f"{verb}: {why}"  # the binding constraint, next, says why
        detail = f"{why}: {message}" if why and message else why or message
        return f"{verb} ({detail})" if detail else verb
    return f"not decided yet (state {report.state})" if report.state else "not decided yet"


def _binding(report: pb.Explanation) -> str:
    if report.HasField("binding_constraint"):
        binding = report.binding_constraint
        return f"{binding.reason}: {binding.message}".strip(": ")
    failed = [c for c in report.checks if not c.passed]
    if failed:
        first = failed[0]
        return f"{first.check}: {first.reason}: {first.message}".strip(": ")
    bound = report.resolved.latency_ms
    if report.HasField("placement") and bound > 0:
        worst = report.placement.worst_latency_ms
        return (
            f"none, every check passed (tightest: latency, worst {sig3(worst)} ms "
            f"of the {sig3(bound)} ms bound, {100 * worst / bound:.0f}%)"
        )
    return "none, every check passed"


def explain_text(report: pb.Explanation, routes: bool = False) -> str:
    """``slicectl slice explain``: a summary first, then the conditions and checks; the
    per-cell routes only with ``routes``."""
    resolved = report.resolved
    placement = report.placement if report.HasField("placement") else None
    lines = [
        f"Slice:          {report.slice} ({resolved.kind or '?'}, generation {report.generation}, "
        f"state {report.state})",
        f"Decision:       {_decision(report)}",
        f"Binding:        {_binding(report)}",
    ]
    if placement is not None:
        where = ", ".join(f"{e.site} ({e.cells} cell{'s' * (e.cells != 1)})" for e in placement.edges) or "-"
        bound = resolved.latency_ms
        worst = sig3(placement.worst_latency_ms)
        unserved = list(placement.unserved_cells)
        lines += [
            f"Edge sites:     {where}",
            f"Worst latency:  {worst} ms" + (f" (bound {sig3(bound)} ms)" if bound else ""),
        ]
        if unserved:
            lines.append(f"Unserved cells: {len(unserved)} ({_few(unserved)})")
    else:
        lines += ["Edge sites:     - (not placed)", "Worst latency:  -"]
    conditions = {c.type: c for c in report.conditions}
    rows = []
    for name in [*CONDITIONS, *(t for t in conditions if t not in CONDITIONS)]:
        c = conditions.get(name)
        if c is None:
            rows.append([name, "-", "-", "(not set yet)"])
        else:
            rows.append([name, c.status or "-", c.reason or "-", c.message or "-"])
    blocks = ["\n".join(lines), "Conditions:\n" + output.table(["TYPE", "STATUS", "REASON", "MESSAGE"], rows)]
    if report.checks:
        blocks.append(
            "Checks (against the topology as it is now):\n"
            + output.table(
                ["CHECK", "RESULT", "REASON", "MESSAGE"],
                [
                    [c.check, "pass" if c.passed else "FAIL", c.reason or "-", c.message or "-"]
                    for c in report.checks
                ],
            )
        )
    found = placement.routes if placement is not None else []
    if routes and found:
        blocks.append(
            "Routes:\n"
            + output.table(
                ["CELL", "EDGE", "LATENCY-MS", "PATH"],
                [[r.cell, r.edge, sig3(r.latency_ms), " > ".join(r.nodes)] for r in found],
            )
        )
    elif found:
        blocks.append(f"({len(found)} per-cell routes; --routes shows them)")
    return "\n\n".join(blocks)


def _few(names: Sequence[str], most: int = 5) -> str:
    """The first few names and how many more.

    >>> _few(["a", "b"]), _few([str(i) for i in range(8)], 3)
    ('a, b', '0, 1, 2 and 5 more')
    """
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def what_if_counts(report: pb.WhatIfReport) -> dict[str, int]:
    """Counts of a what-if report: cells affected; slices moved (re-placed whole), degraded
    (re-placed, some cells unserved) and lost (could not be re-placed); unaffected."""
    affected = report.affected
    cells = {c for a in affected for c in a.lost_cells}
    lost = [a for a in affected if not a.recovered]
    degraded = [a for a in affected if a.recovered and a.unserved_cells]
    return {
        "cellsAffected": len(cells),
        "slicesAffected": len(affected),
        "slicesMoved": len(affected) - len(lost) - len(degraded),
        "slicesDegraded": len(degraded),
        "slicesLost": len(lost),
        "slicesUnaffected": report.unaffected,
    }


def what_if_text(report: pb.WhatIfReport) -> str:
    """``slicectl topology what-if``: a summary line of counts and one row per slice hit, with
    counts of cells (``-o json`` has the lists)."""
    n = what_if_counts(report)
    failed = [*report.failed_sites, *(f"{k.a}:{k.b}" for k in report.failed_links)]
    head = (
        f"What if {', '.join(failed)} failed: {n['slicesAffected']} slices affected, "
        f"{n['slicesUnaffected']} unaffected ({n['slicesMoved']} moved, {n['slicesDegraded']} degraded, "
        f"{n['slicesLost']} lost; {n['cellsAffected']} cells affected)"
    )
    if not report.affected:
        return head
    rows = []
    for a in report.affected:
        outcome = "lost" if not a.recovered else "degraded" if a.unserved_cells else "moved"
        rows.append(
            [
                a.slice,
                outcome,
                len(a.lost_cells),
                ",".join(a.lost_edges) or "-",
                ",".join(a.edges) or "-",
                len(a.unserved_cells) if a.recovered else "-",
                a.reason or "-",
            ]
        )
    table = output.table(
        ["SLICE", "OUTCOME", "CELLS-HIT", "LOST-EDGES", "NEW-EDGES", "UNSERVED", "REASON"], rows
    )
    return f"{head}\n\naffected:\n{table}\n\n(-o json lists every cell)"
