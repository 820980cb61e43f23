"""The state over real controller processes: one controller per state, never a start over lost
or damaged data, ports in use refused, and a backup taken while a controller writes that restores
every slice it held. Each refusal: its exit code, one line naming the file or flag, no
traceback, and the state left as it was."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from controller.api.client import ApiClient
from controller.core.citygen import generate_city
from controller.core.topology import Topology
from controller.process.endpoints import read_endpoints
from controller.runtime import store as store_mod
from slices import errors
from tests.support.controller_process import SLICECTL, ControllerProcess, start_controller
from tests.support.manifests import random_manifest

ZONES = Topology.from_file(generate_city(60, seed=0)).zones()  # the controller's sample city


def slicectl(*args: str, state_dir: Path, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EDGESLICE_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("EDGESLICE_DEBUG", None)
    return subprocess.run(
        [*SLICECTL, *args], capture_output=True, text=True, env=env, timeout=timeout_s, check=False
    )


def run_controller(db: Path, state_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return slicectl(
        "controller", "run", "--state", str(db), "--state-dir", str(state_dir), *extra, state_dir=state_dir
    )


def refused(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The one line a refused command printed; asserts its exit code, that it is alone, names
    what it must, and that no traceback was printed."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def names(proc: ControllerProcess) -> set[str]:
    with proc.client() as client:
        return {s.name for s in client.list_slices()}


def apply(client: ApiClient, names_: list[str], seed: int = 1) -> None:
    rng = random.Random(seed)
    client.apply([(n, random_manifest(n, rng, ZONES)) for n in names_])


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state file a real controller wrote 60 slices into, then stopped cleanly."""
    work = tmp_path_factory.mktemp("filled")
    proc = start_controller(work, extra=("--no-agents",))
    try:
        with proc.client() as client:
            for i in range(0, 60, 20):
                apply(client, [f"s{j}" for j in range(i, i + 20)], seed=i)
        assert proc.terminate() == 0
    finally:
        if proc.proc.poll() is None:
            proc.kill()
    db = work / "edgeslice.db"
    assert not Path(f"{db}-wal").exists()  # a clean stop leaves one file
    return db


def copy_state(filled: Path, tmp_path: Path) -> Path:
    db = tmp_path / "edgeslice.db"
    db.write_bytes(filled.read_bytes())
    return db


def test_a_second_controller_on_the_same_state_exits_naming_it_and_changes_nothing(tmp_path: Path) -> None:
    proc = start_controller(tmp_path, extra=("--no-agents",))
    try:
        with proc.client() as client:
            apply(client, ["cars", "meters", "wifi"])
        state_dir, db = tmp_path / "state", tmp_path / "edgeslice.db"
        files = {
            p.name: p.read_bytes()
            for p in (state_dir / "controller.addr", state_dir / "controller.endpoints")
        }
        with proc.client() as client:
            before = sorted((s.name, s.generation) for s in client.list_slices())
        pid = str(proc.proc.pid)
        # Same folder and file; same file from another folder; same folder, another file.
        line = refused(run_controller(db, state_dir, "--listen", "127.0.0.1:0"), 6)
        assert line == (
            f"error: state folder {state_dir}: in use by another controller (PID {pid}, lock "
            f"{state_dir / 'controller.lock'}); stop it first, or give this one its own --state-dir"
        )
        other = tmp_path / "other"
        refused(
            run_controller(db, other, "--listen", "127.0.0.1:0"),
            6,
            f"state file {db}: in use by another controller (PID {pid}, lock {db}.lock)",
        )
        assert sorted(p.name for p in other.iterdir()) == ["controller.lock"]  # nothing served from it
        refused(
            run_controller(tmp_path / "b.db", state_dir, "--listen", "127.0.0.1:0"),
            6,
            f"state folder {state_dir}: in use by another controller (PID {pid}",
        )
        assert not (tmp_path / "b.db").exists()
        # The first one still serves the same state, and its address is still the one announced.
        assert {
            p.name: p.read_bytes()
            for p in (state_dir / "controller.addr", state_dir / "controller.endpoints")
        } == files
        with proc.client() as client:
            assert sorted((s.name, s.generation) for s in client.list_slices()) == before
        assert proc.terminate() == 0
    finally:
        if proc.proc.poll() is None:
            proc.kill()
    # Released with the process: the state can be used again.
    again = start_controller(tmp_path, extra=("--no-agents",))
    try:
        assert names(again) == {"cars", "meters", "wifi"}
    finally:
        again.kill()


