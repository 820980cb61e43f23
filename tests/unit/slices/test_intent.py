"""The NetworkSlice intent: parsing, strictness and the messages a person sees."""

from __future__ import annotations

import pytest

from slices import errors
from slices.intent import NetworkSlice, load_slice_files, load_slices, parse_slice

GOOD = """
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: cars}
spec:
  kind: vehicle
  snssai: {sst: 4, sd: "00AB01"}
  coverage: {zones: [corridor-1], circle: {lat: 48.85, lon: 2.35, radiusKm: 2}}
  sla: {latencyMs: 5, dlMbpsPerCell: 40, ulMbpsPerCell: 20, reliability: 0.99999}
  priority: 200
  workloads:
    - {name: v2x, image: "example/v2x:1", cpuMillicores: 1000, memoryMib: 1024, replicas: 2}
"""


def test_parses_camel_case_document() -> None:
    [doc] = load_slices(GOOD)
    assert doc.name == "cars"
    assert doc.spec.snssai is not None and str(doc.spec.snssai) == "4-00ab01"
    assert doc.spec.coverage.circle is not None and doc.spec.coverage.circle.radius_km == 2
    assert doc.spec.workloads is not None and doc.spec.workloads[0].cpu_millicores == 1000


def test_round_trips_through_wire_form() -> None:
    [doc] = load_slices(GOOD)
    assert NetworkSlice.model_validate(doc.to_wire()) == doc
    assert "latencyMs" in doc.to_wire()["spec"]["sla"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("find", "replace", "expected"),
    [
        ("  priority: 200", "  priority: 5000", "spec.priority: Input should be less than or equal to 1000"),
        ("  priority: 200", "  colour: red", "spec.colour: unknown field"),
        ("metadata: {name: cars}", "metadata: {name: Cars_1}", "metadata.name: String should match pattern"),
        ("latencyMs: 5,", "latencyMs: -1,", "spec.sla.latencyMs: Input should be greater than 0"),
        ('sd: "00AB01"', 'sd: "xyz"', "spec.snssai.sd: String should match pattern"),
        ("kind: vehicle", "kind: drone", "spec.kind: Input should be 'iot', 'vehicle' or 'wifi'"),
    ],
)
def test_bad_fields_are_named(find: str, replace: str, expected: str) -> None:
    assert find in GOOD
    with pytest.raises(errors.InvalidSpec) as info:
        load_slices(GOOD.replace(find, replace, 1), "cars.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("cars.yaml[doc 1]: ")


def test_coverage_must_select_something() -> None:
    with pytest.raises(
        errors.InvalidSpec, match=r"spec\.coverage: give at least one of sites, zones or circle"
    ):
        parse_slice({"metadata": {"name": "a"}, "spec": {"kind": "iot", "coverage": {}}})


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(errors.InvalidSpec, match=r"x.yaml: not valid YAML at line 3, column 1"):
        load_slices("a: 1\nb: [unclosed\n", "x.yaml")


def test_non_mapping_document_is_refused() -> None:
    with pytest.raises(errors.InvalidSpec, match=r"expected a mapping, got list"):
        load_slices("- 1\n- 2\n", "x.yaml")


def test_duplicate_names_across_files_fail_the_whole_load(tmp_path: object) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    (base / "a.yaml").write_text(GOOD)
    (base / "b.yaml").write_text(GOOD)
    with pytest.raises(errors.InvalidSpec, match="also defined in"):
        load_slice_files([str(base / "a.yaml"), str(base / "b.yaml")])


def test_unreadable_file() -> None:
    with pytest.raises(errors.InvalidSpec, match="cannot read"):
        load_slice_files(["/nonexistent/slices.yaml"])


def test_duplicate_workload_names() -> None:
    spec = {
        "kind": "iot",
        "coverage": {"zones": ["z"]},
        "workloads": [
            {"name": "a", "image": "i", "cpuMillicores": 1, "memoryMib": 1},
            {"name": "a", "image": "i", "cpuMillicores": 1, "memoryMib": 1},
        ],
    }
    with pytest.raises(errors.InvalidSpec, match="workload name 'a' is used twice"):
        parse_slice({"metadata": {"name": "x"}, "spec": spec})
