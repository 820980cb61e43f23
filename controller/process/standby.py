"""What a standby replica serves on the operator port while another replica leads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.api import auth
from slices import addresses

#: Served by a standby as by a leader: its liveness (health) and what it serves (reflection).
ALWAYS_SERVED = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass
class StandbyServer:
    """What a standby serves on the operator port: the gRPC health service (overall ``""``
    SERVING: the process is alive; the operator service NOT_SERVING: send no traffic here) and
    UNAVAILABLE for every other call."""

    server: Any
    address: str

    def stop(self, grace_s: float = 0.0) -> None:
        self.server.stop(grace_s).wait()


def serve_standby(listen: str, tls: auth.TlsConfig | None, dev: bool, identity: str) -> StandbyServer:
    from concurrent import futures

    import grpc

    from controller.api import grpc_services
    from controller.api import server as api_server
    from controller.api.interceptors import CallInterceptor, Refusal

    auth.check_listen(listen, tls, dev)
    host, _ = addresses.split_address(listen)
    message = f"{identity} is a standby replica: it serves when it holds the leader lease"

    class _Refuse(CallInterceptor[None]):
        def refusal(self, details: grpc.HandlerCallDetails) -> Refusal | None:
            if details.method.startswith(ALWAYS_SERVED):
                return None
            return grpc.StatusCode.UNAVAILABLE, message

    # A handler for every other method, so each one (an unknown one too) reaches the refusal.
    placeholder: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
        lambda _request, _context: b""
    )

    class _AnyMethod(grpc.GenericRpcHandler):
        def service(
            self, handler_call_details: grpc.HandlerCallDetails
        ) -> grpc.RpcMethodHandler[bytes, bytes] | None:
            return placeholder

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="standby"),
        interceptors=[_Refuse()],
        options=[("grpc.so_reuseport", 0)],
    )
    # Health and reflection before the catch-all; reflection lists what a standby serves.
    grpc_services.add_health_and_reflection(server, (), not_serving=(api_server.SERVICE_NAME,))
    server.add_generic_rpc_handlers((_AnyMethod(),))
    port = api_server.bind(server, listen, tls)
    server.start()
    return StandbyServer(server, f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


class Standby:
    """The standby server as a runnable: it serves until this replica leads (the manager stops
    it then, and the operator API binds the same address)."""

    name = "standby"
    needs_leadership = False

    def __init__(self, listen: str, tls: auth.TlsConfig | None, dev: bool, identity: str) -> None:
        self._args = (listen, tls, dev, identity)
        self._server: StandbyServer | None = None
        self.address = ""

    def start(self) -> None:
        self._server = serve_standby(*self._args)
        self.address = self._server.address

    @property
    def endpoints(self) -> Mapping[str, str]:
        return {"operator": self.address}

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
