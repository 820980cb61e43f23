"""The operator gRPC server on a real port: authentication, status codes, messages, streaming.

These use a raw gRPC stub (what any other client sees) against the servicer backed by an
in-memory fake of ControllerService; tests/integration/test_api_client.py and tests/integration/test_slice_cli.py run
the real service on a real SQLite store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from controller.api import auth, reports
from controller.api import server as api_server
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from protos.edgeslice.operator.v1 import operator_pb2_grpc as pb_grpc
from slices.profiles import default_sd
from tests.support import operator_fake
from tests.support.stubs import operator_stub

TOKEN = operator_fake.TOKEN
AUTH = operator_fake.AUTH
SLICE = operator_fake.SLICE


@pytest.fixture
def fake() -> operator_fake.FakeService:
    return operator_fake.FakeService()


@pytest.fixture
def server(fake: operator_fake.FakeService) -> Iterator[api_server.ApiServer]:
    running = api_server.serve(
        fake, "127.0.0.1:0", auth.Authenticator({"alice": TOKEN}), None, dev=True, poll_s=0.05
    )
    yield running
    running.stop(0)


@pytest.fixture
def channel(server: api_server.ApiServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.OperatorServiceStub:
    return operator_stub(channel)


def _trailing(err: grpc.RpcError) -> list[tuple[str, str | bytes]]:
    """The error's trailing metadata as (key, value) pairs (grpc's _Metadatum named tuples)."""
    return [(m.key, m.value) for m in err.trailing_metadata() or ()]


def _apply(stub: pb_grpc.OperatorServiceStub, *contents: str) -> pb.ApplySlicesResponse:
    manifests = [pb.Manifest(source=f"f{i}.yaml", content=c) for i, c in enumerate(contents)]
    response: pb.ApplySlicesResponse = stub.ApplySlices(
        pb.ApplySlicesRequest(manifests=manifests), metadata=AUTH, timeout=10
    )
    return response


def _error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


# ---- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "details"),
    [
        ((), "no bearer token"),
        ((("authorization", "Bearer wrong-token-0123456789"),), "not known to this controller"),
        ((("authorization", f"Basic {TOKEN}"),), "no bearer token"),
    ],
)
def test_every_method_refuses_calls_without_a_known_token(
    stub: pb_grpc.OperatorServiceStub, fake: operator_fake.FakeService, metadata: Any, details: str
) -> None:
    calls = {
        "ApplySlices": pb.ApplySlicesRequest(manifests=[pb.Manifest(content=SLICE % "a")]),
        "GetSlice": pb.GetSliceRequest(name="a"),
        "ListSlices": pb.ListSlicesRequest(),
        "DeleteSlice": pb.DeleteSliceRequest(name="a"),
        "ExplainSlice": pb.ExplainSliceRequest(name="a"),
        "ListEvents": pb.ListEventsRequest(),
        "GetTopologyStatus": pb.GetTopologyStatusRequest(),
        "DrainSite": pb.DrainSiteRequest(site="edge-1"),
        "UndrainSite": pb.UndrainSiteRequest(site="edge-1"),
        "CordonSite": pb.CordonSiteRequest(site="edge-1"),
        "UncordonSite": pb.UncordonSiteRequest(site="edge-1"),
        "GetTopology": pb.GetTopologyRequest(),
        "WhatIf": pb.WhatIfRequest(fail_sites=["edge-1"]),
        "ListAgents": pb.ListAgentsRequest(),
        "GetAgent": pb.GetAgentRequest(site="edge-1"),
    }
    service = pb.DESCRIPTOR.services_by_name["OperatorService"]
    assert set(calls) | {"WatchEvents"} == {m.name for m in service.methods}  # none left out
    for method, request in calls.items():
        err = _error(lambda m=method, r=request: getattr(stub, m)(r, metadata=metadata, timeout=5))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, method
        assert details in (err.details() or "")
    stream = stub.WatchEvents(pb.WatchEventsRequest(), metadata=metadata, timeout=5)
    err = _error(lambda: next(iter(stream)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert fake.slices == {} and fake.calls == [] and fake.log == []  # nothing reached the service


def test_health_and_reflection_need_no_token(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", api_server.SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in replies for s in r.list_services_response.service}
    assert "edgeslice.operator.v1.OperatorService" in names
    assert "grpc.health.v1.Health" in names


def test_the_token_name_is_the_audit_actor(
    stub: pb_grpc.OperatorServiceStub, fake: operator_fake.FakeService
) -> None:
    _apply(stub, SLICE % "sensors")
    stub.DrainSite(pb.DrainSiteRequest(site="edge-1"), metadata=AUTH, timeout=5)
    stub.DeleteSlice(pb.DeleteSliceRequest(name="sensors"), metadata=AUTH, timeout=5)
    assert fake.calls == [
        ("apply", "operator:alice"),
        ("drain", "operator:alice"),
        ("delete", "operator:alice"),
    ]


# ---- slices ---------------------------------------------------------------------------------


def test_apply_get_list_delete(stub: pb_grpc.OperatorServiceStub) -> None:
    reply = _apply(stub, SLICE % "sensors" + "---\n" + SLICE % "meters", SLICE % "cams")
    assert [(r.name, r.generation, r.changed, r.state) for r in reply.results] == [
        ("sensors", 1, True, "Admitted"),
        ("meters", 1, True, "Admitted"),
        ("cams", 1, True, "Admitted"),
    ]
    again = _apply(stub, SLICE % "sensors")
    assert (again.results[0].generation, again.results[0].changed) == (1, False)
    got = stub.GetSlice(pb.GetSliceRequest(name="sensors"), metadata=AUTH, timeout=5)
    # No snssai.sd in the document: the slice's default SD (issue 13: unique per name).
    snssai = f"3-{default_sd('sensors')}"
    assert (got.name, got.kind, got.snssai, got.state) == ("sensors", "iot", snssai, "Admitted")
    assert got.conditions[0].type == "Admitted" and got.conditions[0].status == "True"
    assert '"name":"sensors"' in got.document_json
    assert got.created_at.seconds > 0
    listed = stub.ListSlices(pb.ListSlicesRequest(), metadata=AUTH, timeout=5)
    assert [s.name for s in listed.slices] == ["cams", "meters", "sensors"]  # by name
    stub.DeleteSlice(pb.DeleteSliceRequest(name="meters"), metadata=AUTH, timeout=5)
    err = _error(lambda: stub.GetSlice(pb.GetSliceRequest(name="meters"), metadata=AUTH, timeout=5))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "slice 'meters' does not exist"
    assert ("edgeslice-error", "NotFound") in _trailing(err)


def test_a_rejected_slice_is_a_result_not_an_error(stub: pb_grpc.OperatorServiceStub) -> None:
    doc = f"""
