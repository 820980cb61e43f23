"""Plaintext gRPC health on a port of its own (``--health-listen``), for the kubelet's probes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.process.manager import Step
from slices import addresses


class HealthPort:
    """Plaintext gRPC health on a port of its own, for the kubelet's probes, which cannot speak
    TLS: overall ``""`` SERVING while the process lives, the operator service SERVING only while
    this replica serves the API (a standby is live but not ready: see :meth:`readiness`). It
    tells nothing else. A runnable that needs no leadership.
    """

    name = "health"
    needs_leadership = False

    def __init__(self, listen: str) -> None:
        self.listen = listen
        self.address = ""
        self._server: Any = None
        self._servicer: Any = None

    def start(self) -> None:
        from concurrent import futures

        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from controller.api import grpc_services
        from controller.api import server as api_server

        self._servicer = grpc_services.HealthServicer()  # with List
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"),
            options=[("grpc.so_reuseport", 0)],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, self._server)
        self._servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        self.serving(False)
        host, _ = addresses.split_address(self.listen)
        port = api_server.bind(self._server, self.listen, None)
        self._server.start()
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def endpoints(self) -> Mapping[str, str]:
        return {"health": self.address}

    def serving(self, on: bool) -> None:
        from grpc_health.v1 import health_pb2

        from controller.api import server as api_server

        status = health_pb2.HealthCheckResponse.SERVING if on else health_pb2.HealthCheckResponse.NOT_SERVING
        self._servicer.set(api_server.SERVICE_NAME, status)

    def readiness(self) -> Step:
        """A leader-only runnable: the operator service SERVING while it runs (started last, so
        ready means everything else runs; stopped first)."""
        return Step("ready", True, lambda: self.serving(True), lambda: self.serving(False))

    def stop(self) -> None:
        self._servicer.enter_graceful_shutdown()
        self._server.stop(0).wait()
