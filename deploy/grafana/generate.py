"""Write the Grafana dashboards of edgeslice as JSON (``deploy/grafana/dashboards/*.json``).

The dashboards are code so that every panel's query is reviewed in one place, and so the
Prometheus integration test (tests/e2e/test_prometheus_integration.py) can check that each query
returns data against a live controller. Regenerate after an edit and commit the JSON:

    .venv/bin/python deploy/grafana/generate.py

``--check`` exits non-zero when the committed JSON differs from what this script writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"

Panel = dict[str, Any]


def _target(expr: str, legend: str = "", instant: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto"}
    if instant:
        t.update({"instant": True, "range": False, "format": "table"})
    return t


def timeseries(
    title: str, targets: list[dict[str, Any]], unit: str = "short", desc: str = "", **field: Any
) -> Panel:
    defaults: dict[str, Any] = {"unit": unit, **field}
    return {
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]}
        },
    }


def stat(
    title: str, targets: list[dict[str, Any]], unit: str = "short", desc: str = "", thresholds: Any = None
) -> Panel:
    defaults: dict[str, Any] = {"unit": unit}
    if thresholds is not None:
        defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
    return {
        "type": "stat",
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
    }


def bargauge(title: str, targets: list[dict[str, Any]], unit: str = "percentunit", desc: str = "") -> Panel:
    steps = [
        {"color": "green", "value": None},
        {"color": "orange", "value": 0.7},
        {"color": "red", "value": 0.85},
    ]
    return {
        "type": "bargauge",
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "max": 1,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": {
            "orientation": "horizontal",
            "displayMode": "gradient",
            "reduceOptions": {"calcs": ["lastNotNull"]},
        },
    }


def table(title: str, targets: list[dict[str, Any]], unit: str = "short", desc: str = "") -> Panel:
    return {
        "type": "table",
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "transformations": [{"id": "merge", "options": {}}],
        "options": {"showHeader": True},
    }


def _variable(name: str, label: str, query: str, multi: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"var-{name}"},
        "definition": query,
        "refresh": 2,
        "includeAll": multi,
        "multi": multi,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
        "sort": 1,
    }


DATASOURCE_VAR = {
    "name": "datasource",
    "label": "Prometheus",
    "type": "datasource",
    "query": "prometheus",
    "current": {"text": "Prometheus", "value": "prometheus"},
}
KIND_VAR = _variable("kind", "Slice kind", "label_values(edgeslice_slices, kind)")
SLICE_VAR = _variable(
    "slice", "Slice", 'label_values(edgeslice_slice_kpi_target_ratio{kind=~"$kind"}, slice)'
)
SITE_VAR = _variable("site", "Site", "label_values(edgeslice_site_up, site)")
AGENT_SITE_VAR = _variable("site", "Site", "label_values(edgeslice_agent_up, site)")


def dashboard(
    uid: str, title: str, desc: str, variables: list[dict[str, Any]], rows: list[list[Panel]]
) -> dict[str, Any]:
    panels: list[Panel] = []
    y = 0
    pid = 1
    for row in rows:
        width = 24 // len(row)
        height = 4 if all(p["type"] == "stat" for p in row) else 8
        for i, p in enumerate(row):
            panels.append({"id": pid, "gridPos": {"h": height, "w": width, "x": i * width, "y": y}, **p})
            pid += 1
        y += height
    return {
        "uid": uid,
        "title": title,
        "description": desc,
        "tags": ["edgeslice"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "templating": {"list": [DATASOURCE_VAR, *variables]},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["edgeslice"], "asDropdown": True, "title": "edgeslice"}],
        "panels": panels,
    }


def city_overview() -> dict[str, Any]:
    k = 'kind=~"$kind"'
    return dashboard(
        "edgeslice-city",
        "edgeslice / City overview",
        "Slices by kind and state, admissions and rejections with reasons, capacity use per edge site and link class.",
        [KIND_VAR, SITE_VAR],
        [
            [
                stat("Slices", [_target(f"sum(edgeslice_slices{{{k}}})", "slices")]),
                stat("Ready", [_target(f'sum(edgeslice_slices{{{k},state="Ready"}})', "ready")]),
                stat(
                    "Degraded or waiting",
                    [
                        _target(
                            f'sum(edgeslice_slices{{{k},state=~"Degraded|Preempted|Pending"}})', "not ready"
                        )
                    ],
                    thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
                ),
                stat(
                    "Sites down",
                    [_target("sum(edgeslice_sites_down)", "sites"), _target("edgeslice_links_down", "links")],
                    thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
                ),
            ],
            [
                timeseries(
                    "Slices by kind and state",
                    [_target(f"sum by (kind, state) (edgeslice_slices{{{k}}})", "{{kind}} {{state}}")],
                    desc="Gauge read from the controller's store at each scrape.",
                ),
                timeseries(
                    "Admission decisions",
                    [
                        _target(
                            f"sum by (kind, outcome) (rate(edgeslice_admission_decisions_total{{{k}}}[{RATE}]))",
                            "{{kind}} {{outcome}}",
                        )
                    ],
                    unit="ops",
                ),
            ],
            [
                table(
                    "Rejections by reason (time range)",
                    [
                        _target(
                            f'sum by (kind, reason) (increase(edgeslice_admission_decisions_total{{{k},outcome="rejected"}}[$__range]))',
                            instant=True,
                        )
                    ],
                    desc="CamelCase reasons; `slicectl slice explain NAME` names the binding constraint.",
                ),
                timeseries(
                    "Preemptions and healings",
                    [
                        _target(
                            f"sum by (kind) (rate(edgeslice_preemptions_total{{{k}}}[{RATE}]))",
                            "preempted {{kind}}",
                        ),
                        _target(
                            f"sum by (kind, result) (rate(edgeslice_healings_total{{{k}}}[{RATE}]))",
                            "healed {{kind}} {{result}}",
                        ),
                    ],
                    unit="ops",
                ),
            ],
            [
                bargauge(
                    "CPU reserved per edge site",
                    [_target('site:edgeslice_site_cpu_reserved:ratio{site=~"$site"}', "{{site}}")],
                    desc="Reserved by slices over allocatable; the EdgesliceEdgeSiteNearlyFull alert fires above 85%.",
                ),
                bargauge(
                    "Memory reserved per edge site",
                    [_target('site:edgeslice_site_memory_reserved:ratio{site=~"$site"}', "{{site}}")],
                ),
            ],
            [
                timeseries(
                    "Reserved per link class and radio",
                    [
                        _target("class:edgeslice_link_class_reserved:ratio", "{{class}}"),
                        _target("edgeslice:radio_reserved:ratio", "radio (all cells)"),
                    ],
                    unit="percentunit",
                ),
                table(
                    "Most loaded links",
                    [_target("topk(20, link:edgeslice_link_reserved:ratio)", instant=True)],
                    unit="percentunit",
                ),
            ],
        ],
    )


def slice_sla() -> dict[str, Any]:
    sel = 'kind=~"$kind",slice=~"$slice"'
    kpi = [
        ("Latency against target", "latency", "above 1: slower than the slice's latency bound"),
        (
            "Throughput against what is owed",
            "throughput",
            "below 1: less than the guaranteed rate (or the demand, if lower)",
        ),
        ("Packet loss against target", "loss", "above 1: more loss than 1 - reliability allows"),
        ("Devices against maximum", "devices", "above 1: more active devices than the slice admits"),
    ]
    red_above_1 = {"thresholdsStyle": {"mode": "line"}}
    panels = [
        timeseries(
            title,
            [_target(f'edgeslice_slice_kpi_target_ratio{{{sel},kpi="{name}"}}', "{{slice}}")],
            unit="percentunit",
            desc=f"Latest agent-reported KPI over its target; {why}.",
            custom=red_above_1,
            thresholds={
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
            },
        )
        for title, name, why in kpi
    ]
    return dashboard(
        "edgeslice-slice-sla",
        "edgeslice / Slice SLA",
        "Each slice's KPIs (latency, throughput, loss, devices) against its targets, and SLA violations.",
        [KIND_VAR, SLICE_VAR],
        [
            [
                stat(
                    "Slices violating their SLA",
                    [_target('sum(edgeslice_slices_sla_violated{kind=~"$kind"})', "violating")],
                    thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
                ),
                stat(
                    "SLA violations (time range)",
                    [
                        _target(
                            'sum(increase(edgeslice_sla_violations_total{kind=~"$kind"}[$__range]))',
                            "violations",
                        )
                    ],
                ),
                stat(
                    "Share of live slices violating",
                    [_target('sum(kind:edgeslice_slices_sla_violated:ratio{kind=~"$kind"})', "ratio")],
                    unit="percentunit",
                ),
            ],
            panels[:2],
            panels[2:],
            [
                table(
                    "Slices violating their SLA now",
                    [_target('edgeslice_slice_sla_violated{kind=~"$kind"}', instant=True)],
                    desc="The SLAMet condition is False; EdgesliceSlaViolated pages after 5 minutes.",
                ),
                timeseries(
                    "SLA violations by kind",
                    [
                        _target(
                            f'sum by (kind) (rate(edgeslice_sla_violations_total{{kind=~"$kind"}}[{RATE}]))',
                            "{{kind}}",
                        )
                    ],
                    unit="ops",
                ),
            ],
            [
                table(
                    "KPI against target per slice",
                    [_target(f"edgeslice_slice_kpi_target_ratio{{{sel}}}", instant=True)],
                    unit="percentunit",
                ),
            ],
        ],
    )


def agents() -> dict[str, Any]:
    s = 'site=~"$site"'
    return dashboard(
        "edgeslice-agents",
        "edgeslice / Agents",
        "Site agents: connectivity, heartbeat age, config generation lag and refusals, agent API traffic.",
        [AGENT_SITE_VAR],
        [
            [
                stat("Agents connected", [_target('sum(edgeslice_agents{state="connected"})', "connected")]),
                stat(
                    "Agents disconnected",
                    [_target('sum(edgeslice_agents{state="disconnected"})', "disconnected")],
                    thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
                ),
                stat(
                    "Agents behind on config",
                    [_target("sum(edgeslice_agents_config_lagging)", "lagging")],
                    thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}],
                ),
            ],
            [
                timeseries(
                    "Connected share by site kind",
                    [_target("kind:edgeslice_agents_connected:ratio", "{{kind}}")],
                    unit="percentunit",
                ),
                table(
                    "Listed agents (edge, core, and any down)",
                    [_target(f"edgeslice_agent_up{{{s}}}", instant=True)],
                ),
            ],
            [
                timeseries(
                    "Heartbeat age per listed agent",
                    [_target(f"site:edgeslice_agent_heartbeat_age:seconds{{{s}}}", "{{site}}")],
                    unit="s",
                ),
                timeseries(
                    "Oldest heartbeat by site kind",
                    [_target("kind:edgeslice_agents_heartbeat_age:max_seconds", "{{kind}}")],
                    unit="s",
                ),
            ],
            [
                timeseries(
                    "Config generation lag",
                    [_target(f"edgeslice_agent_config_generation_lag{{{s}}}", "{{site}}")],
                    desc="Generations pushed but not acknowledged; EdgesliceConfigNotAcknowledged warns after 5 minutes.",
                ),
                timeseries(
                    "Config refusals by reason",
                    [
                        _target(
                            f"sum by (reason) (increase(edgeslice_agent_config_refusals_total[{RATE}]))",
                            "{{reason}}",
                        )
                    ],
                    desc="Configs agents refused (ConfigAck ok=false), resends included; EdgesliceConfigRefused warns after 10 minutes. Which sites: slicectl agent list.",
                ),
                timeseries(
                    "Agent streams opened and ended",
                    [
                        _target(
                            f'sum by (method) (rate(edgeslice_grpc_server_started_total{{api="agent"}}[{RATE}]))',
                            "opened {{method}}",
                        ),
                        _target(
                            f'sum by (method, code) (rate(edgeslice_grpc_server_handled_total{{api="agent"}}[{RATE}]))',
                            "ended {{method}} {{code}}",
                        ),
                    ],
                    unit="ops",
                    desc="Each agent holds one long stream: it ends (with its code) when the agent disconnects.",
                ),
            ],
        ],
    )


def controller_health() -> dict[str, Any]:
    return dashboard(
        "edgeslice-controller",
        "edgeslice / Controller health",
        "Reconcile and placement latency, API latency and errors, the audit trail.",
        [],
        [
            [
                stat(
                    "Controller up",
                    [_target('up{job="edgeslice-controller"}', "{{instance}}")],
                    thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}],
                ),
                stat(
                    "Reconcile p99", [_target("edgeslice:reconcile_duration_seconds:p99_5m", "p99")], unit="s"
                ),
                stat(
                    "Reconcile errors (time range)",
                    [_target("sum(increase(edgeslice_reconcile_errors_total[$__range]))", "errors")],
                    thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
                ),
                stat(
                    "Resident memory",
                    [_target('process_resident_memory_bytes{job="edgeslice-controller"}', "rss")],
                    unit="bytes",
                ),
            ],
            [
                timeseries(
                    "Reconcile and placement duration (p99)",
                    [
                        _target("edgeslice:reconcile_duration_seconds:p99_5m", "reconcile"),
                        _target("edgeslice:placement_duration_seconds:p99_5m", "placement"),
                    ],
                    unit="s",
                ),
                timeseries(
                    "Reconcile passes, changes and errors",
                    [
                        _target(f"rate(edgeslice_reconcile_duration_seconds_count[{RATE}])", "passes"),
                        _target(f"rate(edgeslice_reconcile_changes_total[{RATE}])", "changes"),
                        _target(f"rate(edgeslice_reconcile_errors_total[{RATE}])", "errors"),
                    ],
                    unit="ops",
                ),
            ],
            [
                timeseries(
                    "API latency p99 by method",
                    [
                        _target(
                            "api_method:edgeslice_grpc_server_handling_seconds:p99_5m", "{{api}} {{method}}"
                        )
                    ],
                    unit="s",
                ),
                timeseries(
                    "API calls by method and code",
                    [
                        _target(
                            "sum by (api, method, code) (api_method_code:edgeslice_grpc_server_handled:rate5m)",
                            "{{api}} {{method}} {{code}}",
                        )
                    ],
                    unit="ops",
                ),
            ],
            [
                timeseries(
                    "API errors (non-OK codes)",
                    [
                        _target(
                            f'sum by (api, method, code) (rate(edgeslice_grpc_server_handled_total{{code!="OK"}}[{RATE}]))',
                            "{{api}} {{method}} {{code}}",
                        )
                    ],
                    unit="ops",
                ),
                table(
                    "Controller events by action (time range)",
                    [
                        _target(
                            "sum by (action) (increase(edgeslice_controller_events_total[$__range]))",
                            instant=True,
                        )
                    ],
                ),
            ],
        ],
    )


DASHBOARDS = {
    "city-overview.json": city_overview,
    "slice-sla.json": slice_sla,
    "agents.json": agents,
    "controller-health.json": controller_health,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2, sort_keys=True) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    outputs = render()
    if "--check" in argv:
        stale = [n for n, text in outputs.items() if not (OUT / n).exists() or (OUT / n).read_text() != text]
        for n in stale:
            print(
                f"deploy/grafana/dashboards/{n} is out of date: run deploy/grafana/generate.py",
                file=sys.stderr,
            )
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in outputs.items():
        (OUT / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
