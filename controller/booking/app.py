"""The booking API's FastAPI application: the CAMARA routes, the token endpoint, the envelope.

:func:`make_app` builds it over the three ports (:class:`~controller.booking.ports.Bookings`,
``Clients``, ``Tokens``), so the same app serves the controller's bookings and the tests' fakes.

- ``POST/GET/DELETE /network-slice-booking/vwip/slices[/{sliceId}]``: 201 + ``SliceInfo`` (and a
  ``Location``), 200 + ``SliceInfo``, 204. Each needs ``Authorization: Bearer <token>`` whose
  token has the operation's scope and whose client is still registered, then passes the
  tenant's token bucket, then calls the port. The endpoints are plain ``def``: FastAPI runs them
  in its thread pool, so a port call waiting for the controller's lock blocks no other request.
- ``POST /oauth2/token``: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4) with
  ``client_secret_basic`` or ``client_secret_post``, answered as §5.1/§5.2 say.
- ``GET /.well-known/jwks.json`` when the app is given the token signer's public keys.
- ``GET /openapi.json``: FastAPI's own description of this service.

Every response carries ``x-correlator`` (the request's, else a new UUID); a request's that does
not match the spec's pattern is refused. Every refusal of the booking routes (the ports'
:class:`~controller.booking.ports.BookingError`, FastAPI's request-validation errors, unknown
routes and methods, and failures) is the CAMARA envelope ``{status, code, message}``.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at run time,
# and those name dependencies local to make_app, which a string annotation cannot reach.

import base64
import binascii
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote_plus
from uuid import UUID

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.booking import camara, ports
from controller.booking.ratelimit import TokenBuckets, retry_after

log = logging.getLogger(__name__)

#: Where the CAMARA operations live (the spec's server URL is ``{apiRoot}/network-slice-booking/vwip``).
API_PREFIX = "/network-slice-booking/vwip"
TOKEN_PATH = "/oauth2/token"
JWKS_PATH = "/.well-known/jwks.json"
#: Requests a second a tenant may make when its registration sets no rate of its own.
DEFAULT_RATE_PER_S = 10.0

CORRELATOR_HEADER = "x-correlator"
_CORRELATOR = re.compile(camara.XCORRELATOR_PATTERN)
_REALM = 'realm="network-slice-booking"'
_MESSAGE_MAX = 512  # ErrorInfo.message maxLength
_TOKEN_FORM_MAX = 8192  # bytes of a token request's form; a real one is a few hundred

#: pydantic error types that say a value is outside the schema's bounds (CAMARA's OUT_OF_RANGE).
_RANGE_ERRORS = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "too_short",
        "too_long",
        "string_too_short",
        "string_too_long",
    }
)
_PARAM_SOURCES = frozenset({"body", "path", "query", "header", "cookie"})
_CODES_BY_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    503: "UNAVAILABLE",
}


class _Throttled(ports.BookingError):
    """The tenant's bucket is empty: 429 TOO_MANY_REQUESTS with a ``Retry-After``."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(429, "TOO_MANY_REQUESTS", "request rate limit exceeded; retry later")
        self.retry_after = retry_after(wait_s)


class _OAuthError(Exception):
    """A token request refused as RFC 6749 §5.2 says: ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def envelope(error: ports.BookingError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The CAMARA error response for ``error``."""
    body = {"status": error.status, "code": error.code, "message": error.message[:_MESSAGE_MAX]}
    return JSONResponse(body, status_code=error.status, headers=dict(headers or {}))


def _location(loc: Sequence[int | str]) -> str:
    """A pydantic error location as the request's field path: ``sliceQosProfile.maxNumOfDevices``,
    ``serviceArea.boundary[3].latitude``, ``sliceId``. The parameter's source (``body``, ``path``)
    and the tags pydantic adds for a discriminated union (``CIRCLE``, all capitals, where the
    spec's names are camelCase) are left out."""
    out = ""
    for part in loc[1:] if loc and loc[0] in _PARAM_SOURCES else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isupper() or part.startswith(("function-", "tagged-union", "union[")):
            continue
        else:
            out += f".{part}" if out else part
    return out


