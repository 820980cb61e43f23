"""What a placed slice looks like in Kubernetes, as plain manifest dicts (pure: no I/O).

Per slice: a namespace labelled with the slice's name, kind and S-NSSAI; a ResourceQuota and a
LimitRange sized to the compute placement granted; a NetworkPolicy that denies everything except
traffic inside the slice and from the controller and site agents; per edge site serving it, one
Deployment (and a Service when the workload has a port) per workload, pinned to that site's nodes
by node affinity; a PodDisruptionBudget per Deployment for vehicle slices.

Names are deterministic, so applying the same placement twice yields identical manifests and a
re-placement yields new Deployment names the realiser can prune the old ones by.

Ownership: every object carries an ownerReference so Kubernetes' garbage collector removes what
edgeslice made. With NetworkSlice intents the owner of everything (the Namespace included) is the
slice's cluster-scoped NetworkSlice; with SQLite intents there is no such object, so the slice's
Namespace (created by edgeslice, never adopted) owns the objects in it and is itself removed by
the controller from its durable store's tombstone.

Rollouts: each Deployment rolls out with ``maxSurge: 1, maxUnavailable: 0`` (a slice never runs
below its granted replicas during an update) and the ResourceQuota leaves room for exactly that
surge: the placement's pods, CPU and memory plus one pod of each Deployment. The ledger reserves
the steady state; the surge is transient and bounded by the quota.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from controller.core.placement_model import EdgeShare, Placement
from controller.core.topology import Topology
from slices.intent import SliceKind, Workload
from slices.profiles import SliceIntent

Manifest = dict[str, Any]

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "edgeslice"
SLICE_LABEL = "edgeslice.io/slice"
KIND_LABEL = "edgeslice.io/kind"
SNSSAI_LABEL = "edgeslice.io/snssai"
SITE_LABEL = "edgeslice.io/edge-site"
WORKLOAD_LABEL = "edgeslice.io/workload"
GENERATION_ANNOTATION = "edgeslice.io/generation"
SPEC_HASH_ANNOTATION = "edgeslice.io/spec-hash"

# Order in which objects are applied; deletion runs it backwards (namespace last).
KIND_ORDER = (
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "Deployment",
    "Service",
    "PodDisruptionBudget",
)

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class KubeSettings:
    """Cluster conventions the manifests follow (flags of the controller process)."""

    node_label_key: str = "edgeslice.io/site"  # node label whose value is the site's node_label
    namespace_prefix: str = "slice-"
    controller_namespace: str = "edgeslice-system"  # where the controller and agents run


def dns_name(*parts: str, limit: int = 63) -> str:
    """A DNS-1123 label made of ``parts``; too long or altered names get a stable hash suffix.

    >>> dns_name("cache", "Edge_North.1")
    'cache-edge-north-1-f80b0c'
    >>> dns_name("mqtt", "edge-1")
    'mqtt-edge-1'
    >>> len(dns_name("x" * 80))
    63
    """
    raw = "-".join(parts)
    clean = _NOT_DNS.sub("-", raw.lower()).strip("-") or "x"
    if clean == raw and len(clean) <= limit:
        return clean
    digest = hashlib.sha256(raw.encode()).hexdigest()[:6]
    return f"{clean[: limit - 7].rstrip('-')}-{digest}"


def namespace_name(slice_name: str, settings: KubeSettings) -> str:
    """The namespace a slice's objects live in.

    >>> namespace_name("cars", KubeSettings())
    'slice-cars'
    """
    return dns_name(settings.namespace_prefix + slice_name)


def slice_selector(slice_name: str) -> str:
    """The label selector that finds every object edgeslice made for a slice."""
    return f"{MANAGED_BY}={MANAGER},{SLICE_LABEL}={slice_name}"


def _labels(intent: SliceIntent, **extra: str) -> dict[str, str]:
    return {
        MANAGED_BY: MANAGER,
        SLICE_LABEL: intent.name,
        KIND_LABEL: intent.kind.value,
        SNSSAI_LABEL: intent.snssai,
        **extra,
    }


def _meta(name: str, namespace: str | None, labels: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def workload_name(workload: Workload, site: str) -> str:
    return dns_name(workload.name, site)


def owner_reference(api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    """An ownerReference marking edgeslice's owner as the controller of the object."""
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True}


