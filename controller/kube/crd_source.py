"""Cluster mode: ``NetworkSlice`` custom resources are the intents.

The source lists and then watches the objects, hands every new or changed spec (by
``metadata.generation``, so our own status writes do not loop back) to
:meth:`controller.runtime.service.ControllerService.apply` with actor ``kubernetes``, deletes slices
whose object is gone, and writes each slice's state and conditions back through the status
subresource (only when they changed).

Deletion: every NetworkSlice gets the finalizer ``edgeslice.io/cleanup``. A deleted object
stays (Terminating) until a leader has removed what edgeslice made for it and then drops the
finalizer, so a deletion while no controller runs, or a missed event, is completed by the next
leader's first list. (The objects also carry ownerReferences to their NetworkSlice, so the
garbage collector follows.)

Status follows the spec:

- every condition's ``observedGeneration`` is the object's ``metadata.generation`` it was
  computed for (the service counts its own generations; the source maps them);
- a spec the controller refuses (``InvalidSpec``) is not stored; the refusal is on the status
  (``Admitted=False`` with the reason, and ``Ready=False`` if nothing runs) until the spec is fixed
  or reverted, which clears it;
- ``lastTransitionTime`` moves only when a condition's status does: the times already on the
  object are kept for conditions whose status did not change, so a restart or a hand-over (whose
  service computes its conditions afresh) rewrites none of them.

Events: refused specs, and the slice decisions of the audit trail (admit, reject, preempt, heal,
...) become ``events.k8s.io/v1`` Events regarding the NetworkSlice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import pydantic

from controller.kube import gateway as kube_gateway
from controller.runtime.service import ApplyResult, Event, SliceRecord
from slices import errors
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent

log = logging.getLogger(__name__)

ACTOR = "kubernetes"
KIND = "NetworkSlice"
API_VERSION = "edgeslice.io/v1alpha1"
FINALIZER = "edgeslice.io/cleanup"
REFUSED = "InvalidSpec"

#: Audit-trail actions that become Events on the NetworkSlice: (reason, type).
EVENT_ACTIONS = {
    "admit": ("Admitted", "Normal"),
    "readmit": ("Readmitted", "Normal"),
    "reject": ("Rejected", "Warning"),
    "preempt": ("Preempted", "Warning"),
    "heal": ("Healed", "Normal"),
    "degrade": ("Degraded", "Warning"),
    "realise-failed": ("RealiseFailed", "Warning"),
    "config-refused": ("ConfigRefused", "Warning"),
    "sla-violation": ("SLAViolated", "Warning"),
    "sla-met": ("SLAMet", "Normal"),
    "ready": ("Ready", "Normal"),
}


class SliceService(Protocol):
    """The part of :class:`controller.runtime.service.ControllerService` this source uses."""

    def apply(self, documents: list[NetworkSlice], actor: str) -> list[ApplyResult]: ...
    def delete(self, name: str, actor: str) -> None: ...
    def get(self, name: str) -> SliceRecord: ...
    def list_slices(self) -> list[SliceRecord]: ...


def document_of(obj: dict[str, Any]) -> NetworkSlice:
    """The intent in a custom resource (server-set metadata dropped); InvalidSpec names the field."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", "?"))
    doc = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {
            "name": name,
            "labels": meta.get("labels") or {},
            "annotations": {
                k: v
                for k, v in (meta.get("annotations") or {}).items()
                if k != "kubectl.kubernetes.io/last-applied-configuration"
            },
        },
        "spec": obj.get("spec"),
    }
    try:
        return NetworkSlice.model_validate(doc)
    except pydantic.ValidationError as exc:
        raise errors.InvalidSpec(errors.describe_validation_error(exc, f"NetworkSlice {name}")) from exc


def _condition(
    type_: str, status: str, reason: str, message: str, generation: int, at: str
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": at,
    }


