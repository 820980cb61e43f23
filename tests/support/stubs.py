"""The generated gRPC stubs, typed where the tests make them: ``*_pb2_grpc`` is generated without
type annotations, so its constructors are untyped calls; this is the one place that says so."""

from __future__ import annotations

import grpc

from protos.edgeslice.operator.v1 import operator_pb2_grpc as pb_grpc


def operator_stub(channel: grpc.Channel) -> pb_grpc.OperatorServiceStub:
    """An OperatorService stub on ``channel`` (its methods return what the .pyi of operator_pb2 says)."""
    return pb_grpc.OperatorServiceStub(channel)  # type: ignore[no-untyped-call]  # generated code, untyped


def raw_unary(channel: grpc.Channel, method: str) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
    """A unary call of ``method`` (``/package.Service/Method``) that sends and receives raw bytes."""
    return channel.unary_unary(method)
