"""Topology in the operator API: GetTopologyStatus (paged, one snapshot), DrainSite,
UndrainSite, CordonSite, UncordonSite, GetTopology and WhatIf, on a
:class:`controller.api.ports.TopologyPort`."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import grpc

from controller.api import messages, paging, ports, reports, servicing
from controller.core.topology import LinkKey, link_key
from controller.runtime import service as service_mod
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors

TOPOLOGY_PAGES = paging.Limits(default=1000, maximum=10_000)


class TopologyMethods(servicing.ServicerBase):
    _topology: ports.TopologyPort

    @servicing.unary
    def GetTopologyStatus(
        self, request: pb.GetTopologyStatusRequest, context: grpc.ServicerContext
    ) -> pb.TopologyStatus:
        size = TOPOLOGY_PAGES.size(request.page_size)
        status, revision = self._status_snapshot()
        start = 0
        if request.page_token:
            cursor = paging.decode(request.page_token, "GetTopologyStatus", {})
            if not isinstance(cursor, str) or not cursor.partition(":")[2].isdigit():
                raise errors.InvalidSpec("page_token: not a page token of GetTopologyStatus")
            issued, _, offset = cursor.partition(":")
            if issued != str(revision):
                raise servicing.Refused(
                    grpc.StatusCode.ABORTED,
                    "page_token: the controller's state changed since the first page; "
                    "read the topology status again from the first page",
                )
            start = int(offset)
        return status_page(status, revision, start, size)

    def _status_snapshot(self) -> tuple[service_mod.TopologyStatus, int]:
        """The status with the revision it belongs to (read again if a commit came between)."""
        for _ in range(5):
            before = self._topology.revision
            status = self._topology.topology_status()
            if self._topology.revision == before:
                return status, before
        raise servicing.Refused(
            grpc.StatusCode.UNAVAILABLE, "the controller's state keeps changing; try again"
        )

    @servicing.unary
    def DrainSite(self, request: pb.DrainSiteRequest, context: grpc.ServicerContext) -> pb.DrainSiteResponse:
        site, actor = servicing.required(request.site, "site"), self._actor(context)

        def do() -> pb.DrainSiteResponse:
            report = self._topology.drain_report(site, actor)
            return pb.DrainSiteResponse(
                moved_slices=report.moved,
                moves=[
                    pb.SliceMove(slice=m.slice, outcome=m.outcome, message=m.message) for m in report.moves
                ],
                already_drained=report.already_drained,
            )

        return self.requests.run("DrainSite", request, do)

    @servicing.unary
    def UndrainSite(
        self, request: pb.UndrainSiteRequest, context: grpc.ServicerContext
    ) -> pb.UndrainSiteResponse:
        site, actor = servicing.required(request.site, "site"), self._actor(context)

        def do() -> pb.UndrainSiteResponse:
            return pb.UndrainSiteResponse(moved_slices=self._topology.undrain(site, actor))

        return self.requests.run("UndrainSite", request, do)

    @servicing.unary
    def CordonSite(
        self, request: pb.CordonSiteRequest, context: grpc.ServicerContext
    ) -> pb.CordonSiteResponse:
        site, actor = servicing.required(request.site, "site"), self._actor(context)

        def do() -> pb.CordonSiteResponse:
            changed, on_site = self._topology.cordon(site, actor)
            return pb.CordonSiteResponse(changed=changed, slices_on_site=on_site)

        return self.requests.run("CordonSite", request, do)

    @servicing.unary
    def UncordonSite(
        self, request: pb.UncordonSiteRequest, context: grpc.ServicerContext
    ) -> pb.UncordonSiteResponse:
        site, actor = servicing.required(request.site, "site"), self._actor(context)

        def do() -> pb.UncordonSiteResponse:
            return pb.UncordonSiteResponse(changed=self._topology.uncordon(site, actor))

        return self.requests.run("UncordonSite", request, do)

    @servicing.unary
    def GetTopology(self, request: pb.GetTopologyRequest, context: grpc.ServicerContext) -> pb.TopologyFile:
        source = self._topology.topology_file()
        text = json.dumps(source.to_wire(), separators=(",", ":"))
        return pb.TopologyFile(
            name=source.name,
            fingerprint=self._topology.topology().fingerprint,
            content_gzip=gzip.compress(text.encode(), compresslevel=6, mtime=0),
        )

    @servicing.unary
    def WhatIf(self, request: pb.WhatIfRequest, context: grpc.ServicerContext) -> pb.WhatIfResponse:
        sites = [servicing.required(s, f"fail_sites[{i}]") for i, s in enumerate(request.fail_sites)]
        links: list[LinkKey] = []
        for i, link in enumerate(request.fail_links):
            if not link.a or not link.b:
                raise errors.InvalidSpec(f"fail_links[{i}]: needs both a and b")
            links.append(link_key(link.a, link.b))
        if not sites and not links:
            raise errors.InvalidSpec("fail_sites, fail_links: give at least one site or link to fail")
        return pb.WhatIfResponse(report=reports.what_if_message(self._topology.what_if(sites, links)))


def status_page(
    status: service_mod.TopologyStatus, revision: int, start: int, size: int
) -> pb.TopologyStatus:
    """Entries ``start``.. of the sequence sites, down links, link utilisation (one page)."""
    sites, down, loaded = status.sites, status.down_links, status.link_utilisation
    total = len(sites) + len(down) + len(loaded)
    if start > total:
        raise errors.InvalidSpec("page_token: not a page token of GetTopologyStatus")

    def entries() -> Iterator[pb.SiteStatus | pb.Link | pb.LinkUtilisation]:
        for i in range(start, total):
            if i < len(sites):
                yield messages.site_status_message(sites[i])
            elif i < len(sites) + len(down):
                yield messages.link_message(down[i - len(sites)])
            else:
                yield messages.link_utilisation_message(loaded[i - len(sites) - len(down)])

    page = paging.fill(entries(), size, lambda m: m.ByteSize())
    out = pb.TopologyStatus(name=status.name)
    for m in page.items:
        if isinstance(m, pb.SiteStatus):
            out.sites.append(m)
        elif isinstance(m, pb.Link):
            out.down_links.append(m)
        else:
            out.link_utilisation.append(m)
    if page.more:
        out.next_page_token = paging.encode("GetTopologyStatus", {}, f"{revision}:{start + len(page.items)}")
    return out
