"""Readable views of the controller's reports: ``slice explain`` and ``what-if`` for people.

The operator API answers both with nested data (``-o json`` prints it whole); these functions
lead with what a person asks first and fold the long parts (per-cell routes, cell lists) into
counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controller.cli import output

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


def _get(data: Mapping[str, Any], key: str) -> Any:
    return data.get(key) if isinstance(data, Mapping) else None


def _decision(report: Mapping[str, Any]) -> str:
    decision = _get(report, "decision")
    state = str(report.get("state", ""))
    if isinstance(decision, Mapping):
        admitted = decision.get("status") == "True"
        verb = "admitted" if admitted else "rejected" if decision.get("status") == "False" else "undecided"
        why = decision.get("reason") or ""
        message = decision.get("message") or ""
        if why.lower() == verb:
            why = ""  # "admitted (Admitted: ...)" says it twice
        if not admitted and why:
            return f"{verb}: {why}"  # the binding constraint, next, says why
        detail = f"{why}: {message}" if why and message else why or message
        return f"{verb} ({detail})" if detail else verb
    return f"not decided yet (state {state})" if state else "not decided yet"


def _binding(report: Mapping[str, Any]) -> str:
    binding = _get(report, "bindingConstraint")
    if isinstance(binding, Mapping):
        return f"{binding.get('reason', '')}: {binding.get('message', '')}".strip(": ")
    failed = [c for c in report.get("checks", []) if isinstance(c, Mapping) and not c.get("passed")]
    if failed:
        first = failed[0]
        return f"{first.get('check')}: {first.get('reason', '')}: {first.get('message', '')}".strip(": ")
    placement = _get(report, "placement")
    resolved = _get(report, "resolved")
    bound = _get(resolved, "latencyMs") if isinstance(resolved, Mapping) else None
    if isinstance(placement, Mapping) and isinstance(bound, int | float) and bound > 0:
        worst = float(placement.get("worstLatencyMs", 0.0))
        return (
            f"none, every check passed (tightest: latency, worst {sig3(worst)} ms "
            f"of the {sig3(float(bound))} ms bound, {100 * worst / bound:.0f}%)"
        )
    return "none, every check passed"


def explain_text(report: Mapping[str, Any], routes: bool = False) -> str:
    """``slicectl slice explain``: a summary first, then the conditions and checks; the
    per-cell routes only with ``routes``."""
    resolved = report.get("resolved") if isinstance(report.get("resolved"), Mapping) else {}
    placement = report.get("placement") if isinstance(report.get("placement"), Mapping) else None
    kind = resolved.get("kind", "?") if resolved else "?"
    lines = [
        f"Slice:          {report.get('slice')} ({kind}, generation {report.get('generation')}, "
        f"state {report.get('state')})",
        f"Decision:       {_decision(report)}",
        f"Binding:        {_binding(report)}",
    ]
    if placement is not None:
        edges = placement.get("edges", [])
        where = ", ".join(f"{e['site']} ({e['cells']} cell{'s' * (e['cells'] != 1)})" for e in edges) or "-"
        bound = resolved.get("latencyMs") if resolved else None
        worst = sig3(float(placement.get("worstLatencyMs", 0.0)))
        unserved = placement.get("unserved", [])
        lines += [
            f"Edge sites:     {where}",
            f"Worst latency:  {worst} ms" + (f" (bound {sig3(float(bound))} ms)" if bound else ""),
        ]
        if unserved:
            lines.append(f"Unserved cells: {len(unserved)} ({_few(unserved)})")
    else:
        lines += ["Edge sites:     - (not placed)", "Worst latency:  -"]
    conditions = {c.get("type"): c for c in report.get("conditions", []) if isinstance(c, Mapping)}
    rows = []
    for name in [*CONDITIONS, *(t for t in conditions if t not in CONDITIONS)]:
        c = conditions.get(name)
        if c is None:
            rows.append([name, "-", "-", "(not set yet)"])
        else:
            rows.append([name, c.get("status", "-"), c.get("reason") or "-", c.get("message") or "-"])
    blocks = ["\n".join(lines), "Conditions:\n" + output.table(["TYPE", "STATUS", "REASON", "MESSAGE"], rows)]
    checks = [c for c in report.get("checks", []) if isinstance(c, Mapping)]
    if checks:
        blocks.append(
            "Checks (against the topology as it is now):\n"
            + output.table(
                ["CHECK", "RESULT", "REASON", "MESSAGE"],
                [
                    [
                        c.get("check"),
                        "pass" if c.get("passed") else "FAIL",
                        c.get("reason") or "-",
                        c.get("message") or "-",
                    ]
                    for c in checks
                ],
            )
        )
    found = placement.get("routes", []) if placement is not None else []
    if routes and found:
        blocks.append(
            "Routes:\n"
            + output.table(
                ["CELL", "EDGE", "LATENCY-MS", "PATH"],
                [[r["cell"], r["edge"], sig3(float(r["latencyMs"])), " > ".join(r["path"])] for r in found],
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


def what_if_counts(report: Mapping[str, Any]) -> dict[str, int]:
    """Counts of a what-if report: cells affected; slices moved (re-placed whole), degraded
    (re-placed, some cells unserved) and lost (could not be re-placed); unaffected."""
    affected = [a for a in report.get("affected", []) if isinstance(a, Mapping)]
    cells = {c for a in affected for c in a.get("lostCells", [])}
    lost = [a for a in affected if not a.get("recovered")]
    degraded = [a for a in affected if a.get("recovered") and a.get("unserved")]
    return {
        "cellsAffected": len(cells),
        "slicesAffected": len(affected),
        "slicesMoved": len(affected) - len(lost) - len(degraded),
        "slicesDegraded": len(degraded),
        "slicesLost": len(lost),
        "slicesUnaffected": int(report.get("unaffected", 0)),
    }


def what_if_text(report: Mapping[str, Any]) -> str:
    """``slicectl topology what-if``: a summary line of counts and one row per slice hit, with
    counts of cells (``-o json`` has the lists)."""
    n = what_if_counts(report)
    failed = [*report.get("failedSites", []), *report.get("failedLinks", [])]
    head = (
        f"What if {', '.join(failed)} failed: {n['slicesAffected']} slices affected, "
        f"{n['slicesUnaffected']} unaffected ({n['slicesMoved']} moved, {n['slicesDegraded']} degraded, "
        f"{n['slicesLost']} lost; {n['cellsAffected']} cells affected)"
    )
    affected = [a for a in report.get("affected", []) if isinstance(a, Mapping)]
    if not affected:
        return head
    rows = []
    for a in affected:
        outcome = "lost" if not a.get("recovered") else "degraded" if a.get("unserved") else "moved"
        rows.append(
            [
                a.get("slice"),
                outcome,
                len(a.get("lostCells", [])),
                ",".join(a.get("lostEdges", [])) or "-",
                ",".join(a.get("edges", [])) or "-",
                len(a.get("unserved", [])) if a.get("recovered") else "-",
                a.get("reason") or "-",
            ]
        )
    table = output.table(
        ["SLICE", "OUTCOME", "CELLS-HIT", "LOST-EDGES", "NEW-EDGES", "UNSERVED", "REASON"], rows
    )
    return f"{head}\n\naffected:\n{table}\n\n(-o json lists every cell)"
