"""One exception hierarchy for the whole product.

Every user-facing failure is an :class:`EdgesliceError`; library errors are wrapped with the
cause chained (``raise InvalidSpec(...) from exc``) so the CLI can print one line and a
developer can still see the original traceback with ``--debug``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pydantic


class EdgesliceError(Exception):
    """Base of every error edgeslice raises on purpose."""

    #: Process exit code the CLI uses for this kind of error.
    exit_code = 1


class InvalidSpec(EdgesliceError):
    """A slice intent, topology file, flag or message is malformed or inconsistent."""

    exit_code = 2


class TopologyError(EdgesliceError):
    """The city topology is invalid or an element it names does not exist."""

    exit_code = 2


class AdmissionRejected(EdgesliceError):
    """A slice cannot be admitted; ``reason`` is CamelCase, ``message`` names the constraint."""

    exit_code = 3

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class NotFound(EdgesliceError):
    """A named object (slice, site, link) does not exist."""

    exit_code = 4


class RealisationError(EdgesliceError):
    """Kubernetes or a site agent refused or failed to realise a slice."""

    exit_code = 5


class StoreError(EdgesliceError):
    """The durable store cannot be read or written."""

    exit_code = 6


class Unavailable(EdgesliceError):
    """A server this command needs cannot be reached."""

    exit_code = 7


def _location(loc: Iterable[Any]) -> str:
    """Render a pydantic error location as ``spec.sla.latencyMs`` / ``sites[3].id``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "tagged-union", "union[")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def describe_validation_error(exc: pydantic.ValidationError, where: str = "") -> str:
    """One line per problem, each naming the field and what is wrong with it.

    >>> class M(pydantic.BaseModel):
    ...     x: int
    >>> try:
    ...     M.model_validate({"x": "nope"})
    ... except pydantic.ValidationError as e:
    ...     print(describe_validation_error(e, "demo.yaml"))
    demo.yaml: x: Input should be a valid integer, unable to parse string as an integer
    """
    prefix = f"{where}: " if where else ""
    lines = []
    for err in exc.errors(include_url=False):
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "finite_number":
            msg = f"not a finite number (got {err['input']!r})"
        elif err["type"] == "int_parsing_size":
            msg = "too large for an integer"
        lines.append(f"{prefix}{_location(err['loc'])}: {msg}")
    return "\n".join(lines)
