"""Slice manifests for load: random but reproducible from a seeded ``random.Random``."""

from __future__ import annotations

import hashlib
import random

KINDS = {"iot": 3, "vehicle": 4, "wifi": 1}


def random_manifest(name: str, rng: random.Random, zones: list[str]) -> str:
    """A NetworkSlice manifest of a random kind, zone and priority (a wifi slice with a random
    downlink SLA), drawn from ``rng``; its S-NSSAI's SD comes from the name."""
    kind = rng.choice(sorted(KINDS))
    sd = hashlib.sha256(name.encode()).hexdigest()[:6]
    zone = rng.choice(zones)
    extra = ""
    if kind == "wifi":
        extra = f"\n  sla: {{dlMbpsPerCell: {rng.choice([50, 100, 200, 400])}}}"
    return (
        "apiVersion: edgeslice.io/v1alpha1\nkind: NetworkSlice\n"
        f"metadata: {{name: {name}}}\n"
        f"spec:\n  kind: {kind}\n  snssai: {{sst: {KINDS[kind]}, sd: '{sd}'}}\n"
        f"  coverage: {{zones: [{zone}]}}\n  priority: {rng.randint(0, 200)}{extra}\n"
    )
