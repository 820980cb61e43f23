"""What the operator sees of the bookings, as real ``slicectl`` subprocesses on a real state file:
``booking list`` by tenant and ``booking deliveries`` by booking and state, offline (bookings made
by the real BookingService and notifier, time from a fake clock), and over a running ``slicectl
controller run --booking-listen``: each booking a NetworkSlice in ``slice list`` with its tenant,
selectable by the tenant label, the tenant the actor in the audit trail, Scheduled then Expired."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.booking import camara, notifier, ports
from controller.booking.clients import ClientRegistry
from controller.booking.service import BookingService
from controller.booking.sinks import SinkPolicy
from controller.core import topology_file as tf
from controller.process.endpoints import read_endpoints
from tests.support import cityfixtures as cf
from tests.support.booking_rig import (
    SINK_TOKEN,
    RecordingSink,
    ok,
    one_line_error,
    slice_attributes,
    slicectl,
)
from tests.support.clock import FakeClock
from tests.support.controller_process import ControllerProcess, start_controller
from tests.support.runtime_helpers import make_service
from tests.support.waiting import eventually

API = "/network-slice-booking/vwip"
T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def sinks() -> Iterator[dict[int, RecordingSink]]:
    made = {status: RecordingSink(status) for status in (204, 400, 503)}
    yield made
    for sink in made.values():
        sink.close()


def booking_body(
    lat: float, lon: float, start: datetime, end: datetime | None, sink: str | None = None
) -> dict[str, Any]:
    return slice_attributes(start, end, center=(lat, lon), radius=50, devices=4, mbps=(2, 1), sink=sink)


# -- offline, on the state file ---------------------------------------------------------------------


@pytest.fixture
def booked(tmp_path: Path, sinks: dict[int, RecordingSink]) -> tuple[Path, dict[str, str]]:
    """A state file with three bookings of two tenants, the first of them over: police's
    ``match`` (expired, notified to a sink that takes it), events-office's ``market`` (scheduled,
    its sink refuses) and police's ``parade`` (scheduled, its sink answers 503: retried)."""
    clock = FakeClock(T0)
    svc, store = make_service(tmp_path, clock=clock)
    try:
        registry = ClientRegistry(store, clock)
        police, _ = registry.add("police", "create,get,delete")
        events, _ = registry.add("events-office", "create,get,delete")
        service = BookingService(svc, store, clock, sinks=SinkPolicy(["127.0.0.1"], dev=True))

        def book(tenant: ports.Tenant, start: datetime, end: datetime | None, sink: RecordingSink) -> str:
            attributes = camara.SliceAttributes.model_validate(
                booking_body(48.85, 2.35, start, end, sink.url())
            )
            clock.advance(1)
            return str(service.create(tenant, attributes).sliceId)

        ids = {
            "match": book(police, T0 + HOUR, T0 + 2 * HOUR, sinks[204]),
            "market": book(events, T0 + 24 * HOUR, T0 + 26 * HOUR, sinks[400]),
            "parade": book(police, T0 + 48 * HOUR, None, sinks[503]),
        }
        delivery = notifier.Notifier(store, SinkPolicy(["127.0.0.1"], dev=True), clock, verify=False)
        try:
            assert delivery.deliver_due() == 3
        finally:
            delivery.stop()
        clock.advance(HOUR.total_seconds())
        svc.reconcile()
        clock.advance(HOUR.total_seconds())
        svc.reconcile()
    finally:
        store.close()
    return tmp_path / "state.db", ids