def describe(errors: Sequence[Any]) -> ports.BookingError:
    """FastAPI's request-validation errors as one CAMARA error: the first problem, naming its
    field; OUT_OF_RANGE when the value is outside the schema's bounds, else INVALID_ARGUMENT."""
    if not errors:
        return ports.invalid_argument("invalid request")
    first = errors[0]
    kind = str(first.get("type", ""))
    where = _location(tuple(first.get("loc", ())))
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    if kind == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "malformed")
        return ports.invalid_argument(f"the request body is not valid JSON: {detail}")
    if kind == "missing" and not where:
        return ports.invalid_argument("a JSON request body is required")
    msg = str(first.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ")
    if kind == "extra_forbidden":
        msg = "unknown field"
    text = f"{where}: {msg}{more}" if where else f"{msg}{more}"
    return ports.out_of_range(text) if kind in _RANGE_ERRORS else ports.invalid_argument(text)


class _Correlation:
    """ASGI middleware: validates the request's ``x-correlator``, echoes it (or a new UUID) on
    every response, and answers a failure nothing else handled with a 500 INTERNAL envelope
    (which is why it is pure ASGI: Starlette's server-error handler sits outside the middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(CORRELATOR_HEADER)
        correlator = given if given else str(uuid.uuid4())
        started = False

        async def send_correlated(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[CORRELATOR_HEADER] = correlator
            await send(message)

        if given and not _CORRELATOR.fullmatch(given):
            correlator = str(uuid.uuid4())  # the bad one is not echoed: the header has a schema
            refusal = ports.invalid_argument(
                "x-correlator: must be at most 256 of the characters a-z A-Z 0-9 - _ : ; . / < > { }"
            )
            await envelope(refusal)(scope, receive, send_correlated)
            return
        try:
            await self.app(scope, receive, send_correlated)
        except Exception:
            log.exception("booking API: %s %s failed", scope.get("method"), scope.get("path"))
            if started:
                raise
            failure = ports.BookingError(500, "INTERNAL", "the server failed to answer the request")
            await envelope(failure)(scope, receive, send_correlated)


def _booking_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ports.BookingError)
    headers: dict[str, str] = {}
    if exc.status == 401:
        presented = request.headers.get("authorization", "").lower().startswith("bearer ")
        headers["WWW-Authenticate"] = (
            f'Bearer {_REALM}, error="invalid_token"' if presented else f"Bearer {_REALM}"
        )
    if isinstance(exc, _Throttled):
        headers["Retry-After"] = exc.retry_after
    return envelope(exc, headers)


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if request.url.path == TOKEN_PATH:  # the token endpoint answers in OAuth's terms
        return _oauth_response(_OAuthError("invalid_request", describe(exc.errors()).message))
    return envelope(describe(exc.errors()))


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES_BY_STATUS.get(exc.status_code, "INVALID_ARGUMENT" if exc.status_code < 500 else "INTERNAL")
    if exc.status_code == 404:
        message = f"no such resource: {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return envelope(ports.BookingError(exc.status_code, code, message), headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on the request's path (Starlette's 405 names only the first
    route's, and GET and DELETE of a slice are two routes)."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if (
            isinstance(route, APIRoute)
            and route.methods
            and route.matches(request.scope)[0] is not Match.NONE
        ):
            allowed |= route.methods
    return sorted(allowed)


def _oauth_response(exc: _OAuthError) -> Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = f"Basic {_REALM}"
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _oauth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _OAuthError)
    return _oauth_response(exc)


async def _token_form(request: Request) -> dict[str, str]:
    """The token request's ``application/x-www-form-urlencoded`` parameters, each given once
    (RFC 6749 §3.2), read here rather than by FastAPI's ``Form``, which needs python-multipart."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise _OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _TOKEN_FORM_MAX:
            raise _OAuthError("invalid_request", f"the form is larger than {_TOKEN_FORM_MAX} bytes")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _OAuthError("invalid_request", "the form is not valid x-www-form-urlencoded UTF-8") from exc
    repeated = sorted(name for name, values in fields.items() if len(values) > 1)
    if repeated:
        raise _OAuthError("invalid_request", f"parameters given more than once: {', '.join(repeated)}")
    return {name: values[0] for name, values in fields.items()}


def _client_credentials(authorization: str, form: Mapping[str, str]) -> tuple[str, str]:
    """The client's id and secret, from HTTP Basic (``client_secret_basic``) or the form
    (``client_secret_post``), never both."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        if "client_secret" in form:
            raise _OAuthError(
                "invalid_request", "use one client authentication method, not Basic and the form"
            )
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _OAuthError("invalid_request", "the Basic credentials are not base64 of id:secret") from exc
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise _OAuthError("invalid_request", "the Basic credentials are not base64 of id:secret")
        # RFC 6749 §2.3.1: both halves are form-urlencoded before they are joined.
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if form.get("client_id", client_id) != client_id:
            raise _OAuthError("invalid_request", "client_id differs from the Basic credentials' id")
        return client_id, secret
    if authorization:
        raise _OAuthError("invalid_client", "unsupported client authentication scheme", 401)
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id or not secret:
        raise _OAuthError(
            "invalid_client", "client authentication is required (Basic or client_id and client_secret)", 401
        )
    return client_id, secret


def _requested_scopes(form: Mapping[str, str], tenant: ports.Tenant) -> frozenset[str]:
    """The scopes asked for (space-separated), all of the client's when none is named."""
    asked = frozenset(form.get("scope", "").split())
    if not asked:
        return tenant.scopes
    unknown = asked - tenant.scopes
    if unknown:
        raise _OAuthError("invalid_scope", f"scopes not granted to this client: {' '.join(sorted(unknown))}")
    return asked


def _slice_json(info: camara.SliceInfo) -> dict[str, Any]:
    """A ``SliceInfo`` as the spec's JSON: its field names, absent fields left out (the spec
    has no nullable field)."""
    return info.model_dump(mode="json", by_alias=True, exclude_none=True)


_ERROR_DOCS: dict[int | str, dict[str, Any]] = {
    400: {"model": camara.ErrorInfo, "description": "INVALID_ARGUMENT or OUT_OF_RANGE"},
    401: {"model": camara.ErrorInfo, "description": "UNAUTHENTICATED"},
    403: {"model": camara.ErrorInfo, "description": "PERMISSION_DENIED"},
    429: {"model": camara.ErrorInfo, "description": "QUOTA_EXCEEDED or TOO_MANY_REQUESTS"},
}
_NOT_FOUND_DOC: dict[int | str, dict[str, Any]] = {
    404: {"model": camara.ErrorInfo, "description": "NOT_FOUND"}
}
_UNPROCESSABLE_DOC: dict[int | str, dict[str, Any]] = {
    422: {
        "model": camara.ErrorInfo,
        "description": "NETWORK_SLICE_BOOKING.SERVICEAREA_NOT_SUPPORTED or NETWORK_SLICE_BOOKING.RESOURCES_INSUFFICIENT",
    }
}
_TOKEN_FORM_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "scope": {"type": "string", "description": "space-separated scopes"},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"},
                    },
                }
            }
        },
    }
}