metadata: {{name: big, annotations: {{{operator_fake.REJECT_ANNOTATION}: "yes"}}}}
spec: {{kind: iot, coverage: {{zones: [north]}}}}
"""
    reply = _apply(stub, doc)
    assert (reply.results[0].state, reply.results[0].reason) == ("Rejected", "InsufficientBandwidth")
    assert "short by 5000" in reply.results[0].message


@pytest.mark.parametrize(
    ("content", "details"),
    [
        ("metadata: {name: [unclosed\n", "f0.yaml: not valid YAML at line 2"),
        (
            SLICE.replace("coverage:", "bogus: 1, coverage:") % "a",
            "f0.yaml[doc 1]: spec.bogus: unknown field",
        ),
        (
            SLICE.replace("coverage: {zones: [north]}", "coverage: {zones: [north]}, priority: 5000") % "a",
            "f0.yaml[doc 1]: spec.priority: Input should be less than or equal to 1000",
        ),
        (SLICE % "Not_A_Name", "f0.yaml[doc 1]: metadata.name: String should match pattern"),
        ("- just\n- a list\n", "f0.yaml[doc 1]: expected a mapping, got list"),
        ("# nothing here\n", "f0.yaml: no NetworkSlice documents in it"),
        (
            SLICE.replace("kind: iot", "kind: vehicle, snssai: {sst: 1}") % "a",
            "a: spec.snssai.sst: SST 1 (eMBB) does not fit kind 'vehicle'",
        ),
    ],
)
def test_bad_specs_are_invalid_argument_and_store_nothing(
    stub: pb_grpc.OperatorServiceStub, fake: operator_fake.FakeService, content: str, details: str
) -> None:
    good = SLICE % "good"
    # The good document comes first: it must not be stored when a later one is bad.
    err = _error(lambda: _apply(stub, good, content))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details in (err.details() or "").replace("f1.yaml", "f0.yaml")
    assert ("edgeslice-error", "InvalidSpec") in _trailing(err)
    assert fake.slices == {} and fake.log == []


def test_json_and_yaml_flow_manifests(
    stub: pb_grpc.OperatorServiceStub, fake: operator_fake.FakeService
) -> None:
    as_json = '{"metadata": {"name": "j"}, "spec": {"kind": "iot", "coverage": {"zones": ["north"]}}}'
    as_flow = "{metadata: {name: f}, spec: {kind: iot, coverage: {zones: [north]}}}"
    assert [r.name for r in _apply(stub, as_json, as_flow).results] == ["j", "f"]
    bad_json = as_json.replace('"kind": "iot"', '"kind": "iot", "bogus": 1').replace('"j"', '"k"')
    err = _error(lambda: _apply(stub, bad_json))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "f0.yaml[doc 1]: spec.bogus: unknown field"
    assert sorted(fake.slices) == ["f", "j"]


def test_a_name_twice_across_manifests_is_refused(stub: pb_grpc.OperatorServiceStub) -> None:
    err = _error(lambda: _apply(stub))
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "manifests: none given")
    err = _error(lambda: _apply(stub, SLICE % "a", SLICE % "a"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "f1.yaml: metadata.name: slice 'a' is also defined in f0.yaml"


def test_oversized_requests_are_resource_exhausted(
    stub: pb_grpc.OperatorServiceStub, fake: operator_fake.FakeService
) -> None:
    padding = "# " + "x" * 1000 + "\n"
    content = SLICE % "huge" + padding * (api_server.MAX_RECEIVE_BYTES // len(padding) + 10)
    err = _error(lambda: _apply(stub, content))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in (err.details() or "")
    assert fake.slices == {}


@pytest.mark.parametrize(
    ("method", "request_", "details"),
    [
        ("GetSlice", pb.GetSliceRequest(), "name: required"),
        ("GetSlice", pb.GetSliceRequest(name="Bad Name"), "name: 'Bad Name' is not a slice name"),
        ("ExplainSlice", pb.ExplainSliceRequest(name="x" * 64), "is not a slice name"),
        ("DeleteSlice", pb.DeleteSliceRequest(), "name: required"),
        ("ListEvents", pb.ListEventsRequest(limit=10_001), "limit: 10001 is out of range (1..10000)"),
        ("ListEvents", pb.ListEventsRequest(after_seq=-1), "after_seq: -1 is negative"),
        ("DrainSite", pb.DrainSiteRequest(), "site: required"),
        ("WhatIf", pb.WhatIfRequest(), "give at least one site or link to fail"),
        ("WhatIf", pb.WhatIfRequest(fail_links=[pb.Link(a="x")]), "fail_links[0]: needs both a and b"),
    ],
)
def test_bad_requests_name_the_field(
    stub: pb_grpc.OperatorServiceStub, method: str, request_: Any, details: str
) -> None:
    err = _error(lambda: getattr(stub, method)(request_, metadata=AUTH, timeout=5))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details in (err.details() or "")


def test_explain_is_a_structured_message(
    stub: pb_grpc.OperatorServiceStub, fake: operator_fake.FakeService
) -> None:
    _apply(stub, SLICE % "sensors")
    reply = stub.ExplainSlice(pb.ExplainSliceRequest(name="sensors"), metadata=AUTH, timeout=5)
    assert reply.explanation_json == ""  # deprecated: no longer filled
    why = reply.explanation
    assert (why.slice, why.generation, why.state) == ("sensors", 1, "Admitted")
    assert [(c.check, c.passed) for c in why.checks] == [("latency", True), ("bandwidth", True)]
    assert (why.decision.status, why.resolved.kind) == ("True", "iot")
    assert [(r.cell, list(r.nodes)) for r in why.placement.routes] == [
        ("cell-1", ["cell-1", "edge-1"]),
        ("cell-2", ["cell-2", "edge-1"]),
    ]
    assert not why.HasField("binding_constraint")
    # Back to the service's data exactly: the same values, keys in the service's order.
    data = reports.explanation_data(why)
    assert data == fake.explain("sensors")
    assert list(data) == list(fake.explain("sensors"))
    err = _error(lambda: stub.ExplainSlice(pb.ExplainSliceRequest(name="nope"), metadata=AUTH, timeout=5))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_unexpected_errors_are_internal_without_leaking(
    stub: pb_grpc.OperatorServiceStub, fake: operator_fake.FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> object:
        raise ZeroDivisionError("secret detail")

    fake.list_slices = broken  # type: ignore[method-assign,assignment]
    err = _error(lambda: stub.ListSlices(pb.ListSlicesRequest(), metadata=AUTH, timeout=5))
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details() == "internal error (ZeroDivisionError); see the controller's log"
    assert "secret detail" in caplog.text


# ---- events ---------------------------------------------------------------------------------


def test_list_events_pages_and_filters(stub: pb_grpc.OperatorServiceStub) -> None:
    _apply(stub, SLICE % "a", SLICE % "b")
    stub.DeleteSlice(pb.DeleteSliceRequest(name="a"), metadata=AUTH, timeout=5)
    every = stub.ListEvents(pb.ListEventsRequest(), metadata=AUTH, timeout=5).events
    assert [(e.seq, e.action, e.slice, e.actor) for e in every] == [
        (1, "apply", "a", "operator:alice"),
        (2, "apply", "b", "operator:alice"),
        (3, "delete", "a", "operator:alice"),
    ]
    only_a = stub.ListEvents(pb.ListEventsRequest(slice="a"), metadata=AUTH, timeout=5).events
    assert [e.seq for e in only_a] == [1, 3]
    page = stub.ListEvents(pb.ListEventsRequest(after_seq=1, limit=1), metadata=AUTH, timeout=5).events
    assert [e.seq for e in page] == [2]


def test_watch_sends_the_backlog_then_new_events(
    stub: pb_grpc.OperatorServiceStub, fake: operator_fake.FakeService
) -> None:
    _apply(stub, SLICE % "a")
    stream = stub.WatchEvents(pb.WatchEventsRequest(slice="b"), metadata=AUTH, timeout=10)
    first = stub.WatchEvents(pb.WatchEventsRequest(), metadata=AUTH, timeout=10)
    assert next(first).slice == "a"  # the backlog
    later = threading.Timer(0.2, lambda: _apply(stub, SLICE % "b"))
    later.start()
    got = next(stream)  # event for "a" filtered out; "b" arrives while watching
    later.join()
    assert (got.seq, got.slice, got.action) == (2, "b", "apply")
    assert next(first).seq == 2
    stream.cancel()
    first.cancel()


def test_watches_are_capped_and_end_on_stop(fake: operator_fake.FakeService) -> None:
    running = api_server.serve(
        fake, "127.0.0.1:0", auth.Authenticator({"alice": TOKEN}), None, dev=True, max_workers=4
    )
    with grpc.insecure_channel(running.address) as ch:
        stub = operator_stub(ch)
        fake.record_event("controller", "admit", "a", None, "hello")
        streams = [stub.WatchEvents(pb.WatchEventsRequest(), metadata=AUTH, timeout=10) for _ in range(2)]
        for s in streams:
            assert next(s).seq == 1
        extra = stub.WatchEvents(pb.WatchEventsRequest(), metadata=AUTH, timeout=10)
        err = _error(lambda: next(extra))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many event watches open (at most 2)" in (err.details() or "")
        # Ordinary calls still get a worker while watches are open.
        assert stub.ListSlices(pb.ListSlicesRequest(), metadata=AUTH, timeout=5).slices == []
        running.stop(grace_s=2)
        for s in streams:  # the streams end with a status saying why, instead of hanging
            err = _error(lambda s=s: next(s))
            assert err.code() == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in (err.details() or "")


def test_slice_writes_can_be_refused_while_reads_still_work(fake: operator_fake.FakeService) -> None:
    """In NetworkSlice-CRD mode a write through the API would be lost at the next sync: refused."""
    running = api_server.serve(
        fake,
        "127.0.0.1:0",
        auth.Authenticator({"alice": TOKEN}),
        None,
        dev=True,
        slice_writes_refused="intents come from NetworkSlice objects: use kubectl apply",
    )
    try:
        with grpc.insecure_channel(running.address) as ch:
            stub = operator_stub(ch)
            for call in (
                lambda: _apply(stub, SLICE % "sensors"),
                lambda: stub.DeleteSlice(pb.DeleteSliceRequest(name="sensors"), metadata=AUTH, timeout=5),
            ):
                err = _error(call)
                assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert err.details() == "intents come from NetworkSlice objects: use kubectl apply"
            assert stub.ListSlices(pb.ListSlicesRequest(), metadata=AUTH, timeout=5).slices == []
    finally:
        running.stop(0)


# ---- topology -------------------------------------------------------------------------------


def test_topology_operations(stub: pb_grpc.OperatorServiceStub) -> None:
    _apply(stub, SLICE % "a")
    status = stub.GetTopologyStatus(pb.GetTopologyStatusRequest(), metadata=AUTH, timeout=5)
    assert status.name == "fake-city"
    assert [s.site for s in status.sites] == ["cell-1", "cell-2", "edge-1"]
    assert status.link_utilisation[0].link.a == "cell-1" and status.link_utilisation[0].reserved_kbps == 5000
    moved = stub.DrainSite(pb.DrainSiteRequest(site="edge-1"), metadata=AUTH, timeout=5)
    assert list(moved.moved_slices) == ["a"]
    status = stub.GetTopologyStatus(pb.GetTopologyStatusRequest(), metadata=AUTH, timeout=5)
    assert [s.site for s in status.sites if s.drained] == ["edge-1"]
    stub.UndrainSite(pb.UndrainSiteRequest(site="edge-1"), metadata=AUTH, timeout=5)
    err = _error(lambda: stub.DrainSite(pb.DrainSiteRequest(site="edge-9"), metadata=AUTH, timeout=5))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "edge-9" in (err.details() or "")
    reply = stub.WhatIf(
        pb.WhatIfRequest(fail_sites=["edge-1"], fail_links=[pb.Link(a="edge-1", b="cell-1")]),
        metadata=AUTH,
        timeout=5,
    )
    assert reply.report_json == ""  # deprecated: no longer filled
    report = reply.report
    assert [(a.slice, a.recovered) for a in report.affected] == [("a", False)]
    assert [(k.a, k.b) for k in report.failed_links] == [("cell-1", "edge-1")]  # link keys are ordered
    assert reports.what_if_data(report)["failedLinks"] == ["cell-1:edge-1"]