def _deployment(
    intent: SliceIntent,
    namespace: str,
    share: EdgeShare,
    workload: Workload,
    replicas: int,
    node_value: str,
    settings: KubeSettings,
) -> Manifest:
    name = workload_name(workload, share.site)
    selector = {SLICE_LABEL: intent.name, WORKLOAD_LABEL: workload.name, SITE_LABEL: share.site}
    labels = _labels(intent, **{WORKLOAD_LABEL: workload.name, SITE_LABEL: share.site})
    container: dict[str, Any] = {
        "name": workload.name,
        "image": workload.image,
        "resources": {
            "requests": {"cpu": f"{workload.cpu_millicores}m", "memory": f"{workload.memory_mib}Mi"},
            "limits": {"cpu": f"{workload.cpu_millicores}m", "memory": f"{workload.memory_mib}Mi"},
        },
    }
    if workload.port is not None:
        container["ports"] = [{"name": "service", "containerPort": workload.port}]
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": settings.node_label_key, "operator": "In", "values": [node_value]}
                        ]
                    }
                ]
            }
        }
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"affinity": affinity, "containers": [container]},
            },
        },
    }


def render(
    intent: SliceIntent,
    placement: Placement,
    topology: Topology,
    settings: KubeSettings,
    generation: int,
    slice_owner: dict[str, Any] | None = None,
    namespace_owner: dict[str, Any] | None = None,
) -> list[Manifest]:
    """Every object the slice needs, in apply order.

    ``slice_owner`` (the NetworkSlice's ownerReference) goes on every object; without it,
    ``namespace_owner`` (the slice Namespace's) goes on every namespaced object.

    >>> from controller.core.placement_model import EdgeShare, Placement
    >>> from controller.core.topology_file import TopologyFile
    >>> from slices.intent import NetworkSlice
    >>> from slices.profiles import resolve
    >>> city = Topology.from_file(TopologyFile.model_validate({"sites": [
    ...     {"id": "c1", "kind": "cell", "location": {"lat": 0, "lon": 0}, "capacity": {"radioMbps": 100}},
    ...     {"id": "e1", "kind": "edge", "location": {"lat": 0, "lon": 0.02}, "nodeLabel": "north",
    ...      "capacity": {"cpuMillicores": 8000, "memoryMib": 16384}}],
    ...   "links": [{"a": "c1", "b": "e1", "bandwidthMbps": 1000, "latencyMs": 0.5}]}))
    >>> intent = resolve(NetworkSlice.model_validate({"metadata": {"name": "cars"},
    ...     "spec": {"kind": "vehicle", "coverage": {"sites": ["c1"]}}}))
    >>> placed = Placement("cars", intent.spec_hash, 75000, (), (EdgeShare("e1", 1, 4000, 4096, (("v2x-edge", 2),)),))
    >>> [(m["kind"], m["metadata"]["name"]) for m in render(intent, placed, city, KubeSettings(), 1)]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('Namespace', 'slice-cars'), ('ResourceQuota', 'edgeslice-quota'), ('LimitRange', 'edgeslice-limits'),
     ('NetworkPolicy', 'edgeslice-isolation'), ('Deployment', 'v2x-edge-e1'), ('Service', 'v2x-edge-e1'),
     ('PodDisruptionBudget', 'v2x-edge-e1')]
    """
    ns = namespace_name(intent.name, settings)
    labels = _labels(intent)
    namespace: Manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            **_meta(ns, None, {**labels, "edgeslice.io/sst": str(intent.sst)}),
            "annotations": {GENERATION_ANNOTATION: str(generation), SPEC_HASH_ANNOTATION: intent.spec_hash},
        },
    }
    by_name = {w.name: w for w in intent.workloads}
    # The steady state the placement granted, plus one surge pod per Deployment for rollouts.
    surge = [by_name[w] for e in placement.edges for w, n in e.replicas if n > 0 and w in by_name]
    cpu = sum(e.cpu_millicores for e in placement.edges) + sum(w.cpu_millicores for w in surge)
    mem = sum(e.memory_mib for e in placement.edges) + sum(w.memory_mib for w in surge)
    pods = sum(n for e in placement.edges for _, n in e.replicas) + len(surge)
    quota: Manifest = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta("edgeslice-quota", ns, labels),
        "spec": {
            "hard": {
                "requests.cpu": f"{cpu}m",
                "limits.cpu": f"{cpu}m",
                "requests.memory": f"{mem}Mi",
                "limits.memory": f"{mem}Mi",
                "pods": str(pods),
            }
        },
    }
    smallest = min(intent.workloads, key=lambda w: (w.cpu_millicores, w.memory_mib))
    limits: Manifest = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta("edgeslice-limits", ns, labels),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "max": {
                        "cpu": f"{max(w.cpu_millicores for w in intent.workloads)}m",
                        "memory": f"{max(w.memory_mib for w in intent.workloads)}Mi",
                    },
                    "default": {"cpu": f"{smallest.cpu_millicores}m", "memory": f"{smallest.memory_mib}Mi"},
                    "defaultRequest": {
                        "cpu": f"{smallest.cpu_millicores}m",
                        "memory": f"{smallest.memory_mib}Mi",
                    },
                }
            ]
        },
    }
    controller_peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": settings.controller_namespace}}
    }
    policy: Manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta("edgeslice-isolation", ns, labels),
        "spec": {
            # Selecting every pod with both policy types denies all traffic not allowed below.
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}, controller_peer]}],
            "egress": [
                {"to": [{"podSelector": {}}, controller_peer]},
                # Name resolution, or nothing in the slice can find its peers.
                {
                    "to": [{"namespaceSelector": {}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
            ],
        },
    }
    deployments: list[Manifest] = []
    services: list[Manifest] = []
    budgets: list[Manifest] = []
    for share in sorted(placement.edges, key=lambda e: e.site):
        site = topology.site(share.site)
        node_value = site.node_label or site.id
        for wname, replicas in sorted(share.replicas):
            workload = by_name.get(wname)
            if workload is None or replicas <= 0:
                continue
            dep = _deployment(intent, ns, share, workload, replicas, node_value, settings)
            deployments.append(dep)
            name = dep["metadata"]["name"]
            selector = dep["spec"]["selector"]["matchLabels"]
            if workload.port is not None:
                services.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": _meta(name, ns, dep["metadata"]["labels"]),
                        "spec": {
                            "selector": selector,
                            "ports": [{"name": "service", "port": workload.port, "targetPort": "service"}],
                        },
                    }
                )
            if intent.kind == SliceKind.VEHICLE:
                budgets.append(
                    {
                        "apiVersion": "policy/v1",
                        "kind": "PodDisruptionBudget",
                        "metadata": _meta(name, ns, dep["metadata"]["labels"]),
                        # Keep all but one replica through voluntary disruptions (drains).
                        "spec": {"minAvailable": max(1, replicas - 1), "selector": {"matchLabels": selector}},
                    }
                )
    out = [namespace, quota, limits, policy, *deployments, *services, *budgets]
    for manifest in out:
        owner = slice_owner if slice_owner is not None or manifest is namespace else namespace_owner
        if owner is not None:
            manifest["metadata"]["ownerReferences"] = [dict(owner)]
    return out


def object_key(manifest: Manifest) -> tuple[str, str, str]:
    """(kind, namespace, name): how the realiser tells objects apart.

    >>> object_key({"kind": "Namespace", "metadata": {"name": "slice-a"}})
    ('Namespace', '', 'slice-a')
    """
    meta = manifest["metadata"]
    return (str(manifest["kind"]), str(meta.get("namespace", "")), str(meta["name"]))
