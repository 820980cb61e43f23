"""Status conditions, Kubernetes-style: each says one thing, with a reason a person can act on."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from slices.model import WireModel


class ConditionType(StrEnum):
    ADMITTED = "Admitted"
    PLACED = "Placed"
    REALISED = "Realised"
    SLA_MET = "SLAMet"
    READY = "Ready"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(WireModel):
    """One observation about the slice (Kubernetes condition conventions)."""

    type: Annotated[ConditionType, Field(description="Admitted, Placed, Realised, SLAMet or Ready")]
    status: Annotated[ConditionStatus, Field(description="True, False or Unknown (no evidence yet)")]
    reason: Annotated[str, Field(description="CamelCase reason a program can match on")]
    message: Annotated[str, Field(description="what happened and what to do, for a person")] = ""
    observed_generation: Annotated[
        int, Field(description="the metadata.generation of the spec this condition was computed for")
    ] = 0
    last_transition_time: Annotated[
        datetime, Field(description="when status last changed (not when the condition was last written)")
    ]


def now() -> datetime:
    return datetime.now(UTC)


def set_condition(
    conditions: tuple[Condition, ...],
    type_: ConditionType,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    at: datetime,
) -> tuple[Condition, ...]:
    """Return conditions with ``type_`` set; the transition time moves only when the status does.

    >>> t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    >>> c = set_condition((), ConditionType.ADMITTED, ConditionStatus.TRUE, "Admitted", "", 1, t0)
    >>> c = set_condition(c, ConditionType.ADMITTED, ConditionStatus.TRUE, "Admitted", "again", 2, t1)
    >>> c[0].last_transition_time == t0, c[0].observed_generation, c[0].message
    (True, 2, 'again')
    """
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == status else at
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=since,
    )
    rest = tuple(c for c in conditions if c.type != type_)
    order = list(ConditionType)
    return tuple(sorted((*rest, new), key=lambda c: order.index(c.type)))


def get_condition(conditions: tuple[Condition, ...], type_: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
