"""The operator gRPC API (``edgeslice.operator.v1.OperatorService``): a thin translation layer.

Every call is checked for a bearer token before it reaches the servicer (an interceptor, so no
method can forget it); the health service and reflection stay open for probes and tools. The
servicer turns requests into calls of :class:`controller.api.ports.OperatorPort` (what the
controller's service implements) and the results into messages. It is composed of one part per
concept, each on the narrow port it needs: slices (:mod:`controller.api.slices_rpc`), events
(:mod:`controller.api.events_rpc`), topology (:mod:`controller.api.topology_rpc`) and agents
(:mod:`controller.api.agents_rpc`); errors become status codes in :mod:`controller.api.servicing`.
This module is the composition: the servicer, the authentication interceptor and :func:`serve`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass

import grpc

from controller.api import auth as auth_mod
from controller.api import grpc_services, ports
from controller.api.agents_rpc import AgentMethods
from controller.api.events_rpc import EventMethods
from controller.api.interceptors import CallInterceptor, Refusal
from controller.api.servicing import InFlight, RequestLog
from controller.api.slices_rpc import SliceMethods
from controller.api.topology_rpc import TopologyMethods
from controller.runtime.agent_view import AgentDirectory
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from protos.edgeslice.operator.v1 import operator_pb2_grpc as pb_grpc
from slices import addresses, errors

__all__ = ["SERVICE_NAME", "ApiServer", "OperatorServicer", "RequestLog", "bind", "serve"]

log = logging.getLogger(__name__)

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["OperatorService"].full_name
MAX_RECEIVE_BYTES = 4 * 1024 * 1024  # a request bigger than this is refused (RESOURCE_EXHAUSTED)
# Probes and discovery work without a token; everything else needs one.
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


# ---- authentication -------------------------------------------------------------------------


class BearerAuthInterceptor(CallInterceptor[None]):
    """Refuses every call without a known bearer token with UNAUTHENTICATED."""

    def __init__(self, authenticator: auth_mod.Authenticator) -> None:
        self._auth = authenticator

    def refusal(self, details: grpc.HandlerCallDetails) -> Refusal | None:
        if details.method.startswith(OPEN_METHOD_PREFIXES):
            return None
        token = auth_mod.bearer_token(details.invocation_metadata)
        if not token:
            why = "no bearer token: send metadata 'authorization: Bearer <token>'"
        elif self._auth.identify(token) is None:
            why = "the bearer token is not known to this controller"
        else:
            return None
        return grpc.StatusCode.UNAUTHENTICATED, why


# ---- the servicer ---------------------------------------------------------------------------


class OperatorServicer(
    SliceMethods, EventMethods, TopologyMethods, AgentMethods, pb_grpc.OperatorServiceServicer
):
    """Every method of OperatorService: the parts, each on its own port of one ``service``."""

    def __init__(
        self,
        service: ports.OperatorPort,
        authenticator: auth_mod.Authenticator,
        stopping: threading.Event,
        max_watches: int,
        poll_s: float = 1.0,
        slice_writes_refused: str | None = None,
        agents: AgentDirectory | None = None,
    ) -> None:
        self._slices = service
        self._events = service
        self._topology = service
        self._agents = agents
        self._slice_writes_refused = slice_writes_refused
        self._auth = authenticator
        self._stopping = stopping
        self._poll_s = poll_s
        self._watch_slots = threading.BoundedSemaphore(max_watches)
        self._max_watches = max_watches
        self.in_flight = InFlight()
        self.requests = RequestLog()


# ---- the server -----------------------------------------------------------------------------


@dataclass
class ApiServer:
    """A started server; ``address`` is the one actually bound (port 0 becomes a real port)."""

    server: grpc.Server
    address: str
    port: int
    health: grpc_services.HealthServicer
    stopping: threading.Event
    in_flight: InFlight

    def stop(self, grace_s: float = 2.0) -> None:
        """Say NOT_SERVING, end event watches, let calls in flight finish for ``grace_s``.

        When it returns no call is still inside the service (a watch notices within its poll
        interval), so the caller may close the store.
        """
        self.stopping.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()
        if not self.in_flight.wait_idle(timeout_s=grace_s + 10):
            log.warning("operator API: calls still running after stop")

    def wait(self, timeout_s: float | None = None) -> bool:
        return self.server.wait_for_termination(timeout_s)


def bind(server: grpc.Server, listen: str, tls: auth_mod.TlsConfig | None) -> int:
    """Add a plaintext or TLS (mTLS with a client CA) port; the port bound, or Unavailable."""
    try:
        if tls is None:
            port = server.add_insecure_port(listen)
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.private_key, tls.cert_chain)],
                root_certificates=tls.client_ca,
                require_client_auth=tls.client_ca is not None,
            )
            port = server.add_secure_port(listen, credentials)
    except RuntimeError as exc:
        raise errors.Unavailable(f"cannot listen on {listen}: {exc}") from exc
    if port == 0:
        raise errors.Unavailable(f"cannot listen on {listen}: the address is in use or not available")
    return port


def serve(
    service: ports.OperatorPort,
    listen: str,
    authenticator: auth_mod.Authenticator,
    tls: auth_mod.TlsConfig | None,
    dev: bool,
    *,
    max_workers: int = 16,
    max_receive_bytes: int = MAX_RECEIVE_BYTES,
    poll_s: float = 1.0,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    slice_writes_refused: str | None = None,
    agents: AgentDirectory | None = None,
) -> ApiServer:
    """Start the operator API on ``listen`` (``HOST:PORT``; port 0 picks a free one).

    Without ``tls`` it serves only in dev mode and only on loopback (see :mod:`controller.api.auth`).
    ``interceptors`` run before authentication (metrics count refused calls too).
    ``slice_writes_refused``: apply and delete answer FAILED_PRECONDITION with this message
    (intents come from NetworkSlice objects).
    ``agents``: what ListAgents and GetAgent serve (the agent server's registry); without it
    they answer FAILED_PRECONDITION.
    """
    auth_mod.check_listen(listen, tls, dev)
    host, _ = addresses.split_address(listen)
    stopping = threading.Event()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="operator-api"),
        interceptors=[*interceptors, BearerAuthInterceptor(authenticator)],
        options=[
            ("grpc.max_receive_message_length", max_receive_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    servicer = OperatorServicer(
        service,
        authenticator,
        stopping,
        max_watches=max(1, max_workers // 2),
        poll_s=poll_s,
        slice_writes_refused=slice_writes_refused,
        agents=agents,
    )
    pb_grpc.add_OperatorServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health_servicer = grpc_services.add_health_and_reflection(server, (SERVICE_NAME,))
    port = bind(server, listen, tls)
    server.start()
    bound = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    log.info("operator API on %s (%s)", bound, "TLS" if tls else "plaintext, dev mode")
    return ApiServer(
        server=server,
        address=bound,
        port=port,
        health=health_servicer,
        stopping=stopping,
        in_flight=servicer.in_flight,
    )
