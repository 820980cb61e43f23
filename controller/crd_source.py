"""Cluster mode: ``NetworkSlice`` custom resources are the intents.

The source lists and then watches the objects, hands every new or changed spec (by
``metadata.generation``, so our own status writes do not loop back) to
:meth:`controller.service.ControllerService.apply` with actor ``kubernetes``, deletes slices
whose object is gone, and writes each slice's state and conditions back through the status
subresource (only when they changed). A spec the controller refuses (``InvalidSpec``) is not
stored; the refusal is written on the object's status so ``kubectl get`` shows it.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Protocol

import pydantic

from controller import kube_gateway
from controller.service import ApplyResult, SliceRecord
from slices import errors
from slices.intent import NetworkSlice
from slices.profiles import SliceIntent

ACTOR = "kubernetes"
KIND = "NetworkSlice"


class SliceService(Protocol):
    """The part of :class:`controller.service.ControllerService` this source uses."""

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


def status_of(record: SliceRecord, generation: int) -> dict[str, Any]:
    intent: SliceIntent = record.intent
    placement = record.placement
    return {
        "state": record.state.value,
        "reason": record.reason,
        "message": record.message,
        "observedGeneration": generation,
        "sst": intent.sst,
        "snssai": intent.snssai,
        "edgeSites": list(placement.edge_sites) if placement is not None else [],
        "edgeSitesText": ",".join(placement.edge_sites) if placement is not None else "",
        "conditions": [c.model_dump(mode="json", by_alias=True) for c in record.conditions],
    }


def _rejected_status(reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "state": "Rejected",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "edgeSites": [],
        "edgeSitesText": "",
        "conditions": [],
    }


class CrdSource:
    def __init__(self, gateway: kube_gateway.KubeGateway, service: SliceService) -> None:
        self.gateway = gateway
        self.service = service
        self._generations: dict[str, int] = {}  # spec generation last handed to the service
        self._written: dict[str, dict[str, Any]] = {}  # status last written per object

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
        return version

    def handle(self, event: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name"))
        generation = int(meta.get("generation") or 0)
        if event == "DELETED":
            self._delete(name)
            return
        if self._generations.get(name) == generation:
            return  # a status write or a metadata change: nothing for the controller to do
        try:
            self.service.apply([document_of(obj)], ACTOR)
        except (errors.InvalidSpec, errors.AdmissionRejected) as exc:
            self._generations[name] = generation
            reason = exc.reason if isinstance(exc, errors.AdmissionRejected) else "InvalidSpec"
            self._write(name, _rejected_status(reason, str(exc), generation), obj.get("status"))
            return
        self._generations[name] = generation
        self.write_status(name, obj.get("status"))

    def _delete(self, name: str) -> None:
        self._generations.pop(name, None)
        self._written.pop(name, None)
        with contextlib.suppress(errors.NotFound):
            self.service.delete(name, ACTOR)

    # -- status out ---------------------------------------------------------------------------

    def write_status(self, name: str, current: dict[str, Any] | None = None) -> bool:
        """Write the slice's status if it differs from what the object shows; True if written."""
        generation = self._generations.get(name)
        if generation is None:
            return False
        try:
            record = self.service.get(name)
        except errors.NotFound:
            return False
        return self._write(name, status_of(record, generation), current)

    def _write(self, name: str, status: dict[str, Any], current: dict[str, Any] | None) -> bool:
        if status == (current if current is not None else self._written.get(name)):
            return False
        try:
            self.gateway.patch_status(KIND, name, status)
        except kube_gateway.KubeApiError as exc:
            if exc.status == 404:
                return False  # deleted meanwhile; the watch will tell us
            raise
        self._written[name] = status
        return True

    def refresh_statuses(self) -> int:
        """Write every slice's status that moved (after a reconcile, a site failure...)."""
        return sum(self.write_status(name) for name in list(self._generations))

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
