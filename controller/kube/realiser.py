"""Kubernetes realisation: the :class:`controller.runtime.realisation.Realiser` that makes a placed slice
real objects in a cluster, through :class:`controller.kube.gateway.KubeGateway`, and keeps them so.

``realise`` checks ownership first, then server-side applies every desired object and prunes the
slice's objects that are no longer desired (a re-placement creates Deployments on the new site
and deletes those on the old one).

**Ownership, never adoption.** The slice's namespace is created with a plain create (so it fails
if someone made one meanwhile), never by apply; an existing namespace is the slice's only if it
carries edgeslice's managed-by and slice labels (and, with NetworkSlice intents, an
ownerReference to this slice's NetworkSlice). Any other is left untouched, never labelled or
deleted: the realisation fails with reason ``NamespaceConflict`` naming it. Every object carries
an ownerReference (see :mod:`controller.kube.manifests`) so the garbage collector removes what we
made even when no controller runs.

**Level-triggered on what it owns.** :meth:`KubeRealiser.start` runs one list-then-watch loop per
kind it creates (by the managed-by label; every watch ends after ``resync_s`` and the loop lists
again: the periodic resync). Each event is compared with what was last applied: an object that
is desired but gone is applied again; an object whose fields we applied are now owned by another
field manager (``managedFields`` say who: ``kubectl scale``, ``kubectl set image``, ...) is
applied again with force, and an Event names what was reverted and from which manager.
Deployments' status tells the service whether the slice's workloads are Available
(:meth:`WorkloadSink.record_workloads`), which ``Realised`` and ``Ready`` follow.

API errors become a failed :class:`RealisationResult` whose reason (Forbidden, Invalid,
Unreachable, NamespaceConflict, ...) and message the service puts on the slice's ``Realised``
condition; the intent itself is never touched, so the next reconcile tries again.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.core.placement_model import Placement
from controller.core.topology import Topology
from controller.kube import gateway as kube_gateway
from controller.kube import manifests as kube_manifests
from controller.kube.manifests import KubeSettings
from controller.runtime.realisation import RealisationResult
from slices import errors
from slices.profiles import SliceIntent
from slices.status import ConditionStatus

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (kind, namespace, name)

# Kinds whose set of objects changes with the placement: the ones pruning has to look at.
_PRUNED_KINDS = ("Deployment", "Service", "PodDisruptionBudget")
# Every namespaced kind we create, deleted in reverse apply order on removal.
_NAMESPACED_KINDS = tuple(reversed(kube_manifests.KIND_ORDER[1:]))
#: What the drift loops watch: every kind edgeslice creates.
WATCHED_KINDS = kube_manifests.KIND_ORDER

NAMESPACE_CONFLICT = "NamespaceConflict"
WORKLOADS_AVAILABLE = "WorkloadsAvailable"
WORKLOADS_UNAVAILABLE = "WorkloadsUnavailable"


class WorkloadSink(Protocol):
    """Where the availability of a slice's workloads goes (the service)."""

    def record_workloads(self, name: str, status: ConditionStatus, reason: str, message: str) -> None: ...


# -- managedFields (FieldsV1) as sets of paths -------------------------------------------------


def fields_minus(a: Obj, b: Obj) -> Obj:
    """The fields of ``a`` that ``b`` does not own (FieldsV1 trees).

    >>> fields_minus({"f:spec": {"f:replicas": {}, "f:paused": {}}}, {"f:spec": {"f:paused": {}}})
    {'f:spec': {'f:replicas': {}}}
    >>> fields_minus({"f:spec": {"f:replicas": {}}}, {"f:spec": {"f:replicas": {}}})
    {}
    """
    out: Obj = {}
    for key, sub in a.items():
        if key == ".":
            continue
        if key not in b:
            out[key] = sub
        elif sub:
            rest = fields_minus(sub, b[key])
            if rest:
                out[key] = rest
    return out


def fields_intersect(a: Obj, b: Obj) -> bool:
    """Whether two FieldsV1 trees share a field.

    >>> fields_intersect({"f:spec": {"f:replicas": {}}}, {"f:spec": {"f:replicas": {}}})
    True
    >>> fields_intersect({"f:spec": {"f:replicas": {}}}, {"f:spec": {"f:paused": {}}})
    False
    """
    for key, sub in a.items():
        if key == "." or key not in b:
            continue
        other = b[key]
        if not sub or not other or fields_intersect(sub, other):
            return True
    return False


