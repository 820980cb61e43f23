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
from slices.profiles import PROFILES, SST_NAMES
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


#: Slice names the CRD accepts: the namespace ``slice-<name>`` (kube_manifests.namespace_name with
#: the default prefix) must fit a 63-character DNS label.
NAMESPACE_PREFIX = "slice-"
MAX_SLICE_NAME = 63 - len(NAMESPACE_PREFIX)


def name_validations() -> list[dict[str, str]]:
    """CEL rules on ``metadata.name`` (the API server checks them before the object is stored)."""
    return [
        {
            "rule": f"size(self.metadata.name) <= {MAX_SLICE_NAME}",
            "message": f"metadata.name: at most {MAX_SLICE_NAME} characters, so that the slice's "
            f"namespace {NAMESPACE_PREFIX}<name> fits 63",
        },
        {
            "rule": "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
            "message": "metadata.name: must be a DNS label (lower-case letters, digits and '-', no dots)",
        },
    ]


def spec_validations() -> list[dict[str, str]]:
    """CEL rules on ``spec`` that mirror :func:`slices.profiles.resolve` (SST fits the kind)."""
    fits = " || ".join(
        f"(self.kind == '{kind.value}' && self.snssai.sst in {list(profile.allowed_sst)})"
        for kind, profile in PROFILES.items()
    )
    allowed = "; ".join(
        f"{kind.value} takes "
        + " or ".join(f"{sst} ({SST_NAMES.get(sst, '?')})" for sst in profile.allowed_sst)
        for kind, profile in PROFILES.items()
    )
    return [
        {
            "rule": f"!has(self.snssai) || {fits}",
            "message": f"spec.snssai.sst does not fit spec.kind: {allowed}",
        },
        {
            "rule": "(has(self.coverage.sites) && size(self.coverage.sites) > 0)"
            " || (has(self.coverage.zones) && size(self.coverage.zones) > 0)"
            " || has(self.coverage.circle)",
            "message": "spec.coverage: give at least one of sites, zones or circle",
        },
    ]


def spec_schema() -> dict[str, Any]:
    schema = structural(NetworkSliceSpec.model_json_schema(by_alias=True, mode="validation"))
    schema["x-kubernetes-validations"] = spec_validations()
    return schema


def status_schema() -> dict[str, Any]:
    condition = structural(Condition.model_json_schema(by_alias=True, mode="serialization"))
    return {
        "type": "object",
        "description": "What the controller observed and decided (written by edgeslice only).",
        "properties": {
            "state": {
                "type": "string",
                "description": "Pending, Admitted, Ready, Degraded, Rejected, Preempted, Scheduled or Expired",
            },
            "reason": {"type": "string", "description": "CamelCase reason for the state"},
            "message": {"type": "string", "description": "the state explained for a person"},
            "observedGeneration": {
                "type": "integer",
                "description": "the metadata.generation this status was computed for",
            },
            "sst": {"type": "integer", "description": "the SST in force (the profile's when unset)"},
            "snssai": {
                "type": "string",
                "description": "the S-NSSAI in force, SST-SD (SD in lower-case hex)",
            },
            "edgeSites": {
                "type": "array",
                "items": {"type": "string"},
                "description": "the edge sites the slice is placed on",
            },
            "edgeSitesText": {
                "type": "string",
                "description": "edgeSites as one comma-separated string (the Edge-Sites column)",
            },
            "conditions": {
                "type": "array",
                "description": "Admitted, Placed, Realised, SLAMet and Ready, one of each at most",
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
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                        {
                            "name": "Reason",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
                        },
                        {"name": "Edge-Sites", "type": "string", "jsonPath": ".status.edgeSitesText"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A 5G network slice served from edge sites (edgeslice intent).",
                            "required": ["spec"],
                            "x-kubernetes-validations": name_validations(),
                            "properties": {
                                "apiVersion": {
                                    "type": "string",
                                    "description": f"{API_VERSION} (versioned schema of this object)",
                                },
                                "kind": {"type": "string", "description": f"{KIND}"},
                                # The server allows nothing else here (its own ObjectMeta docs apply).
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
