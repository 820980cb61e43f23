"""The environment variables through which slicectl finds a controller (and says more on errors):
tests that must see no controller, no token and no debug output clear them."""

from __future__ import annotations

import pytest

CLIENT_ENV = (
    "EDGESLICE_SERVER",
    "EDGESLICE_TOKEN",
    "EDGESLICE_TOKEN_FILE",
    "EDGESLICE_CA",
    "EDGESLICE_DEBUG",
    "EDGESLICE_CONTEXT",
)


def clear_client_env(monkeypatch: pytest.MonkeyPatch, *more: str) -> None:
    """Unset :data:`CLIENT_ENV` and ``more`` for the test."""
    for name in (*CLIENT_ENV, *more):
        monkeypatch.delenv(name, raising=False)
