"""The NetworkSlice CRD on a real kube-apiserver: descriptions, printer columns and the CEL rules.

The server, not the controller, refuses what it can check before an object is stored: a name whose
namespace would not fit 63 characters, an SST that does not fit the kind, an empty coverage and
two workloads with one name (``listType: map``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.kube import crd
from slices import errors
from slices.intent import API_VERSION, NetworkSlice, NetworkSliceSpec, SliceKind, Workload
from slices.profiles import resolve
from tests.support.envtest import KubeApiServer
from tests.support.paths import ROOT

CRD_FILE = ROOT / "deploy" / "crd" / f"{crd.CRD_NAME}.yaml"


@pytest.fixture(scope="module")
def server(kube_apiserver: KubeApiServer) -> KubeApiServer:
    """The session's server with the committed CRD installed and Established."""
    kube_apiserver.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    kube_apiserver.kubectl("wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}", "--timeout=60s")
    # The OpenAPI document (what `kubectl explain` reads) is published a moment after that.
    deadline = time.monotonic() + 60
    while kube_apiserver.kubectl("explain", "networkslice.spec", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the CRD's OpenAPI schema was never published"
        time.sleep(0.2)
    return kube_apiserver


def _slice(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": crd.KIND,
        "metadata": {"name": name},
        "spec": {"kind": "iot", "coverage": {"zones": ["north"]}, **spec},
    }


def _dry_run(server: KubeApiServer, document: dict[str, Any]) -> tuple[bool, str]:
    """Server-side dry-run create: (accepted, the server's message)."""
    result = server.kubectl(
        "create", "--dry-run=server", "-o", "name", "-f", "-", input=json.dumps(document), check=False
    )
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)]
    for key, value in node.get("properties", {}).items():
        out += _walk(value, f"{path}.{key}")
    if isinstance(node.get("items"), dict) and node["items"].get("type") == "object":
        out += _walk(node["items"], f"{path}[]")
    return out


def test_every_field_has_a_description() -> None:
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    # metadata is the server's own ObjectMeta: a CRD may say nothing about it.
    missing = [path for path, node in _walk(schema) if path != ".metadata" and not node.get("description")]
    assert missing == []


@pytest.mark.parametrize(
    "field",
    ["spec", "spec.workloads", "spec.coverage", "spec.isolation", "spec.sla", "status", "status.conditions"],
)
def test_kubectl_explain_reads_well(server: KubeApiServer, field: str) -> None:
    text = server.kubectl("explain", f"networkslice.{field}").stdout
    assert "<no description>" not in text
    assert "DESCRIPTION:" in text


def test_kubectl_explain_workloads_shows_the_models_descriptions(server: KubeApiServer) -> None:
    text = " ".join(server.kubectl("explain", "networkslice.spec.workloads").stdout.split())
    workloads = NetworkSliceSpec.model_fields["workloads"].description
    assert workloads and " ".join(workloads.split()) in text
    for name, info in Workload.model_fields.items():
        assert info.description, name
        assert (info.alias or name) in text and " ".join(info.description.split()) in text


@pytest.mark.parametrize("path", sorted((ROOT / "slices" / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_the_examples_are_accepted(server: KubeApiServer, path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        ok, message = _dry_run(server, document)
        assert ok, message


def _name_rule(index: int) -> str:
    return crd.name_validations()[index]["message"]


def _spec_rule(index: int) -> str:
    return crd.spec_validations()[index]["message"]


REFUSED = {
    "namespace-name-too-long": (_slice("n" * (crd.MAX_SLICE_NAME + 1)), _name_rule(0)),
    "name-with-a-dot": (_slice("cars.north"), _name_rule(1)),
    "sst-does-not-fit-kind": (_slice("wrong-sst", kind="vehicle", snssai={"sst": 1}), _spec_rule(0)),
    "coverage-empty": (_slice("nowhere", coverage={"zones": []}), _spec_rule(1)),
    "workload-names-twice": (
        _slice(
            "twice",
            workloads=[
                {"name": "cache", "image": "img:1", "cpuMillicores": 100, "memoryMib": 64},
                {"name": "cache", "image": "img:2", "cpuMillicores": 100, "memoryMib": 64},
            ],
        ),
        'spec.workloads[1]: Duplicate value: {"name":"cache"}',
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_server_refuses_what_the_rules_forbid(server: KubeApiServer, case: str) -> None:
    document, message = REFUSED[case]
    ok, said = _dry_run(server, document)
    assert not ok, f"{case}: accepted"
    assert message in said


def test_the_longest_name_that_fits_is_accepted(server: KubeApiServer) -> None:
    ok, message = _dry_run(server, _slice("n" * crd.MAX_SLICE_NAME))
    assert ok, message


@pytest.mark.parametrize("kind", list(SliceKind))
def test_the_sst_rule_agrees_with_the_profiles(server: KubeApiServer, kind: SliceKind) -> None:
    """For SST 1-6 the server accepts exactly what :func:`slices.profiles.resolve` accepts."""
    for sst in range(1, 7):
        document = _slice(f"{kind.value}-sst-{sst}", kind=kind.value, snssai={"sst": sst})
        try:
            resolve(NetworkSlice.model_validate(document))
            expected = True
        except errors.InvalidSpec:
            expected = False
        ok, message = _dry_run(server, document)
        assert ok == expected, f"kind {kind.value} SST {sst}: server said {message!r}"


def test_printer_columns_show_ready_reason_and_edge_sites_as_text(server: KubeApiServer) -> None:
    """The status the controller writes (crd_source.status_of), as `kubectl get` prints it."""
    from datetime import UTC, datetime

    from controller.kube.crd_source import status_of
    from controller.runtime.service import SliceRecord
    from controller.runtime.world import SliceState
    from slices.status import ConditionStatus, ConditionType, set_condition
    from tests.support import kube_fixtures

    document = _slice("columns", kind="vehicle", coverage={"sites": ["c1", "c2"]})
    server.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(document))
    parsed = NetworkSlice.model_validate(document)
    intent = resolve(parsed)
    at = datetime.now(UTC)
    ready = set_condition(
        (), ConditionType.READY, ConditionStatus.FALSE, "WorkloadsUnavailable", "0 of 2 available", 1, at
    )
    record = SliceRecord(
        name="columns",
        generation=1,
        document=parsed,
        intent=intent,
        state=SliceState.ADMITTED,
        placement=kube_fixtures.placement(intent, "e1", "e2"),
        conditions=ready,
        reason="WorkloadsUnavailable",
        message="0 of 2 available",
        created_at=at,
        updated_at=at,
    )
    status = status_of(record, 1)
    server.kubectl(
        "patch",
        "networkslice",
        "columns",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    header, row = server.kubectl("get", "networkslice", "columns").stdout.splitlines()
    assert header.split() == ["NAME", "KIND", "SST", "STATE", "READY", "REASON", "EDGE-SITES", "AGE"]
    assert row.split()[:7] == [
        "columns",
        "vehicle",
        "4",
        "Admitted",
        "False",
        "WorkloadsUnavailable",
        "e1,e2",
    ]
    server.kubectl("delete", "networkslice", "columns")