def test_the_operator_lists_bookings_with_their_tenant_and_state(booked: tuple[Path, dict[str, str]]) -> None:
    state, ids = booked
    where = ("--state", str(state))
    everything = json.loads(ok("booking", "list", *where, "-o", "json"))
    assert [(b["sliceId"], b["tenant"], b["state"]) for b in everything] == [
        (ids["match"], "police", "Expired"),
        (ids["market"], "events-office", "Scheduled"),
        (ids["parade"], "police", "Scheduled"),
    ]
    assert everything[0]["slice"].startswith("bk-police-")
    assert everything[0]["start"].startswith("2026-12-05T09:00:00") and everything[2]["end"] is None
    assert all(b["reservedMbps"] > 0 and b["sink"].startswith("http://127.0.0.1:") for b in everything)

    table = ok("booking", "list", "--tenant", "police", *where).splitlines()
    assert table[0].split() == ["SLICE-ID", "TENANT", "SLICE", "STATE", "START", "END", "MBPS", "SINK"]
    rows = [line.split() for line in table[1:]]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        (ids["match"], "police", "Expired"),
        (ids["parade"], "police", "Scheduled"),
    ]
    assert rows[0][4:6] == ["2026-12-05T09:00:00+00:00", "2026-12-05T10:00:00+00:00"] and rows[1][5] == "-"
    assert SINK_TOKEN not in ok("booking", "list", *where, "-o", "yaml")  # the credential stays put

    assert ok("booking", "list", "--tenant", "fire-brigade", *where) == (
        "no bookings of tenant fire-brigade (no booking client has that name)\n"
    )
    assert json.loads(ok("booking", "list", "--tenant", "fire-brigade", *where, "-o", "json")) == []
    one_line_error(
        slicectl("booking", "list", "--tenant", "Fire_Brigade", *where), 2, "--tenant", "DNS label"
    )
    one_line_error(
        slicectl("booking", "list", "--state", str(state.parent / "missing.db")),
        6,
        "missing.db",
        "does not exist",
    )


def test_the_operator_sees_how_each_notification_was_delivered(booked: tuple[Path, dict[str, str]]) -> None:
    state, ids = booked
    where = ("--state", str(state))
    every = json.loads(ok("booking", "deliveries", *where, "-o", "json"))
    assert [(d["sliceId"], d["status"], d["state"], d["attempts"]) for d in every] == [
        (ids["match"], "created", "delivered", 1),
        (ids["market"], "created", "failed", 1),
        (ids["parade"], "created", "pending", 1),
    ]
    delivered, failed, pending = every
    assert delivered["deliveredAt"] and delivered["lastError"] is None
    assert "400" in failed["lastError"] and failed["deliveredAt"] is None
    assert "503" in pending["lastError"] and pending["nextAttemptAt"] > pending["createdAt"]

    [only] = json.loads(ok("booking", "deliveries", "--delivery-state", "failed", *where, "-o", "json"))
    assert only["sliceId"] == ids["market"]
    [mine] = json.loads(ok("booking", "deliveries", "--slice-id", ids["parade"], *where, "-o", "json"))
    assert mine["state"] == "pending"
    table = ok("booking", "deliveries", "--delivery-state", "pending", *where).splitlines()
    assert table[0].split()[:7] == ["SEQ", "CREATED", "SLICE-ID", "STATUS", "STATE", "ATTEMPTS", "NEXT/DONE"]
    assert len(table) == 2 and ids["parade"] in table[1] and " next 2026-12-05T08:00" in table[1]
    # --limit counts the notifications that match, the newest of them.
    [newest_done] = json.loads(
        ok("booking", "deliveries", "--delivery-state", "delivered", "--limit", "1", *where, "-o", "json")
    )
    assert newest_done["sliceId"] == ids["match"]

    assert ok("booking", "deliveries", "--delivery-state", "failed", "--slice-id", ids["parade"], *where) == (
        f"no failed notifications of booking {ids['parade']}\n"
    )
    one_line_error(
        slicectl("booking", "deliveries", "--slice-id", "match", *where), 2, "--slice-id", "sliceId"
    )
    one_line_error(
        slicectl("booking", "deliveries", "--delivery-state", "lost", *where), 2, "--delivery-state", "lost"
    )


# -- over a running controller ---------------------------------------------------------------------


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ControllerProcess]:
    city = tmp_path / "city.yaml"
    tf.write_topology_file(cf.two_edge_file(cells=2, radio_mbps=1000), city)
    process = start_controller(
        tmp_path, city, ("--booking-listen", "127.0.0.1:0", "--booking-sink-hosts", "127.0.0.1")
    )
    try:
        yield process
    finally:
        process.terminate()


