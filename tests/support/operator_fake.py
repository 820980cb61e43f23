"""An in-memory implementation of :class:`controller.api.ports.OperatorPort` (what the operator API
needs from the controller), every method of it.

Only for unit tests of the operator API's translation layer (auth, status codes, messages,
streaming). The integration tests run the real service on a real SQLite store.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from controller.api.ports import OperatorPort
from controller.core.topology import LinkKey, Topology
from controller.core.topology_file import TopologyFile
from controller.runtime import service as service_mod
from slices import errors, intent, profiles
from slices.status import Condition, ConditionStatus, ConditionType

REJECT_ANNOTATION = "fake.edgeslice.io/reject"
# The token the tests' servers accept, as gRPC metadata, and a one-slice document (``SLICE % name``).
TOKEN = "alice-token-0123456789"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
SLICE = """
apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {name: %s}
spec: {kind: iot, coverage: {zones: [north]}}
"""
SITES = ("cell-1", "cell-2", "edge-1")
LINKS = (("cell-1", "edge-1"), ("cell-2", "edge-1"))


def topology_file() -> TopologyFile:
    """The fake's city: two cells, each linked to one edge site."""

    def site(name: str) -> dict[str, object]:
        edge = name.startswith("edge")
        capacity = {"cpuMillicores": 8000, "memoryMib": 16384} if edge else {"radioMbps": 100}
        return {
            "id": name,
            "kind": "edge" if edge else "cell",
            "location": {"lat": 0, "lon": 0},
            "capacity": capacity,
        }

    return TopologyFile.model_validate(
        {
            "name": "fake-city",
            "sites": [site(s) for s in SITES],
            "links": [{"a": a, "b": b, "bandwidthMbps": 10, "latencyMs": 1} for a, b in LINKS],
        }
    )


