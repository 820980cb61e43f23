"""ListAgents / GetAgent and the pagination of every list (AIP-158), on a real loopback server.

The servicer runs against the in-memory service fake and a directory of agents at our own
interface (:class:`controller.runtime.agent_view.AgentDirectory`); the end-to-end test with a real
controller, its agent server and the reference agent is tests/integration/test_agent_cli.py.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
import pytest

from controller.api import agents_rpc, auth, messages, paging
from controller.api import client as api_client
from controller.api import server as api_server
from controller.core import citygen
from controller.core.topology import Topology
from controller.runtime.agent_view import Refusal
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors
from slices.intent import load_slices
from tests.support import operator_fake, runtime_helpers
from tests.support.agents_rig import AGENTS, REFUSED_AT, TOKEN, FakeDirectory, Rig, info

AUTH = operator_fake.AUTH
SLICE = operator_fake.SLICE


def _error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def _details(err: grpc.RpcError) -> str:
    return (err.details() if isinstance(err, grpc.Call) else None) or ""


def _list_agents(rig: Rig, **fields: Any) -> pb.ListAgentsResponse:
    reply: pb.ListAgentsResponse = rig.stub.ListAgents(
        pb.ListAgentsRequest(**fields), metadata=AUTH, timeout=10
    )
    return reply


# ---- agents ---------------------------------------------------------------------------------


def test_list_agents_carries_every_field(rig: Rig) -> None:
    reply = _list_agents(rig)
    assert [a.site for a in reply.agents] == ["cell-1", "cell-2", "edge-1", "edge-2"]
    assert reply.next_page_token == ""
    cell, never, edge, gone = reply.agents
    assert (cell.kind, cell.state, cell.lease_expires_in_s, cell.last_seen_s_ago) == (
        "cell",
        "Connected",
        2.5,
        0.5,
    )
    assert (cell.software_version, cell.instance_id, cell.epoch) == (
        "ref-agent/1.2",
        "inst-cell-1",
        "epoch-a",
    )
    assert (cell.desired_generation, cell.acked_generation, cell.messages_per_s) == (7, 7, 5.25)
    assert not cell.HasField("last_refusal")
    # Unknown is unset, not zero: no lease and never heard from.
    assert never.state == "Never"
    assert not never.HasField("lease_expires_in_s") and not never.HasField("last_seen_s_ago")
    assert (never.desired_generation, never.acked_generation) == (3, 0)
    assert gone.state == "Disconnected" and not gone.HasField("lease_expires_in_s")
    assert gone.HasField("last_seen_s_ago")
    r = edge.last_refusal
    assert (r.generation, r.reason, r.message) == (7, "BackendUnavailable", "cannot write /etc/upf.conf")
    assert r.at.ToDatetime(tzinfo=UTC) == REFUSED_AT
    assert edge.rejections == 2


def test_list_agents_filters_by_state(rig: Rig) -> None:
    assert [a.site for a in _list_agents(rig, state="Connected").agents] == ["cell-1", "edge-1"]
    assert [a.site for a in _list_agents(rig, state="Never").agents] == ["cell-2"]
    err = _error(lambda: _list_agents(rig, state="connected"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _details(err).startswith(
        "state: 'connected' is not a session state (Connected, Disconnected, Never"
    )


def test_get_agent(rig: Rig) -> None:
    got = rig.stub.GetAgent(pb.GetAgentRequest(site="edge-1"), metadata=AUTH, timeout=10)
    assert (got.site, got.state, got.last_refusal.reason) == ("edge-1", "Connected", "BackendUnavailable")
    err = _error(lambda: rig.stub.GetAgent(pb.GetAgentRequest(site="edge-9"), metadata=AUTH, timeout=10))
    assert (err.code(), _details(err)) == (grpc.StatusCode.NOT_FOUND, "site 'edge-9' is not in the topology")
    err = _error(lambda: rig.stub.GetAgent(pb.GetAgentRequest(), metadata=AUTH, timeout=10))
    assert (err.code(), _details(err)) == (grpc.StatusCode.INVALID_ARGUMENT, "site: required")


def test_without_an_agent_server_agents_are_failed_precondition() -> None:
    r = Rig(operator_fake.FakeService(), None)
    try:
        for call in (
            lambda: _list_agents(r),
            lambda: r.stub.GetAgent(pb.GetAgentRequest(site="edge-1"), metadata=AUTH, timeout=10),
        ):
            err = _error(call)
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert _details(err) == agents_rpc.NO_AGENTS
        with r.client() as client, pytest.raises(errors.EdgesliceError, match="runs no agent server"):
            client.agents()
    finally:
        r.close()


def test_the_client_reads_agents_page_by_page(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_client, "PAGE_SIZE", 1)
    with rig.client() as client:
        assert [a.site for a in client.agents()] == ["cell-1", "cell-2", "edge-1", "edge-2"]
        assert [a.site for a in client.agents(state="Connected")] == ["cell-1", "edge-1"]
        assert client.agent("edge-2").state == "Disconnected"
        with pytest.raises(errors.NotFound, match="edge-9"):
            client.agent("edge-9")


# ---- pagination -----------------------------------------------------------------------------


def _all_agent_pages(rig: Rig, page_size: int, **fields: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    token = ""
    while True:
        reply = _list_agents(rig, page_size=page_size, page_token=token, **fields)
        pages.append([a.site for a in reply.agents])
        token = reply.next_page_token
        if not token:
            return pages


def test_an_empty_list_is_one_empty_page() -> None:
    r = Rig(operator_fake.FakeService(), FakeDirectory([]))
    try:
        reply = _list_agents(r)
        assert list(reply.agents) == [] and reply.next_page_token == ""
        slices = r.stub.ListSlices(pb.ListSlicesRequest(page_size=5), metadata=AUTH, timeout=10)
        assert list(slices.slices) == [] and slices.next_page_token == ""
        events = r.stub.ListEvents(pb.ListEventsRequest(page_size=5), metadata=AUTH, timeout=10)
        assert list(events.events) == [] and events.next_page_token == ""
    finally:
        r.close()


def test_pages_of_an_exact_multiple_end_without_an_empty_page(rig: Rig) -> None:
    assert _all_agent_pages(rig, 2) == [["cell-1", "cell-2"], ["edge-1", "edge-2"]]
    assert _all_agent_pages(rig, 3) == [["cell-1", "cell-2", "edge-1"], ["edge-2"]]
    assert _all_agent_pages(rig, 1, state="Connected") == [["cell-1"], ["edge-1"]]


def test_page_size_zero_is_the_default_and_above_the_maximum_is_the_maximum() -> None:
    many = [info(f"cell-{i:05d}") for i in range(agents_rpc.AGENT_PAGES.maximum + 5)]
    r = Rig(operator_fake.FakeService(), FakeDirectory(many))
    try:
        first = _list_agents(r)
        assert len(first.agents) == agents_rpc.AGENT_PAGES.default == 1000
        assert first.next_page_token
        biggest = _list_agents(r, page_size=10**9)
        assert len(biggest.agents) == agents_rpc.AGENT_PAGES.maximum == 10_000
        rest = _list_agents(r, page_size=10**9, page_token=biggest.next_page_token)
        assert [a.site for a in rest.agents] == [a.site for a in many[10_000:]]
        assert rest.next_page_token == ""
        err = _error(lambda: _list_agents(r, page_size=-1))
        assert (err.code(), _details(err)) == (grpc.StatusCode.INVALID_ARGUMENT, "page_size: -1 is negative")
    finally:
        r.close()


def test_a_page_ends_at_its_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Big entries make short pages (fewer than page_size), never an answer over the limit."""
    big = [info(f"edge-{i}", last_refusal=Refusal(1, "Bad", "x" * 600_000, REFUSED_AT)) for i in range(8)]
    r = Rig(operator_fake.FakeService(), FakeDirectory(big))
    try:
        pages = _all_agent_pages(r, 100)
        assert all(len(p) < 100 for p in pages) and len(pages) >= 3
        assert [s for p in pages for s in p] == sorted(a.site for a in big)
        with r.client() as client:
            assert len(client.agents()) == 8
    finally:
        r.close()


