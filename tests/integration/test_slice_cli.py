"""``slicectl slice ...`` and ``slicectl topology status|drain|undrain|what-if`` against a real
operator API server on port 0, backed by the real ControllerService on a SQLite file."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from controller.cli import main
from controller.cli.progress import Progress
from controller.process import wiring as runtime
from controller.process.config import RuntimeConfig
from tests.support.api_service_rig import TOKEN, Running, slice_yaml


def run(running: Running, *args: object, token: str = TOKEN, stdin: str | None = None) -> Result:
    env = {
        "EDGESLICE_SERVER": running.address,
        "EDGESLICE_TOKEN": token,
        "EDGESLICE_STATE_DIR": "/nonexistent",
    }
    return CliRunner().invoke(main, [str(a) for a in args], env=env, input=stdin)


def user_error(result: Result, code: int) -> str:
    """A user error: its exit code, nothing on stdout, one ``error:`` line on stderr, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_apply_list_get_explain_delete(running: Running, tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", slice_yaml("cars") + "---\n" + slice_yaml("meters", "iot", "[c3]"))
    b = write(tmp_path, "b.yaml", slice_yaml("cams", "wifi", "[c2]"))
    result = run(running, "slice", "apply", "-f", a, "-f", b)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split() == ["NAME", "GEN", "CHANGED", "STATE", "REASON", "MESSAGE"]
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["cars", "meters", "cams"]
    assert result.stderr == ""  # no progress display when stderr is not a terminal

    listed = run(running, "slice", "list")
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["NAME", "cams", "cars", "meters"]
    data = json.loads(run(running, "slice", "list", "-o", "json").stdout)
    assert [s["name"] for s in data] == ["cams", "cars", "meters"]
    assert data[1]["placement"]["edges"][0]["site"] == "e1"
    assert isinstance(data[1]["generation"], int)  # real integers for scripts, not int64 strings
    assert data[1]["document"]["spec"]["coverage"]["sites"] == ["c1"]

    shown = run(running, "slice", "get", "cars")
    assert shown.exit_code == 0 and "Name:        cars" in shown.stdout and "EDGE" in shown.stdout
    as_yaml = yaml.safe_load(run(running, "slice", "get", "cars", "-o", "yaml").stdout)
    assert as_yaml["name"] == "cars" and as_yaml["kind"] == "vehicle"

    why = run(running, "slice", "explain", "cars")
    assert why.exit_code == 0, why.output
    summary = why.stdout.splitlines()[:5]  # the summary leads: decision, binding, edges, latency
    assert summary[0] == "Slice:          cars (vehicle, generation 1, state Ready)"
    assert summary[1].startswith("Decision:       admitted (1 cells served from e1")
    assert summary[2].startswith("Binding:        none, every check passed (tightest: latency, worst ")
    assert summary[3] == "Edge sites:     e1 (1 cell)"
    assert re.fullmatch(r"Worst latency:  \d\.\d\d ms \(bound 5\.00 ms\)", summary[4]), summary[4]
    conditions = why.stdout.split("Conditions:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in conditions] == [
        "TYPE",
        "Admitted",
        "Placed",
        "Realised",
        "SLAMet",
        "Ready",
    ]
    assert conditions[-1].split()[:3] == ["Ready", "True", "Ready"]
    assert "c1 > a1 > e1" not in why.stdout and "(1 per-cell routes; --routes shows them)" in why.stdout
    routed = run(running, "slice", "explain", "cars", "--routes")
    assert routed.exit_code == 0 and "Routes:" in routed.stdout
    assert re.search(r"^c1\s+e1\s+\d\.\d\d\s+c1 > a1 > e1$", routed.stdout, re.M), routed.stdout
    assert json.loads(run(running, "slice", "explain", "cars", "-o", "json").stdout)["slice"] == "cars"

    gone = run(running, "slice", "delete", "cars")
    assert (gone.exit_code, gone.stdout.strip()) == (0, "slice 'cars' deleted")
    assert "no such" not in user_error(run(running, "slice", "get", "cars"), 4)
    assert [s["name"] for s in json.loads(run(running, "slice", "list", "-o", "json").stdout)] == [
        "cams",
        "meters",
    ]


def test_apply_from_stdin_and_folder(running: Running, tmp_path: Path) -> None:
    result = run(running, "slice", "apply", "-f", "-", "-o", "json", stdin=slice_yaml("cars"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["name"] == "cars"
    folder = tmp_path / "slices"
    folder.mkdir()
    write(folder, "1.yaml", slice_yaml("meters", "iot", "[c3]"))
    write(folder, "2.yml", slice_yaml("cams", "wifi", "[c2]"))
    write(folder, "notes.txt", "not a slice")
    result = run(running, "slice", "apply", "-f", folder, "-o", "yaml")
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in yaml.safe_load(result.stdout)] == ["meters", "cams"]


def test_a_rejected_slice_exits_3_after_storing_it(running: Running, tmp_path: Path) -> None:
    ok = write(tmp_path, "ok.yaml", slice_yaml("cars"))
    greedy = write(
        tmp_path, "greedy.yaml", slice_yaml("greedy", "wifi", "[c1]", "  sla: {dlMbpsPerCell: 5000}\n")
    )
    result = run(running, "slice", "apply", "-f", ok, "-f", greedy)
    assert result.exit_code == 3
    assert "Rejected" in result.stdout and result.stderr.strip() == "rejected: greedy"
    assert running.rows() == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("spec: [\n", "error: {path}: not valid YAML at line 2"),
        (
            slice_yaml("x").replace("kind: vehicle", "kind: vehicle\n  colour: red"),
            "spec.colour: unknown field",
        ),
        (
            slice_yaml("x", extra="  priority: -1\n"),
            "spec.priority: Input should be greater than or equal to 0",
        ),
        (slice_yaml("x", extra="  sla: {latencyMs: 50}\n"), "x: spec.sla.latencyMs: 50 ms is too loose"),
        ("", "error: {path}: no NetworkSlice documents in it"),
    ],
)
def test_bad_files_fail_with_one_line_and_store_nothing(
    running: Running, tmp_path: Path, content: str, message: str
) -> None:
    good = write(tmp_path, "good.yaml", slice_yaml("good"))
    bad = write(tmp_path, "bad.yaml", content)
    line = user_error(run(running, "slice", "apply", "-f", good, "-f", bad), 2)
    assert message.format(path=bad) in line
    assert running.rows() == 0


