"""Pieces of the Prometheus text format (0.0.4) shared by the writers of ``/metrics`` lines."""

from __future__ import annotations


def escape_label_value(value: str) -> str:
    """A label value as the text format quotes it: backslash, newline and double quote escaped.

    >>> escape_label_value('a"b\\\\c')
    'a\\\\"b\\\\\\\\c'
    """
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value
