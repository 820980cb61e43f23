"""AIP-158 pagination for the operator API's lists: page sizes, opaque page tokens, byte budgets.

A page token is the URL-safe base64 of a small JSON object naming the method, the request's
filters and a cursor (the last key served, or an offset). It is opaque to clients; the server
refuses a token of another method, of other filters, or one it cannot read, with
INVALID_ARGUMENT naming ``page_token``. Pure: no gRPC here.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from slices import errors

#: A page ends once its entries reach this many bytes, whatever ``page_size`` asked: with the
#: message's own fields a page stays well inside gRPC's default 4 MiB receive limit.
PAGE_BYTES = 2 * 1024 * 1024

_T = TypeVar("_T")
Scalar = str | int


@dataclass(frozen=True)
class Limits:
    """A method's default and largest page size."""

    default: int
    maximum: int

    def size(self, requested: int, field: str = "page_size") -> int:
        """The page size to serve: 0 → the default, above the maximum → the maximum.

        >>> Limits(100, 1000).size(0), Limits(100, 1000).size(5), Limits(100, 1000).size(10**6)
        (100, 5, 1000)
        """
        if requested < 0:
            raise errors.InvalidSpec(f"{field}: {requested} is negative")
        if requested == 0:
            return self.default
        return min(requested, self.maximum)


def encode(method: str, filters: Mapping[str, Scalar], cursor: Scalar) -> str:
    """The token for the page after ``cursor``.

    >>> decode(encode("ListAgents", {"state": ""}, "edge-1"), "ListAgents", {"state": ""})
    'edge-1'
    """
    data = {"m": method, "f": dict(filters), "c": cursor}
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, method: str, filters: Mapping[str, Scalar]) -> Scalar:
    """The cursor a token carries; InvalidSpec naming ``page_token`` when it is not one of
    ``method``'s tokens for these ``filters``.

    >>> decode("bm9wZQ", "ListSlices", {})
    Traceback (most recent call last):
    ...
    slices.errors.InvalidSpec: page_token: not a page token of ListSlices (send the next_page_token of the previous page, or none)
    """
    bad = errors.InvalidSpec(
        f"page_token: not a page token of {method} (send the next_page_token of the previous page, or none)"
    )
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise bad from None
    if not isinstance(data, dict) or data.get("m") != method:
        raise bad
    cursor = data.get("c")
    if not isinstance(cursor, str | int) or isinstance(cursor, bool):
        raise bad
    if data.get("f") != dict(filters):
        given = ", ".join(f"{k}={v!r}" for k, v in sorted(filters.items())) or "no filters"
        raise errors.InvalidSpec(
            f"page_token: was issued for other filters than this request's ({given}); "
            "send the same fields as for the first page, or no page_token"
        )
    return cursor


@dataclass(frozen=True)
class Page(Generic[_T]):
    items: list[_T]
    more: bool  # at least one entry follows the last one in ``items``


def fill(
    entries: Iterable[_T], size: int, byte_size: Callable[[_T], int], budget: int = PAGE_BYTES
) -> Page[_T]:
    """Up to ``size`` entries, and no more than ``budget`` bytes of them (a page always takes
    its first entry); ``more`` says whether an entry was left over. ``entries`` is read lazily:
    at most ``size + 1`` are taken.

    >>> fill(iter("abcde"), 2, lambda _: 1)
    Page(items=['a', 'b'], more=True)
    >>> fill(iter("ab"), 2, lambda _: 1)
    Page(items=['a', 'b'], more=False)
    >>> fill(iter("abc"), 10, lambda _: 6, budget=20)
    Page(items=['a', 'b'], more=True)
    """
    items: list[_T] = []
    used = 0
    for entry in entries:
        if len(items) >= size:
            return Page(items, True)
        n = byte_size(entry) + 4  # the entry, its tag and its length
        if items and used + n > budget:
            return Page(items, True)
        items.append(entry)
        used += n
    return Page(items, False)
