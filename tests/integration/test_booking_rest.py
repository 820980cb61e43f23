"""The booking API over a real uvicorn on a loopback port, with a real httpx client.

The ports are fakes (``tests/support/booking_fakes.py``) except in the last test, which wires
the real client registry and token signer over a real state file. Every exchange on a CAMARA
path is validated against ``../shared/camara/network-slice-booking.yaml``
(``tests/support/camara_conformance.py``); the token endpoint is not in that document.
"""

from __future__ import annotations

import base64
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest

from controller.booking import ports
from controller.booking.app import API_PREFIX, make_app
from controller.booking.clients import ClientRegistry
from controller.booking.server import BookingServer
from controller.booking.tokens import SignedTokens
from controller.runtime.store import Store
from slices import errors
from tests.support.booking_fakes import FakeBookings, FakeClients, FakeTokens
from tests.support.booking_rig import slice_attributes
from tests.support.camara_conformance import Conformance, camara_document
from tests.support.tls_certs import make_pki

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet

SLICES = f"{API_PREFIX}/slices"
TOKEN_PATH = "/oauth2/token"
GRANT = {"grant_type": "client_credentials"}


@dataclass
class Rig:
    server: BookingServer
    http: httpx.Client
    bookings: FakeBookings
    clients: FakeClients
    tokens: FakeTokens
    spec: Conformance

    def token(self, name: str, scopes: frozenset[str] = frozenset(ports.SCOPES), **tenant: Any) -> str:
        """A registered client ``name`` and an access token of it (from the fakes directly)."""
        found = self.clients.tenant(f"id-{name}")
        registered = found if found is not None else self.clients.add(name, scopes, **tenant)[0]
        return self.tokens.issue(registered, scopes)[0]

    def call(
        self, method: str, path: str, token: str | None, *, valid_request: bool | None = True, **kw: Any
    ) -> httpx.Response:
        """A request on a CAMARA path, its exchange checked against the spec."""
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = self.http.request(method, path, headers=headers, **kw)
        self.spec.check(response, valid_request=valid_request)
        return response

    def token_request(self, **kw: Any) -> httpx.Response:
        """A POST to the token endpoint (not in the CAMARA document, so not checked against it)."""
        return self.http.post(TOKEN_PATH, **kw)


@pytest.fixture
def rig() -> Iterator[Rig]:
    spec = camara_document()
    bookings, clients, tokens = FakeBookings(), FakeClients(), FakeTokens()
    server = BookingServer(make_app(bookings, clients, tokens, rate_limit_per_s=1000.0), "127.0.0.1:0")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            yield Rig(server, http, bookings, clients, tokens, spec)
    finally:
        server.stop()


def assert_error(response: httpx.Response, status: int, code: str, *, naming: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"status", "code", "message"}
    assert (body["status"], body["code"]) == (status, code), body
    assert naming in body["message"]
    assert response.headers["x-correlator"]
    return body


# -- the three operations ---------------------------------------------------------------------


def test_create_get_delete_a_booking(rig: Rig) -> None:
    token = rig.token("events")
    created = rig.call("POST", SLICES, token, json=slice_attributes())
    assert created.status_code == 201
    info = created.json()
    slice_id = info["sliceId"]
    assert uuid.UUID(slice_id)
    assert created.headers["location"] == f"{SLICES}/{slice_id}"
    assert {k: v for k, v in info.items() if k != "sliceId"} == slice_attributes() | {
        "serviceArea": slice_attributes()["serviceArea"] | {"radius": 800.0}
    }

    got = rig.call("GET", f"{SLICES}/{slice_id}", token)
    assert (got.status_code, got.json()) == (200, info)

    gone = rig.call("DELETE", f"{SLICES}/{slice_id}", token)
    assert (gone.status_code, gone.content) == (204, b"")
    assert rig.call("DELETE", f"{SLICES}/{slice_id}", token).status_code == 204  # idempotent
    assert_error(rig.call("GET", f"{SLICES}/{slice_id}", token), 404, "NOT_FOUND")