def _forged(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


@pytest.mark.parametrize(
    ("token", "details"),
    [
        ("not-a-token!", "page_token: not a page token of ListAgents"),
        ("", None),  # the first page
        (paging.encode("ListSlices", {}, "a"), "page_token: not a page token of ListAgents"),
        (paging.encode("ListAgents", {"state": "Never"}, "a"), "page_token: was issued for other filters"),
        (
            _forged({"m": "ListAgents", "f": {"state": ""}, "c": [1]}),
            "page_token: not a page token of ListAgents",
        ),
        (_forged([1, 2]), "page_token: not a page token of ListAgents"),
    ],
)
def test_a_bad_page_token_is_invalid_argument_naming_the_field(
    rig: Rig, token: str, details: str | None
) -> None:
    if details is None:
        assert len(_list_agents(rig, page_token=token).agents) == 4
        return
    err = _error(lambda: _list_agents(rig, page_token=token))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _details(err).startswith(details)


def test_bad_tokens_of_the_other_lists(rig: Rig) -> None:
    calls = {
        "ListSlices": lambda t: rig.stub.ListSlices(
            pb.ListSlicesRequest(page_token=t), metadata=AUTH, timeout=10
        ),
        "ListEvents": lambda t: rig.stub.ListEvents(
            pb.ListEventsRequest(page_token=t), metadata=AUTH, timeout=10
        ),
        "GetTopologyStatus": lambda t: rig.stub.GetTopologyStatus(
            pb.GetTopologyStatusRequest(page_token=t), metadata=AUTH, timeout=10
        ),
    }
    for method, call in calls.items():
        for token in ("%%%", paging.encode("ListAgents", {"state": ""}, "x")):
            err = _error(lambda c=call, t=token: c(t))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, method
            assert _details(err).startswith(f"page_token: not a page token of {method}"), method
    # A cursor past the end is not one this server issued.
    err = _error(lambda: calls["GetTopologyStatus"](paging.encode("GetTopologyStatus", {}, "0:99")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_list_slices_pages_by_name_and_keeps_its_place_across_changes(rig: Rig) -> None:
    manifests = [pb.Manifest(source=f"{n}.yaml", content=SLICE % n) for n in ("e", "a", "d", "b", "c")]
    rig.stub.ApplySlices(pb.ApplySlicesRequest(manifests=manifests), metadata=AUTH, timeout=10)
    first = rig.stub.ListSlices(pb.ListSlicesRequest(page_size=2), metadata=AUTH, timeout=10)
    assert [s.name for s in first.slices] == ["a", "b"] and first.next_page_token
    # Between pages "b" is deleted and "bb" created: the next page starts after "b" all the same.
    rig.stub.DeleteSlice(pb.DeleteSliceRequest(name="b"), metadata=AUTH, timeout=10)
    rig.stub.ApplySlices(
        pb.ApplySlicesRequest(manifests=[pb.Manifest(content=SLICE % "bb")]), metadata=AUTH, timeout=10
    )
    second = rig.stub.ListSlices(
        pb.ListSlicesRequest(page_size=2, page_token=first.next_page_token), metadata=AUTH, timeout=10
    )
    assert [s.name for s in second.slices] == ["bb", "c"]
    third = rig.stub.ListSlices(
        pb.ListSlicesRequest(page_size=2, page_token=second.next_page_token), metadata=AUTH, timeout=10
    )
    assert [s.name for s in third.slices] == ["d", "e"] and third.next_page_token == ""
    default = rig.stub.ListSlices(pb.ListSlicesRequest(), metadata=AUTH, timeout=10)
    assert len(default.slices) == 5 and default.next_page_token == ""


def test_list_events_pages_keep_after_seq_and_the_slice_filter(rig: Rig) -> None:
    for n in ("a", "b", "a", "b", "a"):
        rig.fake.record_event("controller", "admit", n, None, "x")
    pages: list[list[int]] = []
    token = ""
    while True:
        request = pb.ListEventsRequest(after_seq=1, slice="a", page_size=1, page_token=token)
        reply = rig.stub.ListEvents(request, metadata=AUTH, timeout=10)
        pages.append([e.seq for e in reply.events])
        token = reply.next_page_token
        if not token:
            break
    assert pages == [[3], [5]]
    full = rig.stub.ListEvents(pb.ListEventsRequest(page_size=2), metadata=AUTH, timeout=10)
    assert [e.seq for e in full.events] == [1, 2] and full.next_page_token
    for changed in (pb.ListEventsRequest(after_seq=2), pb.ListEventsRequest(slice="a")):
        changed.page_token = full.next_page_token
        err = _error(lambda c=changed: rig.stub.ListEvents(c, metadata=AUTH, timeout=10))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _details(err).startswith("page_token: was issued for other filters")
    # The older `limit` still works, with its range check, and is ignored beside page_size.
    assert [e.seq for e in rig.stub.ListEvents(pb.ListEventsRequest(limit=3), metadata=AUTH).events] == [
        1,
        2,
        3,
    ]
    both = rig.stub.ListEvents(pb.ListEventsRequest(limit=3, page_size=1), metadata=AUTH, timeout=10)
    assert [e.seq for e in both.events] == [1]
    big = rig.stub.ListEvents(pb.ListEventsRequest(page_size=10**6), metadata=AUTH, timeout=10)
    assert len(big.events) == 5 and big.next_page_token == ""


def test_the_client_joins_event_pages_up_to_its_limit(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(7):
        rig.fake.record_event("controller", "admit", f"s{i}", None, "x")
    monkeypatch.setattr(api_client, "PAGE_SIZE", 2)
    with rig.client() as client:
        assert [e.seq for e in client.events()] == [1, 2, 3, 4, 5, 6, 7]
        assert [e.seq for e in client.events(after_seq=2, limit=3)] == [3, 4, 5]
        assert [e.seq for e in client.events(slice_name="s6")] == [7]


def test_topology_status_pages_are_sites_then_down_links_then_links(rig: Rig) -> None:
    def page(size: int, token: str = "") -> pb.TopologyStatus:
        reply: pb.TopologyStatus = rig.stub.GetTopologyStatus(
            pb.GetTopologyStatusRequest(page_size=size, page_token=token), metadata=AUTH, timeout=10
        )
        return reply

    first = page(2)
    assert (first.name, [s.site for s in first.sites], len(first.link_utilisation)) == (
        "fake-city",
        ["cell-1", "cell-2"],
        0,
    )
    second = page(2, first.next_page_token)
    assert [s.site for s in second.sites] == ["edge-1"]
    assert [(u.link.a, u.link.b, u.reserved_kbps) for u in second.link_utilisation] == [
        ("cell-1", "edge-1", 5000)
    ]
    assert second.name == "fake-city" and second.next_page_token == ""
    whole = page(0)
    assert len(whole.sites) == 3 and len(whole.link_utilisation) == 1 and whole.next_page_token == ""
    # The pages are one snapshot: a change between pages aborts the read.
    first = page(1)
    rig.stub.DrainSite(pb.DrainSiteRequest(site="edge-1"), metadata=AUTH, timeout=10)
    err = _error(lambda: page(1, first.next_page_token))
    assert err.code() == grpc.StatusCode.ABORTED
    assert "read the topology status again from the first page" in _details(err)


class ChangingService(operator_fake.FakeService):
    """Drains a site while the second topology page is read, once."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def topology_status(self) -> Any:
        self.reads += 1
        if self.reads == 2:
            self.drain("edge-1", "operator:bob")
        return super().topology_status()


def test_the_client_joins_status_pages_and_reads_again_after_a_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api_client, "PAGE_SIZE", 1)
    service = ChangingService()
    r = Rig(service, FakeDirectory(AGENTS))
    try:
        with r.client() as client:
            status = client.topology_status()
        assert [s.site for s in status.sites] == ["cell-1", "cell-2", "edge-1"]
        assert [s.site for s in status.sites if s.drained] == ["edge-1"]  # the state after the change
        assert len(status.link_utilisation) == 1
        assert service.reads > 4  # the first read was cut short and started again
    finally:
        r.close()


def test_the_client_reads_every_slice_page(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_client, "SLICE_PAGE_SIZE", 2)
    manifests = [pb.Manifest(source=f"{n}.yaml", content=SLICE % n) for n in ("c", "a", "e", "b", "d")]
    rig.stub.ApplySlices(pb.ApplySlicesRequest(manifests=manifests), metadata=AUTH, timeout=10)
    with rig.client() as client:
        assert [s.name for s in client.list_slices()] == ["a", "b", "c", "d", "e"]


# ---- the real service -----------------------------------------------------------------------


def test_a_city_status_read_in_pages_is_the_whole_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real service on a real SQLite store, a 600-cell city with loaded links: the client's
    joined pages equal the status in one message, and no page needed a raised message limit."""
    topology = Topology.from_file(citygen.generate_city(600, seed=3))
    service, store = runtime_helpers.make_service(tmp_path, topology)
    documents = load_slices(
        "\n---\n".join(
            f"metadata: {{name: s{i}}}\nspec: {{kind: iot, coverage: {{zones: [{z}]}}}}"
            for i, z in enumerate(topology.zones()[:4])
        )
    )
    service.apply(documents, "test")
    server = api_server.serve(service, "127.0.0.1:0", auth.Authenticator({"alice": TOKEN}), None, dev=True)
    try:
        whole = messages.topology_status_message(service.topology_status())
        assert len(whole.link_utilisation) > 0 and len(whole.sites) > 5 * 97  # many pages
        monkeypatch.setattr(api_client, "PAGE_SIZE", 97)
        with api_client.ApiClient(server.address, TOKEN, timeout_s=20) as client:
            assert client.topology_status() == whole
            assert [s.name for s in client.list_slices()] == ["s0", "s1", "s2", "s3"]
    finally:
        server.stop(0)
        store.close()
