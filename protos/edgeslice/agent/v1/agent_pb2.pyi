from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentMessage(_message.Message):
    __slots__ = ("hello", "heartbeat", "ack", "telemetry")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    heartbeat: Heartbeat
    ack: ConfigAck
    telemetry: TelemetryBatch
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., ack: _Optional[_Union[ConfigAck, _Mapping]] = ..., telemetry: _Optional[_Union[TelemetryBatch, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("site_id", "software_version", "applied_generation", "backend", "instance_id", "controller_epoch", "topology_fingerprint")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOPOLOGY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    software_version: str
    applied_generation: int
    backend: str
    instance_id: str
    controller_epoch: str
    topology_fingerprint: str
    def __init__(self, site_id: _Optional[str] = ..., software_version: _Optional[str] = ..., applied_generation: _Optional[int] = ..., backend: _Optional[str] = ..., instance_id: _Optional[str] = ..., controller_epoch: _Optional[str] = ..., topology_fingerprint: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("applied_generation",)
    APPLIED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    applied_generation: int
    def __init__(self, applied_generation: _Optional[int] = ...) -> None: ...

class ConfigAck(_message.Message):
    __slots__ = ("generation", "ok", "reason", "message")
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    generation: int
    ok: bool
    reason: str
    message: str
    def __init__(self, generation: _Optional[int] = ..., ok: _Optional[bool] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class TelemetryBatch(_message.Message):
    __slots__ = ("observed_at_unix_ms", "slices", "health", "columns")
    OBSERVED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    observed_at_unix_ms: int
    slices: _containers.RepeatedCompositeFieldContainer[SliceKpi]
    health: SiteHealth
    columns: SliceKpiColumns
    def __init__(self, observed_at_unix_ms: _Optional[int] = ..., slices: _Optional[_Iterable[_Union[SliceKpi, _Mapping]]] = ..., health: _Optional[_Union[SiteHealth, _Mapping]] = ..., columns: _Optional[_Union[SliceKpiColumns, _Mapping]] = ...) -> None: ...

class SliceKpiColumns(_message.Message):
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
    dl_throughput_mbps: _containers.RepeatedScalarFieldContainer[float]
    ul_throughput_mbps: _containers.RepeatedScalarFieldContainer[float]
    dl_demand_mbps: _containers.RepeatedScalarFieldContainer[float]
    ul_demand_mbps: _containers.RepeatedScalarFieldContainer[float]
    latency_p50_ms: _containers.RepeatedScalarFieldContainer[float]
    latency_p99_ms: _containers.RepeatedScalarFieldContainer[float]
    packet_loss: _containers.RepeatedScalarFieldContainer[float]
    active_devices: _containers.RepeatedScalarFieldContainer[int]
    radio_utilisation: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, slice: _Optional[_Iterable[str]] = ..., dl_throughput_mbps: _Optional[_Iterable[float]] = ..., ul_throughput_mbps: _Optional[_Iterable[float]] = ..., dl_demand_mbps: _Optional[_Iterable[float]] = ..., ul_demand_mbps: _Optional[_Iterable[float]] = ..., latency_p50_ms: _Optional[_Iterable[float]] = ..., latency_p99_ms: _Optional[_Iterable[float]] = ..., packet_loss: _Optional[_Iterable[float]] = ..., active_devices: _Optional[_Iterable[int]] = ..., radio_utilisation: _Optional[_Iterable[float]] = ...) -> None: ...

class SliceKpi(_message.Message):
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
    slice: str
    dl_throughput_mbps: float
    ul_throughput_mbps: float
    dl_demand_mbps: float
    ul_demand_mbps: float
    latency_p50_ms: float
    latency_p99_ms: float
    packet_loss: float
    active_devices: int
    radio_utilisation: float
    def __init__(self, slice: _Optional[str] = ..., dl_throughput_mbps: _Optional[float] = ..., ul_throughput_mbps: _Optional[float] = ..., dl_demand_mbps: _Optional[float] = ..., ul_demand_mbps: _Optional[float] = ..., latency_p50_ms: _Optional[float] = ..., latency_p99_ms: _Optional[float] = ..., packet_loss: _Optional[float] = ..., active_devices: _Optional[int] = ..., radio_utilisation: _Optional[float] = ...) -> None: ...

class SiteHealth(_message.Message):
    __slots__ = ("cpu_utilisation", "links")
    CPU_UTILISATION_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    cpu_utilisation: float
    links: _containers.RepeatedCompositeFieldContainer[LinkState]
    def __init__(self, cpu_utilisation: _Optional[float] = ..., links: _Optional[_Iterable[_Union[LinkState, _Mapping]]] = ...) -> None: ...

class LinkState(_message.Message):
    __slots__ = ("peer", "up", "utilisation")
    PEER_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    UTILISATION_FIELD_NUMBER: _ClassVar[int]
    peer: str
    up: bool
    utilisation: float
    def __init__(self, peer: _Optional[str] = ..., up: _Optional[bool] = ..., utilisation: _Optional[float] = ...) -> None: ...

class ControllerMessage(_message.Message):
    __slots__ = ("welcome", "config", "rejection")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    config: SiteConfig
    rejection: Rejection
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., config: _Optional[_Union[SiteConfig, _Mapping]] = ..., rejection: _Optional[_Union[Rejection, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("site_id", "lease_ms", "heartbeat_interval_ms", "telemetry_interval_ms", "max_message_bytes", "controller_version", "epoch", "max_messages_per_s", "max_message_burst", "hello_timeout_ms", "topology_fingerprint", "config_resend_ms")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONTROLLER_VERSION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGES_PER_S_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BURST_FIELD_NUMBER: _ClassVar[int]
    HELLO_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    TOPOLOGY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_RESEND_MS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    lease_ms: int
    heartbeat_interval_ms: int
    telemetry_interval_ms: int
    max_message_bytes: int
    controller_version: str
    epoch: str
    max_messages_per_s: int
    max_message_burst: int
    hello_timeout_ms: int
    topology_fingerprint: str
    config_resend_ms: int
    def __init__(self, site_id: _Optional[str] = ..., lease_ms: _Optional[int] = ..., heartbeat_interval_ms: _Optional[int] = ..., telemetry_interval_ms: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., controller_version: _Optional[str] = ..., epoch: _Optional[str] = ..., max_messages_per_s: _Optional[int] = ..., max_message_burst: _Optional[int] = ..., hello_timeout_ms: _Optional[int] = ..., topology_fingerprint: _Optional[str] = ..., config_resend_ms: _Optional[int] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("message_kind", "field", "reason", "message", "retry_after_ms", "observed_at_unix_ms")
    MESSAGE_KIND_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    message_kind: str
    field: str
    reason: str
    message: str
    retry_after_ms: int
    observed_at_unix_ms: int
    def __init__(self, message_kind: _Optional[str] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., retry_after_ms: _Optional[int] = ..., observed_at_unix_ms: _Optional[int] = ...) -> None: ...

class SiteConfig(_message.Message):
    __slots__ = ("site_id", "generation", "site_kind", "slices", "peers")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SITE_KIND_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    generation: int
    site_kind: str
    slices: _containers.RepeatedCompositeFieldContainer[SliceConfig]
    peers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, site_id: _Optional[str] = ..., generation: _Optional[int] = ..., site_kind: _Optional[str] = ..., slices: _Optional[_Iterable[_Union[SliceConfig, _Mapping]]] = ..., peers: _Optional[_Iterable[str]] = ...) -> None: ...

class SliceConfig(_message.Message):
    __slots__ = ("name", "snssai", "qos", "radio", "links", "compute", "route", "serving_edge")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SNSSAI_FIELD_NUMBER: _ClassVar[int]
    QOS_FIELD_NUMBER: _ClassVar[int]
    RADIO_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    SERVING_EDGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    snssai: Snssai
    qos: Qos
    radio: RadioShare
    links: _containers.RepeatedCompositeFieldContainer[LinkReservation]
    compute: Compute
    route: _containers.RepeatedScalarFieldContainer[str]
    serving_edge: str
    def __init__(self, name: _Optional[str] = ..., snssai: _Optional[_Union[Snssai, _Mapping]] = ..., qos: _Optional[_Union[Qos, _Mapping]] = ..., radio: _Optional[_Union[RadioShare, _Mapping]] = ..., links: _Optional[_Iterable[_Union[LinkReservation, _Mapping]]] = ..., compute: _Optional[_Union[Compute, _Mapping]] = ..., route: _Optional[_Iterable[str]] = ..., serving_edge: _Optional[str] = ...) -> None: ...

class Snssai(_message.Message):
    __slots__ = ("sst", "sd")
    SST_FIELD_NUMBER: _ClassVar[int]
    SD_FIELD_NUMBER: _ClassVar[int]
    sst: int
    sd: str
    def __init__(self, sst: _Optional[int] = ..., sd: _Optional[str] = ...) -> None: ...

class Qos(_message.Message):
    __slots__ = ("five_qi", "arp_priority_level", "preemption_capability", "preemption_vulnerability", "guaranteed_dl_kbps", "guaranteed_ul_kbps", "latency_budget_ms", "max_packet_loss")
    FIVE_QI_FIELD_NUMBER: _ClassVar[int]
    ARP_PRIORITY_LEVEL_FIELD_NUMBER: _ClassVar[int]
    PREEMPTION_CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    PREEMPTION_VULNERABILITY_FIELD_NUMBER: _ClassVar[int]
    GUARANTEED_DL_KBPS_FIELD_NUMBER: _ClassVar[int]
    GUARANTEED_UL_KBPS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_BUDGET_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_PACKET_LOSS_FIELD_NUMBER: _ClassVar[int]
    five_qi: int
    arp_priority_level: int
    preemption_capability: bool
    preemption_vulnerability: bool
    guaranteed_dl_kbps: int
    guaranteed_ul_kbps: int
    latency_budget_ms: float
    max_packet_loss: float
    def __init__(self, five_qi: _Optional[int] = ..., arp_priority_level: _Optional[int] = ..., preemption_capability: _Optional[bool] = ..., preemption_vulnerability: _Optional[bool] = ..., guaranteed_dl_kbps: _Optional[int] = ..., guaranteed_ul_kbps: _Optional[int] = ..., latency_budget_ms: _Optional[float] = ..., max_packet_loss: _Optional[float] = ...) -> None: ...

class RadioShare(_message.Message):
    __slots__ = ("reserved_kbps", "capacity_kbps", "share_ppm")
    RESERVED_KBPS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_KBPS_FIELD_NUMBER: _ClassVar[int]
    SHARE_PPM_FIELD_NUMBER: _ClassVar[int]
    reserved_kbps: int
    capacity_kbps: int
    share_ppm: int
    def __init__(self, reserved_kbps: _Optional[int] = ..., capacity_kbps: _Optional[int] = ..., share_ppm: _Optional[int] = ...) -> None: ...

class LinkReservation(_message.Message):
    __slots__ = ("peer", "reserved_kbps", "capacity_kbps")
    PEER_FIELD_NUMBER: _ClassVar[int]
    RESERVED_KBPS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_KBPS_FIELD_NUMBER: _ClassVar[int]
    peer: str
    reserved_kbps: int
    capacity_kbps: int
    def __init__(self, peer: _Optional[str] = ..., reserved_kbps: _Optional[int] = ..., capacity_kbps: _Optional[int] = ...) -> None: ...

class Compute(_message.Message):
    __slots__ = ("cpu_millicores", "memory_mib", "cells", "workloads")
    CPU_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    cpu_millicores: int
    memory_mib: int
    cells: int
    workloads: _containers.RepeatedCompositeFieldContainer[WorkloadReplicas]
    def __init__(self, cpu_millicores: _Optional[int] = ..., memory_mib: _Optional[int] = ..., cells: _Optional[int] = ..., workloads: _Optional[_Iterable[_Union[WorkloadReplicas, _Mapping]]] = ...) -> None: ...

class WorkloadReplicas(_message.Message):
    __slots__ = ("name", "image", "replicas", "cpu_millicores", "memory_mib")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    name: str
    image: str
    replicas: int
    cpu_millicores: int
    memory_mib: int
    def __init__(self, name: _Optional[str] = ..., image: _Optional[str] = ..., replicas: _Optional[int] = ..., cpu_millicores: _Optional[int] = ..., memory_mib: _Optional[int] = ...) -> None: ...
