"""Requests and responses of the booking API checked against the CAMARA document itself.

The spec is ``../shared/camara/network-slice-booking.yaml`` beside the repository (``.ci/run``
provides it there); :func:`camara_document` fails under ``CI`` when it is missing and skips with
the reason elsewhere, as the real-Kubernetes fixtures do. :meth:`Conformance.check` validates an
``httpx`` exchange with openapi-core: the response always, the request either as valid or, for a
request the test means to be refused, as one the spec refuses too.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.support.envtest import ci_requires_real_servers
from tests.support.paths import ROOT

SPEC = ROOT.parent / "shared" / "camara" / "network-slice-booking.yaml"


class _Request:
    """An httpx request as openapi-core's ``Request`` protocol wants it."""

    def __init__(self, request: httpx.Request) -> None:
        url = request.url
        self.host_url = f"{url.scheme}://{url.netloc.decode('ascii')}"
        self.path = url.path
        self.method = request.method.lower()
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("content-type", "application/json")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query.decode("ascii"))),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.data: bytes | None = response.content or None
        self.content_type = response.headers.get("content-type", "")
        self.headers: Mapping[str, str] = Headers(dict(response.headers))


class Conformance:
    """The CAMARA document, loaded once, as a validator of exchanges."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.openapi = OpenAPI.from_file_path(str(path))

    def check(self, response: httpx.Response, *, valid_request: bool | None = True) -> None:
        """Validate ``response``, and its request: valid (True), refused by the spec as well
        (False), or not judged (None: the API is stricter than a schema validator reads the
        document); an AssertionError names what does not conform."""
        request = _Request(response.request)
        with warnings.catch_warnings():
            # openapi-core cannot check an openIdConnect scheme; the tests check tokens themselves.
            warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
            outcome = self.openapi.unmarshal_request(request)
            unmarshalled = self.openapi.unmarshal_response(request, _Response(response))
        if valid_request:
            assert not outcome.errors, f"the request does not conform: {outcome.errors}"
        elif valid_request is False:
            assert outcome.errors, (
                f"the spec accepts the request the test means to be invalid: {request.body!r}"
            )
        assert not unmarshalled.errors, (
            f"{response.request.method} {request.path} -> {response.status_code} {response.text[:300]}: "
            f"the response does not conform: {unmarshalled.errors}"
        )


@functools.cache
def _load(path: Path) -> Conformance:
    return Conformance(path)


def camara_document(path: Path = SPEC) -> Conformance:
    """The spec as a validator; a skip (a failure under ``CI``) when it is not there."""
    if not path.is_file():
        reason = f"the CAMARA spec is not at {path} (`bash .ci/run` provides ../shared/camara)"
        if ci_requires_real_servers():
            pytest.fail(f"{reason}; under CI the conformance tests must run, not skip")
        pytest.skip(reason)
    return _load(path)
