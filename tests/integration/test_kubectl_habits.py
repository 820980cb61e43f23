"""kubectl habits in slicectl against a real operator API server on loopback (backed by the real
ControllerService on a SQLite file): ``-l`` selectors, ``delete -f|-l|--all``, ``-o
wide|name|jsonpath=``, ``events --tail|--since``, ``get --watch``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from controller.cli import event_window, main, selection
from slices import errors
from tests.support.api_service_rig import TOKEN, Running, slice_yaml


def run(running: Running, *args: object, stdin: str | None = None) -> Result:
    env = {
        "EDGESLICE_SERVER": running.address,
        "EDGESLICE_TOKEN": TOKEN,
        "EDGESLICE_STATE_DIR": "/nonexistent",
        "EDGESLICE_CONFIG": "/nonexistent/config.yaml",
    }
    return CliRunner().invoke(main, [str(a) for a in args], env=env, input=stdin)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output)
    assert "Traceback" not in result.stderr
    return result.stdout


def user_error(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def labelled(name: str, labels: dict[str, str], kind: str = "iot", cells: str = "[c3]") -> str:
    text = slice_yaml(name, kind, cells)
    return text.replace(
        f"metadata: {{name: {name}}}", f"metadata: {{name: {name}, labels: {json.dumps(labels)}}}"
    )


@pytest.fixture
def city(running: Running, tmp_path: Path) -> Path:
    """Four slices: gold/north, gold/south, silver/north, and one without labels."""
    docs = [
        labelled("g-north", {"tier": "gold", "region": "north"}),
        labelled("g-south", {"tier": "gold", "region": "south"}),
        labelled("s-north", {"tier": "silver", "region": "north"}),
        slice_yaml("plain", "iot", "[c2]"),
    ]
    path = tmp_path / "city.yaml"
    path.write_text("---\n".join(docs))
    ok(run(running, "slice", "apply", "-f", path))
    return path


def names(running: Running, *args: object) -> list[str]:
    return ok(run(running, "slice", "list", *args, "-o", "name")).split()


def test_list_selectors(running: Running, city: Path) -> None:
    assert names(running) == ["slice/g-north", "slice/g-south", "slice/plain", "slice/s-north"]
    assert names(running, "-l", "tier=gold") == ["slice/g-north", "slice/g-south"]
    assert names(running, "-l", "tier==gold,region!=north") == ["slice/g-south"]
    assert names(running, "--selector", "region") == ["slice/g-north", "slice/g-south", "slice/s-north"]
    assert names(running, "-l", "!tier") == ["slice/plain"]
    assert names(running, "-l", "region!=north") == ["slice/g-south", "slice/plain"]  # no label: != holds
    assert ok(run(running, "slice", "list", "-l", "tier=bronze")).strip() == "no slices match the selector"
    line = user_error(run(running, "slice", "list", "-l", "tier in (gold)"), 2)
    assert "'-l' / '--selector'" in line and "is not a label key" in line
    line = user_error(run(running, "slice", "list", "-l", "tier=gold,"), 2)
    assert "empty requirement" in line


def test_output_formats(running: Running, city: Path) -> None:
    wide = ok(run(running, "slice", "list", "-o", "wide")).splitlines()
    assert wide[0].split()[-5:] == ["GEN", "UNSERVED", "KBPS/CELL", "UPDATED", "LABELS"]
    north = next(line for line in wide if line.startswith("g-north "))
    assert north.split()[-1] == "region=north,tier=gold"
    assert next(line for line in wide if line.startswith("plain ")).split()[-1] == "-"
    assert ok(run(running, "slice", "get", "g-north", "-o", "name")).strip() == "slice/g-north"
    listed = ok(run(running, "slice", "list", "-o", "jsonpath={.items[*].name}"))
    assert listed.strip() == "g-north g-south plain s-north"
    ranged = ok(
        run(
            running,
            "slice",
            "list",
            "-l",
            "tier=gold",
            "-o",
            'jsonpath={range .items[*]}{.name}:{.state}{"\\n"}{end}',
        )
    )
    assert [line.split(":")[0] for line in ranged.splitlines()] == ["g-north", "g-south"]
    states = {line.split(":")[1] for line in ranged.splitlines()}
    assert states and states <= {"Ready", "Admitted", "Placed"}
    got = ok(run(running, "slice", "get", "g-north", "-o", "jsonpath={.document.metadata.labels.tier}"))
    assert got.strip() == "gold"
    bare = ok(run(running, "slice", "get", "g-north", "-o", "jsonpath=.kind"))
    assert bare.strip() == "iot"
    assert (
        yaml.safe_load(ok(run(running, "slice", "get", "slice/g-north", "-o", "yaml")))["name"] == "g-north"
    )
    line = user_error(run(running, "slice", "list", "-o", "xml"), 2)
    assert "'-o' / '--output'" in line and "jsonpath=EXPR" in line
    line = user_error(run(running, "slice", "list", "-o", "jsonpath={.items[*"), 2)
    assert "'-o' / '--output'" in line and "without '}'" in line


def test_delete_by_file_selector_and_all(running: Running, city: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text(labelled("g-north", {"tier": "gold"}))
    assert ok(run(running, "slice", "delete", "-f", one)).strip() == "slice 'g-north' deleted"
    assert json.loads(ok(run(running, "slice", "delete", "-l", "tier=gold", "-o", "json"))) == {
        "deleted": ["g-south"]
    }
    assert names(running) == ["slice/plain", "slice/s-north"]
    # the file names slices that are gone already: nothing to release, not an error
    assert ok(run(running, "slice", "delete", "-f", city)).splitlines() == [
        "slice 's-north' deleted",  # in the file's order
        "slice 'plain' deleted",
    ]
    assert ok(run(running, "slice", "delete", "--all")).strip() == "no slices deleted"
    ok(run(running, "slice", "apply", "-f", city))
    assert len(ok(run(running, "slice", "delete", "--all")).splitlines()) == 4
    assert ok(run(running, "slice", "list")).strip() == "no slices"
    line = user_error(run(running, "slice", "delete", "nope"), 4)
    assert "nope" in line
    line = user_error(run(running, "slice", "delete"), 2)
    assert "exactly one of NAME..., -f FILE, -l SELECTOR or --all" in line
    line = user_error(run(running, "slice", "delete", "x", "--all"), 2)
    assert "exactly one of" in line


def test_delete_names_deletes_the_others_before_a_missing_one(running: Running, city: Path) -> None:
    result = run(running, "slice", "delete", "plain", "slice/g-north", "missing", "s-north")
    assert result.exit_code == 4 and "Traceback" not in result.stderr
    assert result.stdout.splitlines() == ["slice 'plain' deleted", "slice 'g-north' deleted"]
    assert "missing" in result.stderr
    assert names(running) == ["slice/g-south", "slice/s-north"]


def _many_events(running: Running, count: int) -> None:
    for i in range(count):
        running.service.drain("e2", "operator:t") if i % 2 == 0 else running.service.undrain(
            "e2", "operator:t"
        )


def test_events_default_is_the_newest_and_says_when_more_exist(running: Running, city: Path) -> None:
    _many_events(running, 30)
    everything = json.loads(ok(run(running, "slice", "events", "--after-seq", "0", "-o", "json")))
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(seqs) and len(seqs) > 30
    newest = run(running, "slice", "events", "--tail", "5", "-o", "json")
    assert [e["seq"] for e in json.loads(ok(newest))] == seqs[::-1][:5]  # newest first
    assert "older ones exist" in newest.stderr
    whole = run(running, "slice", "events", "--tail", str(len(seqs)), "-o", "json")
    assert [e["seq"] for e in json.loads(ok(whole))] == seqs[::-1]
    assert whole.stderr == ""
    default = run(running, "slice", "events", "-o", "json")
    assert [e["seq"] for e in json.loads(ok(default))] == seqs[::-1] and default.stderr == ""
    first = run(running, "slice", "events", "--after-seq", "0", "--limit", "3", "-o", "json")
    assert [e["seq"] for e in json.loads(ok(first))] == seqs[:3]
    assert f"--after-seq {seqs[2]}" in first.stderr
    about = json.loads(ok(run(running, "slice", "events", "--slice", "plain", "--tail", "1", "-o", "json")))
    assert [e["slice"] for e in about] == ["plain"]


def test_events_follow_with_tail_starts_at_the_newest(running: Running, city: Path) -> None:
    """Like ``kubectl logs -f --tail 2``: the newest two (oldest of them first), then new ones."""
    _many_events(running, 6)
    seqs = [
        e["seq"] for e in json.loads(ok(run(running, "slice", "events", "--after-seq", "0", "-o", "json")))
    ]
    with running.slicectl_process("slice", "events", "--follow", "--tail", "2", "-o", "json") as proc:
        try:
            assert proc.stdout is not None
            first = [proc.stdout.readline() for _ in range(2)]
            assert all(first), proc.communicate()
            assert [json.loads(line)["seq"] for line in first] == seqs[-2:]
            running.service.drain("e1", "operator:late")
            event = json.loads(proc.stdout.readline())
            assert (event["seq"], event["site"], event["actor"]) == (seqs[-1] + 1, "e1", "operator:late")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


class _Clocked(Running):
    """A real server whose service's clock started two hours ago and moves when told to."""

    def __init__(self, folder: Path) -> None:
        from datetime import UTC, datetime, timedelta

        from controller.api import auth
        from controller.api import server as api_server
        from tests.support import runtime_helpers
        from tests.support.clock import FakeClock

        self.folder = folder
        self.clock = FakeClock(datetime.now(UTC) - timedelta(hours=2))
        self.service, self.store = runtime_helpers.make_service(folder, clock=self.clock)
        self.server = api_server.serve(
            self.service, "127.0.0.1:0", auth.Authenticator({"ops": TOKEN}), None, dev=True, poll_s=0.05
        )
        self.address = self.server.address


