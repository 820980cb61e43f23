"""The bookings' status-change notifications: a durable outbox (table ``booking_deliveries``) and
the thread that POSTs it to the sinks.

:func:`enqueue` writes one CloudEvent (1.0, structured mode; ``data`` = the ``SliceInfo``) in the
caller's transaction, so the event exists exactly when the status change it reports was committed.
:class:`Notifier` (a runnable of the leader) delivers the pending rows: ``POST`` with
``Content-Type: application/cloudevents+json`` and, when the booking's ``sinkCredential`` is an
unexpired ``ACCESSTOKEN``, ``Authorization: Bearer``; a 2xx delivers, 408/429/5xx and connection
errors are retried with exponential backoff and full jitter (``Retry-After`` honoured), any other
answer fails the delivery at once, and so does the last of ``max_attempts``. Delivery is at least
once (a crash between the POST and the row's update sends it again): the event ``id`` lets a sink
drop repeats. Pending rows outlive a restart. :func:`deliveries` is the operator's view.

The access token is not copied into the outbox: it is read from the booking's row (``bookings``,
column ``sink_credential``) at each attempt, so it lives no longer than the booking does. Every
attempt checks the sink again (:meth:`SinkPolicy.pin`) and connects to the addresses checked.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Final
from uuid import UUID

import httpx
import pydantic

from controller.booking import camara, ports
from controller.booking.records import stored_time
from controller.booking.sinks import Pinned, SinkPolicy, SinkUnresolvable
from controller.runtime.clock import Clock
from controller.runtime.store import Store, Transaction

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = "application/cloudevents+json"
#: ``source`` of the events when the caller names no booking API base URL (a URI reference).
DEFAULT_SOURCE: Final = "/network-slice-booking/vwip"
#: The longest wait a sink's ``Retry-After`` can impose on the next attempt.
RETRY_AFTER_CAP_S: Final = 3600.0
#: The longest the thread sleeps without looking at the outbox (a row enqueued without wake()).
IDLE_POLL_S: Final = 30.0
#: How much of a sink's answer is read (for the operator's ``last_error``).
ANSWER_BYTES: Final = 1024

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

_SINK_CREDENTIAL: pydantic.TypeAdapter[camara.AccessTokenCredential | camara.PrivateKeyJwtCredential] = (
    pydantic.TypeAdapter(camara.SinkCredential)
)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def build_event(
    event_id: str, at: datetime, slice_info: camara.SliceInfo | str, source: str = DEFAULT_SOURCE
) -> camara.CloudEvent:
    """The CloudEvent of one status change; ``data`` never carries the ``sinkCredential``."""
    info = camara.SliceInfo.model_validate_json(slice_info) if isinstance(slice_info, str) else slice_info
    return camara.CloudEvent(
        id=event_id,
        source=source,
        time=at.astimezone(UTC),
        data=info.model_copy(update={"sinkCredential": None}),
    )


def enqueue(
    tx: Transaction,
    store_now: datetime,
    slice_id: UUID | str,
    status: str,
    sink: str,
    slice_info_json: camara.SliceInfo | str,
    *,
    source: str = DEFAULT_SOURCE,
) -> str:
    """Add the notification of ``slice_id``'s change to ``status`` to the outbox, in ``tx``; its
    event id (a UUID). Due at once: call :meth:`Notifier.wake` after the commit.

    ``source`` is the booking API's base URL (e.g. ``https://booking.city.example/network-slice-booking/vwip``).
    """
    event_id = str(uuid.uuid4())
    event = build_event(event_id, store_now, slice_info_json, source)
    now = stored_time(store_now)
    tx.execute(
        "INSERT INTO booking_deliveries (event_id, slice_id, status, sink, payload, state, attempts,"
        " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
        (
            event_id,
            str(slice_id),
            status,
            sink,
            event.model_dump_json(exclude_none=True),
            PENDING,
            now,
            now,
        ),
    )
    return event_id


@dataclass(frozen=True)
class Delivery:
    """One notification and how its delivery went."""

    seq: int
    event_id: str
    slice_id: str
    status: str
    sink: str
    state: str  # pending, delivered, failed
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


def _opt_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def deliveries(store: Store, slice_id: UUID | str | None = None, limit: int = 100) -> list[Delivery]:
    """The newest ``limit`` notifications (of one booking when ``slice_id`` is given), oldest first
    (as a log reads, like the audit trail)."""
    sql = (
        "SELECT seq, event_id, slice_id, status, sink, state, attempts, last_error, next_attempt_at,"
        " delivered_at, created_at FROM booking_deliveries"
    )
    args: list[object] = []
    if slice_id is not None:
        sql += " WHERE slice_id = ?"
        args.append(str(slice_id))
    sql += " ORDER BY seq DESC LIMIT ?"
    args.append(limit)
    rows = store.query(sql, args)
    rows.reverse()
    return [
        Delivery(
            seq=r["seq"],
            event_id=r["event_id"],
            slice_id=r["slice_id"],
            status=r["status"],
            sink=r["sink"],
            state=r["state"],
            attempts=r["attempts"],
            last_error=r["last_error"],
            next_attempt_at=_opt_time(r["next_attempt_at"]),
            delivered_at=_opt_time(r["delivered_at"]),
            created_at=datetime.fromisoformat(r["created_at"]),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class _Outcome:
    state: str
    error: str | None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    body: str  # the start of it, one line
    retry_after_s: float | None


def _retry_after(response: httpx.Response, now: datetime) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None when absent or bad."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Notifier:
    """The outbox's delivery thread: a runnable of the leader (``needs_leadership``), so one
    controller sends. It wakes on :meth:`wake` (after an :func:`enqueue` commits) or when the next
    attempt falls due; :meth:`deliver_due` is one pass (tests call it with a fake clock).

    ``verify``: how the sinks' TLS certificates are checked -- True (the system's CAs), a CA
    bundle file, or an ``ssl.SSLContext``; False only for tests.
    """

    name = "booking-notifier"
    needs_leadership = True

    def __init__(
        self,
        store: Store,
        policy: SinkPolicy,
        clock: Clock,
        *,
        timeout_s: float = 10.0,
        max_attempts: int = 8,
        base_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        verify: ssl.SSLContext | str | Path | bool = True,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.store = store
        self.policy = policy
        self.clock = clock
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(verify)) if isinstance(verify, str | Path) else verify
        )
        self._rng = rng or random.Random()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pass = threading.Lock()  # one pass at a time: a row is never sent twice at once
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None

    # -- runnable -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread; it first delivers what is due (pending rows of a previous run too)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._wake.set()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (an attempt in flight ends first, within the HTTP timeout)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s * 2 + 5.0)
            self._thread = None
        with self._pass:
            if self._client is not None:
                self._client.close()
                self._client = None

    def wake(self) -> None:
        """Look at the outbox now (something was enqueued)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.deliver_due()
                wait = self._seconds_to_next()
            except Exception:  # the thread must outlive a bad row or a busy state file
                log.exception("booking notifier: delivery pass failed")
                wait = IDLE_POLL_S
            self._wake.wait(wait)

    def _seconds_to_next(self) -> float:
        rows = self.store.query(
            "SELECT MIN(next_attempt_at) AS due FROM booking_deliveries WHERE state = ?", (PENDING,)
        )
        due = rows[0]["due"] if rows else None
        if due is None:
            return IDLE_POLL_S
        seconds = (datetime.fromisoformat(due) - self.clock.now()).total_seconds()
        return min(max(seconds, 0.0), IDLE_POLL_S)

    # -- delivery -------------------------------------------------------------------------------

    def deliver_due(self, limit: int = 100) -> int:
        """Make one attempt at every pending notification due now (oldest due first); how many."""
        with self._pass:
            rows = self.store.query(
                "SELECT seq, slice_id, sink, payload, attempts FROM booking_deliveries"
                " WHERE state = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, seq LIMIT ?",
                (PENDING, stored_time(self.clock.now()), limit),
            )
            attempted = 0
            for row in rows:
                if self._stop.is_set() and self._thread is not None:
                    break  # stopping: what is left stays pending for the next leader
                self._attempt(row["seq"], row["slice_id"], row["sink"], row["payload"], row["attempts"] + 1)
                attempted += 1
            return attempted

    def _attempt(self, seq: int, slice_id: str, sink: str, payload: str, attempt: int) -> None:
        try:
            token, note = self._bearer(slice_id)
            outcome = self._send(sink, payload, token)
        except Exception as exc:  # a surprise is this row's retry, not a stuck outbox
            log.exception("booking notification %s to %s", seq, sink)
            note, outcome = None, _Outcome(PENDING, f"internal error: {_one_line(repr(exc))}")
        now = self.clock.now()
        error = "; ".join(p for p in (outcome.error, note) if p) or None
        next_at: str | None = None
        state = outcome.state
        if state == PENDING and attempt >= self.max_attempts:
            state = FAILED
            error = f"gave up after {attempt} attempts: {error}"
        if state == PENDING:
            next_at = stored_time(now + timedelta(seconds=self._backoff_s(attempt, outcome.retry_after_s)))
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE booking_deliveries SET state = ?, attempts = ?, last_error = ?, next_attempt_at = ?,"
                " delivered_at = ? WHERE seq = ?",
                (state, attempt, error, next_at, stored_time(now) if state == DELIVERED else None, seq),
            )
        level = logging.WARNING if state == FAILED else logging.INFO
        log.log(
            level, "booking notification %s to %s: %s (attempt %d) %s", seq, sink, state, attempt, error or ""
        )

    def _backoff_s(self, attempt: int, retry_after_s: float | None) -> float:
        """Full jitter (a uniform draw below the exponential bound); a ``Retry-After`` is obeyed."""
        if retry_after_s is not None:
            return min(retry_after_s, RETRY_AFTER_CAP_S)
        bound = min(self.max_backoff_s, self.base_backoff_s * 2.0 ** (attempt - 1))
        return self._rng.uniform(0.0, bound)

    def _bearer(self, slice_id: str) -> tuple[str | None, str | None]:
        """The access token to send (or None) and a note for the operator when one is withheld."""
        rows = self.store.query("SELECT sink_credential FROM bookings WHERE slice_id = ?", (slice_id,))
        raw = rows[0]["sink_credential"] if rows else None
        if not raw:
            return None, None
        try:
            credential = _SINK_CREDENTIAL.validate_json(raw)
        except pydantic.ValidationError:
            return None, "the booking's sink credential cannot be read; sent without Authorization"
        if not isinstance(credential, camara.AccessTokenCredential):
            return (
                None,
                f"{credential.credentialType} sink credentials are not supported; sent without Authorization",
            )
        if credential.accessTokenExpiresUtc <= self.clock.now():
            expired = stored_time(credential.accessTokenExpiresUtc)
            return None, f"the sink's access token expired at {expired}; sent without Authorization"
        return credential.accessToken, None

    def _http(self) -> httpx.Client:
        if self._client is None:
            # No keep-alive: each connection is made for one pinned address and one server name,
            # never reused for another sink that happens to share the address. No redirects are
            # followed (a 3xx would lead the POST past the policy) and no proxy from the environment.
            self._client = httpx.Client(
                verify=self._verify,
                timeout=self.timeout_s,
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return self._client

    def _send(self, sink: str, payload: str, token: str | None) -> _Outcome:
        try:
            pinned = self.policy.pin(sink)
        except ports.BookingError as refused:
            return _Outcome(FAILED, refused.message)
        except SinkUnresolvable as exc:
            return _Outcome(PENDING, f"sink: {exc}")
        headers = {"Content-Type": CONTENT_TYPE, "Host": pinned.host_header}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            answer = self._post(pinned, headers, payload.encode())
        except httpx.TransportError as exc:
            return _Outcome(PENDING, f"{type(exc).__name__}: {_one_line(str(exc)) or 'no detail'}")
        code = answer.status
        if 200 <= code < 300:
            return _Outcome(DELIVERED, None)
        said = f"HTTP {code} {answer.reason}".rstrip()
        if answer.body:
            said += f": {answer.body}"
        if code in (408, 429) or code >= 500:
            return _Outcome(PENDING, said, answer.retry_after_s)
        if 300 <= code < 400:
            said += " (redirects are not followed)"
        return _Outcome(FAILED, said)

    def _post(self, pinned: Pinned, headers: dict[str, str], body: bytes) -> _Answer:
        """POST to the first of the checked addresses that accepts a connection.

        httpx has no resolver hook, so the URL names the checked address itself; the ``Host``
        header and the ``sni_hostname`` request extension (which httpcore uses as TLS
        ``server_hostname``, so the certificate is verified against the sink's name) keep the
        request what it would have been with the name in the URL.
        """
        last: httpx.TransportError | None = None
        for url in pinned.urls:
            try:
                with self._http().stream(
                    "POST",
                    url,
                    content=body,
                    headers=headers,
                    extensions={"sni_hostname": pinned.server_name},
                ) as response:
                    # Only the start of the answer is read: a sink cannot make the controller
                    # hold an unbounded body.
                    start = next(response.iter_bytes(), b"")[:ANSWER_BYTES]
                    return _Answer(
                        status=response.status_code,
                        reason=response.reason_phrase,
                        body=_one_line(start.decode("utf-8", "replace"), 200),
                        retry_after_s=_retry_after(response, self.clock.now()),
                    )
            except httpx.ConnectError as exc:
                last = exc  # the next address may answer (IPv6 and IPv4 of one name)
        assert last is not None  # pin() returns at least one address
        raise last
