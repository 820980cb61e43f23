"""The slice methods of the operator API: ApplySlices, GetSlice, ListSlices, DeleteSlice and
ExplainSlice, on a :class:`controller.api.ports.SlicePort`."""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence

import grpc

from controller.api import messages, paging, ports, reports, servicing
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors, intent

# Page sizes (AIP-158), as documented in operator.proto; every page also ends at paging.PAGE_BYTES.
SLICE_PAGES = paging.Limits(default=100, maximum=1000)


class SliceMethods(servicing.ServicerBase):
    _slices: ports.SlicePort
    # Set where intents come from elsewhere (NetworkSlice objects): a write here would be
    # overwritten by the next sync, so it is refused rather than silently lost.
    _slice_writes_refused: str | None

    def _refuse_slice_writes(self) -> None:
        if self._slice_writes_refused is not None:
            raise servicing.Refused(grpc.StatusCode.FAILED_PRECONDITION, self._slice_writes_refused)

    @servicing.unary
    def ApplySlices(
        self, request: pb.ApplySlicesRequest, context: grpc.ServicerContext
    ) -> pb.ApplySlicesResponse:
        if not request.dry_run:
            self._refuse_slice_writes()
        actor = self._actor(context)

        def do() -> pb.ApplySlicesResponse:
            documents = documents_of(request.manifests)
            if request.dry_run:
                results = self._slices.apply(documents, actor, dry_run=True)
            else:
                results = self._slices.apply(documents, actor)
            return pb.ApplySlicesResponse(
                results=[messages.apply_result_message(r) for r in results], dry_run=request.dry_run
            )

        if request.dry_run:
            return do()  # nothing to repeat or to protect from a repeat
        return self.requests.run("ApplySlices", request, do)

    @servicing.unary
    def GetSlice(self, request: pb.GetSliceRequest, context: grpc.ServicerContext) -> pb.Slice:
        return messages.slice_message(self._slices.get(servicing.slice_name(request.name)))

    @servicing.unary
    def ListSlices(
        self, request: pb.ListSlicesRequest, context: grpc.ServicerContext
    ) -> pb.ListSlicesResponse:
        size = SLICE_PAGES.size(request.page_size)
        after = str(paging.decode(request.page_token, "ListSlices", {})) if request.page_token else None
        records = sorted(self._slices.list_slices(), key=lambda r: r.name)
        start = 0 if after is None else bisect.bisect_right([r.name for r in records], after)
        page = paging.fill((messages.slice_message(r) for r in records[start:]), size, messages.byte_size)
        token = paging.encode("ListSlices", {}, page.items[-1].name) if page.more else ""
        return pb.ListSlicesResponse(slices=page.items, next_page_token=token)

    @servicing.unary
    def DeleteSlice(
        self, request: pb.DeleteSliceRequest, context: grpc.ServicerContext
    ) -> pb.DeleteSliceResponse:
        self._refuse_slice_writes()
        actor = self._actor(context)

        def do() -> pb.DeleteSliceResponse:
            self._slices.delete(servicing.slice_name(request.name), actor)
            return pb.DeleteSliceResponse()

        return self.requests.run("DeleteSlice", request, do)

    @servicing.unary
    def ExplainSlice(
        self, request: pb.ExplainSliceRequest, context: grpc.ServicerContext
    ) -> pb.ExplainSliceResponse:
        report = self._slices.explain(servicing.slice_name(request.name))
        return pb.ExplainSliceResponse(explanation=reports.explanation_message(report))


def _load_manifest(content: str, where: str) -> list[intent.NetworkSlice]:
    """One JSON object is parsed as JSON (a program's usual form, and far faster than the YAML
    parser); anything else as a YAML stream. Both end in :func:`slices.intent.parse_slice`."""
    if content.lstrip().startswith("{"):
        try:
            data = json.loads(content)
        except json.JSONDecodeError:
            pass  # not JSON after all (YAML flow style): the YAML parser reports it precisely
        else:
            return [intent.parse_slice(data, f"{where}[doc 1]")]
    return intent.load_slices(content, where)


def note_names(docs: Sequence[intent.NetworkSlice], where: str, seen: dict[str, str]) -> None:
    """Record in ``seen`` (slice name → where it is defined) the names of the documents of manifest
    ``where``; refuse a manifest without any, or one defining a slice an earlier one defines."""
    if not docs:
        raise errors.InvalidSpec(f"{where}: no NetworkSlice documents in it")
    for doc in docs:
        if doc.name in seen:
            raise errors.InvalidSpec(
                f"{where}: metadata.name: slice {doc.name!r} is also defined in {seen[doc.name]}"
            )
        seen[doc.name] = where


def documents_of(manifests: Sequence[pb.Manifest]) -> list[intent.NetworkSlice]:
    """Validate every manifest (one path: :func:`slices.intent.load_slices`); all or nothing."""
    documents: list[intent.NetworkSlice] = []
    seen: dict[str, str] = {}
    for i, manifest in enumerate(manifests):
        where = manifest.source or f"manifests[{i}]"
        loaded = _load_manifest(manifest.content, where)
        note_names(loaded, where, seen)
        documents.extend(loaded)
    if not documents:
        raise errors.InvalidSpec("manifests: none given")
    return documents