def test_a_polygon_without_end_date_round_trips(rig: Rig) -> None:
    token = rig.token("transport")
    polygon = {
        "areaType": "POLYGON",
        "boundary": [
            {"latitude": 45.754114, "longitude": 4.860374},
            {"latitude": 45.753845, "longitude": 4.863185},
            {"latitude": 45.753916, "longitude": 4.866531},
        ],
    }
    body = slice_attributes(serviceArea=polygon, serviceTime={"startDate": "2030-06-01T12:00:00+02:00"})
    created = rig.call("POST", SLICES, token, json=body)
    assert created.status_code == 201
    assert created.json()["serviceArea"] == polygon
    assert "endDate" not in created.json()["serviceTime"]  # absent, not null: the spec has no nulls


def test_tenants_see_only_their_own_bookings(rig: Rig) -> None:
    police, events = rig.token("police"), rig.token("events")
    slice_id = rig.call("POST", SLICES, police, json=slice_attributes()).json()["sliceId"]
    body = assert_error(rig.call("GET", f"{SLICES}/{slice_id}", events), 404, "NOT_FOUND")
    unknown = assert_error(rig.call("GET", f"{SLICES}/{uuid.uuid4()}", events), 404, "NOT_FOUND")
    assert body["message"] == unknown["message"]  # another's booking looks like no booking
    assert rig.call("DELETE", f"{SLICES}/{slice_id}", events).status_code == 204
    assert rig.call("GET", f"{SLICES}/{slice_id}", police).status_code == 200  # still there


# -- x-correlator -----------------------------------------------------------------------------


def test_x_correlator_is_echoed_or_made(rig: Rig) -> None:
    token = rig.token("events")
    given = "b4333c46-49c0-4f62-80d7-f0ef930f1c46:{a}/<b>;c.d_e"
    echoed = rig.call("POST", SLICES, token, json=slice_attributes(), headers={"x-correlator": given})
    assert echoed.headers["x-correlator"] == given
    made = rig.call("GET", f"{SLICES}/{uuid.uuid4()}", token)
    assert uuid.UUID(made.headers["x-correlator"])
    error = rig.call("GET", f"{SLICES}/{uuid.uuid4()}", token, headers={"x-correlator": "mine"})
    assert (error.status_code, error.headers["x-correlator"]) == (404, "mine")


@pytest.mark.parametrize("bad", ["has space", "x" * 257, "semi+plus", 'quote"d'])
def test_a_bad_x_correlator_is_refused(rig: Rig, bad: str) -> None:
    token = rig.token("events")
    response = rig.call(
        "GET", f"{SLICES}/{uuid.uuid4()}", token, valid_request=False, headers={"x-correlator": bad}
    )
    assert_error(response, 400, "INVALID_ARGUMENT", naming="x-correlator")
    assert uuid.UUID(response.headers["x-correlator"])  # a fresh one: the bad one is not echoed
    assert rig.bookings.threads == []  # refused before any operation


# -- 400 ----------------------------------------------------------------------------------------


#: Where the API is stricter than the document as a JSON Schema validator reads it, the request
#: is not judged (None): an area's fields sit behind ``allOf`` + discriminator, which openapi-core
#: does not follow; the schemas do not forbid unknown fields; ``format: uri`` needs a checker
#: openapi-core may not have.
OUT, INVALID = "OUT_OF_RANGE", "INVALID_ARGUMENT"
TWO_POINTS = {"areaType": "POLYGON", "boundary": [{"latitude": 1, "longitude": 1}] * 2}
NO_TIME = {k: v for k, v in slice_attributes().items() if k != "serviceTime"}


def bad(
    name: str, body: dict[str, Any], code: str, naming: str, spec_refuses: bool | None = True
) -> ParameterSet:
    return pytest.param(body, code, naming, spec_refuses, id=name)


