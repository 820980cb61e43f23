"""``slicectl controller run --booking-*``: each bad combination is one line naming the flag, and
nothing starts; a booking port in use is refused like the other ports."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from controller.cli import main


def controller_run(tmp_path: Path, *flags: str) -> Result:
    """``slicectl controller run`` in-process on a state file in ``tmp_path``, with ``flags``."""
    where = [
        "--state",
        str(tmp_path / "x.db"),
        "--state-dir",
        str(tmp_path / "sd"),
        "--listen",
        "127.0.0.1:0",
    ]
    return CliRunner().invoke(main, ["controller", "run", *where, *flags])


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--booking-rate", "5"], "--booking-*: used only with --booking-listen"),
        (["--booking-sink-hosts", "sink.example"], "--booking-*: used only with --booking-listen"),
        (["--booking-listen", "0.0.0.0:0"], "without TLS the booking API listens on loopback only"),
        (["--booking-listen", "127.0.0.1:0", "--booking-tls-cert", "c.pem"], "give both or neither"),
        (
            ["--booking-listen", "127.0.0.1:0", "--booking-jwks-url", "https://idp/keys"],
            "needs --booking-issuer",
        ),
        (["--booking-listen", "127.0.0.1:0", "--intents", "crd"], "needs --intents sqlite"),
    ],
)
def test_bad_booking_flags_are_one_line(tmp_path: Path, flags: list[str], says: str) -> None:
    r = controller_run(tmp_path, *flags)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], r.output
    assert not (tmp_path / "x.db").exists()  # nothing started


def test_a_booking_port_in_use_is_refused_naming_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = controller_run(tmp_path, "--booking-listen", f"127.0.0.1:{port}")
    assert r.exit_code != 0
    assert f"--booking-listen 127.0.0.1:{port}" in r.output and "in use" in r.output, r.output
