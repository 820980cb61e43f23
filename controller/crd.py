"""The ``NetworkSlice`` CustomResourceDefinition, generated from the same pydantic model as the
YAML intents (:class:`slices.intent.NetworkSliceSpec`), so the cluster validates exactly what
``slicectl`` does (up to the cross-field rules only the controller checks).

Kubernetes wants a *structural* OpenAPI v3 schema: no ``$ref``/``$defs``, every node typed, no
``anyOf`` with ``null`` (``nullable`` instead), OpenAPI 3.0 boolean ``exclusiveMinimum``, and no
``additionalProperties`` beside ``properties`` (unknown fields are pruned by the server instead).
:func:`structural` does that conversion; ``deploy/gen_crd.py`` writes the file and checks it is
current in CI.
"""

from __future__ import annotations

from typing import Any

from slices.intent import API_VERSION, NetworkSliceSpec
from slices.status import Condition

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "networkslices"
KIND = "NetworkSlice"
CRD_NAME = f"{PLURAL}.{GROUP}"

_DROPPED = frozenset({"title", "default", "examples"})


def structural(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Convert a pydantic JSON schema (2020-12) into a Kubernetes structural schema.

    >>> structural({"anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "null"}], "title": "X"})
    {'type': 'integer', 'minimum': 0, 'exclusiveMinimum': True, 'nullable': True}
    >>> structural({"$defs": {"A": {"type": "string"}}, "type": "object",
    ...             "properties": {"a": {"$ref": "#/$defs/A"}}, "additionalProperties": False})
    {'type': 'object', 'properties': {'a': {'type': 'string'}}}
    """
    defs = {**(defs or {}), **schema.get("$defs", {})}
    if "$ref" in schema:
        target = structural(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        extra = {k: v for k, v in schema.items() if k not in {"$ref", "$defs"}}
        return {**target, **structural(extra, defs)} if extra else target
    any_of = schema.get("anyOf")
    if any_of is not None:
        options = [o for o in any_of if o.get("type") != "null"]
        nullable = len(options) < len(any_of)
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf with {len(options)} non-null options structurally")
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        merged = {**structural(options[0], defs), **structural(rest, defs)}
        if nullable:
            merged["nullable"] = True
        return merged
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED or key == "$defs":
            continue
        if key == "properties":
            out[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = structural(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = structural(value, defs)
            elif value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = value
    if "additionalProperties" in out and "properties" in out:
        del out["additionalProperties"]
    return out


def spec_schema() -> dict[str, Any]:
    return structural(NetworkSliceSpec.model_json_schema(by_alias=True, mode="validation"))


def status_schema() -> dict[str, Any]:
    condition = structural(Condition.model_json_schema(by_alias=True, mode="serialization"))
    return {
        "type": "object",
        "properties": {
            "state": {
                "type": "string",
                "description": "Pending, Admitted, Ready, Degraded, Rejected or Preempted",
            },
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "observedGeneration": {"type": "integer"},
            "sst": {"type": "integer", "description": "the SST in force (the profile's when unset)"},
            "snssai": {"type": "string"},
            "edgeSites": {"type": "array", "items": {"type": "string"}},
            "conditions": {
                "type": "array",
                "items": condition,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        },
    }


def crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition object (cluster-scoped: slice names are global)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/part-of": "edgeslice"}},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": "networkslice",
                "shortNames": ["nslice"],
                "categories": ["edgeslice"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Kind", "type": "string", "jsonPath": ".spec.kind"},
                        {"name": "SST", "type": "integer", "jsonPath": ".status.sst"},
                        {"name": "State", "type": "string", "jsonPath": ".status.state"},
                        {"name": "Edge-Sites", "type": "string", "jsonPath": ".status.edgeSites"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A 5G network slice served from edge sites (edgeslice intent).",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }
