"""The standard gRPC services every edgeslice server carries: health and reflection.

One wiring for both ports, the operator API (a thread-pool ``grpc.Server``) and the agent port
(a ``grpc.aio.Server``), so probes and tools (grpcurl, grpc_health_probe, Postman, an agent
author's explorer) see the same thing everywhere:

* ``grpc.health.v1.Health``: ``Check``, ``Watch`` and ``List``. grpcio-health-checking's servicers
  implement ``Check`` and ``Watch`` only (its ``List`` raises NotImplementedError, which grpc logs
  as a traceback); :class:`HealthServicer` and :class:`AioHealthServicer` add ``List``: a snapshot
  of every status set on them, the overall ``""`` included.
* Server reflection, ``grpc.reflection.v1alpha`` (what grpcio-reflection serves) AND
  ``grpc.reflection.v1`` (what current clients ask first). The v1 protocol is v1alpha under
  another package name: the same messages, field names and numbers. grpcio-reflection ships no v1,
  so :func:`reflection_v1_descriptor` registers v1's file descriptor (v1alpha's, renamed, with
  v1's file options), which is what reflection answers about v1, and the v1 method is served by
  the same servicer as v1alpha: the bytes it reads and writes are valid v1 messages.

Descriptors are registered under their proto paths (``edgeslice/agent/v1/agent.proto``; see
``protos/generate.py``), so ``FileContainingSymbol`` answers with a file a client can resolve.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
import grpc.aio
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

HEALTH_SERVICE: str = health.SERVICE_NAME
REFLECTION_V1ALPHA_SERVICE: str = reflection.SERVICE_NAME  # grpc.reflection.v1alpha.ServerReflection
REFLECTION_V1_PACKAGE = "grpc.reflection.v1"
REFLECTION_V1_SERVICE = f"{REFLECTION_V1_PACKAGE}.ServerReflection"
REFLECTION_V1_FILE = "grpc/reflection/v1/reflection.proto"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

_v1_lock = threading.Lock()


def reflection_v1_descriptor() -> FileDescriptor:
    """``grpc/reflection/v1/reflection.proto`` in the default pool (registered on first use)."""
    pool = descriptor_pool.Default()
    with _v1_lock:
        try:
            return pool.FindFileByName(REFLECTION_V1_FILE)
        except KeyError:
            pass
        proto = descriptor_pb2.FileDescriptorProto()
        reflection_pb2.DESCRIPTOR.CopyToProto(proto)
        old, new = f".{proto.package}.", f".{REFLECTION_V1_PACKAGE}."
        proto.name = REFLECTION_V1_FILE
        proto.package = REFLECTION_V1_PACKAGE
        for message in proto.message_type:
            for field in message.field:
                if field.type_name.startswith(old):
                    field.type_name = new + field.type_name[len(old) :]
        for service in proto.service:
            for method in service.method:
                method.input_type = new + method.input_type[len(old) :]
                method.output_type = new + method.output_type[len(old) :]
        # v1's own options (v1alpha's say v1alpha and are marked deprecated).
        proto.options.Clear()
        proto.options.java_package = "io.grpc.reflection.v1"
        proto.options.java_outer_classname = "ServerReflectionProto"
        proto.options.java_multiple_files = True
        proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
        pool.AddSerializedFile(proto.SerializeToString())
        return pool.FindFileByName(REFLECTION_V1_FILE)


class _Statuses:
    """Every status set on a health servicer, for ``List`` (the library keeps its own privately)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {"": SERVING}  # the library's servicers start so too
        self._closing = False

    def set(self, service: str, status: Any) -> None:
        with self._lock:
            if not self._closing:
                self._status[service] = status

    def shut_down(self) -> None:
        with self._lock:
            self._closing = True
            for service in self._status:
                self._status[service] = NOT_SERVING

    def response(self) -> health_pb2.HealthListResponse:
        with self._lock:
            snapshot = dict(self._status)
        return health_pb2.HealthListResponse(
            statuses={name: health_pb2.HealthCheckResponse(status=s) for name, s in snapshot.items()}
        )


class HealthServicer(health.HealthServicer):  # type: ignore[misc]
    """grpcio-health-checking's servicer for thread-pool servers, plus ``List``."""

    def __init__(self) -> None:
        self._listed = _Statuses()
        super().__init__()

    def set(self, service: str, status: Any) -> None:
        super().set(service, status)
        self._listed.set(service, status)

    def enter_graceful_shutdown(self) -> None:
        super().enter_graceful_shutdown()
        self._listed.shut_down()

    def List(  # the gRPC method's name
        self, request: health_pb2.HealthListRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthListResponse:
        return self._listed.response()


class AioHealthServicer(health.aio.HealthServicer):  # type: ignore[misc]
    """grpcio-health-checking's servicer for asyncio servers, plus ``List``."""

    def __init__(self) -> None:
        self._listed = _Statuses()
        super().__init__()

    async def set(self, service: str, status: Any) -> None:
        await super().set(service, status)
        self._listed.set(service, status)

    async def enter_graceful_shutdown(self) -> None:
        await super().enter_graceful_shutdown()
        self._listed.shut_down()

    async def List(  # the gRPC method's name
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthListResponse:
        return self._listed.response()


def _reflected(services: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({*services, HEALTH_SERVICE, REFLECTION_V1ALPHA_SERVICE, REFLECTION_V1_SERVICE}))


def _reflection_v1_handler(servicer: Any) -> grpc.GenericRpcHandler:
    """v1 on the v1alpha servicer: the messages are the same on the wire (see the module doc)."""
    reflection_v1_descriptor()
    return grpc.method_handlers_generic_handler(
        REFLECTION_V1_SERVICE,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )


def add_health_and_reflection(
    server: grpc.Server, serving: Sequence[str], not_serving: Sequence[str] = ()
) -> HealthServicer:
    """Health (``""`` and each of ``serving`` SERVING, each of ``not_serving`` NOT_SERVING) and
    reflection v1 and v1alpha listing ``serving`` and themselves, on a thread-pool server (before
    any catch-all generic handler, which would otherwise answer for them)."""
    servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ("", *serving):
        servicer.set(name, SERVING)
    for name in not_serving:
        servicer.set(name, NOT_SERVING)
    reflector = reflection.ReflectionServicer(_reflected(serving))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflector, server)
    server.add_generic_rpc_handlers((_reflection_v1_handler(reflector),))
    return servicer


async def add_health_and_reflection_aio(server: grpc.aio.Server, serving: Sequence[str]) -> AioHealthServicer:
    """The same on an asyncio server (call it on the server's event loop)."""
    servicer = AioHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ("", *serving):
        await servicer.set(name, SERVING)
    reflector = reflection.aio.ReflectionServicer(_reflected(serving))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflector, server)
    server.add_generic_rpc_handlers((_reflection_v1_handler(reflector),))
    return servicer
