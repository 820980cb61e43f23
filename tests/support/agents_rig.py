"""The operator API served over an in-memory service fake and a directory of agents at our own
interface (:class:`controller.runtime.agent_view.AgentDirectory`): the rig of the ListAgents /
GetAgent and pagination tests and of ``slicectl agent`` against a fake."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import grpc

from controller.api import auth
from controller.api import client as api_client
from controller.api import server as api_server
from controller.runtime.agent_view import AgentDirectory, AgentInfo, Refusal, SessionState
from tests.support import operator_fake
from tests.support.stubs import operator_stub

TOKEN = operator_fake.TOKEN
REFUSED_AT = datetime(2026, 12, 1, 20, 0, 5, tzinfo=UTC)


def info(site: str, state: SessionState = SessionState.CONNECTED, **changes: Any) -> AgentInfo:
    connected = state is SessionState.CONNECTED
    values: dict[str, Any] = {
        "site": site,
        "kind": "edge" if site.startswith("edge") else "cell",
        "state": state,
        "lease_expires_in_s": 2.5 if connected else None,
        "last_seen_s_ago": 0.5 if state is not SessionState.NEVER else None,
        "software_version": "ref-agent/1.2" if state is not SessionState.NEVER else "",
        "instance_id": f"inst-{site}" if state is not SessionState.NEVER else "",
        "desired_generation": 7,
        "acked_generation": 6,
        "last_refusal": None,
        "messages_per_s": 5.25,
        "rejections": 0,
        "epoch": "epoch-a",
    }
    values.update(changes)
    return AgentInfo(**values)


class FakeDirectory:
    """The agents of a fixed set of sites (an AgentDirectory at our own interface)."""

    def __init__(self, agents: Sequence[AgentInfo]) -> None:
        self.by_site = {a.site: a for a in agents}

    def agents(self) -> Sequence[AgentInfo]:
        return [self.by_site[s] for s in sorted(self.by_site)]

    def agent(self, site: str) -> AgentInfo | None:
        return self.by_site.get(site)


def _typed(directory: FakeDirectory) -> AgentDirectory:
    return directory  # mypy checks here that the fake implements the Protocol


REFUSAL = Refusal(
    generation=7, reason="BackendUnavailable", message="cannot write /etc/upf.conf", at=REFUSED_AT
)
AGENTS = [
    info("cell-1", acked_generation=7),
    info("cell-2", SessionState.NEVER, desired_generation=3, acked_generation=0, messages_per_s=0.0),
    info("edge-1", last_refusal=REFUSAL, rejections=2),
    info("edge-2", SessionState.DISCONNECTED, messages_per_s=0.0),
]


class Rig:
    def __init__(self, fake: operator_fake.FakeService, directory: FakeDirectory | None) -> None:
        self.fake = fake
        self.directory = directory
        self.server = api_server.serve(
            fake,
            "127.0.0.1:0",
            auth.Authenticator({"alice": TOKEN}),
            None,
            dev=True,
            agents=_typed(directory) if directory is not None else None,
        )
        self.channel = grpc.insecure_channel(self.server.address)
        self.stub = operator_stub(self.channel)

    def client(self) -> api_client.ApiClient:
        return api_client.ApiClient(self.server.address, TOKEN, timeout_s=10)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(0)
