"""The Prometheus rules are valid and their unit tests pass (``promtool test rules``), and the
committed Grafana dashboards are what ``deploy/grafana/generate.py`` writes.

Without ``promtool`` the rule tests skip on a workstation and FAIL when ``CI`` is set."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tests.support.binaries import required_binary
from tests.support.paths import ROOT

PROM = ROOT / "deploy" / "prometheus"


def promtool() -> str:
    return required_binary(
        "promtool",
        "promtool is not installed (Debian/Ubuntu: apt-get install prometheus)",
        "in CI the rule tests must run, not skip",
    )


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_rule_files_are_valid() -> None:
    result = run(promtool(), "check", "rules", *map(str, sorted((PROM / "rules").glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_is_valid() -> None:
    # check config also checks the rule files it names, relative to the config file.
    result = run(promtool(), "check", "config", "--syntax-only", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    tests = sorted(map(str, (PROM / "tests").glob("*.yml")))
    assert len(tests) >= 2
    result = run(promtool(), "test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_and_documentation() -> None:
    groups = yaml.safe_load((PROM / "rules" / "alerts.yml").read_text())["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"]}
    tested = (PROM / "tests" / "alerts_test.yml").read_text()
    documented = (ROOT / "docs" / "observability.md").read_text()
    for name in alerts:
        assert f"alertname: {name}" in tested, f"{name} has no promtool unit test"
        assert name in documented, f"{name} is not explained in docs/observability.md"
    assert {"EdgesliceSlaViolated", "EdgesliceAgentDown", "EdgesliceEdgeSiteNearlyFull"} <= alerts
    assert {"EdgesliceConfigNotAcknowledged", "EdgesliceReconcileErrors", "EdgesliceControllerDown"} <= alerts


def test_dashboards_are_current() -> None:
    result = run(sys.executable, "deploy/grafana/generate.py", "--check")
    assert result.returncode == 0, result.stderr
