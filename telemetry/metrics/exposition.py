"""``GET /metrics`` over HTTP: prometheus-client's exposition of a registry, each request counted
as a scrape (:data:`telemetry.metrics.scrapes.SCRAPES`).

The library's handler negotiates what Prometheus and people ask for: the OpenMetrics format
(``Accept: application/openmetrics-text``), gzip (``Accept-Encoding: gzip``) and a subset of the
families (``?name[]=edgeslice_slices&name[]=...``).
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import ClassVar

from prometheus_client import CollectorRegistry
from prometheus_client import exposition as prom_exposition

from telemetry.metrics.scrapes import SCRAPES


class _Handler(prom_exposition.MetricsHandler):
    """The library's handler on /metrics (and /) only, counted as a scrape; 500 when a collector fails."""

    registry: ClassVar[CollectorRegistry]  # type: ignore[misc]

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in ("/metrics", "/"):
            self.send_error(404, "only /metrics is served here")
            return
        # The whole response counts as the scrape: the body's writes wait for the GIL too, and a
        # busy background thread would make each one wait its turn.
        with SCRAPES.running():
            try:
                super().do_GET()
            except Exception as exc:  # a failing collector must not kill the endpoint
                self.send_error(500, f"collecting metrics failed: {exc}")


class MetricsServer:
    """``GET /metrics`` of a registry over HTTP on a daemon thread; ``port`` is the bound port."""

    def __init__(self, registry: CollectorRegistry, port: int = 0, addr: str = "127.0.0.1") -> None:
        handler = type("MetricsHandler", (_Handler,), {"registry": registry})
        self._httpd = ThreadingHTTPServer((addr, port), handler)
        self._httpd.daemon_threads = True
        self.addr = addr
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.addr}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve ``registry`` at ``http://addr:port/metrics`` (port 0 picks a free one); ``close()`` stops it."""
    return MetricsServer(registry, port, addr)
