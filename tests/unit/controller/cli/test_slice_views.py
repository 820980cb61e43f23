"""How slicectl shows a booking's slice and the booked states: the tenant and the window in
``slice list -o wide`` and ``slice get``, Scheduled and Expired in ``top``'s order and summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from controller.booking.ports import SLICE_ID_ANNOTATION, TENANT_LABEL
from controller.cli import slice_get, top, views
from protos.edgeslice.operator.v1 import operator_pb2 as pb

SLICE_ID = "2d3c1f7e-0000-4000-8000-000000000000"


def _slice(name: str, state: str, reason: str = "", **metadata: Any) -> pb.Slice:
    spec: dict[str, Any] = {"kind": "wifi"}
    if "schedule" in metadata:
        spec["schedule"] = metadata.pop("schedule")
    document = {"metadata": {"name": name, **metadata}, "spec": spec}
    return pb.Slice(name=name, kind="wifi", state=state, reason=reason, document_json=json.dumps(document))


def _booked(state: str, end: str | None = "2026-12-05T10:00:00Z") -> pb.Slice:
    schedule = {"start": "2026-12-05T09:00:00Z", **({"end": end} if end else {})}
    return _slice(
        "bk-police-2d3c1f7e0000",
        state,
        state,
        labels={TENANT_LABEL: "police", "tier": "gold"},
        annotations={SLICE_ID_ANNOTATION: SLICE_ID},
        schedule=schedule,
    )


def _wide(s: pb.Slice) -> dict[str, object]:
    return dict(zip(slice_get.WIDE_HEADERS, slice_get.wide_row(s), strict=True))


def test_wide_shows_the_tenant_and_the_window_of_a_booking_and_dashes_for_an_operator_slice() -> None:
    row = _wide(_booked("Scheduled"))
    assert row["TENANT"] == "police"
    assert row["WINDOW"] == "2026-12-05T09:00Z/2026-12-05T10:00Z"
    assert row["STATE"] == "Scheduled"
    assert row["LABELS"] == f"{TENANT_LABEL}=police,tier=gold"
    assert _wide(_booked("Scheduled", end=None))["WINDOW"] == "2026-12-05T09:00Z/.."
    plain = _wide(_slice("cars", "Ready"))
    assert (plain["TENANT"], plain["WINDOW"]) == ("-", "-")
    # A window with seconds keeps them, in UTC whatever zone it was written in.
    odd = _slice("odd", "Scheduled", schedule={"start": "2026-12-05T10:00:30+01:00"})
    assert _wide(odd)["WINDOW"] == "2026-12-05T09:00:30Z/.."


def test_the_watch_rows_keep_the_wide_columns_aligned() -> None:
    assert len(slice_get.WIDE_HEADERS) == len(slice_get.wide_row(_booked("Expired")))


def test_get_says_whose_booking_it_is_and_where_it_stands_in_its_window() -> None:
    text = views.slice_text(_booked("Scheduled"))
    assert f"Tenant:      police (booking {SLICE_ID})" in text.splitlines()
    assert (
        "Window:      2026-12-05 09:00 UTC to 2026-12-05 10:00 UTC (not begun: capacity booked, nothing realised)"
        in text.splitlines()
    )
    assert "State:       Scheduled" in text.splitlines()  # not "Scheduled (Scheduled)"
    expired = views.slice_text(_booked("Expired", end=None)).splitlines()
    assert "Window:      2026-12-05 09:00 UTC to (no end) (ended: capacity released)" in expired
    active = views.slice_text(_booked("Ready")).splitlines()
    assert "Window:      2026-12-05 09:00 UTC to 2026-12-05 10:00 UTC" in active
    operator = views.slice_text(_slice("cars", "Ready", "Realised")).splitlines()
    assert "State:       Ready (Realised)" in operator
    assert not any(line.startswith(("Tenant:", "Window:")) for line in operator)


def test_an_unreadable_schedule_or_document_shows_as_none() -> None:
    assert views.window_column(_slice("x", "Pending", schedule={"start": "next tuesday"})) == "-"
    broken = pb.Slice(name="y", state="Pending", document_json="{not json")
    assert (views.tenant_of(broken), views.window_column(broken), views.labels_of(broken)) == (None, "-", {})


def test_top_puts_windows_not_begun_or_ended_last_and_counts_them() -> None:
    slices = [
        pb.Slice(name="old", kind="wifi", state="Expired"),
        pb.Slice(name="later", kind="wifi", state="Scheduled"),
        pb.Slice(name="broken", kind="iot", state="Degraded"),
        pb.Slice(name="fine", kind="iot", state="Ready"),
        pb.Slice(name="later2", kind="wifi", state="Scheduled"),
    ]
    screen = top.format_top(slices, None, now=datetime(2026, 12, 5, 8, 0, tzinfo=UTC)).splitlines()
    assert screen[0] == (
        "edgeslice top  08:00:00  slices 5: 1 Ready, 1 Degraded, 2 Scheduled, 1 Expired  |  SLA violated 0"
    )
    names = [line.split()[0] for line in screen[3:]]
    assert names == ["broken", "fine", "later", "later2", "old"]


def test_top_counts_a_state_it_does_not_know_rather_than_hide_it() -> None:
    screen = top.format_top([pb.Slice(name="n", kind="iot", state="Hibernating")], None)
    assert "slices 1: 1 Hibernating" in screen.splitlines()[0]