def test_an_empty_state_file_is_refused_left_empty_and_only_init_starts_over_it(tmp_path: Path) -> None:
    db = tmp_path / "edgeslice.db"
    db.touch()
    state_dir = tmp_path / "state"
    refused(
        run_controller(db, state_dir, "--listen", "127.0.0.1:0", "--no-agents"),
        6,
        f"state file {db}: is empty (0 bytes)",
        "--init",
    )
    assert db.stat().st_size == 0 and not (state_dir / "controller.addr").exists()
    refused(slicectl("state", "check", "--state", str(db), state_dir=state_dir), 6, f"{db}: is empty")
    proc = start_controller(tmp_path, extra=("--no-agents", "--init"))
    try:
        assert names(proc) == set()
    finally:
        proc.kill()


@pytest.mark.parametrize("where", [0.0, 0.25, 0.5, 0.75])
def test_garbage_inside_a_real_state_file_is_refused_in_one_line(
    filled: Path, tmp_path: Path, where: float
) -> None:
    db = copy_state(filled, tmp_path)
    data = bytearray(db.read_bytes())
    assert len(data) > 5 * 16 * 1024
    offset = int(len(data) * where) // 4096 * 4096
    data[offset : offset + 16 * 1024] = random.Random(where).randbytes(16 * 1024)
    db.write_bytes(bytes(data))
    before = digest(db)
    state_dir = tmp_path / "state"
    line = refused(
        run_controller(db, state_dir, "--listen", "127.0.0.1:0", "--no-agents"), 6, f"state file {db}: "
    )
    assert any(word in line for word in ("not a database", "damaged", "malformed")), line
    refused(slicectl("state", "check", "--state", str(db), state_dir=state_dir), 6, f"state file {db}: ")
    assert digest(db) == before and not Path(f"{db}-wal").exists()


def test_a_truncated_state_file_is_refused(filled: Path, tmp_path: Path) -> None:
    db = tmp_path / "edgeslice.db"
    db.write_bytes(filled.read_bytes()[: filled.stat().st_size // 2])
    before = digest(db)
    refused(
        run_controller(db, tmp_path / "state", "--listen", "127.0.0.1:0", "--no-agents"),
        6,
        f"state file {db}: truncated",
    )
    assert digest(db) == before


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [("document", "{oops", "document is not JSON"), ("placement", '{"slice": 1}', "specHash")],
)
def test_a_bad_row_is_refused_naming_the_slice(
    filled: Path, tmp_path: Path, column: str, value: str, problem: str
) -> None:
    db = copy_state(filled, tmp_path)
    conn = sqlite3.connect(db)
    conn.execute(f"UPDATE slices SET {column} = ? WHERE name = 's7' AND placement IS NOT NULL", (value,))
    assert conn.total_changes == 1
    conn.commit()
    conn.close()
    before = digest(db)
    state_dir = tmp_path / "state"
    expected = f"state file {db}: slice 's7' cannot be read: "
    refused(run_controller(db, state_dir, "--listen", "127.0.0.1:0", "--no-agents"), 6, expected, problem)
    refused(slicectl("state", "check", "--state", str(db), state_dir=state_dir), 6, expected, problem)
    assert digest(db) == before


class Writer(threading.Thread):
    """Applies one new slice per call until told to stop."""

    def __init__(self, client: ApiClient) -> None:
        super().__init__(daemon=True)
        self.client, self.applied, self.stop = client, 0, threading.Event()
        self.error: BaseException | None = None
        self.progress = threading.Condition()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                apply(self.client, [f"w{self.applied}"], seed=self.applied)
                with self.progress:
                    self.applied += 1
                    self.progress.notify_all()
        except BaseException as exc:
            self.error = exc

    def wait_for(self, count: int) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: self.applied >= count or self.error is not None, 60)
        assert self.error is None, self.error


