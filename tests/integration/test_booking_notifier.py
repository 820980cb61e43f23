"""The booking notifier against real local sinks (http.server on loopback, one over TLS with a
throwaway CA) and a real SQLite state file: the CloudEvent a sink receives (checked against the
CAMARA document's SliceCreatedEvent schema), retries, backoff, failures, the sink policy at
delivery time and a restart that picks up what was pending.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from controller.booking import camara, notifier
from controller.booking.notifier import Notifier, deliveries, enqueue
from controller.booking.sinks import SinkPolicy
from controller.runtime.clock import RealClock
from controller.runtime.store import Store
from tests.support import envtest, tls_certs
from tests.support.booking_rig import RecordingSink, sink_credential, slice_attributes
from tests.support.clock import FakeClock
from tests.support.paths import ROOT
from tests.support.waiting import eventually

SPEC = ROOT.parent / "shared" / "camara" / "network-slice-booking.yaml"
SLICE_ID = UUID("3fa85f64-5717-4562-b3fc-2c963f66afa6")
SOURCE = "https://booking.city.example/network-slice-booking/vwip"
TOKEN = "sink-token-123"

SLICE_INFO: dict[str, Any] = slice_attributes(
    "2026-01-02T12:00:00Z", "2026-01-02T18:00:00Z", sliceId=str(SLICE_ID)
)


# -- the sink ---------------------------------------------------------------------------------


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    with RecordingSink() as s:
        yield s


@pytest.fixture
def store(state_store: Store) -> Store:
    """The tests' state file (the suite's ``state_store``)."""
    return state_store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def event_schema() -> OAS30Validator:
    """A validator of the spec's ``SliceCreatedEvent``. openapi-schema-validator follows each
    ``discriminator`` mapping, and this document's map back to the schema that has them (an
    endless loop), so they are dropped; ``allOf`` says the same."""
    if not SPEC.is_file():
        reason = f"the CAMARA spec is not at {SPEC} (the repo is cloned beside ../shared in CI)"
        if envtest.ci_requires_real_servers():
            pytest.fail(f"{reason}; under CI it must be there")
        pytest.skip(reason)

    def without_discriminators(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: without_discriminators(v) for k, v in node.items() if k != "discriminator"}
        if isinstance(node, list):
            return [without_discriminators(v) for v in node]
        return node

    document = without_discriminators(yaml.safe_load(SPEC.read_text(encoding="utf-8")))
    registry: Registry[Any] = Registry().with_resource(
        "urn:camara", Resource.from_contents(document, default_specification=DRAFT4)
    )
    return OAS30Validator(
        {"$ref": "urn:camara#/components/schemas/SliceCreatedEvent"},
        registry=registry,
        format_checker=oas30_format_checker,
    )


class Highest(random.Random):
    """The jitter's worst case: every draw is the top of its range."""

    def uniform(self, a: float, b: float) -> float:
        return b


def resolver(answers: dict[str, Sequence[str]]) -> Any:
    def resolve(host: str, port: int, /) -> list[tuple[int, int, int, str, tuple[Any, ...]]]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    return resolve


def dev_policy(*hosts: str, answers: dict[str, Sequence[str]] | None = None) -> SinkPolicy:
    return SinkPolicy(hosts or ("127.0.0.1",), dev=True, resolve=resolver(answers or {}))


def add_booking(store: Store, credential: dict[str, Any] | None, slice_id: UUID = SLICE_ID) -> None:
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO bookings (slice_id, tenant, slice_name, attributes, sink, sink_credential,"
            " reserved_mbps, start_at, created_at) VALUES (?, 'events', ?, '{}', NULL, ?, 60, ?, ?)",
            (
                str(slice_id),
                f"booking-{slice_id}",
                json.dumps(credential) if credential else None,
                "2026-01-02T12:00:00+00:00",
                "2026-01-01T00:00:00+00:00",
            ),
        )


def token_credential(expires: str = "2030-01-01T00:00:00Z") -> dict[str, Any]:
    return sink_credential(TOKEN, expires)


def put(store: Store, at: dt.datetime, url: str, status: str = "scheduled", slice_id: UUID = SLICE_ID) -> str:
    info = dict(SLICE_INFO, sliceId=str(slice_id), sink=url, sinkCredential=token_credential())
    with store.transaction() as tx:
        return enqueue(tx, at, slice_id, status, url, json.dumps(info), source=SOURCE)


