"""The demo's booking step: a city agency books a slice through the CAMARA Network Slice Booking
API (real HTTP, httpx) for a window a few seconds ahead, and the demo shows it scheduled,
activated and expired in ``slicectl``'s words, the audit events with the tenant as their actor,
and the CloudEvents a local sink received.

Everything is the demo controller's own: the booking API attached by
:class:`controller.cli.companions.Companions`, its client registry over the controller's state
file (what ``slicectl booking client add`` writes), and the outbox the notifier delivers from
(:func:`controller.booking.notifier.deliveries`, the operator's view).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import httpx

from controller.api.client import ApiClient
from controller.booking import notifier
from controller.booking.clients import ClientRegistry
from controller.booking.service import slice_name
from controller.booking.settings import BookingSettings
from controller.core.topology import Topology
from controller.runtime.store import Store
from protos.edgeslice.operator.v1 import operator_pb2 as pb
from slices import errors

Echo = Callable[[str], None]

API = "/network-slice-booking/vwip"
TENANT = "events-office"
CORRELATOR = "demo-booking-1"
#: The window opens this many seconds after the request (at least; rounded up to a whole second)
#: and lasts this long: the reconcile loop looks every second whether a window is due.
LEAD_S = 2.0
WINDOW_S = 3.0
#: How long after the window's end the demo waits for the expiry, then for the notifications.
SETTLE_S = 10.0
POLL_S = 0.1
HTTP_TIMEOUT_S = 10.0
#: The booking's maxNumOfDevices (the spec allows at most 20) and the visitors who come.
DEVICES = 20
VISITORS = 12


def settings() -> BookingSettings:
    """The demo's booking API: loopback, dev mode, sinks allowed on 127.0.0.1 only."""
    return BookingSettings("127.0.0.1:0", dev=True, sink_hosts=("127.0.0.1",))


@dataclass(frozen=True)
class Received:
    """One CloudEvent as the sink received it."""

    event_id: str
    type: str
    source: str
    slice_id: str
    bearer: bool  # it came with the sink credential as bearer token