def test_a_backup_taken_while_the_controller_writes_restores_every_slice(tmp_path: Path) -> None:
    db, state_dir, backup = tmp_path / "edgeslice.db", tmp_path / "state", tmp_path / "backup.db"
    proc = start_controller(tmp_path, extra=("--no-agents",))
    try:
        with proc.client() as client:
            writer = Writer(client)
            writer.start()
            writer.wait_for(10)
            result = slicectl("state", "backup", str(backup), "--state", str(db), state_dir=state_dir)
            assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
            assert result.stdout.startswith(f"backed up {db} to {backup} (schema 4, ")
            at_backup = writer.applied
            writer.wait_for(at_backup + 5)  # the controller kept writing meanwhile
            # Restore is refused while the controller runs, and replaces nothing.
            refused(
                slicectl("state", "restore", str(backup), "--state", str(db), state_dir=state_dir),
                6,
                f"state file {db}: in use by another controller (PID {proc.proc.pid}",
                "stop it before restoring",
            )
            writer.stop.set()
            writer.join(30)
            assert writer.error is None, writer.error
        all_names = names(proc)
        assert proc.terminate() == 0
    finally:
        if proc.proc.poll() is None:
            proc.kill()
    assert not Path(f"{db}.pre-restore").exists()
    conn = sqlite3.connect(backup)
    backed_up = {r[0] for r in conn.execute("SELECT name FROM slices")}
    conn.close()
    # A consistent snapshot from the middle of the writes: a prefix of them.
    assert backed_up == {f"w{i}" for i in range(len(backed_up))} and len(backed_up) >= 10
    assert len(backed_up) < len(all_names)
    check = slicectl("state", "check", "--state", str(backup), state_dir=state_dir)
    assert check.returncode == 0 and f"{len(backed_up)} slices" in check.stdout, check.stderr
    result = slicectl("state", "restore", str(backup), "--state", str(db), state_dir=state_dir)
    assert result.returncode == 0, result.stderr
    assert f"the replaced state is kept as {db}.pre-restore" in result.stdout
    restored = start_controller(tmp_path, extra=("--no-agents",))
    try:
        assert names(restored) == backed_up
    finally:
        restored.kill()


def test_ports_in_use_are_refused_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first = start_controller(tmp_path / "a")
    try:
        endpoints = read_endpoints(tmp_path / "a" / "state")
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            port = held.getsockname()[1]
            db, state_dir = tmp_path / "b.db", tmp_path / "b"
            cases = [
                (("--metrics-port", str(port)), f"--metrics-port {port}: address already in use"),
                (
                    ("--agents-listen", endpoints["agents"]),
                    f"--agents-listen {endpoints['agents']}: address already in use",
                ),
                (
                    ("--listen", endpoints["operator"]),
                    f"--listen {endpoints['operator']}: address already in use",
                ),
            ]
            for args, message in cases:
                listen = () if args[0] == "--listen" else ("--listen", "127.0.0.1:0")
                line = refused(run_controller(db, state_dir, *listen, *args), errors.Unavailable.exit_code)
                assert line == f"error: {message}"
                assert not db.exists()  # refused before the state was opened
        assert first.proc.poll() is None
    finally:
        first.kill()


def test_state_check_counts_what_a_sound_state_holds(filled: Path, tmp_path: Path) -> None:
    db = copy_state(filled, tmp_path)
    report = store_mod.check_state(db)
    assert report.ok and report.slices == 60
    result = slicectl("state", "check", "--state", str(db), state_dir=tmp_path / "state")
    assert (
        result.returncode == 0
        and result.stdout.strip() == f"state file {db}: ok (schema 4, 60 slices, {report.events} events)"
    )


def test_by_default_the_state_is_in_the_state_folder_and_clients_find_the_controller(tmp_path: Path) -> None:
    state_dir, cwd = tmp_path / "state", tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "EDGESLICE_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"}
    for name in ("EDGESLICE_SERVER", "EDGESLICE_TOKEN", "EDGESLICE_TOKEN_FILE"):
        env.pop(name, None)
    with open(tmp_path / "controller.log", "wb") as log:
        proc = subprocess.Popen(
            [*SLICECTL, "controller", "run", "--listen", "127.0.0.1:0", "--no-agents"],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def listed() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*SLICECTL, "slice", "list"],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )

        for _ in range(600):  # until the address file is written (the process is watched too)
            assert proc.poll() is None, (tmp_path / "controller.log").read_text()
            if (state_dir / "controller.addr").exists():
                break
            time.sleep(0.05)
        result = listed()
        assert result.returncode == 0 and result.stdout.strip() == "no slices", result.stderr
        assert (state_dir / "edgeslice.db").exists() and list(cwd.iterdir()) == []
        proc.terminate()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_state_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    state_dir = blocker / "state"
    refused(
        slicectl(
            "controller", "run", "--state-dir", str(state_dir), "--listen", "127.0.0.1:0", state_dir=state_dir
        ),
        6,
        f"state folder {state_dir}: cannot create: Not a directory",
    )
