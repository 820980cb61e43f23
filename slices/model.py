"""The base every boundary model shares: frozen, strict about unknown fields, camelCase on the wire.

Files, the operator API and the Kubernetes CRD all speak camelCase (``latencyMs``); Python code
uses snake_case (``latency_ms``). Both spellings are accepted on input.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )

    def to_wire(self) -> dict[str, object]:
        """The document as it is written to files and sent over the API (camelCase, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
