"""The operator API served over the real ControllerService on a real SQLite file, on port 0."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from controller.api import auth
from controller.api import server as api_server
from tests.support import runtime_helpers

TOKEN = "ops-token-0123456789abcdef"


def slice_yaml(name: str, kind: str = "vehicle", cells: str = "[c1]", extra: str = "") -> str:
    """A NetworkSlice manifest as an operator writes it (its own S-NSSAI, SD from the name)."""
    sst = {"iot": 3, "vehicle": 4, "wifi": 1}[kind]
    return f"""apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {{name: {name}}}
spec:
  kind: {kind}
  snssai: {{sst: {sst}, sd: "{hashlib.sha256(name.encode()).hexdigest()[:6]}"}}
  coverage: {{sites: {cells}}}
{extra}"""


class Running:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.service, self.store = runtime_helpers.make_service(folder)
        self.server = api_server.serve(
            self.service, "127.0.0.1:0", auth.Authenticator({"ops": TOKEN}), None, dev=True, poll_s=0.05
        )
        self.address = self.server.address

    def stop(self) -> None:
        self.server.stop(0)
        self.store.close()

    def slicectl_process(self, *args: str) -> subprocess.Popen[str]:
        """``slicectl ARGS`` as its own process against this API (for commands that keep
        running: --follow, --watch), its output piped as text."""
        env = {**os.environ, "EDGESLICE_SERVER": self.address, "EDGESLICE_TOKEN": TOKEN}
        cmd = [sys.executable, "-c", "from controller.cli import main; main()", *args]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def rows(self) -> int:
        with sqlite3.connect(self.folder / "state.db") as db:
            return int(db.execute("select count(*) from slices").fetchone()[0])
