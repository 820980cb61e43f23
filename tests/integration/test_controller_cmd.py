"""``slicectl controller run``: bad flags get one clear line and the right exit code; with
``--metrics-port`` the controller serves Prometheus metrics fed by the service, its agent
registry and the operator API's interceptor; the endpoints file names what it serves."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import main
from controller.process.endpoints import read_endpoints
from tests.support.controller_process import start_controller
from tests.support.runtime_helpers import doc


def test_bad_flags_fail_with_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    state = ["--state-dir", str(tmp_path / "sd"), "--listen", "127.0.0.1:0"]
    r = runner.invoke(main, ["controller", "run", "--topology", str(tmp_path / "none.yaml"), *state])
    assert r.exit_code == 2 and "none.yaml: cannot read" in r.output
    r = runner.invoke(main, ["controller", "run", "--state", str(tmp_path / "no" / "x.db"), *state])
    assert r.exit_code == 6 and "does not exist" in r.output
    r = runner.invoke(
        main,
        [
            "controller",
            "run",
            "--state",
            str(tmp_path / "x.db"),
            "--state-dir",
            str(tmp_path / "sd"),
            "--listen",
            "0.0.0.0:0",
        ],
    )
    assert r.exit_code == 2 and "only loopback" in r.output
    assert "Traceback" not in r.output


def test_bad_agent_flags_fail_with_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["controller", "run", "--state-dir", str(tmp_path / "sd"), "--listen", "127.0.0.1:0"]
    cert = tmp_path / "x.pem"
    cert.write_text("not a certificate")
    cases = [
        (
            ["--agents-listen", "0.0.0.0:0"],
            2,
            "--agents-listen 0.0.0.0:0: without --agents-tls-* agents are served on loopback only",
        ),
        (
            ["--agents-tls-cert", str(cert)],
            2,
            "give --agents-tls-cert, --agents-tls-key and --agents-client-ca together",
        ),
        (["--no-agents", "--agents-listen", "127.0.0.1:0"], 2, "--no-agents: do not combine"),
        (
            [
                "--agents-tls-cert",
                str(cert),
                "--agents-tls-key",
                str(cert),
                "--agents-client-ca",
                "/nope/ca.pem",
            ],
            2,
            "--agents-client-ca /nope/ca.pem: cannot read (missing or not readable)",
        ),
        (
            ["--agent-lease", "1", "--agent-heartbeat", "2"],
            2,
            "--agent-heartbeat: 2 s must be positive and shorter than --agent-lease 1 s",
        ),
    ]
    for flags, code, message in cases:
        r = runner.invoke(main, [*base, "--state", str(tmp_path / "x.db"), *flags])
        assert r.exit_code == code and message in r.output, (flags, r.output)
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) <= 3, r.output
    assert not (tmp_path / "x.db").exists()  # refused before anything started


def test_metrics_port_serves_decisions_and_agents(tmp_path: Path) -> None:
    proc = start_controller(tmp_path, extra=("--metrics-port", "0"))
    try:
        endpoints = read_endpoints(tmp_path / "state")
        assert endpoints["operator"] == proc.address
        agents, url = endpoints["agents"], endpoints["metrics"]
        assert agents.startswith("127.0.0.1:") and not agents.endswith(":0")
        deadline = time.monotonic() + 10  # the start line is printed just after the address file
        while "serving on" not in proc.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        announced = proc.log.read_text()
        assert f"agents on {agents}" in announced and f"metrics on {url}" in announced
        with proc.client() as client:
            client.apply([("s.yaml", doc("sensors", "iot", ["cell-01"]).model_dump_json(by_alias=True))])
        body = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "edgeslice_admission_decisions_total{" in body
        # The operator API is intercepted (agents in the metrics: tests/integration/test_controller_agents.py).
        assert 'edgeslice_grpc_server_handled_total{api="operator",' in body
    finally:
        proc.terminate()


def test_no_agents(tmp_path: Path) -> None:
    proc = start_controller(tmp_path, extra=("--no-agents",))
    try:
        assert read_endpoints(tmp_path / "state") == {"operator": proc.address}
        deadline = time.monotonic() + 10
        while "serving on" not in proc.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "agents on" not in proc.log.read_text()
    finally:
        assert proc.terminate() == 0


def test_health_port_answers_in_plaintext(tmp_path: Path) -> None:
    """The kubelet's gRPC probes speak no TLS: --health-listen serves health alone, in plaintext."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    proc = start_controller(tmp_path, extra=("--no-agents", "--health-listen", "127.0.0.1:0"))
    try:
        health_address = read_endpoints(tmp_path / "state")["health"]
        assert health_address != proc.address
        with grpc.insecure_channel(health_address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for service in ("", "edgeslice.operator.v1.OperatorService"):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as err:
                stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        assert proc.terminate() == 0