def field_paths(tree: Obj, prefix: str = "") -> list[str]:
    """Readable leaf paths of a FieldsV1 tree.

    >>> field_paths({"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}}})
    ['spec.template.spec.containers[name=web].image']
    """
    out: list[str] = []
    for key, sub in sorted(tree.items()):
        if key == ".":
            continue
        kind, _, rest = key.partition(":")
        if kind == "f":
            path = f"{prefix}.{rest}" if prefix else rest
        elif kind == "k":
            try:
                parts = ",".join(f"{k}={v}" for k, v in json.loads(rest).items())
            except (ValueError, AttributeError):
                parts = rest
            path = f"{prefix}[{parts}]"
        else:
            path = f"{prefix}[{rest}]"
        out.extend(field_paths(sub, path) if sub else [path])
    return out


def _managed(obj: Obj) -> list[Obj]:
    return list((obj.get("metadata") or {}).get("managedFields") or [])


def _our_fields(obj: Obj, manager: str) -> Obj:
    for entry in _managed(obj):
        if (
            entry.get("manager") == manager
            and entry.get("operation") == "Apply"
            and not entry.get("subresource")
        ):
            fields = entry.get("fieldsV1") or {}
            return fields if isinstance(fields, dict) else {}
    return {}


def _version(obj: Obj) -> int:
    """The object's resourceVersion as a number (etcd's revision), or -1 if it is not one."""
    text = str((obj.get("metadata") or {}).get("resourceVersion", ""))
    return int(text) if text.isdigit() else -1


def _key(obj: Obj, kind: str) -> Key:
    meta = obj.get("metadata") or {}
    return (kind, str(meta.get("namespace") or ""), str(meta.get("name", "")))


def _shown(key: Key) -> str:
    kind, namespace, name = key
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def deployment_availability(dep: Obj) -> str | None:
    """Why a Deployment is not Available for its current generation (None when it is).

    >>> deployment_availability({"metadata": {"generation": 2}, "spec": {"replicas": 2},
    ...     "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 2,
    ...                "replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}})
    >>> deployment_availability({"metadata": {"generation": 2}, "spec": {"replicas": 2},
    ...     "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 0,
    ...                "conditions": [{"type": "Available", "status": "False"}]}})
    '0/2 replicas available'
    """
    meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    want = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 0)):
        return f"generation {meta.get('generation')} not yet observed by the deployment controller"
    available = next((c for c in status.get("conditions") or [] if c.get("type") == "Available"), None)
    ready = int(status.get("availableReplicas", 0))
    if available is None or available.get("status") != "True" or ready < want:
        return f"{ready}/{want} replicas available"
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", updated))
    if updated < want or total > want:
        return f"rolling out: {updated}/{want} replicas updated, {total} running"
    return None


@dataclass
class _Desired:
    intent: SliceIntent
    placement: Placement
    generation: int
    manifests: dict[Key, Obj]
    owner: Obj | None  # the ownerReference's target (regarding of events)
    fields: dict[Key, Obj] = field(default_factory=dict)  # our Apply fields after our last write
    versions: dict[Key, int] = field(default_factory=dict)  # newest resourceVersion judged
    deployments: dict[Key, Obj] = field(default_factory=dict)  # latest seen Deployment objects


