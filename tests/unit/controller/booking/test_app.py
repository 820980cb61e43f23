"""The booking app's parts: the token buckets, how validation errors become one CAMARA error,
and the app's decisions (the order of the checks, client authentication details, the signer's
refusals) over the fakes, with a fake clock for the buckets, served on a loopback port (Starlette's
in-process TestClient wants httpx2)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote_plus

import httpx
import pydantic
import pytest
from fastapi import FastAPI

from controller.booking import camara, ports
from controller.booking.app import API_PREFIX, describe, envelope, make_app
from controller.booking.ratelimit import TokenBuckets
from controller.booking.server import BookingServer
from tests.support.booking_fakes import FakeBookings, FakeClients, FakeTokens


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- token buckets ------------------------------------------------------------------------------


def test_a_bucket_grants_its_burst_then_says_how_long_to_wait() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(clock)
    assert [buckets.take("a", 3.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 3.0) == pytest.approx(1 / 3)
    clock.now += 1 / 3
    assert buckets.take("a", 3.0) == 0.0
    assert buckets.take("b", 3.0) == 0.0  # one bucket per key


def test_a_slow_rate_has_a_burst_of_one_and_refills_slowly() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(clock)
    assert buckets.take("a", 0.5) == 0.0
    assert buckets.take("a", 0.5) == pytest.approx(2.0)
    clock.now += 1.0
    assert buckets.take("a", 0.5) == pytest.approx(1.0)  # half a token saved up, nothing taken
    clock.now += 1.0
    assert buckets.take("a", 0.5) == 0.0


def test_a_lowered_rate_caps_what_was_saved_up() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(clock)
    buckets.take("a", 10.0)
    clock.now += 60.0
    granted = 0
    while buckets.take("a", 2.0) == 0.0:
        granted += 1
    assert granted == 2


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBuckets().take("a", 0.0)
    with pytest.raises(ValueError, match="positive"):
        make_app(FakeBookings(), FakeClients(), FakeTokens(), rate_limit_per_s=0.0)


# -- validation errors as one CAMARA error ----------------------------------------------------------


def _errors(body: dict[str, Any]) -> list[Any]:
    with pytest.raises(pydantic.ValidationError) as refused:
        camara.SliceAttributes.model_validate(body)
    return [dict(e, loc=("body", *e["loc"])) for e in refused.value.errors()]


BODY: dict[str, Any] = {
    "serviceTime": {"startDate": "2030-06-01T12:00:00Z"},
    "serviceArea": {"areaType": "CIRCLE", "center": {"latitude": 1.0, "longitude": 2.0}, "radius": 10},
    "sliceQosProfile": {"maxNumOfDevices": 3},
}


@pytest.mark.parametrize(
    ("changes", "code", "message"),
    [
        (
            {"sliceQosProfile": {"maxNumOfDevices": 30}},
            "OUT_OF_RANGE",
            "sliceQosProfile.maxNumOfDevices: Input should be less",
        ),
        (
            {
                "serviceArea": {
                    "areaType": "CIRCLE",
                    "center": {"latitude": 1.0, "longitude": 2.0},
                    "radius": 0,
                }
            },
            "OUT_OF_RANGE",
            "serviceArea.radius: Input should be greater than or equal to 1",
        ),
        (
            {"serviceArea": {"areaType": "POLYGON", "boundary": [{"latitude": 0.0, "longitude": 0.0}] * 16}},
            "OUT_OF_RANGE",
            "serviceArea.boundary: ",
        ),
        (
            {
                "serviceArea": {
                    "areaType": "POLYGON",
                    "boundary": [
                        {"latitude": 0.0, "longitude": 0.0},
                        {"latitude": "north", "longitude": 0.0},
                        {},
                    ],
                }
            },
            "INVALID_ARGUMENT",
            "serviceArea.boundary[1].latitude: ",
        ),
        ({"sink": "x" * 3000}, "INVALID_ARGUMENT", "sink: not an absolute URI"),  # the URI check comes first
        (
            {"sink": "https://" + "x" * 3000},
            "OUT_OF_RANGE",
            "sink: ",
        ),
        ({"color": "blue"}, "INVALID_ARGUMENT", "color: unknown field"),
        (
            {"serviceTime": {"startDate": "2030-06-01T12:00:00"}},
            "INVALID_ARGUMENT",
            "serviceTime.startDate: Input should have timezone info",
        ),
    ],
    ids=[
        "devices",
        "radius",
        "boundary>15",
        "boundary-point",
        "sink-uri",
        "sink-length",
        "unknown",
        "naive-date",
    ],
)
def test_the_first_problem_names_its_field_and_picks_the_code(
    changes: dict[str, Any], code: str, message: str
) -> None:
    error = describe(_errors({**BODY, **changes}))
    assert (error.status, error.code) == (400, code)
    assert error.message.startswith(message), error.message


def test_more_problems_are_counted_not_listed() -> None:
    error = describe(_errors({"sliceQosProfile": {"maxNumOfDevices": 0}}))
    assert error.message == "serviceTime: Field required (and 2 more problems)"


def test_a_json_syntax_error_a_missing_body_and_a_bad_path_parameter() -> None:
    syntax = describe(
        [
            {
                "type": "json_invalid",
                "loc": ("body", 7),
                "msg": "JSON decode error",
                "ctx": {"error": "Expecting value"},
            }
        ]
    )
    assert (syntax.code, syntax.message) == (
        "INVALID_ARGUMENT",
        "the request body is not valid JSON: Expecting value",
    )
    missing = describe([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    assert missing.message == "a JSON request body is required"
    path = describe(
        [{"type": "uuid_parsing", "loc": ("path", "sliceId"), "msg": "Input should be a valid UUID"}]
    )
    assert (path.code, path.message) == ("INVALID_ARGUMENT", "sliceId: Input should be a valid UUID")
    assert describe([]).code == "INVALID_ARGUMENT"


def test_an_envelope_message_fits_the_spec_s_512_characters() -> None:
    response = envelope(ports.invalid_argument("x" * 600))
    assert len(bytes(response.body)) < 600
    assert response.status_code == 400


# -- the app in process ----------------------------------------------------------------------------


@contextmanager
def serving(app: FastAPI) -> Iterator[httpx.Client]:
    server = BookingServer(app, "127.0.0.1:0")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            yield client
    finally:
        server.stop()


class App:
    def __init__(
        self, client: httpx.Client, clock: FakeClock, clients: FakeClients, tokens: FakeTokens
    ) -> None:
        self.client, self.clock, self.clients, self.tokens = client, clock, clients, tokens

    def bearer(
        self, name: str, scopes: frozenset[str] = frozenset(ports.SCOPES), **tenant: Any
    ) -> dict[str, str]:
        registered = self.clients.add(name, scopes, **tenant)[0]
        return {"Authorization": f"Bearer {self.tokens.issue(registered, scopes)[0]}"}


@pytest.fixture
def app() -> Iterator[App]:
    clock, clients, tokens = FakeClock(), FakeClients(), FakeTokens()
    built = make_app(FakeBookings(), clients, tokens, rate_limit_per_s=1.0, buckets=TokenBuckets(clock))
    with serving(built) as client:
        yield App(client, clock, clients, tokens)


def _get(app: App, headers: dict[str, str]) -> int:
    return app.client.get(f"{API_PREFIX}/slices/{uuid.uuid4()}", headers=headers).status_code


def test_refused_tokens_take_nothing_from_the_bucket_but_a_missing_scope_does(app: App) -> None:
    """Authentication, then the rate limit, then the scope: an unauthenticated caller cannot
    drain a tenant's bucket; a tenant probing with the wrong scope spends its own."""
    headers = app.bearer("events", frozenset({ports.SCOPE_CREATE}))  # no get scope
    for _ in range(3):
        assert _get(app, {"Authorization": "Bearer forged"}) == 401
    assert _get(app, headers) == 403  # the one token of a 1/s bucket
    assert _get(app, headers) == 429
    app.clock.now += 1.0
    assert _get(app, headers) == 403


