"""gRPC call metrics: every call of an API counted when it starts and when it ends (by final
status code) and timed (streams: until the stream ends), on the common interceptor base."""

from __future__ import annotations

import time

import grpc
from prometheus_client import Counter, Histogram

from controller.api.interceptors import CallInterceptor


def split_method(full: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``).

    >>> split_method("/edgeslice.operator.v1.SliceService/Apply")
    ('edgeslice.operator.v1.SliceService', 'Apply')
    """
    _, service, method = [*full.split("/"), "", ""][:3]
    return service or "unknown", method or "unknown"


class GrpcMetricsInterceptor(CallInterceptor[float]):
    """Counts and times every call, by API, service, method and final status code; ``.aio()``
    for an asyncio server."""

    def __init__(self, started: Counter, handled: Counter, duration: Histogram, api: str) -> None:
        self._started, self._handled, self._duration = started, handled, duration
        self._api = api

    def begin(self, details: grpc.HandlerCallDetails) -> float:
        self._started.labels(self._api, *split_method(details.method)).inc()
        return time.perf_counter()

    def end(self, details: grpc.HandlerCallDetails, begun: float, code: str) -> None:
        service, method = split_method(details.method)
        self._handled.labels(self._api, service, method, code).inc()
        self._duration.labels(self._api, service, method).observe(time.perf_counter() - begun)