class KubeRealiser:
    name = "kubernetes"

    def __init__(
        self,
        gateway: kube_gateway.KubeGateway,
        topology: Topology,
        settings: KubeSettings | None = None,
        slice_objects: bool = False,
        events: kube_gateway.EventRecorder | None = None,
        resync_s: int = 30,
    ) -> None:
        """``slice_objects``: NetworkSlice objects exist (``--intents crd``) and own what we create;
        otherwise the slice's Namespace owns the objects in it."""
        self.gateway = gateway
        self.topology = topology
        self.settings = settings or KubeSettings()
        self.slice_objects = slice_objects
        self.events = events
        self.resync_s = resync_s
        self.workloads: WorkloadSink | None = None
        self.leading: Callable[[], bool] = lambda: True
        self._lock = threading.RLock()
        self._applied: dict[str, frozenset[Key]] = {}
        self._desired: dict[str, _Desired] = {}
        self._owner_uids: dict[str, str] = {}
        self._reported: dict[str, tuple[ConditionStatus, str, str]] = {}
        self._delivered: set[str] = set()  # slices whose availability the sink has heard
        self._outbox: queue.Queue[tuple[str, ConditionStatus, str, str] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._last_list_version: dict[str, str] = {}
        self.repairs = 0  # drift repairs done (benchmarks)

    # -- realise / remove ---------------------------------------------------------------------

    def realise(self, intent: SliceIntent, placement: Placement, generation: int) -> RealisationResult:
        with self._lock:
            try:
                return self._realise(intent, placement, generation)
            except kube_gateway.KubeApiError as exc:
                self._applied.pop(intent.name, None)
                return RealisationResult(False, exc.reason, exc.message)

    def _slice_owner(self, name: str) -> Obj | None:
        """The NetworkSlice's ownerReference, or None (SQLite intents); NotFound if it is gone."""
        if not self.slice_objects:
            return None
        uid = self._owner_uids.get(name)
        if uid is None:
            obj = self.gateway.get("NetworkSlice", name)
            if obj is None:
                raise kube_gateway.KubeApiError(404, "OwnerMissing", f"NetworkSlice {name} does not exist")
            uid = str(obj["metadata"]["uid"])
            self._owner_uids[name] = uid
        return kube_manifests.owner_reference("edgeslice.io/v1alpha1", "NetworkSlice", name, uid)

    def _foreign(self, ns: Obj, slice_name: str, owner: Obj | None) -> str | None:
        """Why an existing namespace is not this slice's (None when it is ours)."""
        meta = ns.get("metadata") or {}
        labels = meta.get("labels") or {}
        name = meta.get("name")
        if labels.get(kube_manifests.MANAGED_BY) != kube_manifests.MANAGER or (
            labels.get(kube_manifests.SLICE_LABEL) != slice_name
        ):
            return (
                f"namespace {name} exists and was not created by edgeslice for slice {slice_name} "
                f"(no {kube_manifests.MANAGED_BY}={kube_manifests.MANAGER}, "
                f"{kube_manifests.SLICE_LABEL}={slice_name} labels): it is not adopted; rename the "
                "slice or remove that namespace"
            )
        if owner is not None:
            uids = {str(r.get("uid")) for r in meta.get("ownerReferences") or []}
            if owner["uid"] not in uids:
                return (
                    f"namespace {name} belongs to another NetworkSlice {slice_name} (not uid "
                    f"{owner['uid']}): it is not adopted"
                )
        return None

    def _namespace(self, intent: SliceIntent, owner: Obj | None) -> Obj | RealisationResult:
        """The slice's namespace, created if missing; a failed result if it is not ours."""
        ns_name = kube_manifests.namespace_name(intent.name, self.settings)
        ns = self.gateway.get("Namespace", ns_name)
        if ns is None:
            # A plain create, not an apply: if someone makes the namespace meanwhile, we get 409
            # and look again instead of taking it over.
            manifest = kube_manifests.render(
                intent, _nothing_placed(intent), self.topology, self.settings, 0, owner
            )[0]
            try:
                return self.gateway.create(manifest)
            except kube_gateway.KubeApiError as exc:
                if exc.status != 409:
                    raise
                ns = self.gateway.get("Namespace", ns_name)
                if ns is None:
                    raise
        why = self._foreign(ns, intent.name, owner)
        if why is not None:
            return RealisationResult(False, NAMESPACE_CONFLICT, why)
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            return RealisationResult(
                False, "NamespaceTerminating", f"namespace {ns_name} is being deleted; waiting to recreate it"
            )
        return ns

    def _realise(self, intent: SliceIntent, placement: Placement, generation: int) -> RealisationResult:
        try:
            owner = self._slice_owner(intent.name)
        except kube_gateway.KubeApiError as exc:
            if exc.reason != "OwnerMissing":
                raise
            return RealisationResult(False, exc.reason, exc.message)
        ns = self._namespace(intent, owner)
        if isinstance(ns, RealisationResult):
            self._conflict(intent.name, ns)
            return ns
        ns_meta = ns["metadata"]
        ns_owner = None
        if owner is None:
            ns_owner = kube_manifests.owner_reference("v1", "Namespace", ns_meta["name"], str(ns_meta["uid"]))
            ns_owner["controller"] = False  # the namespace is an owner, not a controller
        desired = kube_manifests.render(
            intent, placement, self.topology, self.settings, generation, owner, ns_owner
        )
        keys = frozenset(kube_manifests.object_key(m) for m in desired)
        state = _Desired(
            intent,
            placement,
            generation,
            {kube_manifests.object_key(m): m for m in desired},
            owner,
        )
        old = self._desired.get(intent.name)
        if old is not None:
            state.deployments = {k: v for k, v in old.deployments.items() if k in state.manifests}
        self._desired[intent.name] = state
        for manifest in desired:
            self._apply(state, manifest)
        pruned = 0
        if self._applied.get(intent.name) != keys:
            pruned = self._prune(intent.name, set(keys), _PRUNED_KINDS)
        self._applied[intent.name] = keys
        self._judge_workloads(intent.name)
        sites = ", ".join(placement.edge_sites) or "no edge site"
        message = f"{len(desired)} objects applied in namespace {desired[0]['metadata']['name']} ({sites})"
        if pruned:
            message += f"; {pruned} pruned"
        return RealisationResult(True, "Applied", message)

    def _apply(self, state: _Desired, manifest: Obj) -> Obj:
        key = kube_manifests.object_key(manifest)
        obj = self.gateway.apply(manifest)
        state.fields[key] = _our_fields(obj, self.gateway.field_manager)
        state.versions[key] = max(state.versions.get(key, -1), _version(obj))
        if key[0] == "Deployment":
            state.deployments[key] = obj
        return obj

    def _prune(self, slice_name: str, keep: set[Key], kinds: tuple[str, ...]) -> int:
        namespace = kube_manifests.namespace_name(slice_name, self.settings)
        selector = kube_manifests.slice_selector(slice_name)
        pruned = 0
        for kind in kinds:
            items, _ = self.gateway.list(kind, namespace, selector)
            for item in items:
                name = str(item["metadata"]["name"])
                if (kind, namespace, name) not in keep and self.gateway.delete(kind, name, namespace):
                    pruned += 1
        return pruned

    def remove(self, name: str) -> RealisationResult:
        with self._lock:
            self._applied.pop(name, None)
            self._desired.pop(name, None)
            self._reported.pop(name, None)
            self._delivered.discard(name)
            uid = self._owner_uids.pop(name, None)
            namespace = kube_manifests.namespace_name(name, self.settings)
            try:
                ns = self.gateway.get("Namespace", namespace)
                owner = (
                    kube_manifests.owner_reference("edgeslice.io/v1alpha1", "NetworkSlice", name, uid)
                    if uid is not None
                    else None
                )
                if ns is not None and self._foreign(ns, name, owner) is not None:
                    return RealisationResult(True, "Removed", f"0 objects deleted ({namespace} is not ours)")
                removed = self._prune(name, set(), _NAMESPACED_KINDS) if ns is not None else 0
                if ns is not None and self.gateway.delete("Namespace", namespace):
                    removed += 1
            except kube_gateway.KubeApiError as exc:
                return RealisationResult(False, exc.reason, exc.message)
            return RealisationResult(True, "Removed", f"{removed} objects deleted")

    # -- workloads' availability ----------------------------------------------------------------

    def _conflict(self, name: str, result: RealisationResult) -> None:
        self._desired.pop(name, None)
        self._report(name, ConditionStatus.FALSE, result.reason, result.message)

    def _judge_workloads(self, name: str) -> None:
        state = self._desired.get(name)
        if state is None:
            return
        wanted = sorted(k for k in state.manifests if k[0] == "Deployment")
        problems = []
        for key in wanted:
            dep = state.deployments.get(key)
            why = "not created yet" if dep is None else deployment_availability(dep)
            if why is not None:
                problems.append(f"Deployment {key[1]}/{key[2]}: {why}")
        if problems:
            self._report(name, ConditionStatus.FALSE, WORKLOADS_UNAVAILABLE, "; ".join(problems))
        else:
            self._report(
                name,
                ConditionStatus.TRUE,
                WORKLOADS_AVAILABLE,
                f"{len(wanted)} Deployments available" if wanted else "no workloads to run",
            )

    def _report(self, name: str, status: ConditionStatus, reason: str, message: str) -> None:
        value = (status, reason, message)
        if self._reported.get(name) == value:
            return
        self._reported[name] = value
        self._outbox.put((name, status, reason, message))

    def workloads_of(self, name: str) -> tuple[ConditionStatus, str, str] | None:
        """The availability last reported for a slice (tests, benchmarks)."""
        with self._lock:
            return self._reported.get(name)

    def _deliver(self, stop: threading.Event) -> None:
        while not stop.is_set():
            item = self._outbox.get()
            if item is None:
                return
            sink = self.workloads
            if sink is None or not self.leading():
                continue
            try:
                sink.record_workloads(*item)
            except errors.EdgesliceError as exc:  # e.g. the slice was deleted meanwhile
                log.debug("record_workloads %s: %s", item[0], exc)
            except Exception:
                log.exception("record_workloads %s failed", item[0])
            with self._lock:
                if self._reported.get(item[0]) is not None:
                    self._delivered.add(item[0])

    def reported(self, name: str) -> bool:
        """Whether the sink has been told this slice's workloads' availability (this term)."""
        with self._lock:
            return name in self._delivered

    # -- drift: list, watch, repair -------------------------------------------------------------

    def start(self, stop: threading.Event) -> None:
        """Run the watch loops (one per kind) and the workloads notifier until ``stop`` is set."""
        selector = f"{kube_manifests.MANAGED_BY}={kube_manifests.MANAGER}"
        for kind in WATCHED_KINDS:
            t = threading.Thread(
                target=self._watch_loop, args=(kind, selector, stop), name=f"watch-{kind}", daemon=True
            )
            t.start()
            self._threads.append(t)
        notifier = threading.Thread(target=self._deliver, args=(stop,), name="workloads", daemon=True)
        notifier.start()
        self._threads.append(notifier)

    def stop(self) -> None:
        self._outbox.put(None)

    def _watch_loop(self, kind: str, selector: str, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.resync(kind, selector)
                version = self._last_list_version.get(kind, "")
                for event, obj in self.gateway.watch(kind, version, self.resync_s, selector=selector):
                    if stop.is_set():
                        return
                    self.handle(kind, event, obj)
            except errors.EdgesliceError as exc:
                log.info("watching %s: %s; listing again", kind, exc)
                stop.wait(1.0)
            except Exception:
                log.exception("watching %s failed; listing again", kind)
                stop.wait(1.0)

    def resync(self, kind: str, selector: str | None = None) -> None:
        """Compare every object of ``kind`` we own with what is desired; repair what drifted or
        disappeared (the periodic, level-triggered half of the loop)."""
        items, version = self.gateway.list(
            kind, selector=selector or f"{kube_manifests.MANAGED_BY}={kube_manifests.MANAGER}"
        )
        self._last_list_version[kind] = version
        listed_at = int(version) if version.isdigit() else -1
        present = set()
        for obj in items:
            present.add(_key(obj, kind))
            self.handle(kind, "ADDED", obj)
        with self._lock:
            # Missing from the list, and not written by us after it was taken (a slice realised
            # meanwhile is not "deleted"): only those are recreated.
            missing = [
                (name, key)
                for name, state in self._desired.items()
                for key in state.manifests
                if key[0] == kind
                and key not in present
                and listed_at >= 0
                and state.versions.get(key, -1) <= listed_at
            ]
        for name, key in missing:
            self._recreate(name, key)

    def handle(self, kind: str, event: str, obj: Obj) -> None:
        """One watch event about an object we created."""
        meta = obj.get("metadata") or {}
        slice_name = str((meta.get("labels") or {}).get(kube_manifests.SLICE_LABEL, ""))
        key = _key(obj, kind)
        if event == "DELETED":
            self._recreate(slice_name, key)
            return
        with self._lock:
            state = self._desired.get(slice_name)
            if state is None or key not in state.manifests or not self.leading():
                return
            if meta.get("deletionTimestamp"):
                return  # being deleted: its DELETED event follows
            version = _version(obj)
            if 0 <= version <= state.versions.get(key, -1):
                return  # what we wrote, or older than what we have judged
            state.versions[key] = version
            if kind == "Deployment":
                state.deployments[key] = obj
            lost = fields_minus(state.fields.get(key) or {}, _our_fields(obj, self.gateway.field_manager))
            if lost:
                self._repair(state, key, obj, lost)
            if kind == "Deployment":
                self._judge_workloads(slice_name)

    def _repair(self, state: _Desired, key: Key, obj: Obj, lost: Obj) -> None:
        ours = self.gateway.field_manager
        managers = sorted(
            {
                str(e.get("manager"))
                for e in _managed(obj)
                if e.get("manager") != ours
                and e.get("subresource") != "status"
                and fields_intersect(e.get("fieldsV1") or {}, lost)
            }
        )
        paths = field_paths(lost)
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        who = ", ".join(managers) or "another field manager"
        try:
            self._apply(state, state.manifests[key])
        except kube_gateway.KubeApiError as exc:
            log.warning("repairing %s failed: %s", _shown(key), exc)
            return
        self._repaired(state, key, "Revert", f"{_shown(key)}: reverted {shown} (changed by {who})")

    def _recreate(self, slice_name: str, key: Key) -> None:
        with self._lock:
            state = self._desired.get(slice_name)
            if state is None or key not in state.manifests or not self.leading():
                return
            state.versions.pop(key, None)
            state.deployments.pop(key, None)
            try:
                if key[0] == "Namespace":
                    result = self._realise(state.intent, state.placement, state.generation)
                    if not result.ok:
                        log.warning("recreating %s: %s", _shown(key), result.message)
                        return
                else:
                    self._apply(state, state.manifests[key])
            except kube_gateway.KubeApiError as exc:
                # E.g. its namespace is being deleted: the namespace's own event (or the next
                # resync) brings everything back.
                log.info("recreating %s: %s", _shown(key), exc)
                return
            self._repaired(state, key, "Recreate", f"{_shown(key)} was deleted; recreated")
            if key[0] == "Deployment":
                self._judge_workloads(slice_name)

    def _repaired(self, state: _Desired, key: Key, action: str, note: str) -> None:
        """Count, log and record (a DriftRepaired event) one repair of drift."""
        self.repairs += 1
        log.info("drift repaired: %s", note)
        self._event(state, key, "DriftRepaired", action, note)

    def _event(self, state: _Desired, key: Key, reason: str, action: str, note: str) -> None:
        if self.events is None:
            return
        if state.owner is not None:
            regarding = {k: state.owner[k] for k in ("apiVersion", "kind", "name", "uid")}
        else:
            manifest = state.manifests[key]
            regarding = {
                "apiVersion": manifest["apiVersion"],
                "kind": manifest["kind"],
                "name": key[2],
                **({"namespace": key[1]} if key[1] else {}),
            }
        self.events.emit(regarding, "Warning", reason, action, note)


def _nothing_placed(intent: SliceIntent) -> Placement:
    """A placement with nothing placed: renders only the namespace-level objects."""
    return Placement(intent.name, intent.spec_hash, 0, (), ())


def build_kube_realiser(
    topology: Topology,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    node_label_key: str = KubeSettings.node_label_key,
    host: str | None = None,
    slice_objects: bool = False,
    metrics: kube_gateway.RequestMetrics | None = None,
    identity: str = "edgeslice",
) -> KubeRealiser:
    """The realiser for ``controller --kube``: in-cluster config, or a kubeconfig and context."""
    api = kube_gateway.api_client_for(kubeconfig, context, in_cluster, host)
    gateway = kube_gateway.KubeGateway(api, metrics=metrics)
    return KubeRealiser(
        gateway,
        topology,
        KubeSettings(node_label_key=node_label_key),
        slice_objects=slice_objects,
        events=kube_gateway.EventRecorder(gateway, identity),
    )