def one(store: Store) -> notifier.Delivery:
    (row,) = deliveries(store)
    return row


# -- what the sink receives -------------------------------------------------------------------


def test_a_status_change_reaches_the_sink_as_a_camara_cloudevent(
    store: Store, sink: RecordingSink, clock: FakeClock, event_schema: OAS30Validator
) -> None:
    add_booking(store, token_credential())
    event_id = put(store, clock.now(), sink.url())
    assert str(UUID(event_id)) == event_id
    n = Notifier(store, dev_policy(), clock)
    assert n.deliver_due() == 1

    (got,) = sink.received
    assert got.path == "/hook"
    assert got.headers["content-type"] == "application/cloudevents+json"
    assert got.headers["authorization"] == f"Bearer {TOKEN}"
    assert got.headers["host"] == f"127.0.0.1:{sink.port}"
    body = json.loads(got.body)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in event_schema.iter_errors(body)]
    assert errors == []
    assert body == {
        "id": event_id,
        "source": SOURCE,
        "type": "org.camaraproject.network-slice-booking.v0.status-changed",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "time": "2026-01-01T00:00:00Z",
        "data": dict(SLICE_INFO, sink=sink.url()),  # never the sinkCredential
    }
    assert camara.CloudEvent.model_validate(body).data.sliceId == SLICE_ID

    row = one(store)
    assert (row.event_id, row.slice_id, row.status, row.state, row.attempts) == (
        event_id,
        str(SLICE_ID),
        "scheduled",
        "delivered",
        1,
    )
    assert row.delivered_at == clock.now() and row.next_attempt_at is None and row.last_error is None
    assert TOKEN not in store.query("SELECT payload FROM booking_deliveries")[0]["payload"]
    assert n.deliver_due() == 0 and len(sink.received) == 1


def test_the_schema_refuses_a_wrong_event(event_schema: OAS30Validator) -> None:
    """The validator above is not a rubber stamp."""
    event = notifier.build_event("e1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), json.dumps(SLICE_INFO), SOURCE)
    body = json.loads(event.model_dump_json(exclude_none=True))
    assert list(event_schema.iter_errors(body)) == []
    body["specversion"], body["data"]["sliceId"] = "2.0", "not-a-uuid"
    assert {e.message for e in event_schema.iter_errors(body)} == {
        "'2.0' is not one of ['1.0']",
        "'not-a-uuid' is not a 'uuid'",
    }


def test_the_outbox_row_is_part_of_the_callers_transaction(store: Store, clock: FakeClock) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        enqueue(tx, clock.now(), SLICE_ID, "active", "http://127.0.0.1:1/", json.dumps(SLICE_INFO))
        raise RuntimeError("the status change is rolled back")
    assert deliveries(store) == []


def test_an_expired_token_is_not_sent_and_the_operator_is_told(
    store: Store, sink: RecordingSink, clock: FakeClock
) -> None:
    add_booking(store, token_credential(expires="2025-12-31T23:59:59Z"))
    put(store, clock.now(), sink.url())
    Notifier(store, dev_policy(), clock).deliver_due()
    assert "authorization" not in sink.received[0].headers
    row = one(store)
    assert row.state == "delivered"
    assert row.last_error == (
        "the sink's access token expired at 2025-12-31T23:59:59.000000+00:00; sent without Authorization"
    )


def test_the_token_is_read_from_the_booking_so_it_goes_with_the_booking(
    store: Store, sink: RecordingSink, clock: FakeClock
) -> None:
    put(store, clock.now(), sink.url())  # no bookings row (deleted): nothing to send
    Notifier(store, dev_policy(), clock).deliver_due()
    assert "authorization" not in sink.received[0].headers
    assert one(store).state == "delivered"


# -- retries, backoff and failures ------------------------------------------------------------


def test_a_503_is_retried_after_the_backoff_and_then_delivered(
    store: Store, sink: RecordingSink, clock: FakeClock
) -> None:
    add_booking(store, token_credential())
    sink.script.append((503, {}))
    event_id = put(store, clock.now(), sink.url())
    n = Notifier(store, dev_policy(), clock, base_backoff_s=1.0, rng=Highest())
    n.deliver_due()
    row = one(store)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error == "HTTP 503 Service Unavailable: sink says no really"
    assert row.next_attempt_at == clock.now() + dt.timedelta(seconds=1)
    clock.advance(0.999)
    assert n.deliver_due() == 0  # not due yet
    clock.advance(0.001)
    assert n.deliver_due() == 1
    row = one(store)
    assert (row.state, row.attempts, row.last_error) == ("delivered", 2, None)
    assert [json.loads(r.body)["id"] for r in sink.received] == [event_id, event_id]


def test_backoff_doubles_up_to_its_cap_and_the_last_attempt_fails(
    store: Store, sink: RecordingSink, clock: FakeClock
) -> None:
    sink.script.extend([(500, {})] * 10)
    put(store, clock.now(), sink.url())
    n = Notifier(
        store, dev_policy(), clock, max_attempts=5, base_backoff_s=1.0, max_backoff_s=4.0, rng=Highest()
    )
    waits = []
    for _ in range(4):
        assert n.deliver_due() == 1
        row = one(store)
        assert row.next_attempt_at is not None
        waits.append((row.next_attempt_at - clock.now()).total_seconds())
        clock.advance(waits[-1])
    assert waits == [1.0, 2.0, 4.0, 4.0]
    assert n.deliver_due() == 1
    row = one(store)
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 5, None)
    assert row.last_error == "gave up after 5 attempts: HTTP 500 Internal Server Error: sink says no really"
    clock.advance(3600)
    assert n.deliver_due() == 0 and len(sink.received) == 5


