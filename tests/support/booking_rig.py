"""What the booking tests share: a local HTTP(S) sink that records the CloudEvents POSTed to it
and answers as scripted, a CAMARA ``SliceAttributes`` body with keyword overrides, and real
``slicectl`` subprocesses with the one-line-error check."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

# -- the sink ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One POST the sink heard."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RecordingSink:
    """A local HTTP(S) server on loopback that records each POST and answers the next of
    ``script`` (status, headers), then ``status``. An answer other than 204 has a two-line body."""

    REFUSAL = b"sink says no\nreally"

    def __init__(self, status: int = 204, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.received: list[Received] = []
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                answer, headers = sink.script.popleft() if sink.script else (status, {})
                self.send_response(answer)
                for name, value in headers.items():
                    self.send_header(name, value)
                text = b"" if answer == 204 else sink.REFUSAL
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RecordingSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


# -- the booking's body -----------------------------------------------------------------------


def _when(at: datetime | str) -> str:
    return at.isoformat() if isinstance(at, datetime) else at


def sink_credential(token: str, expires: datetime | str) -> dict[str, Any]:
    """A sink's ``ACCESSTOKEN`` credential."""
    return {
        "credentialType": "ACCESSTOKEN",
        "accessToken": token,
        "accessTokenExpiresUtc": _when(expires),
        "accessTokenType": "bearer",
    }


#: The token every sink's credential holds (no response, record or listing may show it).
SINK_TOKEN = "the-sink-secret"


def slice_attributes(
    start: datetime | str = "2030-06-01T12:00:00Z",
    end: datetime | str | None = "2030-06-02T12:00:00Z",
    *,
    center: tuple[float, float] = (45.754114, 4.860374),
    radius: float = 800,
    devices: Any = 5,
    mbps: tuple[float, float] = (10, 2),
    budgets_ms: tuple[float | None, float | None] = (20, 20),
    qos: Mapping[str, Any] | None = None,
    sink: str | None = None,
    sink_token: str | None = SINK_TOKEN,
    **fields: Any,
) -> dict[str, Any]:
    """A ``SliceAttributes`` body, by default the spec's circle example: 5 devices, each ``mbps``
    (10 down, 2 up), ``budgets_ms`` (down, up; ``None``: left out) of 20 ms, a day from
    2030-06-01 12:00Z (an ``end`` of ``None``: open-ended). ``qos`` is put over the
    ``sliceQosProfile``, ``fields`` over the body. With a ``sink``, its credential holds
    ``sink_token`` (``None``: no credential) until 48 hours after ``start``."""
    profile: dict[str, Any] = {
        "maxNumOfDevices": devices,
        "downStreamRatePerDevice": {"value": mbps[0], "unit": "Mbps"},
        "upStreamRatePerDevice": {"value": mbps[1], "unit": "Mbps"},
    }
    for name, budget in zip(("downStreamDelayBudget", "upStreamDelayBudget"), budgets_ms, strict=True):
        if budget is not None:
            profile[name] = {"value": budget, "unit": "Milliseconds"}
    body: dict[str, Any] = {
        "serviceTime": {"startDate": _when(start), **({"endDate": _when(end)} if end is not None else {})},
        "serviceArea": {
            "areaType": "CIRCLE",
            "center": {"latitude": center[0], "longitude": center[1]},
            "radius": radius,
        },
        "sliceQosProfile": {**profile, **(qos or {})},
    }
    if sink is not None:
        body["sink"] = sink
        if sink_token is not None:
            assert isinstance(start, datetime), "a sink's credential needs a datetime start"
            body["sinkCredential"] = sink_credential(sink_token, start + timedelta(hours=48))
    body.update(fields)
    return body


# -- slicectl -----------------------------------------------------------------------------------

SLICECTL = Path(sys.executable).parent / "slicectl"


def slicectl(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``slicectl ARGS`` as a real process, with none of the caller's ``EDGESLICE_*`` variables
    (only those of ``env``)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EDGESLICE_")}
    environ.update(env or {})
    return subprocess.run(
        [str(SLICECTL), *args], capture_output=True, text=True, timeout=60, env=environ, check=False
    )


def ok(*args: str, env: Mapping[str, str] | None = None) -> str:
    """The output of a ``slicectl`` that succeeds and says nothing on stderr."""
    done = slicectl(*args, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def ok_json(*args: str, env: Mapping[str, str] | None = None) -> Any:
    return json.loads(ok(*args, "-o", "json", env=env))


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """The one line ``error: …`` a failed ``slicectl`` printed, with exit ``code`` and nothing on
    stdout, holding each of ``fragments``."""
    assert done.returncode == code, (done.returncode, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
