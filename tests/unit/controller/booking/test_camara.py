"""The CAMARA models against the spec itself: its examples round-trip, its schemas' fields,
required lists and enums are the models', and its ranges and formats are enforced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pydantic
import pytest
import yaml

from controller.booking import camara
from tests.support import envtest
from tests.support.paths import ROOT

SPEC = ROOT.parent / "shared" / "camara" / "network-slice-booking.yaml"

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def spec() -> Doc:
    if not SPEC.is_file():
        reason = f"the CAMARA spec is not at {SPEC} (the repo is cloned beside ../shared in CI)"
        if envtest.ci_requires_real_servers():
            pytest.fail(f"{reason}; under CI it must be there")
        pytest.skip(reason)
    loaded: Doc = yaml.safe_load(Path(SPEC).read_text(encoding="utf-8"))
    return loaded


# -- the spec's own examples ------------------------------------------------------------------

EXAMPLES: dict[str, type[pydantic.BaseModel]] = {
    "RETRIEVAL_CIRCLE": camara.SliceAttributes,
    "RETRIEVAL_POLYGON": camara.SliceAttributes,
    "RESPONSE_CIRCLE": camara.SliceInfo,
    "RESPONSE_POLYGON": camara.SliceInfo,
    "SLICE_CREATED_EVENT_CIRCLE": camara.CloudEvent,
    "SLICE_CREATED_EVENT_POLYGON": camara.CloudEvent,
}


def test_every_example_of_the_spec_is_covered(spec: Doc) -> None:
    assert set(spec["components"]["examples"]) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_round_trips_unchanged(spec: Doc, name: str) -> None:
    body = spec["components"]["examples"][name]["value"]
    model = EXAMPLES[name]
    parsed = model.model_validate(body)
    assert parsed.model_dump(mode="json", exclude_none=True) == body
    assert model.model_validate_json(json.dumps(body)) == parsed


def test_error_examples_round_trip(spec: Doc) -> None:
    bodies = [
        example["value"]
        for response in spec["components"]["responses"].values()
        for example in response["content"]["application/json"]["examples"].values()
    ]
    assert len(bodies) >= 10
    for body in bodies:
        assert camara.ErrorInfo.model_validate(body).model_dump(mode="json") == body


def test_example_values_are_typed(spec: Doc) -> None:
    info = camara.SliceInfo.model_validate(spec["components"]["examples"]["RESPONSE_CIRCLE"]["value"])
    assert info.sliceId == UUID("3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert isinstance(info.serviceArea, camara.Circle)
    assert info.serviceArea.radius == 800
    assert info.serviceTime.startDate.utcoffset() is not None
    assert info.sinkCredential is None
    request = camara.SliceAttributes.model_validate(
        spec["components"]["examples"]["RETRIEVAL_POLYGON"]["value"]
    )
    assert isinstance(request.serviceArea, camara.Polygon)
    assert len(request.serviceArea.boundary) == 4
    assert isinstance(request.sinkCredential, camara.AccessTokenCredential)


# -- field by field against the schemas -------------------------------------------------------


def _flatten(spec: Doc, schema: Doc) -> tuple[set[str], set[str]]:
    """(properties, required) of a schema with its ``allOf`` and ``$ref`` parts merged."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    props = set(schema.get("properties", {}))
    required = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        p, r = _flatten(spec, part)
        props |= p
        required |= r
    return props, required


SCHEMAS: dict[str, type[pydantic.BaseModel]] = {
    "SliceAttributes": camara.SliceAttributes,
    "SliceInfo": camara.SliceInfo,
    "TimePeriod": camara.TimePeriod,
    "Point": camara.Point,
    "Circle": camara.Circle,
    "Polygon": camara.Polygon,
    "SliceQosProfile": camara.SliceQosProfile,
    "Rate": camara.Rate,
    "Duration": camara.Duration,
    "AccessTokenCredential": camara.AccessTokenCredential,
    "PrivateKeyJWTCredential": camara.PrivateKeyJwtCredential,
    "ErrorInfo": camara.ErrorInfo,
    "SliceCreatedEvent": camara.CloudEvent,
}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_fields_and_required_match_the_schema(spec: Doc, name: str) -> None:
    props, required = _flatten(spec, spec["components"]["schemas"][name])
    model = SCHEMAS[name]
    assert set(model.model_fields) == props
    # A discriminator (areaType, credentialType) or a constant with a default is still sent.
    ours = {n for n, f in model.model_fields.items() if f.is_required()}
    constants = {"areaType", "credentialType", "accessTokenType", "type", "specversion"}
    assert ours - required == set()
    assert required - ours <= constants


