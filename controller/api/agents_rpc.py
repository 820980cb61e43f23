"""Site agents in the operator API: ListAgents and GetAgent, on the agent server's
:class:`controller.runtime.agent_view.AgentDirectory` (none when the controller runs without one)."""

from __future__ import annotations

import bisect

import grpc

from controller.api import messages, paging, servicing
from controller.runtime.agent_view import AgentDirectory, SessionState
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors

AGENT_PAGES = paging.Limits(default=1000, maximum=10_000)
NO_AGENTS = "this controller runs no agent server (it was started with --no-agents)"
AGENT_STATES = tuple(s.value for s in SessionState)


class AgentMethods(servicing.ServicerBase):
    _agents: AgentDirectory | None

    def _directory(self) -> AgentDirectory:
        if self._agents is None:
            raise servicing.Refused(grpc.StatusCode.FAILED_PRECONDITION, NO_AGENTS)
        return self._agents

    @servicing.unary
    def ListAgents(
        self, request: pb.ListAgentsRequest, context: grpc.ServicerContext
    ) -> pb.ListAgentsResponse:
        directory = self._directory()
        size = AGENT_PAGES.size(request.page_size)
        if request.state and request.state not in AGENT_STATES:
            raise errors.InvalidSpec(
                f"state: {request.state[:40]!r} is not a session state ({', '.join(AGENT_STATES)}, or empty)"
            )
        filters: dict[str, paging.Scalar] = {"state": request.state}
        after = str(paging.decode(request.page_token, "ListAgents", filters)) if request.page_token else None
        found = sorted(directory.agents(), key=lambda a: a.site)
        if request.state:
            found = [a for a in found if a.state.value == request.state]
        start = 0 if after is None else bisect.bisect_right([a.site for a in found], after)
        page = paging.fill((messages.agent_message(a) for a in found[start:]), size, messages.byte_size)
        token = paging.encode("ListAgents", filters, page.items[-1].site) if page.more else ""
        return pb.ListAgentsResponse(agents=page.items, next_page_token=token)

    @servicing.unary
    def GetAgent(self, request: pb.GetAgentRequest, context: grpc.ServicerContext) -> pb.Agent:
        directory = self._directory()
        site = servicing.required(request.site, "site")
        found = directory.agent(site)
        if found is None:
            raise errors.NotFound(f"site {site[:80]!r} is not in the topology")
        return messages.agent_message(found)