def test_events_since_a_duration(tmp_path: Path) -> None:
    clocked = _Clocked(tmp_path)
    try:
        old = tmp_path / "old.yaml"
        old.write_text(slice_yaml("old-one", "iot", "[c2]"))
        ok(run(clocked, "slice", "apply", "-f", old))
        clocked.clock.advance(100 * 60)  # now 20 minutes ago
        new = tmp_path / "new.yaml"
        new.write_text(slice_yaml("new-one", "iot", "[c3]"))
        ok(run(clocked, "slice", "apply", "-f", new))
        recent = json.loads(ok(run(clocked, "slice", "events", "--since", "30m", "-o", "json")))
        assert recent and {e["slice"] for e in recent} == {"new-one"}
        both = json.loads(ok(run(clocked, "slice", "events", "--since", "2h5m", "-o", "json")))
        assert {e["slice"] for e in both} == {"old-one", "new-one"}
        assert ok(run(clocked, "slice", "events", "--since", "10m")).strip() == "no events"
        tail = run(clocked, "slice", "events", "--since", "2h5m", "--tail", "1", "-o", "json")
        assert [e["slice"] for e in json.loads(ok(tail))] == ["new-one"] and "older ones exist" in tail.stderr
    finally:
        clocked.stop()
    line = user_error(run(clocked, "slice", "events", "--since", "10"), 2)
    assert "'--since'" in line and "not a duration" in line
    line = user_error(run(clocked, "slice", "events", "--since", "0s"), 2)
    assert "more than 0" in line


