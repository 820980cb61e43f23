"""The capacity calendar's peak against a brute force: the load at every instant, per element."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.calendar import OPEN_END, Calendar, Window
from controller.core.placement_model import Reservation

CELLS = ("c1", "c2", "c3")

booking = st.tuples(
    st.integers(0, 20),  # start
    st.one_of(st.integers(1, 12), st.none()),  # length (None: no end)
    st.dictionaries(st.sampled_from(CELLS), st.integers(1, 100), min_size=1),
    st.dictionaries(st.integers(0, 3), st.integers(1, 100)),
)


def _brute(entries: list[tuple[float, float, Reservation]], window: Window) -> dict[str, int]:
    """The most held at once per cell, instant by instant (every boundary is an integer)."""
    best: dict[str, int] = {}
    t = window.start
    while t < min(window.end, 40):
        for cell in CELLS:
            load = sum(r.radio_kbps.get(cell, 0) for s, e, r in entries if s <= t < e)
            if load > best.get(cell, 0):
                best[cell] = load
        t += 0.5
    return best


@settings(max_examples=200, deadline=None)
@given(st.lists(booking, max_size=8), st.integers(0, 25), st.one_of(st.integers(1, 15), st.none()))
def test_peak_is_the_most_held_at_any_instant(
    bookings: list[tuple[int, int | None, dict[str, int], dict[int, int]]], start: int, length: int | None
) -> None:
    cal = Calendar()
    entries = []
    for i, (s, n, radio, links) in enumerate(bookings):
        end = OPEN_END if n is None else float(s + n)
        res = Reservation(radio_kbps=radio, link_kbps=links)
        cal.put(f"b{i}", Window(float(s), end), res)
        entries.append((float(s), end, res))
    window = Window(float(start), OPEN_END if length is None else float(start + length))
    peak = cal.peak(window)
    assert peak.reservation.radio_kbps == _brute(entries, window)
    assert peak.bookings == sum(1 for s, e, _ in entries if window.overlaps(s, e))
    for cell, amount in peak.reservation.radio_kbps.items():
        t = peak.at[(0, cell)]
        assert sum(r.radio_kbps.get(cell, 0) for s, e, r in entries if s <= t < e) == amount


def test_removing_and_excluding_a_holder() -> None:
    cal = Calendar()
    cal.put("a", Window(0, 10), Reservation(radio_kbps={"c1": 5}))
    cal.put("b", Window(5, 15), Reservation(radio_kbps={"c1": 7}))
    assert cal.peak(Window(0, 20)).reservation.radio_kbps == {"c1": 12}
    assert cal.peak(Window(0, 20), exclude=("b",)).reservation.radio_kbps == {"c1": 5}
    assert cal.remove("a") and not cal.remove("a")
    assert cal.peak(Window(0, 20)).reservation.radio_kbps == {"c1": 7}
    assert cal.pop_due(100) == ["b"]
