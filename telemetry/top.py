"""``slicectl top``: a live terminal view of slices and their SLA state, for operators without
Grafana at hand.

:func:`format_top` is pure (slices, topology status and optional KPI ratios in, text out), so it
is tested without a terminal. :func:`run_top` polls the operator API (and, when given, the
controller's ``/metrics`` endpoint for each slice's KPIs against its targets) and redraws.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen
KPI_METRIC = "edgeslice_slice_kpi_target_ratio"
KPI_COLUMNS = (("latency", "LAT"), ("throughput", "THR"), ("loss", "LOSS"), ("devices", "DEV"))
STATE_ORDER = ("Degraded", "Preempted", "Pending", "Rejected", "Admitted", "Ready")

KpiRatios = Mapping[str, Mapping[str, float]]  # slice -> kpi -> observed / target


class TopSource(Protocol):
    """What ``top`` reads of the operator API (:class:`controller.api_client.ApiClient`)."""

    def list_slices(self) -> list[pb.Slice]: ...

    def topology_status(self) -> pb.TopologyStatus: ...


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    state: str
    sla: str
    cells: int
    edges: str
    worst_ms: str
    reason: str


def sla_state(s: pb.Slice) -> str:
    """``met``, ``VIOLATED`` or ``-`` (no verdict yet) from the SLAMet condition."""
    for c in s.conditions:
        if c.type == "SLAMet":
            return {"True": "met", "False": "VIOLATED"}.get(c.status, "-")
    return "-"


def _row(s: pb.Slice) -> Row:
    placed = s.HasField("placement")
    sla = sla_state(s)
    reason = s.reason
    if sla == "VIOLATED":
        cond = next(c for c in s.conditions if c.type == "SLAMet")
        reason = f"{cond.reason}: {cond.message}" if cond.message else cond.reason
    return Row(
        name=s.name,
        kind=s.kind,
        state=s.state,
        sla=sla,
        cells=s.placement.cells_served if placed else 0,
        edges=",".join(e.site for e in s.placement.edges) if placed else "-",
        worst_ms=f"{s.placement.worst_latency_ms:.2f}" if placed else "-",
        reason=reason or "-",
    )


def _ratio(value: float | None) -> str:
    """A KPI over its target as a percentage.

    >>> _ratio(0.5), _ratio(None), _ratio(float("inf"))
    ('50%', '-', 'inf')
    """
    if value is None:
        return "-"
    if value == float("inf"):
        return "inf"
    return f"{100 * value:.0f}%"


def format_top(
    slices: Sequence[pb.Slice],
    status: pb.TopologyStatus | None,
    kpis: KpiRatios | None = None,
    now: datetime | None = None,
    width: int = 160,
    limit: int = 50,
) -> str:
    """The whole screen: a summary line, then the slices that need attention first.

    Order: SLA violated, then by state (Degraded, Preempted, Pending, Rejected, Admitted, Ready),
    then by name; at most ``limit`` rows. With ``kpis`` (from the metrics endpoint) each row shows
    latency, throughput, loss and devices against the slice's targets.
    """
    rows = [_row(s) for s in slices]
    rows.sort(key=lambda r: (r.sla != "VIOLATED", _state_rank(r.state), r.name))
    states = Counter(r.state for r in rows)
    violated = sum(1 for r in rows if r.sla == "VIOLATED")
    stamp = (now or datetime.now(UTC)).strftime("%H:%M:%S")
    head = [
        f"edgeslice top  {stamp}  slices {len(rows)}: "
        + ", ".join(f"{states[s]} {s}" for s in reversed(STATE_ORDER) if states[s])
        + f"  |  SLA violated {violated}"
    ]
    if status is not None:
        down = [s for s in status.sites if not s.up or s.drained]
        edges = [s for s in status.sites if s.kind == "edge"]
        busy = max(
            (
                s.cpu_reserved_millicores / s.cpu_capacity_millicores
                for s in edges
                if s.cpu_capacity_millicores
            ),
            default=0.0,
        )
        head.append(
            f"topology {status.name}: {len(status.sites)} sites, {len(down)} down or drained, "
            f"{len(status.down_links)} links down, busiest edge site CPU {100 * busy:.0f}% reserved"
        )
    headers = ["NAME", "KIND", "STATE", "SLA", "CELLS", "EDGE", "WORST-MS"]
    if kpis is not None:
        headers += [label for _, label in KPI_COLUMNS]
    headers.append("REASON")
    table: list[list[str]] = []
    for r in rows[:limit]:
        line = [r.name, r.kind, r.state, r.sla, str(r.cells), r.edges, r.worst_ms]
        if kpis is not None:
            mine = kpis.get(r.name, {})
            line += [_ratio(mine.get(k)) for k, _ in KPI_COLUMNS]
        line.append(r.reason)
        table.append(line)
    widths = [max(len(x) for x in col) for col in zip(headers, *table, strict=False)]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *table]
    ]
    out = [*head, "", *(line[:width] for line in lines)]
    if len(rows) > limit:
        out.append(f"... {len(rows) - limit} more slices (in good health) not shown")
    if not rows:
        out.append("(no slices)")
    return "\n".join(out)


def _state_rank(state: str) -> int:
    return STATE_ORDER.index(state) if state in STATE_ORDER else len(STATE_ORDER)


def parse_kpi_ratios(text: str) -> dict[str, dict[str, float]]:
    """Each slice's KPI ratios from a ``/metrics`` page.

    >>> page = 'edgeslice_slice_kpi_target_ratio{kind="iot",kpi="latency",slice="m"} 0.25\\n'
    >>> parse_kpi_ratios(page)
    {'m': {'latency': 0.25}}
    """
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != KPI_METRIC:
            continue
        for sample in family.samples:
            out.setdefault(sample.labels["slice"], {})[sample.labels["kpi"]] = sample.value
    return out


def fetch_kpi_ratios(url: str, timeout_s: float = 5.0) -> dict[str, dict[str, float]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            text = resp.read().decode("utf-8")
    except (urllib.error.URLError, OSError) as exc:
        raise errors.Unavailable(f"metrics endpoint {url}: {getattr(exc, 'reason', exc)}") from exc
    return parse_kpi_ratios(text)


def run_top(
    source: TopSource,
    write: Callable[[str], None],
    interval_s: float = 2.0,
    iterations: int | None = None,
    metrics_url: str | None = None,
    clear: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    width: Callable[[], int] = lambda: 160,
) -> int:
    """Redraw every ``interval_s`` until ``iterations`` screens were drawn (None: until Ctrl-C)."""
    drawn = 0
    while iterations is None or drawn < iterations:
        slices = source.list_slices()
        status = source.topology_status()
        kpis = fetch_kpi_ratios(metrics_url) if metrics_url else None
        screen = format_top(slices, status, kpis, width=width())
        write((CLEAR if clear else "") + screen + "\n")
        drawn += 1
        if iterations is None or drawn < iterations:
            sleep(interval_s)
    return drawn