class _Trail:
    """An event source over given (seq, age) pairs, to test the window searches alone."""

    def __init__(self, seqs: list[int], slice_of: dict[int, str] | None = None) -> None:
        from protos.edgeslice.operator.v1 import operator_pb2 as pb

        self.all = [pb.Event(seq=s, slice=(slice_of or {}).get(s, "")) for s in seqs]
        for e in self.all:
            e.at.FromSeconds(1_700_000_000 + e.seq)
        self.calls = 0

    def events(self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None) -> list:  # type: ignore[type-arg]
        self.calls += 1
        found = [e for e in self.all if e.seq > after_seq and (slice_name is None or e.slice == slice_name)]
        return found[:limit]


def test_window_searches_on_a_long_sparse_trail() -> None:
    from datetime import UTC, datetime

    seqs = list(range(1, 200_001, 3))
    trail = _Trail(seqs, {s: "a" for s in seqs if s % 1000 == 1})
    assert event_window.last_seq(trail, None) == seqs[-1]
    a = [s for s in seqs if s % 1000 == 1]
    assert event_window.last_seq(trail, "a") == a[-1]
    trail.calls = 0
    window = event_window.tail(trail, 4, None)
    assert [e.seq for e in window.events] == seqs[::-1][:4] and window.older
    assert trail.calls < 80  # galloping and bisection, not a scan of 66,667 events
    window = event_window.tail(trail, 10_000, "a")
    assert [e.seq for e in window.events] == a[::-1] and not window.older
    cutoff = datetime.fromtimestamp(1_700_000_000 + 150_000, UTC)
    floor = event_window.seq_before(trail, cutoff, None, 0, seqs[-1])
    assert min(e.seq for e in trail.events(after_seq=floor, limit=10**6)) == min(
        s for s in seqs if s >= 150_000
    )
    assert event_window.last_seq(_Trail([]), None) == 0
    assert event_window.tail(_Trail([]), 5, None).events == []


