"""``slicectl plan``: offline admission and placement of slices on a topology file.

Exit 0 once the plan is computed, even when slices are rejected (rejections are results, not
errors); a bad file or flag exits non-zero with one line naming the problem.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import click

from controller.api import reports
from controller.cli import output, readable, selection
from controller.cli.event_window import parse_duration
from controller.core import plan_calendar, planner, whatif
from controller.core.admission import Decision, Outcome
from controller.core.calendar import Window
from controller.core.planner import PlanState
from controller.core.topology import Topology, load_topology, parse_link_key
from slices import errors
from slices.intent import load_slice_files
from slices.profiles import SliceIntent, resolve

BUSIEST = 10


def _decision_row(d: Decision, intents: dict[str, SliceIntent]) -> dict[str, Any]:
    p = d.placement
    intent = intents[d.slice_name]
    row: dict[str, Any] = {
        "slice": d.slice_name,
        "kind": intent.kind.value,
        "priority": intent.priority,
        "outcome": d.outcome.value,
        "reason": d.reason,
        "message": d.message,
    }
    if p is not None and d.outcome == Outcome.ADMITTED:
        row.update(
            edges=reports.edges_data(p.edges),
            cells=len(p.assignments),
            unserved=list(p.unserved),
            worstLatencyMs=round(p.worst_latency_ms, 3),
            latencyBoundMs=intent.latency_ms,
            kbpsPerCell=p.kbps_per_cell,
        )
    if d.preempts:
        row["preempts"] = list(d.preempts)
    return row


def _final_rows(final: Mapping[str, Decision], intents: dict[str, SliceIntent]) -> list[dict[str, Any]]:
    """One row per slice in input order: its final state after all decisions."""
    return [_decision_row(final[name], intents) for name in intents if name in final]


def parse_at(text: str, now: datetime) -> datetime:
    """``--at``: an RFC 3339 time with a zone, ``now``, or ``+DURATION`` from ``now`` (``+2h``, ``+3d``).

    >>> now = datetime(2026, 7, 4, 12, 0, tzinfo=UTC)
    >>> parse_at("2026-07-04T18:00:00+02:00", now).isoformat(), parse_at("+1d2h", now).isoformat()
    ('2026-07-04T16:00:00+00:00', '2026-07-05T14:00:00+00:00')
    >>> parse_at("now", now) == now
    True
    >>> parse_at("+2x", now)
    Traceback (most recent call last):
    ...
    slices.errors.InvalidSpec: --at '+2x': not a duration (e.g. 30s, 10m, 2h, 1d, 1h30m)
    >>> parse_at("2026-07-04T18:00:00", now)
    Traceback (most recent call last):
    ...
    slices.errors.InvalidSpec: --at '2026-07-04T18:00:00': give a time zone (e.g. 2026-07-04T18:00:00Z, or now, +2h, +3d)
    """
    value = text.strip()
    example = "e.g. 2026-07-04T18:00:00Z, or now, +2h, +3d"
    now = now.astimezone(UTC).replace(microsecond=0)
    if value.lower() == "now":
        return now
    if value.startswith("+"):
        try:
            return now + parse_duration(value[1:], "--at")
        except errors.InvalidSpec as exc:
            why = str(exc).partition(": ")[2]
            raise errors.InvalidSpec(f"--at {text!r}: {why}") from None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise errors.InvalidSpec(f"--at {text!r}: not an RFC 3339 time ({example})") from None
    if at.utcoffset() is None:
        raise errors.InvalidSpec(f"--at {text!r}: give a time zone ({example})")
    return at.astimezone(UTC)


class AtType(selection.ParsedType[datetime]):
    """``--at``: read against the clock when the flag is parsed (the core is given the instant)."""

    name = "TIME"
    parsed = datetime
    flag = "--at"

    def parse(self, text: str) -> datetime:
        return parse_at(text, datetime.now(UTC))


def _iso(ts: float) -> str | None:
    if math.isinf(ts):
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _window_data(window: Window | None) -> dict[str, str | None] | None:
    if window is None:
        return None
    return {"start": _iso(window.start), "end": _iso(window.end)}


def _window_text(window: Window | None) -> str:
    return "always" if window is None else str(window)


def _pct(used: int, cap: int) -> float:
    return round(100 * used / cap, 1) if cap else 0.0


def utilisation(state: PlanState) -> dict[str, Any]:
    """Busiest links, every edge site's CPU and memory, and the cells' radio, reserved vs capacity."""
    topo, ledger = state.topology, state.ledger
    links = sorted(
        ((ledger.link_kbps[ln.index], ln) for ln in topo.links if ledger.link_kbps[ln.index]),
        key=lambda t: (-t[0] / t[1].bandwidth_kbps, str(t[1])),
    )
    edges = [
        {
            "site": e,
            "cpuMillicores": ledger.cpu_millicores.get(e, 0),
            "cpuCapacity": topo.sites[e].cpu_millicores,
            "cpuPct": _pct(ledger.cpu_millicores.get(e, 0), topo.sites[e].cpu_millicores),
            "memoryMib": ledger.memory_mib.get(e, 0),
            "memoryCapacity": topo.sites[e].memory_mib,
            "memoryPct": _pct(ledger.memory_mib.get(e, 0), topo.sites[e].memory_mib),
        }
        for e in topo.edge_sites
    ]
    radio = sorted(
        ((kbps, c) for c, kbps in ledger.radio_kbps.items()),
        key=lambda t: (-t[0] / max(topo.sites[t[1]].radio_kbps, 1), t[1]),
    )
    total_cap = sum(topo.sites[c].radio_kbps for c in topo.cells)
    return {
        "busiestLinks": [
            {
                "link": str(ln),
                "reservedMbps": kbps / 1000,
                "capacityMbps": ln.bandwidth_kbps / 1000,
                "pct": _pct(kbps, ln.bandwidth_kbps),
            }
            for kbps, ln in links[:BUSIEST]
        ],
        "edgeSites": edges,
        "radio": {
            "cellsWithReservations": len(ledger.radio_kbps),
            "cells": len(topo.cells),
            "reservedMbps": sum(ledger.radio_kbps.values()) / 1000,
            "capacityMbps": total_cap / 1000,
            "busiestCells": [
                {
                    "cell": c,
                    "reservedMbps": kbps / 1000,
                    "capacityMbps": topo.sites[c].radio_kbps / 1000,
                    "pct": _pct(kbps, topo.sites[c].radio_kbps),
                }
                for kbps, c in radio[:BUSIEST]
            ],
        },
    }


def _print_table(doc: dict[str, Any], windows: Mapping[str, Window | None]) -> None:
    timed = "at" in doc
    scheduled = any(w is not None for w in windows.values())
    rows = []
    for r in doc["slices"]:
        edges = ",".join(e["site"] for e in r.get("edges", [])) or "-"
        latency = f"{r['worstLatencyMs']:g}/{r['latencyBoundMs']:g}" if "worstLatencyMs" in r else "-"
        mbps = f"{r['kbpsPerCell'] * r['cells'] / 1000:g}" if "cells" in r else "-"
        row = [r["slice"], r["kind"], r["priority"], r["outcome"]]
        if timed:
            row.append("yes" if r["active"] else "no")
        row += [edges, latency, mbps, r["reason"]]
        if scheduled:
            row.append(_window_text(windows.get(r["slice"])))
        rows.append(row)
    headers = ["SLICE", "KIND", "PRIO", "OUTCOME"]
    if timed:
        headers.append("ACTIVE")
    headers += ["EDGES", "LAT MS (WORST/BOUND)", "MBPS", "REASON"]
    if scheduled:
        headers.append("WINDOW")
    click.echo(output.table(headers, rows))
    notes = [r for r in doc["slices"] if r["outcome"] != "admitted" or r.get("preempts")]
    if notes:
        click.echo("\nWhy:")
        for r in notes:
            click.echo(f"  {r['slice']}: {r['reason']}: {r['message']}")
    s = doc["summary"]
    click.echo(f"\n{s['admitted']} admitted, {s['rejected']} rejected, {s['preempted']} preempted")
    if timed:
        a = doc["at"]
        held = a["holding"]
        click.echo(
            f"\nAt {a['time']}: {len(held)} slices hold capacity" + (f" ({', '.join(held)})" if held else "")
        )
        for name in a["notActive"]:
            click.echo(f"  not active then: {name} (window {_window_text(windows.get(name))})")
        click.echo(f"\nUtilisation at {a['time']}:")
    elif scheduled:
        click.echo("\nUtilisation: the most held at once over every window, element by element:")
    u = doc["utilisation"]
    click.echo("\nEdge sites:")
    click.echo(
        output.table(
            ["SITE", "CPU (m)", "CPU %", "MEMORY (MiB)", "MEM %"],
            [
                [
                    e["site"],
                    f"{e['cpuMillicores']}/{e['cpuCapacity']}",
                    e["cpuPct"],
                    f"{e['memoryMib']}/{e['memoryCapacity']}",
                    e["memoryPct"],
                ]
                for e in u["edgeSites"]
            ],
        )
    )
    if u["busiestLinks"]:
        click.echo("\nBusiest links:")
        click.echo(
            output.table(
                ["LINK", "RESERVED MBPS", "CAPACITY MBPS", "%"],
                [
                    [ln["link"], f"{ln['reservedMbps']:g}", f"{ln['capacityMbps']:g}", ln["pct"]]
                    for ln in u["busiestLinks"]
                ],
            )
        )
    radio = u["radio"]
    click.echo(
        f"\nRadio: {radio['reservedMbps']:,.0f} of {radio['capacityMbps']:,.0f} Mbps reserved over "
        f"{radio['cellsWithReservations']} of {radio['cells']} cells"
    )
    if radio["busiestCells"]:
        top = radio["busiestCells"][0]
        click.echo(
            f"Busiest cell: {top['cell']} {top['reservedMbps']:g}/{top['capacityMbps']:g} Mbps ({top['pct']}%)"
        )
    w = doc.get("whatIf")
    if w is not None:
        click.echo("\n" + readable.what_if_text(reports.what_if_message(w)))


@click.command()
@click.option(
    "--topology",
    "topology_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="City topology file (YAML or JSON).",
)
@click.argument("slice_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--fail-site", "fail_sites", multiple=True, metavar="ID", help="What if this site failed (repeatable)."
)
@click.option(
    "--fail-link", "fail_links", multiple=True, metavar="A:B", help="What if this link failed (repeatable)."
)
@click.option(
    "--order",
    type=click.Choice(["controller", "given", "priority", "revenue"]),
    default="controller",
    show_default=True,
    help="controller (= given): the order a controller decides them, file order, online, with "
    "preemption; priority: by priority then revenue density (offline batch); revenue: by revenue "
    "density alone (offline, no preemption). Only the controller's order predicts a live apply.",
)
@click.option(
    "--at",
    "at",
    type=AtType(),
    default=None,
    help="Show the plan as it stands at TIME (RFC 3339 with a zone, now, or +2h/+3d from now): "
    "which slices hold capacity then, which are not active, and the utilisation at that instant. "
    "Reserves nothing.",
)
@output.output_option
def plan(
    topology_path: str,
    slice_files: tuple[str, ...],
    fail_sites: tuple[str, ...],
    fail_links: tuple[str, ...],
    order: str,
    at: datetime | None,
    fmt: str,
) -> None:
    """Decide admission and placement for slice files, offline.

    Prints a decision per slice (admitted, rejected or preempted; edge sites; worst latency;
    reservation; reason) and a utilisation summary. Slices with spec.schedule are decided over
    their windows, as the controller decides them: against the slices without a schedule and
    the scheduled ones whose windows overlap. --at TIME shows which slices hold capacity then
    and the utilisation at that instant. With --fail-site/--fail-link it also shows which
    admitted slices the failure would hit and how they would be re-placed. Exits 0 when the
    plan is computed, even if some slices are rejected.
    """
    links = [parse_link_key(text) for text in fail_links]
    topo: Topology = load_topology(topology_path)
    for site in fail_sites:
        if site not in topo.sites:
            raise errors.NotFound(f"--fail-site: site {site!r} is not in topology {topo.name!r}")
    for key in links:
        if key not in topo.link_index:
            raise errors.NotFound(f"--fail-link: link {key[0]}:{key[1]} is not in topology {topo.name!r}")
    documents = load_slice_files(list(slice_files))
    intents = {doc.name: resolve(doc) for doc in documents}
    windows = {doc.name: plan_calendar.window_of(doc.spec.schedule) for doc in documents}
    scheduled = [name for name, w in windows.items() if w is not None]
    wanted = list(intents.values())
    when = at.timestamp() if at is not None else None
    active: dict[str, bool] | None = None
    if order in ("controller", "given"):
        timed = plan_calendar.plan(wanted, topo, windows)
        final = timed.final()
        # What holds at --at (or, without it, the most held at once over every window). Without
        # --at, a what-if sees the slices without a schedule only (they hold at all times).
        state = timed.at(when) if when is not None else timed.peak()
        if when is not None:
            active = {name: timed.holds_at(name, when) for name in intents}
    else:
        if scheduled:
            raise errors.InvalidSpec(
                f"--order {order}: slice {scheduled[0]!r} has spec.schedule, and windows are "
                "planned in the controller's order only (use --order controller)"
            )
        result = planner.plan_batch(wanted, topo, order="revenue" if order == "revenue" else "priority")
        final, state = result.final(), result.state
        if when is not None:
            active = {name: name in state.admitted for name in intents}
    rows = _final_rows(final, intents)
    for r in rows:
        r["window"] = _window_data(windows[r["slice"]])
        if active is not None:
            r["active"] = active[r["slice"]]
    summary = {o.value: sum(1 for r in rows if r["outcome"] == o.value) for o in Outcome}
    doc: dict[str, Any] = {
        "topology": topo.name,
        "order": order,
        "slices": rows,
        "summary": summary,
    }
    if at is not None:
        doc["at"] = {
            "time": at.isoformat().replace("+00:00", "Z"),
            "holding": [r["slice"] for r in rows if r["active"]],
            "notActive": [r["slice"] for r in rows if r["outcome"] == "admitted" and not r["active"]],
        }
    doc["utilisation"] = utilisation(state)
    doc["predictsLive"] = order in ("controller", "given")
    doc["caveats"] = caveats(order, scheduled=bool(scheduled), timed=at is not None)
    if fail_sites or links:
        report = whatif.what_if(topo, state.admitted, fail_sites, links)
        doc["whatIf"] = report.to_dict()
    if fmt == "table":
        _print_table(doc, windows)
        for note in doc["caveats"]:
            click.echo(f"\nnote: {note}")
    else:
        output.emit_data(doc, fmt)


def caveats(order: str, *, scheduled: bool = False, timed: bool = False) -> list[str]:
    """What keeps this plan from predicting what a running controller would do."""
    out = []
    if scheduled:
        out.append(
            "slices with a schedule are decided as bookings whose window has not begun: over the "
            "whole window, preempting nothing (a controller decides a window that has begun from "
            "now on, and may preempt)"
        )
        if not timed:
            out.append(
                "without --at, the utilisation is the most held at once over every window and a "
                "what-if leaves the slices with a schedule out; --at TIME shows one instant"
            )
    if order not in ("controller", "given"):
        out.append(
            f"--order {order} is not the controller's order (it decides slices in the order they "
            "arrive, with preemption): this plan cannot predict the live result"
        )
    out.append(
        "the plan starts from an empty city on this file; a running controller's stored slices, "
        "drained, cordoned or down sites change the live result: `slicectl slice apply "
        "--dry-run=server -f ...` asks the controller itself"
    )
    return out
