"""A standby replica's operator port over real gRPC: health and reflection answer, every other
call (unary, streaming, or of no service at all) is refused UNAVAILABLE, naming the replica."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controller.api import grpc_services
from controller.process.standby import Standby
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from tests.support.stubs import operator_stub, raw_unary


@pytest.fixture
def standby() -> Iterator[Standby]:
    runnable = Standby("127.0.0.1:0", None, True, "replica-b")
    runnable.start()
    try:
        yield runnable
    finally:
        runnable.stop()


def test_a_standby_refuses_every_call_but_health(standby: Standby) -> None:
    assert standby.endpoints == {"operator": standby.address}
    with grpc.insecure_channel(standby.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == grpc_services.SERVING
        stub = operator_stub(channel)
        calls: list[Callable[[], object]] = [
            lambda: stub.ListSlices(pb.ListSlicesRequest(), timeout=5),
            lambda: list(stub.WatchEvents(pb.WatchEventsRequest(), timeout=5)),
            lambda: raw_unary(channel, "/no.such.Service/Call")(b"", timeout=5),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "replica-b is a standby replica" in (err.value.details() or "")
