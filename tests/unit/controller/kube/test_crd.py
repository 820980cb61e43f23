"""The NetworkSlice CRD: structural schema generated from the intent model, and kept current."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.kube import crd
from slices.intent import NetworkSliceSpec
from tests.support.paths import ROOT


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, value in node.get("properties", {}).items():
            out += _walk(value, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            out += _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            out += _walk(node["additionalProperties"], f"{path}{{}}")
    return out


def _schema() -> dict[str, Any]:
    version = crd.crd()["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def test_schema_is_structural() -> None:
    for path, node in _walk(_schema()):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        for banned in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "const", "title", "default"):
            assert banned not in node, f"{path} has {banned}"
        assert not ("properties" in node and "additionalProperties" in node), path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True and "minimum" in node, path


def test_spec_schema_follows_the_pydantic_model() -> None:
    spec = _schema()["properties"]["spec"]
    fields = {f.alias or name for name, f in NetworkSliceSpec.model_fields.items()}
    assert set(spec["properties"]) == fields
    assert spec["required"] == ["kind", "coverage"]
    assert spec["properties"]["kind"]["enum"] == ["iot", "vehicle", "wifi"]
    latency = spec["properties"]["sla"]["properties"]["latencyMs"]
    assert latency == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1000,
        "nullable": True,
        "description": "one-way cell-to-edge latency bound (NG.116 latency)",
    }
    workload = spec["properties"]["workloads"]["items"]
    assert workload["properties"]["name"]["pattern"] == "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def test_status_subresource_and_printer_columns() -> None:
    version = crd.crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Kind",
        "SST",
        "State",
        "Ready",
        "Reason",
        "Edge-Sites",
        "Age",
    ]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Edge-Sites"] == ".status.edgeSitesText"  # text, not a JSON array
    conditions = _schema()["properties"]["status"]["properties"]["conditions"]
    assert set(conditions["items"]["properties"]) >= {"type", "status", "reason", "lastTransitionTime"}
    assert crd.crd()["spec"]["scope"] == "Cluster"


def test_unsupported_unions_are_refused() -> None:
    with pytest.raises(ValueError, match="2 non-null options"):
        crd.structural({"anyOf": [{"type": "string"}, {"type": "integer"}]})


def _gen_crd_module() -> Any:
    spec = importlib.util.spec_from_file_location("gen_crd", ROOT / "deploy" / "gen_crd.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_crd_is_current_and_check_catches_a_stale_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = _gen_crd_module()
    assert gen.main(["--check"]) == 0, "run python deploy/gen_crd.py"
    committed = yaml.safe_load((ROOT / "deploy" / "crd" / f"{crd.CRD_NAME}.yaml").read_text())
    assert committed == crd.crd()
    stale = tmp_path / "crd.yaml"
    stale.write_text(gen.render().replace("nslice", "oldname"))
    monkeypatch.setattr(gen, "TARGETS", (stale,))
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.main(["--check"]) == 1
    assert "crd.yaml is stale" in capsys.readouterr().err
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0
