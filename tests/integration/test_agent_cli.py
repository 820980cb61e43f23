"""``slicectl agent list`` and ``slicectl agent get`` against a real ``slicectl controller run``
with its agent server, and the reference agent (``slicectl agent run``) at both edge sites as
separate processes over loopback gRPC. One of them cannot apply its configuration (its backend's
folder cannot be created, so it acks ok=false with BackendUnavailable): the operator sees the
refusal's reason, message and time through ``slicectl agent get``."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from controller.cli import agent_views, main
from controller.process.endpoints import read_endpoints
from tests.support.agents_rig import TOKEN, Rig
from tests.support.controller_process import SLICECTL, ControllerProcess, start_agent, start_controller
from tests.support.runtime_helpers import doc
from tests.support.waiting import eventually


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ControllerProcess]:
    proc = start_controller(tmp_path, extra=("--agent-lease", "3", "--agent-heartbeat", "0.3"))
    try:
        yield proc
    finally:
        proc.terminate()


def slicectl(controller: ControllerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SLICECTL, *args, "--server", controller.address, "--token", controller.token],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("EDGESLICE_")},
    )


def test_agent_list_and_get_show_sessions_and_a_refusal(
    tmp_path: Path, controller: ControllerProcess
) -> None:
    agents_at = read_endpoints(tmp_path / "state")["agents"]
    with controller.client() as client:
        client.apply(
            [("cars.yaml", doc("cars", "vehicle", coverage={"zones": ["corridor-1"]}).model_dump_json())]
        )
        [refusing] = [e.site for e in client.get("cars").placement.edges]
        willing = "edge-2" if refusing == "edge-1" else "edge-1"
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("a file where the agent wants its folder")
        procs = [
            start_agent(refusing, agents_at, blocker / "config", tmp_path / f"{refusing}.log"),
            start_agent(willing, agents_at, tmp_path / "agent-config", tmp_path / f"{willing}.log"),
        ]
        try:
            eventually(
                "both edge agents connected",
                lambda: {a.site for a in client.agents(state="Connected")} >= {refusing, willing},
            )
            eventually(
                f"{refusing}'s refusal is known", lambda: client.agent(refusing).HasField("last_refusal")
            )

            listed = slicectl(controller, "agent", "list", "-o", "json")
            assert listed.returncode == 0, listed.stderr
            by_site = {a["site"]: a for a in json.loads(listed.stdout)}
            edge = by_site[willing]
            assert (edge["kind"], edge["state"]) == ("edge", "Connected")
            assert edge["softwareVersion"] and edge["instanceId"] and edge["epoch"]
            assert 0 < edge["leaseExpiresInS"] <= 3
            assert edge["lastRefusal"] is None
            # Sites without an agent are listed too, as what they are: no lease, never heard from.
            cell = next(a for a in by_site.values() if a["kind"] == "cell")
            assert (cell["state"], cell["leaseExpiresInS"], cell["lastSeenSAgo"]) == ("Never", None, None)

            table = slicectl(controller, "agent", "list", "--state", "Connected")
            assert table.returncode == 0, table.stderr
            header, *rows = table.stdout.splitlines()
            assert header.split() == [
                "SITE",
                "KIND",
                "STATE",
                "LEASE",
                "VERSION",
                "DESIRED",
                "ACKED",
                "REFUSAL",
                "MSG/S",
            ]
            refusing_row = next(r.split() for r in rows if r.startswith(refusing))
            assert refusing_row[2] == "Connected" and refusing_row[7] == "BackendUnavailable"
            assert {r.split()[0] for r in rows} == {refusing, willing}

            got = slicectl(controller, "agent", "get", refusing, "-o", "yaml")
            assert got.returncode == 0, got.stderr
            assert "reason: BackendUnavailable" in got.stdout
            as_json = json.loads(slicectl(controller, "agent", "get", refusing, "-o", "json").stdout)
            refusal = as_json["lastRefusal"]
            assert refusal["reason"] == "BackendUnavailable"
            assert f"cannot record to {blocker / 'config'}" in refusal["message"]
            assert refusal["generation"] >= 1 and refusal["at"].endswith("+00:00")
            assert as_json["ackedGeneration"] < refusal["generation"] <= as_json["desiredGeneration"]

            text = slicectl(controller, "agent", "get", refusing)
            assert text.returncode == 0, text.stderr
            assert "  Reason:    BackendUnavailable" in text.stdout
            assert f"cannot record to {blocker / 'config'}" in text.stdout
            # The refused config is resent (with backoff) and refused again, so the time moves on.
            refused = re.search(r"^Refused:     generation (\d+) at (\S+)$", text.stdout, re.MULTILINE)
            assert refused is not None, text.stdout
            assert int(refused[1]) >= refusal["generation"] and refused[2] >= refusal["at"]
        finally:
            for p in procs:
                p.kill()
                p.wait(timeout=10)

    unknown = slicectl(controller, "agent", "get", "edge-99")
    assert unknown.returncode == 4
    assert unknown.stderr == "error: site 'edge-99' is not in the topology\n"
    assert unknown.stdout == ""


def test_without_agents_the_commands_say_so(tmp_path: Path) -> None:
    proc = start_controller(tmp_path, extra=("--no-agents",))
    try:
        for args in (("agent", "list"), ("agent", "get", "edge-1")):
            result = slicectl(proc, *args)
            assert result.returncode != 0
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and "this controller runs no agent server" in lines[0], result.stderr
            assert "Traceback" not in result.stderr
    finally:
        proc.terminate()


# ---- the commands' output, against the servicer with a directory fake -----------------------


def run_cli(rig: Rig, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--server", rig.server.address, "--token", TOKEN])


def test_agent_list_table_and_data(rig: Rig) -> None:
    table = run_cli(rig, "agent", "list")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == agent_views.AGENT_HEADERS
    assert lines[1].split() == ["cell-1", "cell", "Connected", "2.5s", "ref-agent/1.2", "7", "7", "-", "5.2"]
    assert lines[2].split() == ["cell-2", "cell", "Never", "-", "-", "3", "0", "-", "0.0"]
    assert lines[3].split()[7] == "BackendUnavailable"
    assert (
        run_cli(rig, "agent", "list", "--state", "Disconnected").output.splitlines()[1].startswith("edge-2")
    )
    data = yaml.safe_load(run_cli(rig, "agent", "list", "-o", "yaml", "--state", "Never").output)
    assert data == [
        {
            "site": "cell-2",
            "kind": "cell",
            "state": "Never",
            "leaseExpiresInS": None,
            "lastSeenSAgo": None,
            "softwareVersion": "",
            "instanceId": "",
            "desiredGeneration": 3,
            "ackedGeneration": 0,
            "lastRefusal": None,
            "messagesPerS": 0.0,
            "rejections": 0,
            "epoch": "epoch-a",
        }
    ]
    assert rig.directory is not None
    rig.directory.by_site.clear()
    assert run_cli(rig, "agent", "list", "--state", "Never").output == "no agents in state Never\n"


def test_agent_get_text_shows_the_refusal_in_full(rig: Rig) -> None:
    text = run_cli(rig, "agent", "get", "edge-1")
    assert text.exit_code == 0, text.output
    assert "State:       Connected" in text.output
    assert "Lease:       expires in 2.5s" in text.output
    assert "Generation:  desired 7, acked 6 (epoch epoch-a)" in text.output
    assert "Refused:     generation 7 at 2026-12-01T20:00:05+00:00" in text.output
    assert "  Reason:    BackendUnavailable" in text.output
    assert "  Message:   cannot write /etc/upf.conf" in text.output
    never = run_cli(rig, "agent", "get", "cell-2").output
    assert "Lease:       -" in never and "Last seen:   -" in never and "Refused:     -" in never
    as_json = json.loads(run_cli(rig, "agent", "get", "edge-1", "-o", "json").output)
    assert as_json["lastRefusal"] == {
        "generation": 7,
        "reason": "BackendUnavailable",
        "message": "cannot write /etc/upf.conf",
        "at": "2026-12-01T20:00:05+00:00",
    }
    unknown = run_cli(rig, "agent", "get", "edge-9")
    assert unknown.exit_code == 4
    assert unknown.output == "error: site 'edge-9' is not in the topology\n"