def status_of(
    record: SliceRecord, generation: int, generations: dict[int, int] | None = None
) -> dict[str, Any]:
    """The object's status for the service's record. ``generations`` maps the service's own
    generations to the object's ``metadata.generation`` they were accepted at (the latest)."""
    intent: SliceIntent = record.intent
    placement = record.placement
    conditions = []
    for c in record.conditions:
        doc = c.model_dump(mode="json", by_alias=True)
        doc["observedGeneration"] = (generations or {}).get(c.observed_generation, generation)
        conditions.append(doc)
    return {
        "state": record.state.value,
        "reason": record.reason,
        "message": record.message,
        "observedGeneration": generation,
        "sst": intent.sst,
        "snssai": intent.snssai,
        "edgeSites": list(placement.edge_sites) if placement is not None else [],
        "edgeSitesText": ",".join(placement.edge_sites) if placement is not None else "",
        "conditions": conditions,
    }


def _rejected_status(reason: str, message: str, generation: int, at: str) -> dict[str, Any]:
    """A spec refused before anything was stored: every condition says so (so ``kubectl wait
    --for=condition=Ready`` ends with False instead of waiting on an empty list)."""
    return {
        "state": "Rejected",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "edgeSites": [],
        "edgeSitesText": "",
        "conditions": [
            _condition("Admitted", "False", reason, message, generation, at),
            _condition("Placed", "False", "NotPlaced", "no placement held", generation, at),
            _condition("Realised", "False", "NotPlaced", "nothing to realise", generation, at),
            _condition("Ready", "False", reason, message, generation, at),
        ],
    }


def _refused_update(
    status: dict[str, Any], generation: int, reason: str, message: str, at: str
) -> dict[str, Any]:
    """The status of a slice whose latest spec was refused while an earlier one keeps running."""
    out = dict(status)
    out["observedGeneration"] = generation
    out["reason"], out["message"] = reason, message
    conditions = [c for c in status.get("conditions") or [] if c["type"] != "Admitted"]
    conditions.insert(0, _condition("Admitted", "False", reason, message, generation, at))
    out["conditions"] = conditions
    return out


def keep_transition_times(status: dict[str, Any], current: dict[str, Any] | None, at: str) -> dict[str, Any]:
    """``status`` with the lastTransitionTime of every condition whose status is unchanged from
    ``current`` (what the object shows) taken from ``current``; a condition whose status changes
    on the object changes now (``at``), whatever the service's own time says.

    >>> new = {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "t2"}]}
    >>> old = {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "t1"}]}
    >>> keep_transition_times(new, old, "t3")["conditions"][0]["lastTransitionTime"]
    't1'
    >>> old["conditions"][0]["status"] = "False"
    >>> keep_transition_times(new, old, "t3")["conditions"][0]["lastTransitionTime"]
    't3'
    """
    before = {c.get("type"): c for c in (current or {}).get("conditions") or []}
    conditions = []
    for cond in status.get("conditions") or []:
        old = before.get(cond["type"])
        if old is not None and old.get("status") == cond["status"] and old.get("lastTransitionTime"):
            cond = {**cond, "lastTransitionTime": old["lastTransitionTime"]}  # noqa: PLW2901
        elif old is not None and old.get("status") != cond["status"]:
            cond = {**cond, "lastTransitionTime": at}  # noqa: PLW2901
        conditions.append(cond)
    return {**status, "conditions": conditions}