def test_a_tenant_s_own_rate_overrides_the_default(app: App) -> None:
    fast = app.bearer("fast", requests_per_s=4.0)
    plain = app.bearer("plain")
    assert [_get(app, fast) for _ in range(5)] == [404, 404, 404, 404, 429]
    assert [_get(app, plain) for _ in range(2)] == [404, 429]


def test_a_throttled_answer_says_when_to_retry(app: App) -> None:
    headers = app.bearer("slow", requests_per_s=0.25)
    _get(app, headers)
    throttled = app.client.get(f"{API_PREFIX}/slices/{uuid.uuid4()}", headers=headers)
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "4"
    app.clock.now += 3.5
    assert (
        app.client.get(f"{API_PREFIX}/slices/{uuid.uuid4()}", headers=headers).headers["retry-after"] == "1"
    )


def test_basic_credentials_are_form_decoded_halves(app: App) -> None:
    tenant, secret = app.clients.add("a:b+c d")  # id-a:b+c d: a ':' must be escaped in Basic
    grant = {"grant_type": "client_credentials"}
    encoded = (quote_plus(tenant.client_id), quote_plus(secret))
    assert app.client.post("/oauth2/token", data=grant, auth=encoded).status_code == 200
    same_id = app.client.post("/oauth2/token", data={**grant, "client_id": tenant.client_id}, auth=encoded)
    assert same_id.status_code == 200
    other_id = app.client.post("/oauth2/token", data={**grant, "client_id": "id-else"}, auth=encoded)
    assert (other_id.status_code, other_id.json()["error"]) == (400, "invalid_request")
    no_colon = app.client.post("/oauth2/token", data=grant, headers={"Authorization": "Basic bm9jb2xvbg=="})
    assert (no_colon.status_code, no_colon.json()["error"]) == (400, "invalid_request")