def test_same_name_in_two_files_and_missing_file(running: Running, tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", slice_yaml("cars"))
    b = write(tmp_path, "b.yaml", slice_yaml("cars"))
    line = user_error(run(running, "slice", "apply", "-f", a, "-f", b), 2)
    assert line == f"error: {b}: metadata.name: slice 'cars' is also defined in {a}"
    line = user_error(run(running, "slice", "apply", "-f", tmp_path / "nope.yaml"), 2)
    assert "nope.yaml: cannot read: No such file or directory" in line
    assert running.rows() == 0


def test_authentication_and_connection_errors(running: Running, tmp_path: Path) -> None:
    line = user_error(run(running, "slice", "list", token="wrong-token-0123456789"), 8)
    assert line.startswith(f"error: not authenticated by {running.address}: the bearer token is not known")
    line = user_error(run(running, "slice", "list", token=""), 8)
    assert "no bearer token" in line
    token_file = write(tmp_path, "token", TOKEN + "\n")
    ok = CliRunner().invoke(
        main,
        ["slice", "list", "--server", running.address, "--token-file", str(token_file)],
        env={"EDGESLICE_TOKEN": None, "EDGESLICE_STATE_DIR": "/nonexistent"},
    )
    assert ok.exit_code == 0 and ok.stdout.strip() == "no slices"
    line = user_error(run(running, "slice", "list", "--server", "127.0.0.1:1", "--timeout", "5"), 7)
    assert line.startswith("error: cannot reach the controller at 127.0.0.1:1")
    line = user_error(run(running, "slice", "list", "--server", "no-port"), 2)
    assert "expected HOST:PORT" in line


def test_events_listing_filters_and_formats(running: Running, tmp_path: Path) -> None:
    run(running, "slice", "apply", "-f", write(tmp_path, "a.yaml", slice_yaml("cars")))
    run(running, "slice", "apply", "-f", write(tmp_path, "b.yaml", slice_yaml("cams", "wifi", "[c2]")))
    table = run(running, "slice", "events")
    assert table.exit_code == 0 and table.stdout.splitlines()[0].split()[:4] == [
        "SEQ",
        "TIME",
        "ACTOR",
        "ACTION",
    ]
    assert "operator:ops" in table.stdout
    cars = json.loads(run(running, "slice", "events", "--slice", "cars", "-o", "json").stdout)
    assert cars and {e["slice"] for e in cars} == {"cars"}
    assert [e["seq"] for e in cars] == sorted((e["seq"] for e in cars), reverse=True)  # newest first
    last = cars[0]["seq"]
    after = json.loads(run(running, "slice", "events", "--after-seq", last, "-o", "json").stdout)
    assert after and all(e["seq"] > last for e in after)


def test_events_follow_streams_json_lines(running: Running, tmp_path: Path) -> None:
    """--follow in a real process: it prints the backlog, then events as they happen."""
    run(running, "slice", "apply", "-f", write(tmp_path, "a.yaml", slice_yaml("cars")))
    with running.slicectl_process("slice", "events", "--follow", "-o", "json") as proc:
        try:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline())
            assert first["action"] == "apply" and first["slice"] == "cars"
            running.service.drain("e2", "operator:other")
            while (event := json.loads(proc.stdout.readline()))["action"] != "drain":
                pass
            assert (event["site"], event["actor"]) == ("e2", "operator:other")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_topology_live_commands(running: Running, tmp_path: Path) -> None:
    run(running, "slice", "apply", "-f", write(tmp_path, "a.yaml", slice_yaml("cars")))
    status = run(running, "topology", "status")
    assert status.exit_code == 0, status.output
    assert status.stdout.startswith(
        "Topology small: 8 sites (2 edge, 2 aggregation, 4 cells); 0 down, 0 drained; "
        "0 cells out of service; 0 links down\n"
    )
    table = status.stdout.split("\n\n")[1].splitlines()
    assert table[0].split() == [
        "SITE",
        "KIND",
        "STATE",
        "REASON",
        "CPU-M",
        "MEMORY-MIB",
        "RADIO-MBPS",
        "SLICES",
    ]
    assert [line.split()[:2] for line in table[1:5]] == [
        ["e1", "edge"],
        ["e2", "edge"],
        ["a1", "aggregation"],
        ["a2", "aggregation"],
    ]
    e1 = next(line for line in status.stdout.splitlines() if line.startswith("e1 "))
    assert "4000/16000 (25%)" in e1
    # bandwidth in Mbit/s like `plan`: the vehicle profile's 75 Mbps per cell on the cell's uplink
    assert re.search(r"^a1:c1\s+75/10000 \(1%\)$", status.stdout, re.M), status.stdout
    assert "RESERVED-MBPS" in status.stdout and "KBPS" not in status.stdout
    assert not any(line.startswith("c1 ") for line in status.stdout.splitlines())
    assert "--cells shows them" in status.stdout
    assert any(
        line.startswith("c1 ") for line in run(running, "topology", "status", "--cells").stdout.splitlines()
    )
    data = json.loads(run(running, "topology", "status", "-o", "json").stdout)
    assert {s["site"] for s in data["sites"]} >= {"e1", "e2", "c1"}

    drained = run(running, "topology", "drain", "e1")
    # Issue 13: every slice the drain concerned, with what became of it, then a true summary.
    assert (drained.exit_code, drained.stdout.splitlines()) == (
        0,
        [
            "SLICE  OUTCOME  DETAIL",
            "cars   Moved    now 1 cells served from e2, worst latency 1.7 ms",
            "site e1 drained: 1 moved",
        ],
    )
    after = run(running, "topology", "status").stdout
    assert "; 0 down, 1 drained (e1); " in after.splitlines()[0]
    assert next(line for line in after.splitlines() if line.startswith("e1 ")).split()[:3] == [
        "e1",
        "edge",
        "drained",
    ]
    undrained = json.loads(run(running, "topology", "undrain", "e1", "-o", "json").stdout)
    assert undrained["site"] == "e1" and undrained["action"] == "undrained"
    assert "nowhere" in user_error(run(running, "topology", "drain", "nowhere"), 4)

    report = run(running, "topology", "what-if", "--fail-site", "e2", "--fail-link", "e1:a1")
    assert report.exit_code == 0, report.output
    assert "affected:" in report.stdout and "cars" in report.stdout
    assert report.stdout.startswith(
        "What if e2, a1:e1 failed: 1 slices affected, 0 unaffected (0 moved, 0 degraded, 1 lost; 1 cells affected)\n"
    ), report.stdout
    assert re.search(r"^cars\s+lost\s+1\s+e2\s+-\s+-\s+CoverageOutOfService$", report.stdout, re.M), (
        report.stdout
    )
    data = json.loads(run(running, "topology", "what-if", "--fail-site", "e2", "-o", "json").stdout)
    assert data["affected"][0]["slice"] == "cars"  # it moved to e2 when e1 was drained
    assert "expected A:B" in user_error(run(running, "topology", "what-if", "--fail-link", "e1"), 2)
    usage = run(running, "topology", "what-if")
    assert usage.exit_code == 2 and "give at least one --fail-site or --fail-link" in usage.stderr


