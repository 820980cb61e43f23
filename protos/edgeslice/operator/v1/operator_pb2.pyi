import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Manifest(_message.Message):
    __slots__ = ("source", "content")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    source: str
    content: str
    def __init__(self, source: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class ApplySlicesRequest(_message.Message):
    __slots__ = ("manifests", "request_id", "dry_run")
    MANIFESTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    manifests: _containers.RepeatedCompositeFieldContainer[Manifest]
    request_id: str
    dry_run: bool
    def __init__(self, manifests: _Optional[_Iterable[_Union[Manifest, _Mapping]]] = ..., request_id: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class ApplyResult(_message.Message):
    __slots__ = ("name", "generation", "changed", "state", "reason", "message")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    generation: int
    changed: bool
    state: str
    reason: str
    message: str
    def __init__(self, name: _Optional[str] = ..., generation: _Optional[int] = ..., changed: _Optional[bool] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ApplySlicesResponse(_message.Message):
    __slots__ = ("results", "replayed", "dry_run")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ApplyResult]
    replayed: bool
    dry_run: bool
    def __init__(self, results: _Optional[_Iterable[_Union[ApplyResult, _Mapping]]] = ..., replayed: _Optional[bool] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class GetSliceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListSlicesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSlicesResponse(_message.Message):
    __slots__ = ("slices", "next_page_token")
    SLICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    slices: _containers.RepeatedCompositeFieldContainer[Slice]
    next_page_token: str
    def __init__(self, slices: _Optional[_Iterable[_Union[Slice, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteSliceRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteSliceResponse(_message.Message):
    __slots__ = ("replayed",)
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    replayed: bool
    def __init__(self, replayed: _Optional[bool] = ...) -> None: ...

class ExplainSliceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ExplainSliceResponse(_message.Message):
    __slots__ = ("explanation_json", "explanation")
    EXPLANATION_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    explanation_json: str
    explanation: Explanation
    def __init__(self, explanation_json: _Optional[str] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("slice", "generation", "state", "reason", "message", "resolved", "conditions", "decision", "checks", "placement", "binding_constraint")
    SLICE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    BINDING_CONSTRAINT_FIELD_NUMBER: _ClassVar[int]
    slice: str
    generation: int
    state: str
    reason: str
    message: str
    resolved: ResolvedIntent
    conditions: _containers.RepeatedCompositeFieldContainer[Condition]
    decision: AdmissionDecision
    checks: _containers.RepeatedCompositeFieldContainer[AdmissionCheck]
    placement: PlacementDetail
    binding_constraint: BindingConstraint
    def __init__(self, slice: _Optional[str] = ..., generation: _Optional[int] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., resolved: _Optional[_Union[ResolvedIntent, _Mapping]] = ..., conditions: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., decision: _Optional[_Union[AdmissionDecision, _Mapping]] = ..., checks: _Optional[_Iterable[_Union[AdmissionCheck, _Mapping]]] = ..., placement: _Optional[_Union[PlacementDetail, _Mapping]] = ..., binding_constraint: _Optional[_Union[BindingConstraint, _Mapping]] = ...) -> None: ...

class ResolvedIntent(_message.Message):
    __slots__ = ("kind", "snssai", "latency_ms", "kbps_per_cell", "priority", "preemptible", "five_qi")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SNSSAI_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    KBPS_PER_CELL_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIBLE_FIELD_NUMBER: _ClassVar[int]
    FIVE_QI_FIELD_NUMBER: _ClassVar[int]
    kind: str
    snssai: str
    latency_ms: float
    kbps_per_cell: int
    priority: int
    preemptible: bool
    five_qi: int
    def __init__(self, kind: _Optional[str] = ..., snssai: _Optional[str] = ..., latency_ms: _Optional[float] = ..., kbps_per_cell: _Optional[int] = ..., priority: _Optional[int] = ..., preemptible: _Optional[bool] = ..., five_qi: _Optional[int] = ...) -> None: ...

class AdmissionDecision(_message.Message):
    __slots__ = ("status", "reason", "message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: str
    reason: str
    message: str
    def __init__(self, status: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class AdmissionCheck(_message.Message):
    __slots__ = ("check", "passed", "reason", "message")
    CHECK_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    check: str
    passed: bool
    reason: str
    message: str
    def __init__(self, check: _Optional[str] = ..., passed: _Optional[bool] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class BindingConstraint(_message.Message):
    __slots__ = ("reason", "message")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    message: str
    def __init__(self, reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class CellRoute(_message.Message):
    __slots__ = ("cell", "edge", "nodes", "latency_ms")
    CELL_FIELD_NUMBER: _ClassVar[int]
    EDGE_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    cell: str
    edge: str
    nodes: _containers.RepeatedScalarFieldContainer[str]
    latency_ms: float
    def __init__(self, cell: _Optional[str] = ..., edge: _Optional[str] = ..., nodes: _Optional[_Iterable[str]] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class PlacementDetail(_message.Message):
    __slots__ = ("generation", "edges", "worst_latency_ms", "routes", "unserved_cells")
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    WORST_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    UNSERVED_CELLS_FIELD_NUMBER: _ClassVar[int]
    generation: int
    edges: _containers.RepeatedCompositeFieldContainer[EdgeShare]
    worst_latency_ms: float
    routes: _containers.RepeatedCompositeFieldContainer[CellRoute]
    unserved_cells: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, generation: _Optional[int] = ..., edges: _Optional[_Iterable[_Union[EdgeShare, _Mapping]]] = ..., worst_latency_ms: _Optional[float] = ..., routes: _Optional[_Iterable[_Union[CellRoute, _Mapping]]] = ..., unserved_cells: _Optional[_Iterable[str]] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("type", "status", "reason", "message", "observed_generation", "last_transition_time")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    LAST_TRANSITION_TIME_FIELD_NUMBER: _ClassVar[int]
    type: str
    status: str
    reason: str
    message: str
    observed_generation: int
    last_transition_time: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., observed_generation: _Optional[int] = ..., last_transition_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EdgeShare(_message.Message):
    __slots__ = ("site", "cells", "cpu_millicores", "memory_mib")
    SITE_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    site: str
    cells: int
    cpu_millicores: int
    memory_mib: int
    def __init__(self, site: _Optional[str] = ..., cells: _Optional[int] = ..., cpu_millicores: _Optional[int] = ..., memory_mib: _Optional[int] = ...) -> None: ...

class PlacementSummary(_message.Message):
    __slots__ = ("edges", "cells_served", "unserved_cells", "worst_latency_ms", "kbps_per_cell")
    EDGES_FIELD_NUMBER: _ClassVar[int]
    CELLS_SERVED_FIELD_NUMBER: _ClassVar[int]
    UNSERVED_CELLS_FIELD_NUMBER: _ClassVar[int]
    WORST_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    KBPS_PER_CELL_FIELD_NUMBER: _ClassVar[int]
    edges: _containers.RepeatedCompositeFieldContainer[EdgeShare]
    cells_served: int
    unserved_cells: _containers.RepeatedScalarFieldContainer[str]
    worst_latency_ms: float
    kbps_per_cell: int
    def __init__(self, edges: _Optional[_Iterable[_Union[EdgeShare, _Mapping]]] = ..., cells_served: _Optional[int] = ..., unserved_cells: _Optional[_Iterable[str]] = ..., worst_latency_ms: _Optional[float] = ..., kbps_per_cell: _Optional[int] = ...) -> None: ...

class Slice(_message.Message):
    __slots__ = ("name", "generation", "kind", "snssai", "priority", "state", "reason", "message", "conditions", "placement", "document_json", "created_at", "updated_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SNSSAI_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    generation: int
    kind: str
    snssai: str
    priority: int
    state: str
    reason: str
    message: str
    conditions: _containers.RepeatedCompositeFieldContainer[Condition]
    placement: PlacementSummary
    document_json: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., generation: _Optional[int] = ..., kind: _Optional[str] = ..., snssai: _Optional[str] = ..., priority: _Optional[int] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., conditions: _Optional[_Iterable[_Union[Condition, _Mapping]]] = ..., placement: _Optional[_Union[PlacementSummary, _Mapping]] = ..., document_json: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("seq", "at", "actor", "action", "slice", "site", "message")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    at: _timestamp_pb2.Timestamp
    actor: str
    action: str
    slice: str
    site: str
    message: str
    def __init__(self, seq: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., slice: _Optional[str] = ..., site: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("after_seq", "limit", "slice", "page_size", "page_token")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    limit: int
    slice: str
    page_size: int
    page_token: str
    def __init__(self, after_seq: _Optional[int] = ..., limit: _Optional[int] = ..., slice: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("after_seq", "slice")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    slice: str
    def __init__(self, after_seq: _Optional[int] = ..., slice: _Optional[str] = ...) -> None: ...

class SiteStatus(_message.Message):
    __slots__ = ("site", "kind", "up", "drained", "reason", "cpu_reserved_millicores", "cpu_capacity_millicores", "memory_reserved_mib", "memory_capacity_mib", "radio_reserved_kbps", "radio_capacity_kbps", "slices", "cordoned")
    SITE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    DRAINED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CPU_RESERVED_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    CPU_CAPACITY_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_RESERVED_MIB_FIELD_NUMBER: _ClassVar[int]
    MEMORY_CAPACITY_MIB_FIELD_NUMBER: _ClassVar[int]
    RADIO_RESERVED_KBPS_FIELD_NUMBER: _ClassVar[int]
    RADIO_CAPACITY_KBPS_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    CORDONED_FIELD_NUMBER: _ClassVar[int]
    site: str
    kind: str
    up: bool
    drained: bool
    reason: str
    cpu_reserved_millicores: int
    cpu_capacity_millicores: int
    memory_reserved_mib: int
    memory_capacity_mib: int
    radio_reserved_kbps: int
    radio_capacity_kbps: int
    slices: int
    cordoned: bool
    def __init__(self, site: _Optional[str] = ..., kind: _Optional[str] = ..., up: _Optional[bool] = ..., drained: _Optional[bool] = ..., reason: _Optional[str] = ..., cpu_reserved_millicores: _Optional[int] = ..., cpu_capacity_millicores: _Optional[int] = ..., memory_reserved_mib: _Optional[int] = ..., memory_capacity_mib: _Optional[int] = ..., radio_reserved_kbps: _Optional[int] = ..., radio_capacity_kbps: _Optional[int] = ..., slices: _Optional[int] = ..., cordoned: _Optional[bool] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("a", "b")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    a: str
    b: str
    def __init__(self, a: _Optional[str] = ..., b: _Optional[str] = ...) -> None: ...

class LinkUtilisation(_message.Message):
    __slots__ = ("link", "reserved_kbps", "capacity_kbps")
    LINK_FIELD_NUMBER: _ClassVar[int]
    RESERVED_KBPS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_KBPS_FIELD_NUMBER: _ClassVar[int]
    link: Link
    reserved_kbps: int
    capacity_kbps: int
    def __init__(self, link: _Optional[_Union[Link, _Mapping]] = ..., reserved_kbps: _Optional[int] = ..., capacity_kbps: _Optional[int] = ...) -> None: ...

class GetTopologyStatusRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class TopologyStatus(_message.Message):
    __slots__ = ("name", "sites", "down_links", "link_utilisation", "next_page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    DOWN_LINKS_FIELD_NUMBER: _ClassVar[int]
    LINK_UTILISATION_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    sites: _containers.RepeatedCompositeFieldContainer[SiteStatus]
    down_links: _containers.RepeatedCompositeFieldContainer[Link]
    link_utilisation: _containers.RepeatedCompositeFieldContainer[LinkUtilisation]
    next_page_token: str
    def __init__(self, name: _Optional[str] = ..., sites: _Optional[_Iterable[_Union[SiteStatus, _Mapping]]] = ..., down_links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., link_utilisation: _Optional[_Iterable[_Union[LinkUtilisation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DrainSiteRequest(_message.Message):
    __slots__ = ("site", "request_id")
    SITE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    site: str
    request_id: str
    def __init__(self, site: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class SliceMove(_message.Message):
    __slots__ = ("slice", "outcome", "message")
    SLICE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    slice: str
    outcome: str
    message: str
    def __init__(self, slice: _Optional[str] = ..., outcome: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class DrainSiteResponse(_message.Message):
    __slots__ = ("moved_slices", "moves", "already_drained", "replayed")
    MOVED_SLICES_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    ALREADY_DRAINED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    moved_slices: _containers.RepeatedScalarFieldContainer[str]
    moves: _containers.RepeatedCompositeFieldContainer[SliceMove]
    already_drained: bool
    replayed: bool
    def __init__(self, moved_slices: _Optional[_Iterable[str]] = ..., moves: _Optional[_Iterable[_Union[SliceMove, _Mapping]]] = ..., already_drained: _Optional[bool] = ..., replayed: _Optional[bool] = ...) -> None: ...

class UndrainSiteRequest(_message.Message):
    __slots__ = ("site", "request_id")
    SITE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    site: str
    request_id: str
    def __init__(self, site: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class UndrainSiteResponse(_message.Message):
    __slots__ = ("moved_slices", "replayed")
    MOVED_SLICES_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    moved_slices: _containers.RepeatedScalarFieldContainer[str]
    replayed: bool
    def __init__(self, moved_slices: _Optional[_Iterable[str]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class CordonSiteRequest(_message.Message):
    __slots__ = ("site", "request_id")
    SITE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    site: str
    request_id: str
    def __init__(self, site: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CordonSiteResponse(_message.Message):
    __slots__ = ("changed", "slices_on_site", "replayed")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    SLICES_ON_SITE_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    slices_on_site: _containers.RepeatedScalarFieldContainer[str]
    replayed: bool
    def __init__(self, changed: _Optional[bool] = ..., slices_on_site: _Optional[_Iterable[str]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class UncordonSiteRequest(_message.Message):
    __slots__ = ("site", "request_id")
    SITE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    site: str
    request_id: str
    def __init__(self, site: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class UncordonSiteResponse(_message.Message):
    __slots__ = ("changed", "replayed")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    replayed: bool
    def __init__(self, changed: _Optional[bool] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetTopologyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TopologyFile(_message.Message):
    __slots__ = ("name", "fingerprint", "content_gzip")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_GZIP_FIELD_NUMBER: _ClassVar[int]
    name: str
    fingerprint: str
    content_gzip: bytes
    def __init__(self, name: _Optional[str] = ..., fingerprint: _Optional[str] = ..., content_gzip: _Optional[bytes] = ...) -> None: ...

class WhatIfRequest(_message.Message):
    __slots__ = ("fail_sites", "fail_links")
    FAIL_SITES_FIELD_NUMBER: _ClassVar[int]
    FAIL_LINKS_FIELD_NUMBER: _ClassVar[int]
    fail_sites: _containers.RepeatedScalarFieldContainer[str]
    fail_links: _containers.RepeatedCompositeFieldContainer[Link]
    def __init__(self, fail_sites: _Optional[_Iterable[str]] = ..., fail_links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ...) -> None: ...

class WhatIfResponse(_message.Message):
    __slots__ = ("report_json", "report")
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report_json: str
    report: WhatIfReport
    def __init__(self, report_json: _Optional[str] = ..., report: _Optional[_Union[WhatIfReport, _Mapping]] = ...) -> None: ...

class WhatIfReport(_message.Message):
    __slots__ = ("failed_sites", "failed_links", "affected", "unaffected")
    FAILED_SITES_FIELD_NUMBER: _ClassVar[int]
    FAILED_LINKS_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_FIELD_NUMBER: _ClassVar[int]
    UNAFFECTED_FIELD_NUMBER: _ClassVar[int]
    failed_sites: _containers.RepeatedScalarFieldContainer[str]
    failed_links: _containers.RepeatedCompositeFieldContainer[Link]
    affected: _containers.RepeatedCompositeFieldContainer[SliceImpact]
    unaffected: int
    def __init__(self, failed_sites: _Optional[_Iterable[str]] = ..., failed_links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., affected: _Optional[_Iterable[_Union[SliceImpact, _Mapping]]] = ..., unaffected: _Optional[int] = ...) -> None: ...

class SliceImpact(_message.Message):
    __slots__ = ("slice", "lost_cells", "lost_edges", "recovered", "reason", "message", "edges", "unserved_cells")
    SLICE_FIELD_NUMBER: _ClassVar[int]
    LOST_CELLS_FIELD_NUMBER: _ClassVar[int]
    LOST_EDGES_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    UNSERVED_CELLS_FIELD_NUMBER: _ClassVar[int]
    slice: str
    lost_cells: _containers.RepeatedScalarFieldContainer[str]
    lost_edges: _containers.RepeatedScalarFieldContainer[str]
    recovered: bool
    reason: str
    message: str
    edges: _containers.RepeatedScalarFieldContainer[str]
    unserved_cells: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, slice: _Optional[str] = ..., lost_cells: _Optional[_Iterable[str]] = ..., lost_edges: _Optional[_Iterable[str]] = ..., recovered: _Optional[bool] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., edges: _Optional[_Iterable[str]] = ..., unserved_cells: _Optional[_Iterable[str]] = ...) -> None: ...

class AgentRefusal(_message.Message):
    __slots__ = ("generation", "reason", "message", "at")
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    generation: int
    reason: str
    message: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, generation: _Optional[int] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Agent(_message.Message):
    __slots__ = ("site", "kind", "state", "lease_expires_in_s", "last_seen_s_ago", "software_version", "instance_id", "desired_generation", "acked_generation", "last_refusal", "messages_per_s", "rejections", "epoch")
    SITE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_IN_S_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_S_AGO_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    DESIRED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    ACKED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    LAST_REFUSAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_PER_S_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    site: str
    kind: str
    state: str
    lease_expires_in_s: float
    last_seen_s_ago: float
    software_version: str
    instance_id: str
    desired_generation: int
    acked_generation: int
    last_refusal: AgentRefusal
    messages_per_s: float
    rejections: int
    epoch: str
    def __init__(self, site: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[str] = ..., lease_expires_in_s: _Optional[float] = ..., last_seen_s_ago: _Optional[float] = ..., software_version: _Optional[str] = ..., instance_id: _Optional[str] = ..., desired_generation: _Optional[int] = ..., acked_generation: _Optional[int] = ..., last_refusal: _Optional[_Union[AgentRefusal, _Mapping]] = ..., messages_per_s: _Optional[float] = ..., rejections: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents", "next_page_token")
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    next_page_token: str
    def __init__(self, agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetAgentRequest(_message.Message):
    __slots__ = ("site",)
    SITE_FIELD_NUMBER: _ClassVar[int]
    site: str
    def __init__(self, site: _Optional[str] = ...) -> None: ...