BAD_BODIES = [
    bad("devices>20", slice_attributes(devices=21), OUT, "sliceQosProfile.maxNumOfDevices:"),
    bad("devices<1", slice_attributes(devices=0), OUT, "sliceQosProfile.maxNumOfDevices:"),
    bad("rate>1024", slice_attributes(mbps=(2048, 2)), OUT, "sliceQosProfile.downStreamRatePerDevice.value:"),
    bad("delay<1", slice_attributes(budgets_ms=(20, 0)), OUT, "sliceQosProfile.upStreamDelayBudget.value:"),
    bad("radius<1", slice_attributes(center=(45.7, 4.8), radius=0.5), OUT, "serviceArea.radius:", None),
    bad(
        "latitude>90",
        slice_attributes(center=(91, 4.8), radius=10),
        OUT,
        "serviceArea.center.latitude:",
        None,
    ),
    bad("boundary<3", slice_attributes(serviceArea=TWO_POINTS), OUT, "serviceArea.boundary:", None),
    bad("devices-string", slice_attributes(devices="5"), INVALID, "sliceQosProfile.maxNumOfDevices:"),
    bad(
        "rate-unit",
        slice_attributes(qos={"downStreamRatePerDevice": {"value": 1, "unit": "Pbps"}}),
        INVALID,
        "sliceQosProfile.downStreamRatePerDevice.unit:",
    ),
    bad("area-type", slice_attributes(serviceArea={"areaType": "SQUARE"}), INVALID, "serviceArea"),
    bad(
        "date",
        slice_attributes(serviceTime={"startDate": "next saturday"}),
        INVALID,
        "serviceTime.startDate:",
    ),
    bad("missing", NO_TIME, INVALID, "serviceTime: Field required"),
    bad(
        "unknown-field",
        slice_attributes(qos={"maxNumOfDevice": 5}),
        INVALID,
        "sliceQosProfile.maxNumOfDevice: unknown field",
        None,
    ),
    bad("sink", slice_attributes(sink="not a uri", sink_token=None), INVALID, "sink:", None),
]


@pytest.mark.parametrize(("body", "code", "naming", "spec_refuses"), BAD_BODIES)
def test_a_body_the_spec_refuses_is_400(
    rig: Rig, body: dict[str, Any], code: str, naming: str, spec_refuses: bool | None
) -> None:
    token = rig.token("events")
    response = rig.call(
        "POST", SLICES, token, valid_request=None if spec_refuses is None else False, json=body
    )
    message = assert_error(response, 400, code, naming=naming)["message"]
    assert "\n" not in message
    assert rig.bookings.threads == []


def test_a_body_the_spec_allows_but_the_model_refuses_is_400(rig: Rig) -> None:
    """An end before the start and a date-time without a time zone pass the spec's schema; the
    models refuse them, and the API says so as the spec's errors."""
    token = rig.token("events")
    backwards = {"startDate": "2030-06-02T12:00:00Z", "endDate": "2030-06-01T12:00:00Z"}
    response = rig.call("POST", SLICES, token, json=slice_attributes(serviceTime=backwards))
    assert_error(response, 400, "INVALID_ARGUMENT", naming="serviceTime: endDate")


