"""``slicectl top``: a live terminal view of slices and their SLA state, for operators without
Grafana at hand.

:func:`format_top` is pure (slices, topology status and optional KPI ratios in, text out), so it
is tested without a terminal. :func:`run_top` polls the operator API (and, when given, the
controller's ``/metrics`` endpoint for each slice's KPIs against its targets) and redraws.
"""

from __future__ import annotations

import io
import math
import os
import select
import termios
import time
import tty
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from prometheus_client.parser import text_string_to_metric_families

from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen
KPI_METRIC = "edgeslice_slice_kpi_target_ratio"
KPI_COLUMNS = (("latency", "LAT"), ("throughput", "THR"), ("loss", "LOSS"), ("devices", "DEV"))
#: Rows needing attention first; a booked window not begun (Scheduled) or ended (Expired) last.
STATE_ORDER = ("Degraded", "Preempted", "Pending", "Rejected", "Admitted", "Ready", "Scheduled", "Expired")
#: The summary line: the live states from the healthiest, then the windows not begun and ended.
SUMMARY_ORDER = ("Ready", "Admitted", "Rejected", "Pending", "Preempted", "Degraded", "Scheduled", "Expired")

KpiRatios = Mapping[str, Mapping[str, float]]  # slice -> kpi -> observed / target


class TopSource(Protocol):
    """What ``top`` reads of the operator API (:class:`controller.api.client.ApiClient`)."""

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
    """A KPI over its target as a percentage, or as a multiple when large (never cut: the
    column widens instead).

    >>> _ratio(0.5), _ratio(None), _ratio(float("inf")), _ratio(9.994), _ratio(12.4), _ratio(123456.0)
    ('50%', '-', 'inf', '999%', '12x', '123456x')
    """
    if value is None:
        return "-"
    if value == float("inf"):
        return "inf"
    if math.isnan(value):
        return "nan"
    if value < 10:
        return f"{100 * value:.0f}%"
    return f"{value:.0f}x"


KPI_LEGEND = (
    "LAT LOSS DEV: latency, loss and devices as a share of the slice's target (over 100% breaches)",
    "THR: throughput as a share of its target (under 100% breaches); 12x: 12 times the target",
)
#: Text columns that give way (cut with "…") when a line is wider than the terminal, in this
#: order, down to these widths. Numbers are never cut: a line too wide even then is left whole.
SHRINKABLE = {"REASON": 6, "EDGE": 6, "NAME": 8}
ELLIPSIS = "…"


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, ending in … when cut.

    >>> _cut("LatencyTooHigh", 8), _cut("ok", 8)
    ('Latency…', 'ok')
    """
    return text if len(text) <= width else text[: max(0, width - 1)] + ELLIPSIS


def _fit(headers: Sequence[str], table: Sequence[Sequence[str]], width: int) -> list[str]:
    """Aligned lines no wider than ``width`` where possible, by cutting text columns only."""
    widths = [max(len(x) for x in col) for col in zip(headers, *table, strict=False)]
    over = sum(widths) + 2 * (len(widths) - 1) - width
    for name, least in SHRINKABLE.items():
        if over <= 0:
            break
        if name in headers:
            i = list(headers).index(name)
            give = min(over, max(0, widths[i] - max(least, len(name))))
            widths[i] -= give
            over -= give
    return [
        "  ".join(_cut(v, w).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *table]
    ]


def format_top(
    slices: Sequence[pb.Slice],
    status: pb.TopologyStatus | None,
    kpis: KpiRatios | None = None,
    now: datetime | None = None,
    width: int = 160,
    limit: int = 50,
) -> str:
    """The whole screen: a summary line, then the slices that need attention first.

    Order: SLA violated, then by state (Degraded, Preempted, Pending, Rejected, Admitted, Ready,
    Scheduled, Expired), then by name; at most ``limit`` rows. With ``kpis`` (from the metrics
    endpoint) each row shows latency, throughput, loss and devices against the slice's targets.
    """
    rows = [_row(s) for s in slices]
    rows.sort(key=lambda r: (r.sla != "VIOLATED", _state_rank(r.state), r.name))
    states = Counter(r.state for r in rows)
    violated = sum(1 for r in rows if r.sla == "VIOLATED")
    stamp = (now or datetime.now(UTC)).strftime("%H:%M:%S")
    head = [
        f"edgeslice top  {stamp}  slices {len(rows)}: "
        + ", ".join(
            f"{states[s]} {s}"
            for s in (*SUMMARY_ORDER, *sorted(set(states) - set(SUMMARY_ORDER)))
            if states[s]
        )
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
    out = [*head, "", *_fit(headers, table, width)]
    if len(rows) > limit:
        out.append(f"... {len(rows) - limit} more slices (in good health) not shown")
    if not rows:
        out.append("(no slices)")
    if kpis is not None:
        out += ["", *KPI_LEGEND]
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


class Keys:
    """Single key presses from a terminal, without Enter and without echo (cbreak mode), for
    as long as the ``with`` block lasts; the terminal is restored after. Not a terminal: no keys,
    :meth:`wait` only waits."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._fd = -1
        self._saved: list[Any] | None = None

    def __enter__(self) -> Keys:
        try:
            fd = self._stream.fileno()
        except (OSError, ValueError, io.UnsupportedOperation):
            return self
        if os.isatty(fd):
            self._fd = fd
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def wait(self, timeout_s: float) -> str | None:
        """The key pressed within ``timeout_s`` (None: none, after waiting it all)."""
        if self._saved is None:
            time.sleep(timeout_s)
            return None
        ready, _, _ = select.select([self._fd], [], [], timeout_s)
        if not ready:
            return None
        return os.read(self._fd, 32).decode("utf-8", "replace")[:1] or None


