"""Named contexts, like kubeconfig's: each names how to reach one controller (its operator
address, token file, CA, agents address, or the state folder of a local one), and one of them is
current. ``slicectl config set-context|use-context|get-contexts|current-context|delete-context``
edit the file; ``--context NAME`` (or ``$EDGESLICE_CONTEXT``) on every client command picks one
for that command.

The file is ``$EDGESLICE_CONFIG``, else ``$XDG_CONFIG_HOME/edgeslice/config.yaml``, else
``~/.config/edgeslice/config.yaml``::

    current-context: lab
    contexts:
      lab: {server: 10.0.0.5:50051, token-file: /etc/edgeslice/lab.token, ca: /etc/edgeslice/ca.pem,
            agents: 10.0.0.5:50052}
      local-b: {state-dir: /srv/edgeslice-b}
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slices import errors

CONFIG_ENV = "EDGESLICE_CONFIG"
CONTEXT_ENV = "EDGESLICE_CONTEXT"
FIELDS = ("server", "token-file", "ca", "agents", "state-dir")


@dataclass(frozen=True)
class Context:
    name: str
    server: str | None = None
    token_file: Path | None = None
    ca: Path | None = None
    agents: str | None = None
    state_dir: Path | None = None

    def data(self) -> dict[str, str]:
        values = (self.server, self.token_file, self.ca, self.agents, self.state_dir)
        return {k: str(v) for k, v in zip(FIELDS, values, strict=True) if v is not None}


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the contexts are kept.

    >>> str(config_path({"EDGESLICE_CONFIG": "/etc/slicectl.yaml"}))
    '/etc/slicectl.yaml'
    >>> str(config_path({"XDG_CONFIG_HOME": "/cfg"}))
    '/cfg/edgeslice/config.yaml'
    """
    env = os.environ if environ is None else environ
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edgeslice" / "config.yaml"


@dataclass
class Config:
    path: Path
    current: str | None
    contexts: dict[str, Context]

    @classmethod
    def load(cls, path: Path | None = None) -> Config:
        where = path or config_path()
        try:
            text = where.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(where, None, {})
        except OSError as exc:
            raise errors.InvalidSpec(f"slicectl config {where}: cannot read: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise errors.InvalidSpec(f"slicectl config {where}: not UTF-8 text") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise errors.InvalidSpec(f"slicectl config {where}: not valid YAML") from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise errors.InvalidSpec(f"slicectl config {where}: expected a mapping")
        unknown = sorted(set(data) - {"current-context", "contexts"})
        if unknown:
            raise errors.InvalidSpec(f"slicectl config {where}: {unknown[0]}: unknown field")
        contexts: dict[str, Context] = {}
        raw = data.get("contexts") or {}
        if not isinstance(raw, dict):
            raise errors.InvalidSpec(f"slicectl config {where}: contexts: expected a mapping of names")
        for name, fields in raw.items():
            contexts[str(name)] = _context(str(name), fields, where)
        current = data.get("current-context")
        if current is not None and not isinstance(current, str):
            raise errors.InvalidSpec(f"slicectl config {where}: current-context: expected a name")
        return cls(where, current, contexts)

    def save(self) -> None:
        data: dict[str, Any] = {}
        if self.current is not None:
            data["current-context"] = self.current
        data["contexts"] = {name: c.data() for name, c in sorted(self.contexts.items())}
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".config-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise errors.InvalidSpec(f"slicectl config {self.path}: cannot write: {exc.strerror}") from exc

    def get(self, name: str) -> Context:
        try:
            return self.contexts[name]
        except KeyError:
            known = ", ".join(sorted(self.contexts)) or "none; add one with slicectl config set-context"
            raise errors.NotFound(f"context {name!r} is not in {self.path} (contexts: {known})") from None

    def chosen(self, name: str | None) -> Context | None:
        """The context a command uses: ``name`` (``--context``), else the current one, else none."""
        if name:
            return self.get(name)
        if self.current is None:
            return None
        if self.current not in self.contexts:
            raise errors.InvalidSpec(
                f"slicectl config {self.path}: current-context {self.current!r} is not one of its contexts"
            )
        return self.contexts[self.current]


def _context(name: str, fields: Any, where: Path) -> Context:
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise errors.InvalidSpec(f"slicectl config {where}: contexts.{name}: expected a mapping")
    for key, value in fields.items():
        if key not in FIELDS:
            raise errors.InvalidSpec(
                f"slicectl config {where}: contexts.{name}.{key}: unknown field (known: {', '.join(FIELDS)})"
            )
        if not isinstance(value, str) or not value:
            raise errors.InvalidSpec(f"slicectl config {where}: contexts.{name}.{key}: expected text")

    def path(key: str) -> Path | None:
        return Path(fields[key]) if key in fields else None

    return Context(
        name,
        server=fields.get("server"),
        token_file=path("token-file"),
        ca=path("ca"),
        agents=fields.get("agents"),
        state_dir=path("state-dir"),
    )


def chosen(name: str | None) -> Context | None:
    """The context of ``--context NAME``, or the current one; ``None`` without a config file."""
    return Config.load().chosen(name)