def test_malformed_json_and_no_body_are_400(rig: Rig) -> None:
    token = rig.token("events")
    headers = {"content-type": "application/json"}
    broken = rig.call(
        "POST", SLICES, token, valid_request=False, content=b'{"serviceTime": ', headers=headers
    )
    assert_error(broken, 400, "INVALID_ARGUMENT", naming="not valid JSON")
    empty = rig.call("POST", SLICES, token, valid_request=False, headers=headers)
    assert_error(empty, 400, "INVALID_ARGUMENT", naming="body is required")
    listed = rig.call("POST", SLICES, token, valid_request=False, json=[slice_attributes()])
    assert_error(listed, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_slice_id_that_is_no_uuid_is_400(rig: Rig, method: str) -> None:
    response = rig.call(method, f"{SLICES}/not-a-uuid", rig.token("events"), valid_request=False)
    assert_error(response, 400, "INVALID_ARGUMENT", naming="sliceId:")


# -- 401, 403 -------------------------------------------------------------------------------------


def test_no_bad_expired_or_orphaned_token_is_401(rig: Rig) -> None:
    expired = rig.token("events")
    rig.tokens.expire(expired)
    orphan = rig.token("gone")
    rig.clients.remove("id-gone")
    for token, naming in [
        (None, "Bearer"),
        ("forged", "forged"),
        (expired, "expired"),
        (orphan, "no longer registered"),
    ]:
        response = rig.call("POST", SLICES, token, json=slice_attributes())
        assert_error(response, 401, "UNAUTHENTICATED", naming=naming)
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert ('error="invalid_token"' in challenge) == (token is not None)
    basic = rig.call("GET", f"{SLICES}/{uuid.uuid4()}", None, headers={"Authorization": "Basic eDp5"})
    assert_error(basic, 401, "UNAUTHENTICATED")
    assert rig.bookings.threads == []


def test_a_token_without_the_operation_s_scope_is_403(rig: Rig) -> None:
    owner = rig.token("police")
    slice_id = rig.call("POST", SLICES, owner, json=slice_attributes()).json()["sliceId"]
    reader = rig.tokens.issue(rig.clients.registered["id-police"][0], frozenset({ports.SCOPE_GET}))[0]
    assert rig.call("GET", f"{SLICES}/{slice_id}", reader).status_code == 200
    create = rig.call("POST", SLICES, reader, json=slice_attributes())
    assert_error(create, 403, "PERMISSION_DENIED", naming=ports.SCOPE_CREATE)
    delete = rig.call("DELETE", f"{SLICES}/{slice_id}", reader)
    assert_error(delete, 403, "PERMISSION_DENIED", naming=ports.SCOPE_DELETE)
    assert rig.call("GET", f"{SLICES}/{slice_id}", owner).status_code == 200


def test_a_client_granted_fewer_scopes_than_its_token_names_is_403(rig: Rig) -> None:
    """The registration's scopes bound the token's (a registry that narrowed them wins)."""
    tenant, _ = rig.clients.add("narrow", frozenset({ports.SCOPE_GET}))
    widened = rig.tokens.issue(tenant, frozenset(ports.SCOPES))[0]
    assert_error(rig.call("POST", SLICES, widened, json=slice_attributes()), 403, "PERMISSION_DENIED")


# -- 422, 429 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "refusal",
    [
        ports.area_not_supported("serviceArea: the circle covers no cell of the city"),
        ports.resources_insufficient("cell c12 radio downlink is short 40 Mbps at 2030-06-01T13:00:00Z"),
        ports.quota_exceeded("tenant events holds 10 bookings, its quota"),
    ],
    ids=lambda e: e.code,
)
def test_the_service_s_refusals_keep_their_status_and_code(rig: Rig, refusal: ports.BookingError) -> None:
    token = rig.token("events")
    rig.bookings.refuse_next(refusal)
    response = rig.call("POST", SLICES, token, json=slice_attributes())
    body = assert_error(response, refusal.status, refusal.code)
    assert body["message"] == refusal.message
    assert "retry-after" not in response.headers  # a quota is not a matter of waiting


def test_the_booking_quota_of_a_tenant_is_429(rig: Rig) -> None:
    token = rig.token("events", quota_bookings=1)
    assert rig.call("POST", SLICES, token, json=slice_attributes()).status_code == 201
    assert_error(
        rig.call("POST", SLICES, token, json=slice_attributes()), 429, "QUOTA_EXCEEDED", naming="quota"
    )
    assert (
        rig.call("POST", SLICES, rig.token("police", quota_bookings=1), json=slice_attributes()).status_code
        == 201
    )


def test_a_tenant_over_its_request_rate_is_429_and_others_are_not(rig: Rig) -> None:
    slow = rig.token("slow", requests_per_s=0.1)  # a burst of 1, then one every 10 s
    other = rig.token("other")
    path = f"{SLICES}/{uuid.uuid4()}"
    assert rig.call("GET", path, slow).status_code == 404
    throttled = rig.call("GET", path, slow)
    assert_error(throttled, 429, "TOO_MANY_REQUESTS")
    assert 1 <= int(throttled.headers["retry-after"]) <= 10
    assert rig.call("GET", path, other).status_code == 404
    calls = len(rig.bookings.threads)
    assert_error(rig.call("POST", SLICES, slow, json=slice_attributes()), 429, "TOO_MANY_REQUESTS")
    assert len(rig.bookings.threads) == calls  # refused before the operation


# -- routes, methods, failures ---------------------------------------------------------------------


def test_unknown_routes_and_methods_answer_in_the_envelope(rig: Rig) -> None:
    missing = rig.http.get(f"{API_PREFIX}/bookings")
    assert_error(missing, 404, "NOT_FOUND", naming=f"{API_PREFIX}/bookings")
    put = rig.http.put(f"{SLICES}/{uuid.uuid4()}", json=slice_attributes())
    assert_error(put, 405, "METHOD_NOT_ALLOWED", naming="PUT")
    assert set(put.headers["allow"].replace(" ", "").split(",")) == {"GET", "DELETE"}