class Sink:
    """A local HTTP sink (the agency's webhook): records every CloudEvent POSTed to it, answers 204."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.received: list[Received] = []
        self.token = "sink-token-of-the-events-office"
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                event = Received(
                    str(body.get("id", "")),
                    str(body.get("type", "")),
                    str(body.get("source", "")),
                    str(body.get("data", {}).get("sliceId", "")),
                    self.headers.get("Authorization") == f"Bearer {sink.token}",
                )
                with sink._lock:
                    sink.received.append(event)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self._server.server_address[1]}/events"
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-sink", daemon=True)
        self._thread.start()

    def events(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class BookingOutcome:
    """What the booking step saw."""

    slice_id: str = ""
    slice: str = ""  # the NetworkSlice the booking is
    created: int = 0  # the POST's status code
    deleted: int = 0  # the DELETE's status code
    states: list[str] = field(default_factory=list)  # the slice's states, each change once, in order
    actors: dict[str, str] = field(default_factory=dict)  # audit action -> actor
    delivered: list[str] = field(default_factory=list)  # statuses of the delivered notifications
    received: list[tuple[str, str]] = field(default_factory=list)  # (CloudEvent type, status) at the sink


def _hm(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S")


def _request(
    city: Topology, zone_cells: list[str], start: datetime, end: datetime, sink: Sink
) -> dict[str, Any]:
    cell = city.sites[zone_cells[0]]
    return {
        "serviceTime": {"startDate": start.isoformat(), "endDate": end.isoformat()},
        "serviceArea": {
            "areaType": "CIRCLE",
            "center": {"latitude": cell.lat, "longitude": cell.lon},
            "radius": 50,
        },
        "sliceQosProfile": {
            "maxNumOfDevices": DEVICES,
            "downStreamRatePerDevice": {"value": 2, "unit": "Mbps"},
            "upStreamRatePerDevice": {"value": 1, "unit": "Mbps"},
            "downStreamDelayBudget": {"value": 20, "unit": "Milliseconds"},
            "upStreamDelayBudget": {"value": 20, "unit": "Milliseconds"},
        },
        "sink": sink.url,
        "sinkCredential": {
            "credentialType": "ACCESSTOKEN",
            "accessToken": sink.token,
            "accessTokenExpiresUtc": (end + timedelta(hours=1)).isoformat(),
            "accessTokenType": "bearer",
        },
    }


def _state_line(s: pb.Slice) -> str:
    where = ""
    if s.HasField("placement"):
        edges = ", ".join(e.site for e in s.placement.edges)
        where = f" on {edges} ({s.placement.cells_served} cells)"
    why = f" - {s.reason}: {s.message}" if s.reason else ""
    return f"{s.state:<10}{where}{why}"


def _current(client: ApiClient, name: str) -> pb.Slice | None:
    try:
        return client.get(name)
    except errors.NotFound:
        return None


def book_a_window(
    echo: Echo,
    client: ApiClient,
    city: Topology,
    cells: list[str],
    base_url: str,
    store: Store,
    title: str,
    crowd: Callable[[str, int], None] | None = None,
) -> BookingOutcome:
    """Register a tenant, get it a token, book a slice around the first of ``cells`` for a short
    window with a local sink, watch it activate and expire, delete it and show the trail and the
    notifications. Every wait is bounded (the window's end plus :data:`SETTLE_S`).

    ``crowd(slice, devices)``, when given, makes :data:`VISITORS` devices use the booked slice
    (the simulated cells' traffic), before its window opens."""
    out = BookingOutcome()
    with closing(Sink()) as sink:
        echo(f"{title} through the CAMARA Network Slice Booking API on {base_url}:")
        tenant, secret = ClientRegistry(store).add(TENANT, "create,get,delete")
        echo(
            f"    slicectl booking client add {TENANT} --scopes create,get,delete -> client_id {tenant.client_id}"
        )
        with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as http:
            r = http.post(
                "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(tenant.client_id, secret)
            )
            if r.status_code != 200:
                raise errors.Unavailable(
                    f"booking API: POST /oauth2/token answered {r.status_code}: {r.text}"
                )
            grant = r.json()
            echo(
                f"    POST /oauth2/token (client credentials, HTTP Basic) -> {r.status_code}, "
                f"a {grant['token_type']} token for {grant.get('scope', '')} ({grant['expires_in']} s)"
            )
            headers = {"Authorization": f"Bearer {grant['access_token']}", "x-correlator": CORRELATOR}
            now = datetime.now(UTC)
            start = (now + timedelta(seconds=LEAD_S + 1)).replace(microsecond=0)
            end = start + timedelta(seconds=WINDOW_S)
            body = _request(city, cells, start, end, sink)
            qos = body["sliceQosProfile"]
            echo(
                f"    POST {API}/slices  x-correlator: {CORRELATOR}\n"
                f"      serviceArea: a {body['serviceArea']['radius']} m circle around {cells[0]}; "
                f"serviceTime: {_hm(start)} to {_hm(end)} UTC\n"
                f"      sliceQosProfile: {qos['maxNumOfDevices']} devices x "
                f"{qos['downStreamRatePerDevice']['value']}/{qos['upStreamRatePerDevice']['value']} Mbps down/up, "
                f"{qos['downStreamDelayBudget']['value']} ms delay budget; sink: {sink.url}"
            )
            r = http.post(f"{API}/slices", json=body, headers=headers)
            out.created = r.status_code
            if r.status_code != 201:  # the demo's booking always fits: a refusal is a fault
                raise errors.Unavailable(f"booking API: POST {API}/slices answered {r.status_code}: {r.text}")
            out.slice_id = str(r.json()["sliceId"])
            out.slice = slice_name(tenant.name, UUID(out.slice_id))
            echo(
                f"    -> 201 Created, sliceId {out.slice_id} (x-correlator {r.headers.get('x-correlator')}); "
                f"the operator sees it as slice {out.slice}"
            )
            if crowd is not None:
                crowd(out.slice, VISITORS)
            _watch(echo, client, out, end, now)
            r = http.delete(f"{API}/slices/{out.slice_id}", headers=headers)
            out.deleted = r.status_code
            echo(f"    DELETE {API}/slices/{out.slice_id} -> {r.status_code}")
        _trail(echo, client, out)
        _notifications(echo, store, sink, out, time.monotonic() + SETTLE_S)
    return out


def _watch(echo: Echo, client: ApiClient, out: BookingOutcome, end: datetime, t0: datetime) -> None:
    """Print each change of the slice's state (as ``slicectl slice get`` shows it) until it expires."""
    echo(f"    slicectl slice get {out.slice}, at each change:")
    deadline = time.monotonic() + (end - datetime.now(UTC)).total_seconds() + SETTLE_S
    last: tuple[str, str] | None = None
    while True:
        s = _current(client, out.slice)
        if s is not None and (s.state, s.reason) != last:
            last = (s.state, s.reason)
            if not out.states or out.states[-1] != s.state:
                out.states.append(s.state)
            elapsed = (datetime.now(UTC) - t0).total_seconds()
            echo(f"      {_hm(datetime.now(UTC))} (+{elapsed:4.1f} s)  {_state_line(s)}")
        if (s is not None and s.state == "Expired") or time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    if not out.states or out.states[-1] != "Expired":
        echo(f"      not expired {SETTLE_S:g} s after its window's end")


def _trail(echo: Echo, client: ApiClient, out: BookingOutcome) -> None:
    events = client.events(slice_name=out.slice)
    echo(f"   Its audit trail ({len(events)} events):")
    for e in events:
        out.actors.setdefault(e.action, e.actor)
        echo(f"    #{e.seq:<3} {e.actor:<20} {e.action:<13} {e.message}")


def _notifications(echo: Echo, store: Store, sink: Sink, out: BookingOutcome, deadline: float) -> None:
    """Wait (bounded) until every notification of the booking left the outbox, then show what the
    sink received beside the operator's view of each delivery."""
    while True:
        rows = notifier.deliveries(store, out.slice_id)
        settled = all(d.state != notifier.PENDING for d in rows)
        if (settled and any(d.status == "deleted" for d in rows)) or time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    out.delivered = [d.status for d in rows if d.state == notifier.DELIVERED]
    by_id = {d.event_id: d for d in rows}
    received = [e for e in sink.events() if e.slice_id == out.slice_id]
    echo(f"   The sink {sink.url} received {len(received)} CloudEvents:")
    for e in received:
        d = by_id.get(e.event_id)
        status = d.status if d is not None else "?"
        out.received.append((e.type, status))
        how = f"{d.state} after {d.attempts} attempt{'s' if d.attempts != 1 else ''}" if d is not None else ""
        bearer = "bearer token" if e.bearer else "no bearer token"
        echo(f"    {e.type}  {status:<12} {how}, {bearer}")
    unsent = [d for d in rows if d.state != notifier.DELIVERED]
    for d in unsent:
        echo(f"    not delivered: {d.status} ({d.state}, {d.attempts} attempts: {d.last_error or 'pending'})")