def test_dev_mode_controller_needs_no_flags(tmp_path: Path) -> None:
    """`slicectl controller run` defaults: the CLI finds the address and the dev token itself."""
    state_dir = tmp_path / "state"
    config = RuntimeConfig(
        state_file=tmp_path / "edgeslice.db",
        state_dir=state_dir,
        listen="127.0.0.1:0",
        reconcile_interval_s=60,
        environ={},
    )
    controller = runtime.Controller(config)
    controller.start()
    try:
        assert oct((state_dir / "token").stat().st_mode & 0o777) == "0o600"
        env = {"EDGESLICE_STATE_DIR": str(state_dir), "EDGESLICE_SERVER": None, "EDGESLICE_TOKEN": None}
        result = CliRunner().invoke(main, ["slice", "list"], env=env)
        assert (result.exit_code, result.stdout.strip()) == (0, "no slices"), result.output
        result = CliRunner().invoke(main, ["topology", "status", "-o", "json"], env=env)
        assert result.exit_code == 0 and json.loads(result.stdout)["sites"]
        # A token given explicitly wins over the dev token, and is checked.
        result = CliRunner().invoke(main, ["slice", "list", "--token", "x" * 20], env=env)
        assert result.exit_code == 8
    finally:
        controller.stop()


def test_progress_shows_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    with Progress("applying 3 slices", stream=tty, interval_s=0.01) as p:
        p.step(2, 3)
        time.sleep(0.1)
    text = tty.getvalue()
    assert "applying 3 slices 2/3" in text and text.endswith("\r\033[K")  # the line is cleared after
    piped = io.StringIO()
    with Progress("applying", stream=piped, interval_s=0.01):
        time.sleep(0.05)
    assert piped.getvalue() == ""