def test_a_failure_of_the_service_is_500_in_the_envelope(rig: Rig) -> None:
    def explode() -> None:
        raise RuntimeError("the calendar is on fire")

    rig.bookings.before_create = explode
    response = rig.http.post(
        SLICES,
        json=slice_attributes(),
        headers={"Authorization": f"Bearer {rig.token('events')}", "x-correlator": "fire"},
    )
    body = assert_error(response, 500, "INTERNAL")
    assert "fire" not in body["message"]  # no internals leak
    assert response.headers["x-correlator"] == "fire"


def test_the_operations_run_off_the_event_loop(rig: Rig) -> None:
    """A create that waits (as for the controller's lock) leaves other requests answered."""
    token = rig.token("events")
    release = threading.Event()

    def wait() -> None:
        release.wait(10.0)

    rig.bookings.before_create = wait
    outcome: list[int] = []
    pending = threading.Thread(
        target=lambda: outcome.append(rig.call("POST", SLICES, token, json=slice_attributes()).status_code)
    )
    pending.start()
    try:
        with httpx.Client(base_url=rig.server.url, timeout=5.0) as other:
            answered = other.get(f"{SLICES}/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"})
        assert answered.status_code == 404
        assert outcome == []  # the create is still waiting
    finally:
        release.set()
        pending.join(10.0)
    assert outcome == [201]
    assert rig.server.name not in rig.bookings.threads  # never on uvicorn's own thread


# -- the token endpoint -----------------------------------------------------------------------------


def test_a_token_by_basic_or_by_form_works_on_the_api(rig: Rig) -> None:
    tenant, secret = rig.clients.add("events")
    basic = rig.token_request(data=GRANT, auth=(tenant.client_id, secret))
    posted = rig.token_request(data=GRANT | {"client_id": tenant.client_id, "client_secret": secret})
    for response in (basic, posted):
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-correlator"]
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
        assert (body["token_type"], body["expires_in"]) == ("Bearer", FakeTokens.LIFETIME_S)
        assert set(body["scope"].split()) == set(ports.SCOPES)
        assert rig.call("POST", SLICES, body["access_token"], json=slice_attributes()).status_code == 201


