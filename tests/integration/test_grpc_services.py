"""Health and reflection on every gRPC port, over real loopback gRPC with the standard clients.

The operator port (thread-pool server), the agent port (asyncio server) and a standby replica's
operator port each answer grpc.health.v1 (Check, Watch, List) and server reflection v1 and
v1alpha; descriptors are named by their proto paths, and Health.List logs no traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent import futures
from typing import Any, cast

import grpc
import pytest
from google.protobuf import descriptor_pb2, message_factory
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from controller.api import auth, grpc_services
from controller.api import server as api_server
from controller.process.standby import serve_standby
from telemetry import agentlink as agent_service
from tests.support import operator_fake
from tests.support.telemetry_fakes import FakeService

AGENT_SERVICE = "edgeslice.agent.v1.SiteAgent"
OPERATOR_SERVICE = "edgeslice.operator.v1.OperatorService"
STANDARD = {
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}

# reflection v1 messages from the v1 descriptor the servers register (grpcio-reflection has none)
_V1 = grpc_services.reflection_v1_descriptor()
V1Request: Any = message_factory.GetMessageClass(_V1.message_types_by_name["ServerReflectionRequest"])
V1Response: Any = message_factory.GetMessageClass(_V1.message_types_by_name["ServerReflectionResponse"])
REFLECTION = {
    "v1": ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", V1Request, V1Response),
    "v1alpha": (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        reflection_pb2.ServerReflectionRequest,
        reflection_pb2.ServerReflectionResponse,
    ),
}


@pytest.fixture(scope="module")
def operator_port() -> Iterator[str]:
    running = api_server.serve(
        operator_fake.FakeService(),
        "127.0.0.1:0",
        auth.Authenticator({"alice": "alice-token-0123456789"}),
        None,
        dev=True,
    )
    yield running.address
    running.stop(0)


@pytest.fixture(scope="module")
def agent_port() -> Iterator[str]:
    server = agent_service.serve_agents(FakeService(), "127.0.0.1:0", dev=True, sla=False)
    yield f"127.0.0.1:{server.port}"
    server.stop()


@pytest.fixture(scope="module")
def standby_port() -> Iterator[str]:
    standby = serve_standby("127.0.0.1:0", None, dev=True, identity="replica-b")
    yield standby.address
    standby.stop()


PORTS = {"operator": (OPERATOR_SERVICE, "operator_port"), "agent": (AGENT_SERVICE, "agent_port")}


@pytest.fixture(params=sorted(PORTS))
def port(request: pytest.FixtureRequest) -> tuple[str, str]:
    service, fixture = PORTS[request.param]
    return service, str(request.getfixturevalue(fixture))


def _reflect(address: str, version: str, **request: str) -> Any:
    method, request_cls, response_cls = REFLECTION[version]
    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream(
            method,
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        replies = list(call(iter([request_cls(**request)]), timeout=10))
    assert len(replies) == 1
    return replies[0]


def test_health_check_watch_and_list(port: tuple[str, str]) -> None:
    service, address = port
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", service):
            assert (
                stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
                == grpc_services.SERVING
            )
        with pytest.raises(grpc.RpcError) as err:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert next(watch).status == grpc_services.SERVING
        watch.cancel()
        listed = stub.List(health_pb2.HealthListRequest(), timeout=5)
    assert {name: s.status for name, s in listed.statuses.items()} == {
        "": grpc_services.SERVING,
        service: grpc_services.SERVING,
    }


@pytest.mark.parametrize("version", sorted(REFLECTION))
def test_reflection_lists_the_services(port: tuple[str, str], version: str) -> None:
    service, address = port
    reply = _reflect(address, version, list_services="")
    assert {s.name for s in reply.list_services_response.service} == {service, *STANDARD}


@pytest.mark.parametrize("version", sorted(REFLECTION))
@pytest.mark.parametrize(
    ("symbol", "file"),
    [
        (AGENT_SERVICE, "edgeslice/agent/v1/agent.proto"),
        ("edgeslice.agent.v1.Hello", "edgeslice/agent/v1/agent.proto"),
        (OPERATOR_SERVICE, "edgeslice/operator/v1/operator.proto"),
        ("grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto"),
    ],
)
def test_descriptors_are_named_by_their_proto_paths(
    agent_port: str, operator_port: str, version: str, symbol: str, file: str
) -> None:
    for address in (agent_port, operator_port):
        reply = _reflect(address, version, file_containing_symbol=symbol)
        assert reply.WhichOneof("message_response") == "file_descriptor_response", reply
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in reply.file_descriptor_response.file_descriptor_proto
        ]
        assert files[0].name == file
        assert all(not f.name.startswith("protos/") for f in files)
        assert all(not d.startswith("protos/") for f in files for d in f.dependency)


def test_an_unknown_symbol_is_a_reflection_error_not_a_failure(agent_port: str) -> None:
    reply = _reflect(agent_port, "v1", file_containing_symbol="no.such.Symbol")
    assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_the_ingest_view_imports_agent_proto_by_its_proto_path(agent_port: str) -> None:
    reply = _reflect(agent_port, "v1", file_by_filename="edgeslice/agent/v1/agent_ingest.proto")
    (first, *_rest) = reply.file_descriptor_response.file_descriptor_proto
    assert list(descriptor_pb2.FileDescriptorProto.FromString(first).dependency) == [
        "edgeslice/agent/v1/agent.proto"
    ]


def test_reflection_v1_is_v1alpha_under_its_own_package() -> None:
    v1alpha = reflection_pb2.DESCRIPTOR
    assert _V1.package == "grpc.reflection.v1"
    assert _V1.services_by_name["ServerReflection"].full_name == "grpc.reflection.v1.ServerReflection"
    assert set(_V1.message_types_by_name) == set(v1alpha.message_types_by_name)

    def shape(f: Any) -> tuple[object, ...]:
        oneof = f.containing_oneof.name if f.containing_oneof is not None else None
        return (f.name, f.number, f.type, f.is_repeated, oneof)

    for name, message in _V1.message_types_by_name.items():
        assert {shape(f) for f in message.fields} == {
            shape(f) for f in v1alpha.message_types_by_name[name].fields
        }
        for f in message.fields:
            if f.message_type is not None:
                assert f.message_type.full_name.startswith("grpc.reflection.v1."), f.full_name
    assert not _V1.GetOptions().deprecated and _V1.GetOptions().java_package == "io.grpc.reflection.v1"


def test_a_standby_answers_health_and_reflection_and_refuses_the_rest(standby_port: str) -> None:
    with grpc.insecure_channel(standby_port) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert (
            stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == grpc_services.SERVING
        )
        listed = stub.List(health_pb2.HealthListRequest(), timeout=5)
    assert {name: s.status for name, s in listed.statuses.items()} == {
        "": grpc_services.SERVING,
        OPERATOR_SERVICE: grpc_services.NOT_SERVING,
    }
    # a standby does not serve the operator API, so reflection does not list it
    assert {
        s.name for s in _reflect(standby_port, "v1", list_services="").list_services_response.service
    } == STANDARD


def test_graceful_shutdown_is_listed_as_not_serving() -> None:
    servicer = grpc_services.HealthServicer()
    servicer.set(AGENT_SERVICE, grpc_services.SERVING)
    servicer.enter_graceful_shutdown()
    servicer.set(AGENT_SERVICE, grpc_services.SERVING)  # ignored after shutdown, as Check does
    listed = servicer.List(health_pb2.HealthListRequest(), cast(Any, None))
    assert {name: s.status for name, s in listed.statuses.items()} == {
        "": grpc_services.NOT_SERVING,
        AGENT_SERVICE: grpc_services.NOT_SERVING,
    }


def _tracebacks(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.exc_info is not None or "Traceback" in r.getMessage()]


def test_health_list_logs_no_traceback(
    operator_port: str, agent_port: str, standby_port: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for address in (operator_port, agent_port, standby_port):
        with grpc.insecure_channel(address) as channel:
            health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=5)
    assert _tracebacks(caplog.records) == []


def test_the_library_servicer_alone_would_log_one(caplog: pytest.LogCaptureFixture) -> None:
    """The check above can fail: grpcio-health-checking's own servicer has no List and logs a
    traceback for it (if a release implements List, this test says so and can go)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    caplog.set_level(logging.DEBUG)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError) as err:
            health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=5)
    finally:
        server.stop(0).wait()
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert _tracebacks(caplog.records) != []