class CrdSource:
    def __init__(
        self,
        gateway: kube_gateway.KubeGateway,
        service: SliceService,
        cleanup: Callable[[str], bool] | None = None,
        events: kube_gateway.EventRecorder | None = None,
        audit: Callable[[int], Sequence[Event]] | None = None,
        now: Callable[[], str] | None = None,
        evidence: Callable[[str], bool] | None = None,
        evidence_wait_s: float = 10.0,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        """``cleanup(name)``: remove what was made for a deleted slice; True once nothing is left
        (the finalizer is dropped then). ``audit(after_seq)``: the service's audit trail.
        ``evidence(name)``: whether the realiser has told the service about a placed slice's
        workloads yet; until it has (at most ``evidence_wait_s`` into this term) the slice's
        status is not written, so a new leader, which starts knowing nothing, does not flip the
        object's conditions to Unknown and back."""
        self.gateway = gateway
        self.service = service
        self.cleanup = cleanup
        self.events = events
        self.audit = audit
        self.now = now or (lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self._generations: dict[str, int] = {}  # spec generation last handed to the service
        self._accepted: dict[str, dict[int, int]] = {}  # service generation -> object generation
        self._refused: dict[str, tuple[int, str, str]] = {}  # (generation, reason, message)
        self._objects: dict[str, dict[str, Any]] = {}  # latest object seen (its status included)
        self._written: dict[str, dict[str, Any]] = {}  # status last written per object
        self._audit_seq: int | None = None  # audit trail read up to here (None: not yet)
        self.evidence = evidence
        self.evidence_wait_s = evidence_wait_s
        self._monotonic = monotonic or time.monotonic
        self._term_started = self._monotonic()

    # -- intents in ---------------------------------------------------------------------------

    def sync(self) -> str:
        """List every NetworkSlice, apply what changed, delete what is gone; return the list's
        resourceVersion (where a watch continues from)."""
        items, version = self.gateway.list(KIND)
        present = set()
        for obj in items:
            present.add(obj["metadata"]["name"])
            self.handle("ADDED", obj)
        for record in self.service.list_slices():
            if record.name not in present:
                self._delete(record.name)
        if self._audit_seq is None:
            # What the first list decided rebuilds this term's state (a hand-over re-admits every
            # slice): not news. Events start from here.
            self._audit_seq = self._last_seq()
        return version

    def handle(self, event: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name"))
        generation = int(meta.get("generation") or 0)
        if event == "DELETED":
            self._delete(name)
            return
        self._objects[name] = obj
        if meta.get("deletionTimestamp"):
            self._finalize(obj)
            return
        if FINALIZER not in (meta.get("finalizers") or []):
            self._add_finalizer(obj)
        if self._generations.get(name) == generation:
            return  # a status write or a metadata change: nothing for the controller to do
        try:
            self.service.apply([document_of(obj)], ACTOR)
        except (errors.InvalidSpec, errors.AdmissionRejected) as exc:
            self._generations[name] = generation
            reason = exc.reason if isinstance(exc, errors.AdmissionRejected) else REFUSED
            self._refused[name] = (generation, reason, str(exc))
            self._event(name, "Warning", "Refused", "Refuse", f"generation {generation} refused: {exc}")
            self.write_status(name)
            return
        self._refused.pop(name, None)
        self._generations[name] = generation
        with contextlib.suppress(errors.NotFound):
            record = self.service.get(name)
            self._accepted.setdefault(name, {})[record.generation] = generation
        self.write_status(name)

    def _add_finalizer(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        body = {
            "metadata": {
                "finalizers": [*(meta.get("finalizers") or []), FINALIZER],
                "resourceVersion": meta.get("resourceVersion"),  # only over what we read
            }
        }
        try:
            updated = self.gateway.patch(KIND, meta["name"], body)
        except kube_gateway.KubeApiError as exc:
            if exc.status not in (404, 409):
                raise
            return  # changed or gone meanwhile: its next event brings us here again
        self._objects[meta["name"]] = updated

    def _finalize(self, obj: dict[str, Any]) -> None:
        """A deleted NetworkSlice: release and remove what it had, then drop our finalizer."""
        meta = obj["metadata"]
        name = str(meta["name"])
        finalizers = list(meta.get("finalizers") or [])
        with contextlib.suppress(errors.NotFound):
            self.service.delete(name, ACTOR)
        self._forget(name)
        if FINALIZER not in finalizers:
            return
        if self.cleanup is not None and not self.cleanup(name):
            log.info("NetworkSlice %s: cleanup not finished; keeping the finalizer", name)
            return
        index = finalizers.index(FINALIZER)
        ops = [
            {"op": "test", "path": f"/metadata/finalizers/{index}", "value": FINALIZER},
            {"op": "remove", "path": f"/metadata/finalizers/{index}"},
        ]
        try:
            self.gateway.patch(KIND, name, ops, content_type="application/json-patch+json")
        except kube_gateway.KubeApiError as exc:
            if exc.status not in (404, 409, 422):
                raise
            # Gone, or the list changed under us: the next event or list tries again.

    def _forget(self, name: str) -> None:
        self._generations.pop(name, None)
        self._accepted.pop(name, None)
        self._refused.pop(name, None)
        self._written.pop(name, None)

    def _delete(self, name: str) -> None:
        self._forget(name)
        self._objects.pop(name, None)
        with contextlib.suppress(errors.NotFound):
            self.service.delete(name, ACTOR)

    # -- status out ---------------------------------------------------------------------------

    def write_status(self, name: str, current: dict[str, Any] | None = None) -> bool:
        """Write the slice's status if it differs from what the object shows; True if written."""
        generation = self._generations.get(name)
        if generation is None:
            return False
        obj = self._objects.get(name) or {}
        shown = current if current is not None else obj.get("status")
        try:
            record: SliceRecord | None = self.service.get(name)
        except errors.NotFound:
            record = None
        refused = self._refused.get(name)
        at = self.now()
        if record is None and refused is None:
            return False
        if (
            record is not None
            and record.placement is not None
            and self.evidence is not None
            and name not in self._written
            and not self.evidence(name)
            and self._monotonic() - self._term_started < self.evidence_wait_s
        ):
            return False  # the next refresh writes it, with the workloads' evidence in
        if record is None:
            assert refused is not None
            status = _rejected_status(refused[1], refused[2], refused[0], at)
        else:
            accepted = self._accepted.get(name, {})
            latest = accepted.get(record.generation, generation)
            status = status_of(record, latest, accepted)
            if refused is not None:
                text = f"{refused[2]}; generation {latest} keeps running"
                status = _refused_update(status, refused[0], refused[1], text, at)
            else:
                status["observedGeneration"] = generation
        status = keep_transition_times(status, shown, at)
        return self._write(name, status, shown)

    def _write(self, name: str, status: dict[str, Any], current: dict[str, Any] | None) -> bool:
        if status == (current if current is not None else self._written.get(name)):
            return False
        if status == self._written.get(name):
            return False  # already written; the object we hold is older than our write
        try:
            updated = self.gateway.patch_status(KIND, name, status)
        except kube_gateway.KubeApiError as exc:
            if exc.status == 404:
                return False  # deleted meanwhile; the watch will tell us
            raise
        self._written[name] = status
        if name in self._objects:
            self._objects[name] = updated
        return True

    def refresh_statuses(self) -> int:
        """Write every slice's status that moved (after a reconcile, a site failure...), and
        report the audit trail's news as Events."""
        written = sum(self.write_status(name) for name in list(self._generations))
        self.emit_audit_events()
        return written

    # -- events -------------------------------------------------------------------------------

    def _last_seq(self) -> int:
        if self.audit is None:
            return 0
        seq = 0
        while True:
            batch = self.audit(seq)
            if not batch:
                return seq
            seq = batch[-1].seq

    def emit_audit_events(self) -> int:
        """Events on the NetworkSlices for the audit trail's slice decisions since the last call."""
        if self.audit is None or self._audit_seq is None:
            return 0
        emitted = 0
        for event in self.audit(self._audit_seq):
            self._audit_seq = event.seq
            mapped = EVENT_ACTIONS.get(event.action)
            if mapped is None or not event.slice:
                continue
            reason, type_ = mapped
            emitted += self._event(event.slice, type_, reason, event.action.title(), event.message)
        return emitted

    def _event(self, name: str, type_: str, reason: str, action: str, note: str) -> bool:
        if self.events is None:
            return False
        obj = self._objects.get(name) or {}
        uid = (obj.get("metadata") or {}).get("uid", "")
        regarding = {"apiVersion": API_VERSION, "kind": KIND, "name": name, "uid": uid}
        return self.events.emit(regarding, type_, reason, action, note)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event, watch_timeout_s: int = 30, error_pause_s: float = 2.0) -> None:
        """List, then watch from the list's version; list again when the watch ends or expires.

        Errors (API server unreachable, 410 Gone) pause and start over; nothing is lost because
        a fresh list is level-based: it applies what changed and deletes what disappeared.
        """
        while not stop.is_set():
            try:
                version = self.sync()
                self.refresh_statuses()
                for event, obj in self.gateway.watch(KIND, version, watch_timeout_s):
                    self.handle(event, obj)
                    self.refresh_statuses()
                    if stop.is_set():
                        return
            except errors.EdgesliceError:
                stop.wait(error_pause_s)


MAINTENANCE_CONFIGMAP = "edgeslice-maintenance"


class MaintenanceService(Protocol):
    def drain(self, site: str, actor: str) -> list[str]: ...

    def cordon(self, site: str, actor: str) -> tuple[bool, list[str]]: ...


class ClusterMaintenance:
    """Operator state a new leader needs, kept in the cluster: drained and cordoned sites.

    ConfigMap ``edgeslice-maintenance`` in the controller's namespace (the Lease's), one key per
    drained element, ``site.<id>``, and per cordoned site, ``cordon.<id>``, whose value is ``{"since": ..., "actor": ...}`` as JSON. The
    service calls :meth:`record` before it commits a drain or an undrain (a failure refuses the
    operation, so the cluster never lags what the operator was told); a replica that starts
    leading calls :meth:`restore` before any slice is placed.
    """

    def __init__(self, gateway: kube_gateway.KubeGateway, namespace: str) -> None:
        self.gateway = gateway
        self.namespace = namespace

    def drained(self) -> dict[str, dict[str, Any]]:
        """Drained elements as ``{"site.<id>": {"since", "actor"}}``."""
        cm = self.gateway.get("ConfigMap", MAINTENANCE_CONFIGMAP, self.namespace)
        out: dict[str, dict[str, Any]] = {}
        for key, value in ((cm or {}).get("data") or {}).items():
            try:
                doc = json.loads(value)
            except ValueError:
                doc = {}
            out[key] = doc if isinstance(doc, dict) else {}
        return out

    def restore(self, service: MaintenanceService) -> list[str]:
        """Drain (and cordon), in ``service``, every site the cluster says is drained (cordoned);
        returns them."""
        sites = []
        for key, doc in sorted(self.drained().items()):
            kind, _, name = key.partition(".")
            if kind not in ("site", "cordon"):
                continue
            try:
                if kind == "cordon":
                    service.cordon(name, str(doc.get("actor") or "cluster"))
                else:
                    service.drain(name, str(doc.get("actor") or "cluster"))
            except errors.NotFound:
                log.warning("%s/%s: drained site %s is not in the topology", self.namespace, key, name)
                continue
            sites.append(name)
        return sites

    def record(self, kind: str, name: str, drained: bool, actor: str) -> None:
        key = f"{kind}.{name}"
        value = json.dumps({"since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "actor": actor})
        body = {"data": {key: value if drained else None}}
        try:
            self.gateway.patch("ConfigMap", MAINTENANCE_CONFIGMAP, body, self.namespace)
            return
        except kube_gateway.KubeApiError as exc:
            if exc.status != 404 or not drained:
                if exc.status == 404:
                    return  # nothing stored, nothing to clear
                raise
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": MAINTENANCE_CONFIGMAP,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "edgeslice"},
            },
            "data": {key: value},
        }
        try:
            self.gateway.create(manifest)
        except kube_gateway.KubeApiError as exc:
            if exc.status != 409:
                raise
            self.gateway.patch("ConfigMap", MAINTENANCE_CONFIGMAP, body, self.namespace)
