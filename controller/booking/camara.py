"""The CAMARA Network Slice Booking API's schemas as pydantic models (spec version ``wip``).

Field names are the wire names (camelCase), so a model dumps to exactly the JSON the spec shows
(``model_dump(mode="json", exclude_none=True)``). Each model follows its schema in
``network-slice-booking.yaml``: required fields, ranges, enums, lengths, formats. Numbers are
strict (``"10"`` and ``true`` are not integers, as JSON Schema has it); date-times must carry a
time zone. Where the spec leaves a field optional the model does too, even where edgeslice cannot
book without it: :mod:`controller.booking.qos` refuses those with a message naming the field.

Every model is frozen and refuses unknown fields (``extra="forbid"``), so a misspelt
``maxNumOfDevice`` in a request is an error instead of being silently ignored, and a response or
event carries nothing the spec does not name.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

#: ``XCorrelator``: the pattern every ``x-correlator`` header must match.
XCORRELATOR_PATTERN = r"^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$"
#: ``ApiEventType``: the one event type of this API.
STATUS_CHANGED: Final = "org.camaraproject.network-slice-booking.v0.status-changed"

INT32_MAX = 2**31 - 1

RateUnit = Literal["bps", "kbps", "Mbps", "Gbps", "Tbps"]
TimeUnit = Literal["Days", "Hours", "Minutes", "Seconds", "Milliseconds", "Microseconds", "Nanoseconds"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")  # RFC 3986 §3.1 scheme, then no blanks


def _date_time(value: object) -> object:
    """``DateTime``: an RFC 3339 string of at most 64 characters (not a Unix timestamp)."""
    if isinstance(value, str) and len(value) > 64:
        raise ValueError("at most 64 characters")
    if not isinstance(value, str | datetime):
        raise ValueError("give an RFC 3339 date-time string with a time zone")
    return value


def _absolute_uri(value: object) -> object:
    """``format: uri``: an absolute URI (a scheme, no blanks); kept as written, not normalised."""
    if isinstance(value, str) and not _SCHEME.match(value):
        raise ValueError("not an absolute URI (e.g. https://endpoint.example.com/sink)")
    return value


def _uri_reference(value: object) -> object:
    if isinstance(value, str) and any(ch.isspace() for ch in value):
        raise ValueError("not a URI reference (it contains blanks)")
    return value


#: ``DateTime``: a naive one is refused ("Input should have timezone info").
DateTime = Annotated[
    AwareDatetime, BeforeValidator(_date_time), Field(description="RFC 3339 with a time zone")
]
Int32 = Annotated[int, Strict(), Field(le=INT32_MAX)]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]


class _Camara(BaseModel):
    """Frozen; unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TimePeriod(_Camara):
    """``TimePeriod``: from ``startDate``; without ``endDate`` the period has no end."""

    startDate: DateTime
    endDate: DateTime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TimePeriod:
        if self.endDate is not None and self.endDate <= self.startDate:
            raise ValueError(
                f"endDate {self.endDate.isoformat()} is not after startDate {self.startDate.isoformat()}"
            )
        return self


class Point(_Camara):
    """``Point``: WGS 84 degrees."""

    latitude: Annotated[Number, Field(ge=-90, le=90)]
    longitude: Annotated[Number, Field(ge=-180, le=180)]


class Circle(_Camara):
    """``Circle``: every place within ``radius`` metres of ``center``."""

    areaType: Literal["CIRCLE"] = "CIRCLE"
    center: Point
    radius: Annotated[Number, Field(ge=1, description="metres")]


class Polygon(_Camara):
    """``Polygon``: a simple polygon (3 to 15 points; not self-intersecting, checked by areas.py)."""

    areaType: Literal["POLYGON"] = "POLYGON"
    boundary: Annotated[tuple[Point, ...], Field(min_length=3, max_length=15)]


#: ``Area``: a circle or a polygon, told apart by ``areaType``.
Area = Annotated[Circle | Polygon, Field(discriminator="areaType")]


class Rate(_Camara):
    """``Rate``: ``value`` (0-1024) ``unit``; both optional in the spec."""

    value: Annotated[int, Strict(), Field(ge=0, le=1024)] | None = None
    unit: RateUnit | None = None


class Duration(_Camara):
    """``Duration``: ``value`` (at least 1, int32) ``unit``; both optional in the spec."""

    value: Annotated[Int32, Field(ge=1)] | None = None
    unit: TimeUnit | None = None


class SliceQosProfile(_Camara):
    """``SliceQosProfile``: every field is optional in the spec."""

    maxNumOfDevices: Annotated[int, Strict(), Field(ge=1, le=20)] | None = None
    downStreamRatePerDevice: Rate | None = None
    upStreamRatePerDevice: Rate | None = None
    downStreamDelayBudget: Duration | None = None
    upStreamDelayBudget: Duration | None = None


class AccessTokenCredential(_Camara):
    """``AccessTokenCredential``: a bearer token the notifier presents to the sink."""

    credentialType: Literal["ACCESSTOKEN"] = "ACCESSTOKEN"
    accessToken: Annotated[str, Field(max_length=4096)]
    accessTokenExpiresUtc: DateTime
    accessTokenType: Literal["bearer"] = "bearer"


class PrivateKeyJwtCredential(_Camara):
    """``PrivateKeyJWTCredential``: the sink's authorization server was agreed at onboarding."""

    credentialType: Literal["PRIVATE_KEY_JWT"] = "PRIVATE_KEY_JWT"


#: ``SinkCredential``: told apart by ``credentialType``.
SinkCredential = Annotated[
    AccessTokenCredential | PrivateKeyJwtCredential, Field(discriminator="credentialType")
]


class SliceAttributes(_Camara):
    """``SliceAttributes``: the body of ``POST /slices``."""

    serviceTime: TimePeriod
    serviceArea: Area
    sliceQosProfile: SliceQosProfile
    sink: Annotated[str, BeforeValidator(_absolute_uri), Field(max_length=2048)] | None = None
    sinkCredential: SinkCredential | None = None


class SliceInfo(SliceAttributes):
    """``SliceInfo``: a booked slice, as ``POST``, ``GET`` and the notifications return it."""

    sliceId: UUID


class ErrorInfo(_Camara):
    """``ErrorInfo``: the body of every error response."""

    status: Annotated[int, Strict(), Field(ge=100, le=599)]
    code: Annotated[str, Field(max_length=96)]
    message: Annotated[str, Field(max_length=512)]


class CloudEvent(_Camara):
    """``SliceCreatedEvent`` (a ``CloudEvent`` of ``ApiNotificationEvent`` type): CloudEvents 1.0
    structured mode, the body of a notification to the sink."""

    id: Annotated[str, Field(max_length=256)]
    source: Annotated[str, BeforeValidator(_uri_reference), Field(min_length=1, max_length=2048)]
    type: Literal["org.camaraproject.network-slice-booking.v0.status-changed"] = STATUS_CHANGED
    specversion: Literal["1.0"] = "1.0"
    datacontenttype: Literal["application/json"] | None = "application/json"
    time: DateTime
    data: SliceInfo