def test_get_watch_prints_each_change(running: Running, city: Path, tmp_path: Path) -> None:
    with running.slicectl_process("slice", "get", "plain", "--watch", "-o", "json") as proc:
        try:
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline())
            assert (first["name"], first["priority"]) == ("plain", 50) or first["name"] == "plain"
            changed = tmp_path / "plain.yaml"
            changed.write_text(slice_yaml("plain", "iot", "[c2]", "  priority: 7\n"))
            ok(run(running, "slice", "apply", "-f", changed))
            while (now := json.loads(proc.stdout.readline()))["generation"] == first["generation"]:
                pass
            assert (now["generation"], now["priority"]) == (first["generation"] + 1, 7)
            ok(run(running, "slice", "delete", "plain"))
            assert proc.stdout.readline().strip() == "slice 'plain' deleted"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_get_watch_table_rows(running: Running, city: Path, tmp_path: Path) -> None:
    with running.slicectl_process("slice", "get", "plain", "-w") as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().split()[:2] == ["NAME", "KIND"]
            assert proc.stdout.readline().split()[:2] == ["plain", "iot"]
            changed = tmp_path / "plain.yaml"
            changed.write_text(slice_yaml("plain", "iot", "[c2]", "  priority: 7\n"))
            ok(run(running, "slice", "apply", "-f", changed))
            while (row := proc.stdout.readline().split())[3] != "7":
                assert row[0] == "plain"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_selector_and_template_units() -> None:
    with pytest.raises(errors.InvalidSpec, match="range"):
        selection.parse_template("{range .items[*]}{.name}")
    with pytest.raises(errors.InvalidSpec, match="end"):
        selection.parse_template("{.a}{end}")
    assert (
        selection.render(selection.parse_template("{.a[-1]} {.b['x.y']}"), {"a": [1, 2], "b": {"x.y": True}})
        == "2 true"
    )
    assert selection.render(selection.parse_template("{.missing}"), {}) == ""
    with pytest.raises(errors.InvalidSpec, match="label value"):
        selection.parse_selector("k=bad value")
