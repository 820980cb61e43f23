"""The audit trail in the operator API: ListEvents and WatchEvents, on a
:class:`controller.api.ports.EventPort`."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc

from controller.api import messages, paging, ports, servicing
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors

EVENT_PAGE = 1000
MAX_EVENT_LIMIT = 10_000
EVENT_PAGES = paging.Limits(default=EVENT_PAGE, maximum=MAX_EVENT_LIMIT)


class EventMethods(servicing.ServicerBase):
    _events: ports.EventPort
    _stopping: threading.Event  # set when the server stops: watches end
    _poll_s: float
    # Each watch holds a worker thread; at most this many at once.
    _watch_slots: threading.BoundedSemaphore
    _max_watches: int

    @servicing.unary
    def ListEvents(
        self, request: pb.ListEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListEventsResponse:
        if request.page_size:
            size = EVENT_PAGES.size(request.page_size)
        else:  # the older `limit`, with its own range check
            size = request.limit or EVENT_PAGE
            if not 1 <= size <= MAX_EVENT_LIMIT:
                raise errors.InvalidSpec(f"limit: {size} is out of range (1..{MAX_EVENT_LIMIT})")
        if request.after_seq < 0:
            raise errors.InvalidSpec(f"after_seq: {request.after_seq} is negative")
        slice_name = servicing.slice_name(request.slice) if request.slice else None
        filters: dict[str, paging.Scalar] = {"after_seq": request.after_seq, "slice": request.slice}
        after = request.after_seq
        if request.page_token:
            cursor = paging.decode(request.page_token, "ListEvents", filters)
            if not isinstance(cursor, int) or cursor < after:
                raise errors.InvalidSpec("page_token: not a page token of ListEvents for this after_seq")
            after = cursor
        # One more than a page: whether it exists says if there is a next page.
        events = self._events.events(after_seq=after, limit=size + 1, slice_name=slice_name)
        page = paging.fill((messages.event_message(e) for e in events), size, messages.byte_size)
        token = paging.encode("ListEvents", filters, page.items[-1].seq) if page.more else ""
        return pb.ListEventsResponse(events=page.items, next_page_token=token)

    @servicing.streaming
    def WatchEvents(
        self, request: pb.WatchEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Event]:
        if request.after_seq < 0:
            raise errors.InvalidSpec(f"after_seq: {request.after_seq} is negative")
        slice_name = servicing.slice_name(request.slice) if request.slice else None
        # Each watch holds a worker thread; cap them so watches cannot starve ordinary calls.
        if not self._watch_slots.acquire(blocking=False):
            raise servicing.Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many event watches open (at most {self._max_watches}); try again later",
            )
        try:
            after = request.after_seq
            while True:  # the backlog, page by page
                page = self._events.events(after_seq=after, limit=EVENT_PAGE, slice_name=slice_name)
                for event in page:
                    after = max(after, event.seq)
                    yield messages.event_message(event)
                if len(page) < EVENT_PAGE:
                    break
            while context.is_active() and not self._stopping.is_set():
                for event in self._events.wait_events(after, timeout_s=self._poll_s):
                    after = max(after, event.seq)
                    if slice_name is None or event.slice == slice_name:
                        yield messages.event_message(event)
            if self._stopping.is_set():
                raise servicing.Refused(
                    grpc.StatusCode.UNAVAILABLE, "the controller is shutting down; watch again to resume"
                )
        finally:
            self._watch_slots.release()