@pytest.mark.parametrize(
    ("schema", "literal"),
    [
        ("RateUnitEnum", camara.RateUnit),
        ("TimeUnitEnum", camara.TimeUnit),
    ],
)
def test_unit_enums_match(spec: Doc, schema: str, literal: Any) -> None:
    assert list(literal.__args__) == spec["components"]["schemas"][schema]["enum"]


def test_constants_match(spec: Doc) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["XCorrelator"]["pattern"] == camara.XCORRELATOR_PATTERN
    assert schemas["ApiEventType"]["enum"] == [camara.STATUS_CHANGED]


@pytest.mark.parametrize(
    ("schema", "model", "field"),
    [
        ("NumberOfDevices", camara.SliceQosProfile, "maxNumOfDevices"),
        ("Rate", camara.Rate, "value"),
    ],
)
def test_integer_ranges_match(spec: Doc, schema: str, model: type[pydantic.BaseModel], field: str) -> None:
    s = spec["components"]["schemas"][schema]
    s = s["properties"][field] if "properties" in s else s
    lo, hi = s["minimum"], s["maximum"]
    ok = {"maxNumOfDevices": {}, "value": {"unit": "Mbps"}}[field]
    model.model_validate({**ok, field: lo})
    model.model_validate({**ok, field: hi})
    for bad in (lo - 1, hi + 1):
        with pytest.raises(pydantic.ValidationError, match=field):
            model.model_validate({**ok, field: bad})


# -- what the models refuse -------------------------------------------------------------------

CIRCLE: Doc = {
    "serviceTime": {"startDate": "2024-06-01T12:00:00Z", "endDate": "2024-06-02T12:00:00+02:00"},
    "serviceArea": {"areaType": "CIRCLE", "center": {"latitude": 45.75, "longitude": 4.86}, "radius": 800},
    "sliceQosProfile": {"maxNumOfDevices": 5},
}


def _with(path: str, value: object) -> Doc:
    """CIRCLE with the value at a dotted path replaced (``...`` removes the key)."""
    doc: Doc = json.loads(json.dumps(CIRCLE))
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return doc


def test_the_base_body_is_valid() -> None:
    body = camara.SliceAttributes.model_validate(CIRCLE)
    assert body.serviceTime.endDate is not None
    assert body.serviceTime.endDate.utcoffset() is not None


