"""Leader election on a ``coordination.k8s.io/v1`` Lease, so several controller replicas can run
with exactly one active.

The algorithm is client-go's: the holder renews ``spec.renewTime`` every retry period; a standby
takes the lease only when the record has not changed for ``lease_duration_s`` *as measured by its
own clock* (so clock skew between nodes does not matter); every write carries the
resourceVersion it read, so when two standbys race for an expired lease the API server lets one
win (the other gets 409). A leader that cannot renew steps down once a lease duration has passed
since its last successful renew, which is never later than a standby may take over.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from controller.kube import gateway as kube_gateway
from controller.runtime.clock import Clock

LEASE_NAME = "edgeslice-controller"


def _micro_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        gateway: kube_gateway.KubeGateway,
        identity: str,
        namespace: str,
        clock: Clock,
        name: str = LEASE_NAME,
        lease_duration_s: int = 15,
        retry_period_s: float = 2.0,
    ) -> None:
        self.gateway = gateway
        self.identity = identity
        self.namespace = namespace
        self.name = name
        self.clock = clock
        self.lease_duration_s = lease_duration_s
        self.retry_period_s = retry_period_s
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None  # monotonic time of our last successful write

    @property
    def is_leader(self) -> bool:
        return (
            self._renewed_at is not None and self.clock.monotonic() - self._renewed_at < self.lease_duration_s
        )

    def _spec(self, transitions: int, acquired: str | None) -> dict[str, Any]:
        now = _micro_time(self.clock.now())
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_duration_s,
            "acquireTime": acquired or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True while this instance holds the lease."""
        try:
            return self._attempt()
        except kube_gateway.KubeApiError:
            # Unreachable or refused: keep leading only while our last renew is still valid.
            if not self.is_leader:
                self._renewed_at = None
            return self.is_leader

    def _attempt(self) -> bool:
        lease = self.gateway.get("Lease", self.name, self.namespace)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(0, None),
            }
            try:
                self.gateway.create(body)
            except kube_gateway.KubeApiError as exc:
                if exc.status == 409:  # another replica created it first
                    self._renewed_at = None
                    return False
                raise
            self._renewed_at = self.clock.monotonic()
            return True
        spec = lease.get("spec") or {}
        if spec != self._observed_spec:
            self._observed_spec = spec
            self._observed_at = self.clock.monotonic()
        holder = spec.get("holderIdentity") or ""
        duration = int(spec.get("leaseDurationSeconds") or self.lease_duration_s)
        expired = self.clock.monotonic() - self._observed_at >= duration
        if holder and holder != self.identity and not expired:
            self._renewed_at = None
            return False
        ours = holder == self.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if ours else 1)
        lease["spec"] = self._spec(transitions, spec.get("acquireTime") if ours else None)
        try:
            updated = self.gateway.replace(lease)
        except kube_gateway.KubeApiError as exc:
            if exc.status == 409:  # someone else wrote between our read and our write
                self._renewed_at = None
                return False
            raise
        self._observed_spec = updated.get("spec")
        self._observed_at = self._renewed_at = self.clock.monotonic()
        return True

    def release(self) -> None:
        """Give the lease up at shutdown so a standby takes over without waiting for expiry."""
        if self._renewed_at is None:
            return
        self._renewed_at = None
        try:
            lease = self.gateway.get("Lease", self.name, self.namespace)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"] = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1}
            self.gateway.replace(lease)
        except kube_gateway.KubeApiError:
            pass  # it expires on its own

    def run(
        self,
        stop: threading.Event,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
    ) -> None:
        """Campaign until ``stop`` is set; call the callbacks as leadership comes and goes."""
        leading = False
        try:
            while not stop.is_set():
                now_leading = self.try_acquire_or_renew()
                if now_leading and not leading:
                    on_started_leading()
                elif leading and not now_leading:
                    on_stopped_leading()
                leading = now_leading
                stop.wait(self.retry_period_s)
        finally:
            if leading:
                on_stopped_leading()
                self.release()
