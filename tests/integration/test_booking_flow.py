"""A booking from end to end, all real: the controller process's wiring (SQLite state, reconcile
loop), the booking API on uvicorn over loopback, the client registry and signed tokens, httpx as
the agency's client and a local HTTP sink for the CloudEvents. A short real window: the slice is
booked, activates at its start, expires at its end, and the sink hears each change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.booking import notifier
from controller.booking.clients import ClientRegistry
from controller.booking.settings import BookingSettings
from controller.cli.companions import Companions
from controller.process.config import RuntimeConfig
from controller.process.endpoints import read_endpoints
from controller.process.wiring import Controller
from controller.runtime.service import ControllerService, SliceState
from tests.support.booking_rig import SINK_TOKEN, RecordingSink, slice_attributes
from tests.support.camara_conformance import camara_document
from tests.support.waiting import eventually

API = "/network-slice-booking/vwip"


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    with RecordingSink() as s:
        yield s


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Controller, Companions]]:
    parts = Companions(
        None, None, booking=BookingSettings("127.0.0.1:0", dev=True, sink_hosts=("127.0.0.1",))
    )
    config = RuntimeConfig(
        state_file=tmp_path / "edgeslice.db",
        state_dir=tmp_path / "state",
        listen="127.0.0.1:0",
        reconcile_interval_s=60,  # the loop must wake for the window's boundaries by itself
        environ={},
    )
    controller = Controller(config, attachments=parts.attachments())
    controller.start()
    try:
        yield controller, parts
    finally:
        controller.stop()


@pytest.fixture
def api() -> Iterator[httpx.Client]:
    """An HTTP client whose every exchange is checked against the CAMARA document."""
    spec = camara_document()

    def conforms(response: httpx.Response) -> None:
        response.read()
        spec.check(response)

    with httpx.Client(timeout=10, event_hooks={"response": [conforms]}) as client:
        yield client


def _token(base: str, client_id: str, secret: str, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    r = httpx.post(f"{base}/oauth2/token", data=data, auth=(client_id, secret), timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _booking(
    service: ControllerService,
    start: datetime,
    end: datetime,
    sink: str | None,
    devices: int = 5,
    mbps: tuple[float, float] = (2, 1),
) -> dict[str, Any]:
    cell = service.city().sites[service.city().cells[0]]
    return slice_attributes(
        start, end, center=(cell.lat, cell.lon), radius=50, devices=devices, mbps=mbps, sink=sink
    )


def test_a_booking_is_made_activates_expires_and_its_sink_hears_each_change(
    running: tuple[Controller, Companions], sink: RecordingSink, api: httpx.Client, tmp_path: Path
) -> None:
    controller, parts = running
    service = controller.service
    assert service is not None and parts.booking_api is not None
    base = read_endpoints(tmp_path / "state")["booking"]
    assert base == parts.booking_api.server.url
    registry = ClientRegistry(service.store)
    police, secret = registry.add("police", "create,get,delete")
    other, other_secret = registry.add("events-office", "create,get,delete")
    headers = {"Authorization": f"Bearer {_token(base, police.client_id, secret)}", "x-correlator": "c-1"}

    start = datetime.now(UTC) + timedelta(seconds=2)
    end = start + timedelta(seconds=3)
    r = api.post(
        f"{base}{API}/slices", json=_booking(service, start, end, sink.url()), headers=headers, timeout=10
    )
    assert r.status_code == 201, r.text
    assert r.headers["x-correlator"] == "c-1"
    info = r.json()
    assert "sinkCredential" not in info  # the sink's token is never echoed
    slice_id = info["sliceId"]
    [record] = [
        s
        for s in service.list_slices()
        if s.document.metadata.annotations.get("booking.edgeslice.io/slice-id") == slice_id
    ]
    assert record.state == SliceState.SCHEDULED
    assert record.document.metadata.labels["booking.edgeslice.io/tenant"] == "police"
    assert next(e.actor for e in service.events(slice_name=record.name)) == "tenant:police"

    got = api.get(f"{base}{API}/slices/{slice_id}", headers=headers, timeout=10)
    assert got.status_code == 200 and got.json()["sliceId"] == slice_id
    # Another tenant cannot tell it exists.
    other_headers = {"Authorization": f"Bearer {_token(base, other.client_id, other_secret)}"}
    hidden = api.get(f"{base}{API}/slices/{slice_id}", headers=other_headers, timeout=10)
    assert hidden.status_code == 404 and hidden.json()["code"] == "NOT_FOUND"
    assert api.delete(f"{base}{API}/slices/{slice_id}", headers=other_headers, timeout=10).status_code == 204
    assert service.get(record.name).state == SliceState.SCHEDULED  # untouched

    eventually(
        "the booking activates at its start",
        lambda: service.get(record.name).state in (SliceState.READY, SliceState.ADMITTED),
        timeout_s=10,
    )
    assert service.get(record.name).placement is not None
    eventually(
        "the booking expires at its end",
        lambda: service.get(record.name).state == SliceState.EXPIRED,
        timeout_s=10,
    )
    assert service.get(record.name).placement is None

    def statuses() -> list[str]:
        return [
            d.status for d in notifier.deliveries(service.store, slice_id) if d.state == notifier.DELIVERED
        ]

    eventually(
        "the sink heard created, scheduled, active, expired",
        lambda: statuses() == ["created", "scheduled", "active", "expired"],
        timeout_s=15,
    )
    for received in sink.received:
        event = received.json()
        assert received.headers["content-type"] == "application/cloudevents+json"
        assert received.headers["authorization"] == f"Bearer {SINK_TOKEN}"
        assert event["type"] == "org.camaraproject.network-slice-booking.v0.status-changed"
        assert event["source"] == f"{base}{API}"  # the API as bound, not its port 0
        assert event["data"]["sliceId"] == slice_id and "sinkCredential" not in event["data"]

    assert api.delete(f"{base}{API}/slices/{slice_id}", headers=headers, timeout=10).status_code == 204
    assert api.get(f"{base}{API}/slices/{slice_id}", headers=headers, timeout=10).status_code == 404
    assert api.delete(f"{base}{API}/slices/{slice_id}", headers=headers, timeout=10).status_code == 204


def test_a_booking_that_does_not_fit_is_refused_and_leaves_nothing(
    running: tuple[Controller, Companions], api: httpx.Client, tmp_path: Path
) -> None:
    controller, _ = running
    service = controller.service
    assert service is not None
    base = read_endpoints(tmp_path / "state")["booking"]
    tenant, secret = ClientRegistry(service.store).add("stadium", "create,get")
    headers = {"Authorization": f"Bearer {_token(base, tenant.client_id, secret)}"}
    start = datetime.now(UTC) + timedelta(days=3)
    body = _booking(service, start, start + timedelta(hours=2), None, devices=20, mbps=(1000, 1))
    # 20 Gbit/s in every cell
    before = (service.revision, len(service.list_slices()))
    r = api.post(f"{base}{API}/slices", json=body, headers=headers, timeout=10)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "NETWORK_SLICE_BOOKING.RESOURCES_INSUFFICIENT"
    assert "cell" in r.json()["message"] and "short by" in r.json()["message"], r.json()
    assert (service.revision, len(service.list_slices())) == before
    assert service.store.query("SELECT count(*) AS n FROM bookings")[0]["n"] == 0
