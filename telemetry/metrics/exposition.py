"""``GET /metrics`` over HTTP: prometheus-client's exposition of a registry, each request counted
as a scrape (:data:`telemetry.metrics.scrapes.SCRAPES`).

With ``own_writer=False`` the library's handler negotiates what Prometheus and people ask for: the OpenMetrics format
(``Accept: application/openmetrics-text``), gzip (``Accept-Encoding: gzip``) and a subset of the
families (``?name[]=edgeslice_slices&name[]=...``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import ClassVar

from prometheus_client import CollectorRegistry
from prometheus_client import exposition as prom_exposition
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.utils import floatToGoString

from telemetry.metrics.exposition_text import escape_label_value
from telemetry.metrics.kpi_ratios import RenderedGauge
from telemetry.metrics.scrapes import SCRAPES


class _Handler(prom_exposition.MetricsHandler):
    """The library's handler on /metrics (and /) only, counted as a scrape; 500 when a collector fails."""

    registry: ClassVar[CollectorRegistry]  # type: ignore[misc]
    own_writer: ClassVar[bool] = True

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in ("/metrics", "/"):
            self.send_error(404, "only /metrics is served here")
            return
        # The whole response counts as the scrape: the body's writes wait for the GIL too, and a
        # busy background thread would make each one wait its turn.
        with SCRAPES.running():
            if self.own_writer:
                self._own()
                return
            try:
                super().do_GET()
            except Exception as exc:  # a failing collector must not kill the endpoint
                self.send_error(500, f"collecting metrics failed: {exc}")

    def _own(self) -> None:
        try:
            body = exposition(self.registry)
        except Exception as exc:
            self.send_error(500, f"collecting metrics failed: {exc}")
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class MetricsServer:
    """``GET /metrics`` of a registry over HTTP on a daemon thread; ``port`` is the bound port."""

    def __init__(
        self, registry: CollectorRegistry, port: int = 0, addr: str = "127.0.0.1", own_writer: bool = True
    ) -> None:
        handler = type("MetricsHandler", (_Handler,), {"registry": registry, "own_writer": own_writer})
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


def serve_metrics(
    registry: CollectorRegistry, port: int, addr: str = "127.0.0.1", own_writer: bool = True
) -> MetricsServer:
    """Serve ``registry`` at ``http://addr:port/metrics`` (port 0 picks a free one); ``close()`` stops it.
    ``own_writer=False``: prometheus-client's exposition instead of :func:`exposition`."""
    return MetricsServer(registry, port, addr, own_writer)


_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "info": "gauge",
}
_SUFFIX = {"counter": "_total", "info": "_info"}


_go_float: Callable[[float], str] = floatToGoString  # the library's number format (+Inf, NaN, 1e+06)


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format 0.0.4, as ``generate_latest`` writes it.

    A leaner writer than prometheus-client's: our label names are fixed identifiers, so it skips
    validating and escaping them for each of the thousands of samples of a city-scale scrape (the
    library's writer alone would take much of the scrape budget there); labels keep the order they
    were added in (Prometheus does not mind) and are escaped only when a value needs it. Sample
    values are formatted by the library's own ``floatToGoString``.
    """
    out: list[str] = []
    append = out.append
    for family in registry.collect():
        name = family.name + _SUFFIX.get(family.type, "")
        doc = family.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        append(f"# HELP {name} {doc}\n# TYPE {name} {_TYPES.get(family.type, 'untyped')}\n")
        if isinstance(family, RenderedGauge):  # its lines are written already
            append(family.lines)
            continue
        for sample in family.samples:
            labels = sample.labels
            if labels:
                body = ",".join([f'{k}="{v}"' for k, v in labels.items()])
                if body.count('"') != 2 * len(labels) or "\\" in body or "\n" in body:
                    body = ",".join(
                        [f'{k}="{escape_label_value(v)}"' for k, v in labels.items()]
                    )  # rare: escape
                line = f"{sample.name}{{{body}}} {_go_float(sample.value)}"
            else:
                line = f"{sample.name} {_go_float(sample.value)}"
            if sample.timestamp is not None:
                line += f" {int(float(sample.timestamp) * 1000):d}"
            append(line + "\n")
    return "".join(out).encode("utf-8")