def test_the_jitter_is_full_a_draw_below_the_exponential_bound(store: Store, clock: FakeClock) -> None:
    n = Notifier(store, dev_policy(), clock, base_backoff_s=1.0, max_backoff_s=300.0, rng=random.Random(7))
    for attempt, bound in [(1, 1.0), (3, 4.0), (6, 32.0), (12, 300.0)]:
        draws = [n._backoff_s(attempt, None) for _ in range(200)]
        assert all(0.0 <= d <= bound for d in draws)
        assert min(draws) < bound * 0.1 and max(draws) > bound * 0.9  # spread over the whole range


@pytest.mark.parametrize(
    ("headers", "wait_s"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "<date in 30 s>"}, 30.0),
        ({"Retry-After": "86400"}, 3600.0),
    ],
)
def test_retry_after_is_honoured(
    store: Store, sink: RecordingSink, clock: FakeClock, headers: dict[str, str], wait_s: float
) -> None:
    if headers["Retry-After"] == "<date in 30 s>":
        headers = {"Retry-After": format_datetime(clock.now() + dt.timedelta(seconds=30), usegmt=True)}
    sink.script.append((429, headers))
    put(store, clock.now(), sink.url())
    Notifier(store, dev_policy(), clock, base_backoff_s=1.0, rng=Highest()).deliver_due()
    row = one(store)
    assert row.state == "pending" and row.last_error is not None and row.last_error.startswith("HTTP 429")
    assert row.next_attempt_at == clock.now() + dt.timedelta(seconds=wait_s)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (408, "pending"),
        (429, "pending"),
        (500, "pending"),
        (502, "pending"),
        (504, "pending"),
        (400, "failed"),
        (401, "failed"),
        (403, "failed"),
        (404, "failed"),
        (410, "failed"),
        (422, "failed"),
        (302, "failed"),
        (307, "failed"),
    ],
)
def test_which_answers_are_retried(
    store: Store, sink: RecordingSink, clock: FakeClock, status: int, state: str
) -> None:
    sink.script.append((status, {"Location": sink.url(path="/elsewhere")}))
    put(store, clock.now(), sink.url())
    n = Notifier(store, dev_policy(), clock)
    n.deliver_due()
    row = one(store)
    assert (row.state, row.attempts) == (state, 1)
    assert row.last_error is not None and row.last_error.startswith(f"HTTP {status} ")
    assert "\n" not in row.last_error
    if state == "failed":
        assert row.next_attempt_at is None
        clock.advance(3600)
        assert n.deliver_due() == 0
    if status in (302, 307):
        assert row.last_error.endswith("(redirects are not followed)")
    assert [r.path for r in sink.received] == ["/hook"]