@pytest.mark.parametrize(
    ("path", "value", "loc"),
    [
        ("serviceTime.startDate", "2024-06-01T12:00:00", "serviceTime.startDate"),  # no time zone
        ("serviceTime.startDate", 1717243200, "serviceTime.startDate"),  # a Unix time, not RFC 3339
        ("serviceTime.startDate", "2024-06-01T12:00:00" + "0" * 60 + "Z", "serviceTime.startDate"),
        ("serviceTime.endDate", "2024-06-01T11:00:00Z", "serviceTime"),  # before the start
        ("serviceTime.startDate", ..., "serviceTime.startDate"),
        ("serviceArea.areaType", "SQUARE", "serviceArea"),
        ("serviceArea.radius", 0.5, "serviceArea.CIRCLE.radius"),
        ("serviceArea.radius", "800", "serviceArea.CIRCLE.radius"),
        ("serviceArea.center.latitude", 90.5, "serviceArea.CIRCLE.center.latitude"),
        ("serviceArea.center.longitude", -181, "serviceArea.CIRCLE.center.longitude"),
        ("serviceArea.center.latitude", True, "serviceArea.CIRCLE.center.latitude"),
        ("sliceQosProfile.maxNumOfDevices", 21, "sliceQosProfile.maxNumOfDevices"),
        ("sliceQosProfile.maxNumOfDevices", "5", "sliceQosProfile.maxNumOfDevices"),
        ("sliceQosProfile.maxNumOfDevices", 5.5, "sliceQosProfile.maxNumOfDevices"),
        ("sliceQosProfile.maxNumOfDevice", 5, "sliceQosProfile.maxNumOfDevice"),  # misspelt
        ("sliceQosProfile.downStreamRatePerDevice", {"value": 1025, "unit": "Mbps"}, "value"),
        ("sliceQosProfile.downStreamRatePerDevice", {"value": 1, "unit": "mbps"}, "unit"),
        ("sliceQosProfile.upStreamDelayBudget", {"value": 0, "unit": "Milliseconds"}, "value"),
        ("sliceQosProfile.upStreamDelayBudget", {"value": 2**31, "unit": "Seconds"}, "value"),
        ("sliceQosProfile.upStreamDelayBudget", {"value": 1, "unit": "Weeks"}, "unit"),
        ("sink", "endpoint.example.com/sink", "sink"),
        ("sink", "https://" + "a" * 2048, "sink"),
        ("sinkCredential", {"credentialType": "PASSWORD"}, "sinkCredential"),
        ("sinkCredential", {"credentialType": "ACCESSTOKEN", "accessToken": "t"}, "accessTokenExpiresUtc"),
        ("extra", 1, "extra"),
        ("sliceQosProfile", ..., "sliceQosProfile"),
    ],
)
def test_refused(path: str, value: object, loc: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        camara.SliceAttributes.model_validate(_with(path, value))
    locs = [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]
    assert any(loc in where for where in locs), locs


def test_polygon_point_count() -> None:
    point = {"latitude": 0.0, "longitude": 0.0}
    camara.Polygon.model_validate({"boundary": [point] * 3})
    camara.Polygon.model_validate({"boundary": [point] * 15})
    for n in (2, 16):
        with pytest.raises(pydantic.ValidationError, match="boundary"):
            camara.Polygon.model_validate({"areaType": "POLYGON", "boundary": [point] * n})


def test_a_circle_cannot_claim_to_be_a_polygon() -> None:
    with pytest.raises(pydantic.ValidationError):
        camara.Circle.model_validate(
            {"areaType": "POLYGON", "center": {"latitude": 0, "longitude": 0}, "radius": 5}
        )


def test_models_are_frozen() -> None:
    point = camara.Point(latitude=1.0, longitude=2.0)
    with pytest.raises(pydantic.ValidationError):
        point.latitude = 3.0  # type: ignore[misc]


def test_cloud_event_defaults_and_limits() -> None:
    data = camara.SliceInfo.model_validate({**CIRCLE, "sliceId": "3fa85f64-5717-4562-b3fc-2c963f66afa6"})
    event = camara.CloudEvent(id="1", source="/slices", time=data.serviceTime.startDate, data=data)
    wire = event.model_dump(mode="json", exclude_none=True)
    assert wire["type"] == camara.STATUS_CHANGED
    assert (wire["specversion"], wire["datacontenttype"]) == ("1.0", "application/json")
    assert wire["time"] == "2024-06-01T12:00:00Z"
    for field, bad in (("source", ""), ("source", "a b"), ("specversion", "0.3"), ("type", "other")):
        with pytest.raises(pydantic.ValidationError, match=field):
            camara.CloudEvent.model_validate({**wire, field: bad})


def test_error_info_limits() -> None:
    camara.ErrorInfo(status=400, code="X" * 96, message="m" * 512)
    for field, bad in (("status", 99), ("status", 600), ("code", "X" * 97), ("message", "m" * 513)):
        with pytest.raises(pydantic.ValidationError, match=field):
            camara.ErrorInfo.model_validate({"status": 400, "code": "C", "message": "m", field: bad})