def _token(base: str, client: dict[str, Any]) -> str:
    r = httpx.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_every_booking_is_a_slice_the_operator_sees_with_its_tenant(
    controller: ControllerProcess, tmp_path: Path, sinks: dict[int, RecordingSink]
) -> None:
    where = ("--state", str(tmp_path / "edgeslice.db"))
    online = {"EDGESLICE_SERVER": controller.address, "EDGESLICE_TOKEN": controller.token}
    base = eventually("the booking API's address", lambda: read_endpoints(tmp_path / "state").get("booking"))
    police = json.loads(
        ok("booking", "client", "add", "police", "--scopes", "create,get", *where, "-o", "json")
    )
    events = json.loads(
        ok("booking", "client", "add", "events-office", "--scopes", "create", *where, "-o", "json")
    )

    def book(client: dict[str, Any], start: datetime, end: datetime | None, sink: str | None = None) -> str:
        r = httpx.post(
            f"{base}{API}/slices",
            json=booking_body(0.0, 0.0, start, end, sink),
            headers={"Authorization": f"Bearer {_token(base, client)}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["sliceId"])

    now = datetime.now(UTC)
    short = book(police, now + timedelta(seconds=1), now + timedelta(seconds=3), sinks[204].url())
    later = book(police, now + 72 * HOUR, now + 74 * HOUR)
    festival = book(events, now + 96 * HOUR, None)
    ok("slice", "apply", "-f", str(_operator_slice(tmp_path)), env=online)

    by_id = {b["sliceId"]: b for b in json.loads(ok("booking", "list", *where, "-o", "json"))}
    names = {
        key: by_id[i]["slice"] for key, i in (("short", short), ("later", later), ("festival", festival))
    }

    wide = ok("slice", "list", "-o", "wide", env=online).splitlines()
    headers = wide[0].split()
    assert "TENANT" in headers and "WINDOW" in headers
    rows = {line.split()[0]: dict(zip(headers, line.split(), strict=True)) for line in wide[1:]}
    assert rows[names["later"]]["TENANT"] == "police" and rows[names["festival"]]["TENANT"] == "events-office"
    assert rows["cameras"]["TENANT"] == "-" and rows["cameras"]["WINDOW"] == "-"
    assert rows[names["later"]]["STATE"] == "Scheduled"
    assert rows[names["festival"]]["WINDOW"].endswith("/..")

    selected = ok("slice", "list", "-l", f"{ports.TENANT_LABEL}=police", "-o", "name", env=online).split()
    assert sorted(selected) == sorted(f"slice/{names[k]}" for k in ("short", "later"))
    not_police = ok("slice", "list", "-l", f"{ports.TENANT_LABEL}!=police", "-o", "name", env=online).split()
    assert sorted(not_police) == sorted([f"slice/{names['festival']}", "slice/cameras"])

    got = ok("slice", "get", names["later"], env=online)
    assert f"Tenant:      police (booking {later})" in got and "(not begun: capacity booked" in got

    trail = json.loads(ok("slice", "events", "--slice", names["festival"], "-o", "json", env=online))
    # Newest first: the tenant applied it and its booking was decided in the same commit.
    assert [(e["actor"], e["action"]) for e in reversed(trail)][:2] == [
        ("tenant:events-office", "apply"),
        ("tenant:events-office", "book"),
    ]

    def expired() -> bool:
        listed = json.loads(ok("booking", "list", "--tenant", "police", *where, "-o", "json"))
        return [b["state"] for b in listed] == ["Expired", "Scheduled"]

    eventually("the short booking expires and the listing says so", expired, timeout_s=20, interval_s=0.2)
    shown = json.loads(ok("slice", "get", names["short"], "-o", "json", env=online))
    assert shown["state"] == "Expired" and shown["placement"] is None

    def notified() -> list[str]:
        done = json.loads(
            ok(
                "booking",
                "deliveries",
                "--slice-id",
                short,
                "--delivery-state",
                "delivered",
                *where,
                "-o",
                "json",
            )
        )
        return [d["status"] for d in done]

    eventually(
        "the sink's deliveries listed as delivered",
        lambda: notified() == ["created", "scheduled", "active", "expired"],
        timeout_s=20,
        interval_s=0.2,
    )
    assert json.loads(ok("booking", "deliveries", "--slice-id", later, *where, "-o", "json")) == []


def _operator_slice(folder: Path) -> Path:
    path = folder / "cameras.yaml"
    path.write_text(
        "apiVersion: edgeslice.io/v1alpha1\nkind: NetworkSlice\nmetadata:\n  name: cameras\n"
        "spec:\n  kind: iot\n  coverage:\n    sites: [c1]\n"
    )
    return path