def test_a_sink_that_refuses_connections_is_retried(store: Store, clock: FakeClock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    put(store, clock.now(), f"http://127.0.0.1:{port}/hook")
    Notifier(store, dev_policy(), clock, rng=Highest()).deliver_due()
    row = one(store)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error is not None and row.last_error.startswith("ConnectError: ")


# -- the sink policy at delivery time ---------------------------------------------------------


def test_a_sink_no_longer_allowed_fails_without_a_request(
    store: Store, sink: RecordingSink, clock: FakeClock
) -> None:
    put(store, clock.now(), sink.url())
    Notifier(store, dev_policy("hooks.example.com"), clock).deliver_due()
    row = one(store)
    assert (row.state, row.attempts) == ("failed", 1)
    assert row.last_error == "sink: host 127.0.0.1 is not on the allow-list (hooks.example.com)"
    assert sink.received == []


def test_dns_rebinding_to_loopback_fails_without_a_request(
    store: Store, sink: RecordingSink, clock: FakeClock
) -> None:
    answers: dict[str, Sequence[str]] = {"sink.example.com": ["93.184.215.14"]}
    policy = SinkPolicy(["sink.example.com"], dev=False, resolve=resolver(answers))
    url = f"https://sink.example.com:{sink.port}/hook"
    policy.check(url)  # at booking: public
    answers["sink.example.com"] = ["127.0.0.1"]  # at delivery: the sink's own loopback
    put(store, clock.now(), url)
    Notifier(store, policy, clock).deliver_due()
    row = one(store)
    assert row.state == "failed"
    assert row.last_error == (
        "sink: host sink.example.com resolves to 127.0.0.1, a loopback address (allowed only in dev mode)"
    )
    assert sink.received == []


def test_the_delivery_connects_to_the_address_checked_not_a_second_lookup(
    store: Store, sink: RecordingSink, clock: FakeClock
) -> None:
    """``sink.test`` exists only in the policy's resolver: the POST reaches the sink because the
    notifier connects to the pinned address, with the sink's name in the Host header."""
    policy = dev_policy("sink.test", answers={"sink.test": ["127.0.0.1"]})
    put(store, clock.now(), sink.url(host="sink.test"))
    Notifier(store, policy, clock).deliver_due()
    assert one(store).state == "delivered"
    assert sink.received[0].headers["host"] == f"sink.test:{sink.port}"


def test_a_name_that_does_not_resolve_now_is_retried(store: Store, clock: FakeClock) -> None:
    put(store, clock.now(), "http://sink.test:9/hook")
    Notifier(store, dev_policy("sink.test"), clock).deliver_due()
    row = one(store)
    assert row.state == "pending"
    assert row.last_error is not None and row.last_error.startswith("sink: host sink.test does not resolve")


# -- HTTPS ------------------------------------------------------------------------------------


def test_an_https_sink_with_a_private_ca_and_the_name_verified(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    """The throwaway CA's certificate names localhost (and 127.0.0.1) only; the notifier trusts
    that CA through ``verify``, and checks the certificate against the sink's name, not the
    pinned address it connects to."""
    ca_file, cert_file, key_file = tls_certs.make_pki().write(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    sink = RecordingSink(tls=server)
    try:
        add_booking(store, token_credential())
        policy = dev_policy(
            "localhost", "other.test", answers={"localhost": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
        )
        put(store, clock.now(), sink.url(host="localhost"))
        trusting = Notifier(store, policy, clock, verify=ca_file)
        assert trusting.deliver_due() == 1
        assert one(store).state == "delivered"
        assert sink.received[0].headers["authorization"] == f"Bearer {TOKEN}"
        assert sink.received[0].headers["host"] == f"localhost:{sink.port}"

        # The same sink under another name: the certificate does not name it.
        put(store, clock.now(), sink.url(host="other.test"))
        trusting.deliver_due()
        newest = deliveries(store)[-1]
        assert newest.state == "pending"
        assert newest.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in newest.last_error
        assert "other.test" in newest.last_error

        # The system's CAs do not trust the throwaway one.
        put(store, clock.now(), sink.url(host="localhost"))
        Notifier(store, policy, clock).deliver_due()
        newest = deliveries(store)[-1]
        assert newest.state == "pending"
        assert newest.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in newest.last_error
        assert len(sink.received) == 1
        trusting.stop()
    finally:
        sink.close()


# -- the thread: wake-ups, restart ------------------------------------------------------------


def test_the_thread_delivers_on_wake_without_waiting_for_its_poll(store: Store, sink: RecordingSink) -> None:
    n = Notifier(store, dev_policy(), RealClock())
    assert (n.name, n.needs_leadership) == ("booking-notifier", True)
    n.start()
    try:
        time.sleep(0.1)  # the thread's first pass is over; it now sleeps up to IDLE_POLL_S
        started = time.monotonic()
        put(store, dt.datetime.now(dt.UTC), sink.url())
        n.wake()
        eventually("delivered", lambda: one(store).state == "delivered", timeout_s=5)
        assert time.monotonic() - started < notifier.IDLE_POLL_S / 2
    finally:
        n.stop()


def test_the_thread_retries_when_the_backoff_is_over(store: Store, sink: RecordingSink) -> None:
    sink.script.extend([(503, {}), (503, {})])
    n = Notifier(store, dev_policy(), RealClock(), base_backoff_s=0.05, max_backoff_s=0.2)
    n.start()
    try:
        put(store, dt.datetime.now(dt.UTC), sink.url())
        n.wake()
        row = eventually(
            "delivered", lambda: next((d for d in deliveries(store) if d.state == "delivered"), None)
        )
        assert row.attempts == 3 and len(sink.received) == 3
    finally:
        n.stop()


def test_a_restart_delivers_what_was_pending(tmp_path: Path, sink: RecordingSink) -> None:
    path = tmp_path / "state.db"
    first = Store.open(path)
    sink.script.append((503, {"Retry-After": "1"}))
    now = dt.datetime.now(dt.UTC)
    put(first, now, sink.url(), status="scheduled")
    n = Notifier(first, dev_policy(), RealClock())
    assert n.deliver_due() == 1  # 503: pending, due in a second
    put(first, now, sink.url(), status="active", slice_id=UUID(int=2))  # never tried
    first.close()

    second = Store.open(path)
    try:
        restarted = Notifier(second, dev_policy(), RealClock())
        restarted.start()
        try:
            eventually(
                "both delivered",
                lambda: all(d.state == "delivered" for d in deliveries(second)),
                timeout_s=10,
            )
        finally:
            restarted.stop()
        assert sorted((d.status, d.attempts) for d in deliveries(second)) == [("active", 1), ("scheduled", 2)]
        assert len(sink.received) == 3
    finally:
        second.close()


def test_stop_returns_promptly_and_start_again_works(store: Store, sink: RecordingSink) -> None:
    n = Notifier(store, dev_policy(), RealClock())
    n.start()
    time.sleep(0.05)
    started = time.monotonic()
    n.stop()
    assert time.monotonic() - started < 2.0
    put(store, dt.datetime.now(dt.UTC), sink.url())
    n.start()
    try:
        eventually(
            "delivered after a restart of the runnable", lambda: one(store).state == "delivered", timeout_s=5
        )
    finally:
        n.stop()


# -- the operator's view ----------------------------------------------------------------------


def test_deliveries_lists_the_newest_oldest_first_by_slice_and_limited(
    store: Store, clock: FakeClock
) -> None:
    other = UUID(int=9)
    ids = [put(store, clock.now(), "http://127.0.0.1:1/", status=f"s{i}") for i in range(3)]
    put(store, clock.now(), "http://127.0.0.1:1/", slice_id=other)
    assert [d.event_id for d in deliveries(store, SLICE_ID)] == ids
    assert [d.event_id for d in deliveries(store, SLICE_ID, limit=2)] == ids[1:]
    assert [d.slice_id for d in deliveries(store, other)] == [str(other)]
    assert [d.status for d in deliveries(store, limit=2)] == ["s2", "scheduled"]
    (fresh,) = deliveries(store, str(SLICE_ID), limit=1)
    assert (fresh.status, fresh.state, fresh.attempts, fresh.created_at) == ("s2", "pending", 0, clock.now())
    assert fresh.next_attempt_at == clock.now()