QUIT_KEYS = frozenset("qQ")


def unreachable_screen(problem: str, interval_s: float, last_good: datetime | None, now: datetime) -> str:
    """What ``top`` shows while the controller cannot be reached: it keeps trying.

    >>> t = datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC)
    >>> print(unreachable_screen("cannot reach the controller at 127.0.0.1:1: refused", 2, None, t))
    edgeslice top  12:00:05  cannot reach the controller at 127.0.0.1:1: refused
    retrying every 2 s (q quits); no screen shown yet
    """
    since = f"last screen at {last_good.strftime('%H:%M:%S')}" if last_good else "no screen shown yet"
    return (
        f"edgeslice top  {now.strftime('%H:%M:%S')}  {problem}\n"
        f"retrying every {interval_s:g} s (q quits); {since}"
    )


def run_top(
    source: TopSource,
    write: Callable[[str], None],
    interval_s: float = 2.0,
    iterations: int | None = None,
    metrics_url: str | Callable[[], str | None] | None = None,
    clear: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    width: Callable[[], int] = lambda: 160,
    keys: Callable[[float], str | None] | None = None,
    reconnect: Callable[[], TopSource] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Redraw every ``interval_s`` until ``iterations`` screens were drawn (None: until Ctrl-C
    or, with ``keys`` (a key press within a timeout), until q).

    ``metrics_url`` may be a function, asked at every screen (the endpoints file can move). With
    ``reconnect``, a controller that cannot be reached is a screen saying so, and ``top`` keeps
    trying, each time with ``reconnect()``'s fresh connection, until it answers again; without,
    it is raised (``--once``). A metrics endpoint that cannot be reached costs only the KPI
    columns, with a line saying why, while ``reconnect`` is given.
    """
    drawn = 0
    last_good: datetime | None = None

    def pause() -> bool:
        """Wait for the next screen; True when the user asked to quit."""
        if keys is None:
            sleep(interval_s)
            return False
        return (keys(interval_s) or "") in QUIT_KEYS

    while iterations is None or drawn < iterations:
        url = metrics_url() if callable(metrics_url) else metrics_url
        try:
            slices = source.list_slices()
            status = source.topology_status()
        except errors.Unavailable as exc:
            if reconnect is None:
                raise
            write(
                (CLEAR if clear else "") + unreachable_screen(str(exc), interval_s, last_good, now()) + "\n"
            )
            if pause():
                break
            source = reconnect()
            continue
        kpis, note = None, ""
        if url:
            try:
                kpis = fetch_kpi_ratios(url)
            except errors.Unavailable as exc:
                if reconnect is None:
                    raise
                note = f"\nKPIs not shown: {exc} (retrying)"
        screen = format_top(slices, status, kpis, now=now(), width=width())
        write((CLEAR if clear else "") + screen + note + "\n")
        last_good = now()
        drawn += 1
        if (iterations is None or drawn < iterations) and pause():
            break
    return drawn