def make_app(
    bookings: ports.Bookings,
    clients: ports.Clients,
    tokens: ports.Tokens,
    *,
    rate_limit_per_s: float = DEFAULT_RATE_PER_S,
    jwks: Callable[[], Mapping[str, Any]] | None = None,
    buckets: TokenBuckets | None = None,
) -> FastAPI:
    """The booking API over the ports.

    ``rate_limit_per_s``: the requests a second of a tenant whose registration sets none.
    ``jwks``: the public keys of the token signer (e.g. ``SignedTokens.jwks``), served at
    ``/.well-known/jwks.json``; None (tokens of an external issuer) serves none.
    ``buckets``: the rate limiter's state (tests pass one with a fake clock).
    """
    if rate_limit_per_s <= 0:
        raise ValueError(f"rate_limit_per_s {rate_limit_per_s!r}: must be positive")
    limiter = buckets if buckets is not None else TokenBuckets()
    bearer = HTTPBearer(
        auto_error=False, bearerFormat="JWT", description="an access token from POST /oauth2/token"
    )
    app = FastAPI(
        title="Network Slice Booking",
        version="wip",
        description="The CAMARA Network Slice Booking API of edgeslice, and its OAuth 2.0 token endpoint.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(_Correlation)
    app.add_exception_handler(ports.BookingError, _booking_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(_OAuthError, _oauth_error)

    def authorised(scope: str) -> Callable[..., ports.Tenant]:
        """A dependency: the tenant of a valid bearer token that has ``scope`` and whose bucket
        is not empty (authentication, then the rate limit, then the scope)."""

        def dependency(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> ports.Tenant:
            if credentials is None:
                raise ports.unauthenticated("an Authorization: Bearer access token is required")
            principal = tokens.verify(credentials.credentials)
            tenant = clients.tenant(principal.client_id)
            if tenant is None:
                raise ports.unauthenticated("the token's client is no longer registered")
            wait_s = limiter.take(tenant.client_id, tenant.requests_per_s or rate_limit_per_s)
            if wait_s > 0:
                raise _Throttled(wait_s)
            if scope not in principal.scopes or scope not in tenant.scopes:
                raise ports.permission_denied(f"the access token does not grant the scope {scope}")
            return tenant

        return dependency

    creator = Annotated[ports.Tenant, Depends(authorised(ports.SCOPE_CREATE))]
    reader = Annotated[ports.Tenant, Depends(authorised(ports.SCOPE_GET))]
    deleter = Annotated[ports.Tenant, Depends(authorised(ports.SCOPE_DELETE))]
    slice_id_param = Annotated[
        UUID, Path(alias="sliceId", description="Slice ID that was obtained from createSlice")
    ]

    @app.post(
        f"{API_PREFIX}/slices",
        operation_id="createSlice",
        status_code=201,
        response_model=camara.SliceInfo,
        responses={**_ERROR_DOCS, **_UNPROCESSABLE_DOC},
        tags=["Network Slice Booking"],
        summary="Creates a new network slice",
    )
    def create_slice(request: Request, tenant: creator, attributes: camara.SliceAttributes) -> Response:
        info = bookings.create(tenant, attributes)
        location = f"{request.scope.get('root_path', '')}{API_PREFIX}/slices/{info.sliceId}"
        return JSONResponse(_slice_json(info), status_code=201, headers={"Location": location})

    @app.get(
        f"{API_PREFIX}/slices/{{sliceId}}",
        operation_id="getSlice",
        response_model=camara.SliceInfo,
        responses={**_ERROR_DOCS, **_NOT_FOUND_DOC},
        tags=["Network Slice Booking"],
        summary="Get network slice booking information",
    )
    def get_slice(tenant: reader, slice_id: slice_id_param) -> Response:
        return JSONResponse(_slice_json(bookings.get(tenant, slice_id)))

    @app.delete(
        f"{API_PREFIX}/slices/{{sliceId}}",
        operation_id="deleteSlice",
        status_code=204,
        response_class=Response,
        responses={**_ERROR_DOCS, **_NOT_FOUND_DOC},
        tags=["Network Slice Booking"],
        summary="Delete a network slice",
    )
    def delete_slice(tenant: deleter, slice_id: slice_id_param) -> Response:
        bookings.delete(tenant, slice_id)
        return Response(status_code=204)

    @app.post(TOKEN_PATH, operation_id="issueToken", tags=["OAuth 2.0"], openapi_extra=_TOKEN_FORM_DOC)
    def issue_token(request: Request, form: Annotated[dict[str, str], Depends(_token_form)]) -> Response:
        grant = form.get("grant_type")
        if not grant:
            raise _OAuthError("invalid_request", "grant_type is required")
        if grant != "client_credentials":
            raise _OAuthError(
                "unsupported_grant_type", f"grant_type {grant!r}: only client_credentials is supported"
            )
        client_id, secret = _client_credentials(request.headers.get("authorization", ""), form)
        tenant = clients.authenticate(client_id, secret)
        if tenant is None:
            raise _OAuthError("invalid_client", "unknown client or wrong secret", 401)
        scopes = _requested_scopes(form, tenant)
        try:
            token, lifetime_s = tokens.issue(tenant, scopes)
        except ports.BookingError as exc:  # the signer's refusal, in OAuth's terms
            raise _OAuthError(
                "invalid_scope" if exc.status == 403 else "unauthorized_client", exc.message
            ) from exc
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime_s,
            "scope": " ".join(sorted(scopes)),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    if jwks is not None:
        keys = jwks

        @app.get(JWKS_PATH, operation_id="jwks", tags=["OAuth 2.0"])
        def get_jwks() -> Response:
            return JSONResponse(dict(keys()), headers={"Cache-Control": "public, max-age=300"})

    return app