def test_an_oversized_token_form_is_invalid(app: App) -> None:
    tenant, secret = app.clients.add("events")
    response = app.client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "pad": "x" * 9000},
        auth=(tenant.client_id, secret),
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert "larger" in response.json()["error_description"]


class RefusingTokens(FakeTokens):
    def __init__(self, refusal: ports.BookingError) -> None:
        super().__init__()
        self.refusal = refusal

    def issue(self, tenant: ports.Tenant, scopes: frozenset[str]) -> tuple[str, int]:
        raise self.refusal


@pytest.mark.parametrize(
    ("refusal", "error"),
    [
        (ports.permission_denied("scope x is not granted"), "invalid_scope"),
        (
            ports.invalid_argument("this service issues no tokens: ask https://idp.example for one"),
            "unauthorized_client",
        ),
    ],
)
def test_the_signer_s_refusal_is_an_oauth_error(refusal: ports.BookingError, error: str) -> None:
    clients = FakeClients()
    tenant, secret = clients.add("events")
    with serving(make_app(FakeBookings(), clients, RefusingTokens(refusal))) as client:
        response = client.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(tenant.client_id, secret)
        )
    assert (response.status_code, response.json()) == (
        400,
        {"error": error, "error_description": refusal.message},
    )


def test_the_key_set_is_served_when_given() -> None:
    keys = {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "x": "AA", "y": "BB"}]}
    with serving(make_app(FakeBookings(), FakeClients(), FakeTokens(), jwks=lambda: keys)) as client:
        response = client.get("/.well-known/jwks.json")
    assert (response.status_code, response.json()) == (200, keys)
    assert "max-age" in response.headers["cache-control"]


def test_an_empty_bearer_or_another_scheme_is_401(app: App) -> None:
    for authorization in ("Bearer", "Token abc", "bearer", "Basic eDp5"):
        response = app.client.get(
            f"{API_PREFIX}/slices/{uuid.uuid4()}", headers={"Authorization": authorization}
        )
        assert (response.status_code, response.json()["code"]) == (401, "UNAUTHENTICATED"), authorization
