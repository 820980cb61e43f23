from protos.edgeslice.agent.v1 import agent_pb2 as _agent_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestAgentMessage(_message.Message):
    __slots__ = ("hello", "heartbeat", "ack", "telemetry")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_FIELD_NUMBER: _ClassVar[int]
    hello: _agent_pb2.Hello
    heartbeat: _agent_pb2.Heartbeat
    ack: _agent_pb2.ConfigAck
    telemetry: IngestTelemetryBatch
    def __init__(self, hello: _Optional[_Union[_agent_pb2.Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[_agent_pb2.Heartbeat, _Mapping]] = ..., ack: _Optional[_Union[_agent_pb2.ConfigAck, _Mapping]] = ..., telemetry: _Optional[_Union[IngestTelemetryBatch, _Mapping]] = ...) -> None: ...

class IngestTelemetryBatch(_message.Message):
    __slots__ = ("observed_at_unix_ms", "slices", "health", "columns")
    OBSERVED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    observed_at_unix_ms: int
    slices: _containers.RepeatedCompositeFieldContainer[_agent_pb2.SliceKpi]
    health: _agent_pb2.SiteHealth
    columns: IngestSliceKpiColumns
    def __init__(self, observed_at_unix_ms: _Optional[int] = ..., slices: _Optional[_Iterable[_Union[_agent_pb2.SliceKpi, _Mapping]]] = ..., health: _Optional[_Union[_agent_pb2.SiteHealth, _Mapping]] = ..., columns: _Optional[_Union[IngestSliceKpiColumns, _Mapping]] = ...) -> None: ...

class IngestSliceKpiColumns(_message.Message):
    __slots__ = ("slice", "dl_throughput_mbps", "ul_throughput_mbps", "dl_demand_mbps", "ul_demand_mbps", "latency_p50_ms", "latency_p99_ms", "packet_loss", "active_devices", "radio_utilisation")
    SLICE_FIELD_NUMBER: _ClassVar[int]
    DL_THROUGHPUT_MBPS_FIELD_NUMBER: _ClassVar[int]
    UL_THROUGHPUT_MBPS_FIELD_NUMBER: _ClassVar[int]
    DL_DEMAND_MBPS_FIELD_NUMBER: _ClassVar[int]
    UL_DEMAND_MBPS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    PACKET_LOSS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_DEVICES_FIELD_NUMBER: _ClassVar[int]
    RADIO_UTILISATION_FIELD_NUMBER: _ClassVar[int]
    slice: _containers.RepeatedScalarFieldContainer[str]
    dl_throughput_mbps: bytes
    ul_throughput_mbps: bytes
    dl_demand_mbps: bytes
    ul_demand_mbps: bytes
    latency_p50_ms: bytes
    latency_p99_ms: bytes
    packet_loss: bytes
    active_devices: _containers.RepeatedScalarFieldContainer[int]
    radio_utilisation: bytes
    def __init__(self, slice: _Optional[_Iterable[str]] = ..., dl_throughput_mbps: _Optional[bytes] = ..., ul_throughput_mbps: _Optional[bytes] = ..., dl_demand_mbps: _Optional[bytes] = ..., ul_demand_mbps: _Optional[bytes] = ..., latency_p50_ms: _Optional[bytes] = ..., latency_p99_ms: _Optional[bytes] = ..., packet_loss: _Optional[bytes] = ..., active_devices: _Optional[_Iterable[int]] = ..., radio_utilisation: _Optional[bytes] = ...) -> None: ...
