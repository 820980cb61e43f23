"""The booking benchmark runs end to end on a small city (a command anyone may run)."""

from __future__ import annotations

import pytest

from bench import bench_booking


def test_bench_booking_quick_books_serves_and_activates(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_booking.main(["--quick"]) == 0
    out = capsys.readouterr().out
    # How fast it was depends on the machine; the test checks that each part did its work.
    assert "admission (BookingService.create), wall: p50 " in out, out
    assert "REST POST /slices end to end" in out and "statuses: 201 " in out, out
    assert "activation of 20 bookings due in one minute" in out and "; 20 active" in out, out
    assert "peak RSS " in out and "targets: create p50 " in out, out
