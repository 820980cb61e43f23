"""``slicectl plan``: offline admission and placement of slices on a topology file.

Exit 0 once the plan is computed, even when slices are rejected (rejections are results, not
errors); a bad file or flag exits non-zero with one line naming the problem.
"""

from __future__ import annotations

from typing import Any

import click

from controller.api import reports
from controller.cli import output, readable
from controller.core import planner, whatif
from controller.core.admission import Decision, Outcome
from controller.core.planner import PlanResult, PlanState
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


def _final_rows(result: PlanResult, intents: dict[str, SliceIntent]) -> list[dict[str, Any]]:
    """One row per slice in input order: its final state after all decisions."""
    final = result.final()
    return [_decision_row(final[name], intents) for name in intents if name in final]


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


def _print_table(doc: dict[str, Any]) -> None:
    rows = []
    for r in doc["slices"]:
        edges = ",".join(e["site"] for e in r.get("edges", [])) or "-"
        latency = f"{r['worstLatencyMs']:g}/{r['latencyBoundMs']:g}" if "worstLatencyMs" in r else "-"
        mbps = f"{r['kbpsPerCell'] * r['cells'] / 1000:g}" if "cells" in r else "-"
        rows.append([r["slice"], r["kind"], r["priority"], r["outcome"], edges, latency, mbps, r["reason"]])
    click.echo(
        output.table(
            ["SLICE", "KIND", "PRIO", "OUTCOME", "EDGES", "LAT MS (WORST/BOUND)", "MBPS", "REASON"], rows
        )
    )
    notes = [r for r in doc["slices"] if r["outcome"] != "admitted" or r.get("preempts")]
    if notes:
        click.echo("\nWhy:")
        for r in notes:
            click.echo(f"  {r['slice']}: {r['reason']}: {r['message']}")
    s = doc["summary"]
    click.echo(f"\n{s['admitted']} admitted, {s['rejected']} rejected, {s['preempted']} preempted")
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
@output.output_option
def plan(
    topology_path: str,
    slice_files: tuple[str, ...],
    fail_sites: tuple[str, ...],
    fail_links: tuple[str, ...],
    order: str,
    fmt: str,
) -> None:
    """Decide admission and placement for slice files, offline.

    Prints a decision per slice (admitted, rejected or preempted; edge sites; worst latency;
    reservation; reason) and a utilisation summary. With --fail-site/--fail-link it also shows
    which admitted slices the failure would hit and how they would be re-placed. Exits 0 when
    the plan is computed, even if some slices are rejected.
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
    wanted = list(intents.values())
    if order in ("controller", "given"):
        result = planner.plan(wanted, topo)
    else:
        result = planner.plan_batch(wanted, topo, order="revenue" if order == "revenue" else "priority")
    rows = _final_rows(result, intents)
    summary = {o.value: sum(1 for r in rows if r["outcome"] == o.value) for o in Outcome}
    doc: dict[str, Any] = {
        "topology": topo.name,
        "order": order,
        "slices": rows,
        "summary": summary,
        "utilisation": utilisation(result.state),
        "predictsLive": order in ("controller", "given"),
        "caveats": caveats(order),
    }
    if fail_sites or links:
        report = whatif.what_if(topo, result.state.admitted, fail_sites, links)
        doc["whatIf"] = report.to_dict()
    if fmt == "table":
        _print_table(doc)
        for note in doc["caveats"]:
            click.echo(f"\nnote: {note}")
    else:
        output.emit_data(doc, fmt)


def caveats(order: str) -> list[str]:
    """What keeps this plan from predicting what a running controller would do."""
    out = []
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
