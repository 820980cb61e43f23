"""The committed stubs are what `python protos/generate.py` makes from the .proto files now."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import ROOT


def test_generated_stubs_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_operator_api_is_versioned_and_complete() -> None:
    from protos.edgeslice.operator.v1 import operator_pb2

    service = operator_pb2.DESCRIPTOR.services_by_name["OperatorService"]
    assert service.full_name == "edgeslice.operator.v1.OperatorService"
    assert {m.name for m in service.methods} == {
        "ApplySlices",
        "GetSlice",
        "ListSlices",
        "DeleteSlice",
        "ExplainSlice",
        "ListEvents",
        "WatchEvents",
        "GetTopologyStatus",
        "DrainSite",
        "UndrainSite",
        "CordonSite",
        "UncordonSite",
        "GetTopology",
        "WhatIf",
        "ListAgents",
        "GetAgent",
    }
    assert service.methods_by_name["WatchEvents"].server_streaming
    # Every list is paginated (AIP-158): a page size and token in, a next token out.
    for method in ("ListSlices", "ListEvents", "ListAgents", "GetTopologyStatus"):
        m = service.methods_by_name[method]
        assert {"page_size", "page_token"} <= set(m.input_type.fields_by_name), method
        assert "next_page_token" in m.output_type.fields_by_name, method
