"""``slicectl slice diff``: a stored NetworkSlice document against a file's, as a unified diff."""

from __future__ import annotations

import difflib
from typing import Any

import yaml


def _lines(document: Any) -> list[str]:
    text: str = yaml.safe_dump(document, sort_keys=True, default_flow_style=False, width=120)
    return text.splitlines(keepends=True)


def document_diff(name: str, stored: Any | None, wanted: Any) -> str:
    """The unified diff from the stored document (None: not stored) to ``wanted``; "" when equal.

    Both are wire documents (camelCase, as the controller stores and ``GetSlice`` returns them);
    keys are sorted so only real changes show.

    >>> print(document_diff("cars", {"spec": {"priority": 1}}, {"spec": {"priority": 2}}), end="")
    --- cars (stored)
    +++ cars (file)
    @@ -1,2 +1,2 @@
     spec:
    -  priority: 1
    +  priority: 2
    >>> document_diff("cars", {"a": 1}, {"a": 1})
    ''
    """
    before = [] if stored is None else _lines(stored)
    after = _lines(wanted)
    if before == after:
        return ""
    label = f"{name} (not stored)" if stored is None else f"{name} (stored)"
    return "".join(difflib.unified_diff(before, after, fromfile=label, tofile=f"{name} (file)"))