class FakeService:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.slices: dict[str, service_mod.SliceRecord] = {}
        self.log: list[service_mod.Event] = []
        self.drained: set[str] = set()
        self.cordoned: set[str] = set()
        self.source = topology_file()
        self.calls: list[tuple[str, str]] = []  # (operation, actor) of every change

    @property
    def revision(self) -> int:
        """Bumps with every change (each one is an event here)."""
        return len(self.log)

    def record_event(
        self, actor: str, action: str, slice_name: str | None, site: str | None, message: str
    ) -> None:
        """Append an event to the log (as the service does; tests call it to make one happen)."""
        with self._lock:
            self.log.append(
                service_mod.Event(
                    len(self.log) + 1, datetime.now(UTC), actor, action, slice_name, site, message
                )
            )
            self._lock.notify_all()

    def apply(
        self, documents: Sequence[intent.NetworkSlice], actor: str, dry_run: bool = False
    ) -> list[service_mod.ApplyResult]:
        resolved = [(d, profiles.resolve(d)) for d in documents]  # all validated before any is stored
        if not dry_run:
            self.calls.append(("apply", actor))
        out = []
        now = datetime.now(UTC)
        for doc, slice_intent in resolved:
            old = self.slices.get(doc.name)
            changed = old is None or old.intent.spec_hash != slice_intent.spec_hash
            generation = (old.generation if old else 0) + (1 if changed else 0)
            rejected = REJECT_ANNOTATION in doc.metadata.annotations
            state = service_mod.SliceState.REJECTED if rejected else service_mod.SliceState.ADMITTED
            reason = "InsufficientBandwidth" if rejected else ""
            message = "link agg-1:edge-1 is short by 5000 kbit/s" if rejected else "placed on edge-1"
            out.append(service_mod.ApplyResult(doc.name, generation, changed, state, reason, message))
            if dry_run:
                continue  # decided, nothing stored
            condition = Condition(
                type=ConditionType.ADMITTED,
                status=ConditionStatus.FALSE if rejected else ConditionStatus.TRUE,
                reason=reason or "Admitted",
                message=message,
                observed_generation=generation,
                last_transition_time=now,
            )
            self.slices[doc.name] = service_mod.SliceRecord(
                name=doc.name,
                generation=generation,
                document=doc,
                intent=slice_intent,
                state=state,
                placement=None,
                conditions=(condition,),
                reason=reason,
                message=message,
                created_at=old.created_at if old else now,
                updated_at=now,
            )
            self.record_event(actor, "apply", doc.name, None, f"generation {generation}")
        return out

    def delete(self, name: str, actor: str) -> None:
        self.get(name)
        self.calls.append(("delete", actor))
        del self.slices[name]
        self.record_event(actor, "delete", name, None, "deleted")

    def get(self, name: str) -> service_mod.SliceRecord:
        try:
            return self.slices[name]
        except KeyError:
            raise errors.NotFound(f"slice {name!r} does not exist") from None

    def list_slices(self) -> list[service_mod.SliceRecord]:
        return list(self.slices.values())

    def explain(self, name: str) -> dict[str, object]:
        """In the real service's shape: an admitted slice is placed on edge-1 (both cells), a
        rejected one has a failed check and a binding constraint."""
        record = self.get(name)
        i = record.intent
        rejected = record.state == service_mod.SliceState.REJECTED
        out: dict[str, object] = {
            "slice": name,
            "generation": record.generation,
            "state": record.state.value,
            "reason": record.reason,
            "message": record.message,
            "resolved": {
                "kind": i.kind.value,
                "snssai": i.snssai,
                "latencyMs": i.latency_ms,
                "kbpsPerCell": i.kbps_per_cell,
                "priority": i.priority,
                "preemptible": i.preemptible,
                "fiveQI": i.five_qi,
            },
            "conditions": [c.model_dump(mode="json", by_alias=True) for c in record.conditions],
            "decision": {
                "status": record.conditions[0].status.value,
                "reason": record.conditions[0].reason,
                "message": record.conditions[0].message,
            },
            "checks": [
                {"check": "latency", "passed": True},
                {"check": "bandwidth", "passed": True}
                if not rejected
                else {
                    "check": "bandwidth",
                    "passed": False,
                    "reason": record.reason,
                    "message": record.message,
                },
            ],
        }
        if rejected:
            out["bindingConstraint"] = {"reason": record.reason, "message": record.message}
        else:
            out["placement"] = {
                "generation": record.generation,
                "edges": [{"site": "edge-1", "cells": 2, "cpuMillicores": 1000, "memoryMib": 512}],
                "worstLatencyMs": 1.5,
                "routes": [
                    {"cell": c, "edge": "edge-1", "path": [c, "edge-1"], "latencyMs": 1.0 + n / 2}
                    for n, c in enumerate(("cell-1", "cell-2"))
                ],
                "unserved": [],
            }
        return out

    def events(
        self, after_seq: int = 0, limit: int = 1000, slice_name: str | None = None
    ) -> list[service_mod.Event]:
        with self._lock:
            found = [
                e for e in self.log if e.seq > after_seq and (slice_name is None or e.slice == slice_name)
            ]
        return found[:limit]

    def wait_events(self, after_seq: int, timeout_s: float) -> list[service_mod.Event]:
        with self._lock:
            self._lock.wait_for(lambda: len(self.log) > after_seq, timeout=timeout_s)
            return [e for e in self.log if e.seq > after_seq]

    def _site(self, site: str) -> str:
        if site not in SITES:
            raise errors.NotFound(f"site {site!r} is not in the topology")
        return site

    def topology_status(self) -> service_mod.TopologyStatus:
        sites = tuple(
            service_mod.SiteStatus(
                site=s,
                kind="edge" if s.startswith("edge") else "cell",
                up=True,
                drained=s in self.drained,
                reason="drained" if s in self.drained else "",
                cpu_reserved=1000 if s.startswith("edge") else 0,
                cpu_capacity=8000 if s.startswith("edge") else 0,
                memory_reserved=0,
                memory_capacity=16384 if s.startswith("edge") else 0,
                radio_reserved_kbps=0,
                radio_capacity_kbps=0 if s.startswith("edge") else 100_000,
                slices=len(self.slices),
            )
            for s in SITES
        )
        return service_mod.TopologyStatus("fake-city", sites, (), ((("cell-1", "edge-1"), 5000, 10000),))

    def drain(self, site: str, actor: str) -> list[str]:
        self.drained.add(self._site(site))
        self.calls.append(("drain", actor))
        self.record_event(actor, "drain", None, site, "drained")
        return sorted(self.slices)

    def drain_report(self, site: str, actor: str) -> service_mod.DrainReport:
        moved = self.drain(site, actor)
        return service_mod.DrainReport(
            site, False, tuple(service_mod.SliceMove(n, service_mod.MOVED, "now elsewhere") for n in moved)
        )

    def cordon(self, site: str, actor: str) -> tuple[bool, list[str]]:
        changed = self._site(site) not in self.cordoned
        self.cordoned.add(site)
        self.calls.append(("cordon", actor))
        if changed:
            self.record_event(actor, "cordon", None, site, "cordoned")
        return changed, sorted(self.slices)

    def uncordon(self, site: str, actor: str) -> bool:
        changed = self._site(site) in self.cordoned
        self.cordoned.discard(site)
        self.calls.append(("uncordon", actor))
        if changed:
            self.record_event(actor, "uncordon", None, site, "uncordoned")
        return changed

    def topology(self) -> Topology:
        return Topology.from_file(self.source)

    def topology_file(self) -> TopologyFile:
        return self.source

    def undrain(self, site: str, actor: str) -> list[str]:
        self.drained.discard(self._site(site))
        self.calls.append(("undrain", actor))
        self.record_event(actor, "undrain", None, site, "back in service")
        return []

    def what_if(self, fail_sites: Sequence[str], fail_links: Sequence[LinkKey]) -> dict[str, object]:
        """In the real service's shape: failing edge-1 loses every slice (no other edge site)."""
        for s in fail_sites:
            self._site(s)
        lost = sorted(self.slices) if "edge-1" in fail_sites else []
        return {
            "failedSites": sorted(set(fail_sites)),
            "failedLinks": [f"{a}:{b}" for a, b in sorted(set(fail_links))],
            "affected": [
                {
                    "slice": name,
                    "lostCells": ["cell-1", "cell-2"],
                    "lostEdges": ["edge-1"],
                    "recovered": False,
                    "reason": "NoEdgeSite",
                    "message": "no edge site in reach",
                    "edges": [],
                    "unserved": [],
                }
                for name in lost
            ],
            "unaffected": len(self.slices) - len(lost),
        }


def _typed(fake: FakeService) -> OperatorPort:
    return fake  # mypy checks here that the fake implements the whole port