def test_a_token_for_fewer_scopes_grants_only_those(rig: Rig) -> None:
    tenant, secret = rig.clients.add("events")
    response = rig.token_request(data=GRANT | {"scope": ports.SCOPE_GET}, auth=(tenant.client_id, secret))
    assert response.json()["scope"] == ports.SCOPE_GET
    assert_error(
        rig.call("POST", SLICES, response.json()["access_token"], json=slice_attributes()),
        403,
        "PERMISSION_DENIED",
    )


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.mark.parametrize(
    ("form", "authorization", "status", "error"),
    [
        ({}, "basic", 400, "invalid_request"),
        ({"grant_type": "password"}, "basic", 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, "", 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, _basic("id-events", "wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, _basic("id-nobody", "secret-events"), 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "client_id": "id-events", "client_secret": "wrong"},
            "",
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_secret": "secret-events"},
            "basic",
            400,
            "invalid_request",
        ),
        (
            {"grant_type": "client_credentials", "scope": "network-slice-booking:slices:get admin"},
            "basic",
            400,
            "invalid_scope",
        ),
        ({"grant_type": "client_credentials"}, "Basic %%%", 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, "Bearer tok-1", 401, "invalid_client"),
    ],
    ids=[
        "no-grant",
        "password-grant",
        "no-client-auth",
        "wrong-secret",
        "unknown-client",
        "wrong-post-secret",
        "basic-and-post",
        "scope-not-granted",
        "bad-basic",
        "bearer-scheme",
    ],
)
def test_token_requests_refused_as_rfc_6749_says(
    rig: Rig, form: dict[str, str], authorization: str, status: int, error: str
) -> None:
    tenant, secret = rig.clients.add("events", frozenset({ports.SCOPE_GET, ports.SCOPE_CREATE}))
    headers = {
        "Authorization": _basic(tenant.client_id, secret) if authorization == "basic" else authorization
    }
    response = rig.token_request(data=form, headers={k: v for k, v in headers.items() if v})
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    assert response.headers["cache-control"] == "no-store"
    assert ("www-authenticate" in response.headers) == (status == 401)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic ")
    assert rig.tokens.issued == {}


def test_a_token_request_not_in_form_encoding_or_repeating_a_field_is_invalid(rig: Rig) -> None:
    tenant, secret = rig.clients.add("events")
    as_json = rig.token_request(json=GRANT, auth=(tenant.client_id, secret))
    repeated = rig.token_request(
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(tenant.client_id, secret),
    )
    for response in (as_json, repeated):
        assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


# -- the service's own description, keys, the server -----------------------------------------------


def test_openapi_json_names_the_spec_s_operations(rig: Rig) -> None:
    document = rig.http.get("/openapi.json").json()
    operations = {
        (path, method): operation["operationId"]
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert operations[(SLICES, "post")] == "createSlice"
    assert operations[(f"{SLICES}/{{sliceId}}", "get")] == "getSlice"
    assert operations[(f"{SLICES}/{{sliceId}}", "delete")] == "deleteSlice"
    assert operations[(TOKEN_PATH, "post")] == "issueToken"
    assert "SliceAttributes" in document["components"]["schemas"]


def test_no_jwks_without_a_key_set(rig: Rig) -> None:
    assert_error(rig.http.get("/.well-known/jwks.json"), 404, "NOT_FOUND")


def test_a_port_in_use_is_one_line_naming_the_flag(rig: Rig) -> None:
    clash = BookingServer(make_app(FakeBookings(), FakeClients(), FakeTokens()), rig.server.address)
    with pytest.raises(errors.Unavailable) as refused:
        clash.start()
    assert str(refused.value) == f"--booking-listen {rig.server.address}: address already in use"


def test_https_with_a_certificate_and_the_port_freed_on_stop(tmp_path: Path) -> None:
    ca, cert, key = make_pki().write(tmp_path)
    clients, tokens = FakeClients(), FakeTokens()
    token = tokens.issue(clients.add("events")[0], frozenset(ports.SCOPES))[0]
    server = BookingServer(
        make_app(FakeBookings(), clients, tokens), "127.0.0.1:0", certfile=cert, keyfile=key
    )
    server.start()
    address = server.address
    try:
        assert server.endpoints == {"booking": f"https://{address}"}
        with httpx.Client(
            base_url=server.url, verify=ssl.create_default_context(cafile=ca), timeout=10.0
        ) as http:
            response = http.get(f"{SLICES}/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"})
        assert_error(response, 404, "NOT_FOUND")
    finally:
        server.stop()
    again = BookingServer(make_app(FakeBookings(), clients, tokens), address)
    again.start()  # the port is free again
    again.stop()


def test_the_real_registry_and_signer_over_a_state_file(tmp_path: Path) -> None:
    """ClientRegistry + SignedTokens over SQLite: a client the operator registers gets a token at
    the endpoint, books with it, the key set verifies it, and its removal ends it at once."""
    spec = camara_document()
    store = Store.open(tmp_path / "state.db")
    registry = ClientRegistry(store)
    signer = SignedTokens(store, issuer="https://booking.test", audience="network-slice-booking")
    tenant, secret = registry.add("events", [ports.SCOPE_CREATE, ports.SCOPE_GET])
    server = BookingServer(make_app(FakeBookings(), registry, signer, jwks=signer.jwks), "127.0.0.1:0")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            issued = http.post(TOKEN_PATH, data=GRANT, auth=(tenant.client_id, secret))
            assert issued.status_code == 200, issued.text
            token = issued.json()["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}

            keys = http.get("/.well-known/jwks.json").json()
            key = jwt.PyJWKSet.from_dict(keys)[jwt.get_unverified_header(token)["kid"]]
            claims = jwt.decode(token, key, algorithms=["ES256"], audience="network-slice-booking")
            assert claims["client_id"] == tenant.client_id

            created = http.post(SLICES, json=slice_attributes(), headers=bearer)
            spec.check(created)
            assert created.status_code == 201
            delete = http.delete(f"{SLICES}/{created.json()['sliceId']}", headers=bearer)
            spec.check(delete)
            assert_error(delete, 403, "PERMISSION_DENIED")

            wrong = http.post(TOKEN_PATH, data=GRANT, auth=(tenant.client_id, "x"))
            assert wrong.status_code == 401

            registry.remove("events")
            after = http.get(f"{SLICES}/{created.json()['sliceId']}", headers=bearer)
            spec.check(after)
            assert_error(after, 401, "UNAUTHENTICATED", naming="no longer registered")
    finally:
        server.stop()
        store.close()
