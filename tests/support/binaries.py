"""External programs the end-to-end tests need: skipped on a workstation without them, a failure
in CI (where ``CI`` is set), so CI never passes by skipping."""

from __future__ import annotations

import os
import shutil

import pytest


def required_binary(name: str, missing: str, in_ci: str = "in CI this test must run, not skip") -> str:
    """The path of ``name`` on ``PATH``; without it, skip with ``missing`` (fail, adding
    ``in_ci``, when ``CI`` is set)."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; {in_ci}")
        pytest.skip(missing)
    return found
