"""Kubernetes realisation: the :class:`controller.realisation.Realiser` that makes a placed slice
real objects in a cluster, through :class:`controller.kube_gateway.KubeGateway`.

``realise`` server-side applies every desired object (so each reconcile repairs drift: an object
deleted or edited by hand is restored), then prunes the slice's objects that are no longer
desired (a re-placement creates Deployments on the new site and deletes those on the old one).
``remove`` deletes exactly what edgeslice created: objects carrying our managed-by label and the
slice's label, then the slice's namespace if we own it. API errors become a failed
:class:`RealisationResult` whose reason (Forbidden, Invalid, Unreachable, ...) and message (the
server's) the service puts on the slice's ``Realised`` condition; the intent itself is never
touched, so the next reconcile tries again.
"""

from __future__ import annotations

from controller import kube_gateway, kube_manifests
from controller.kube_manifests import KubeSettings
from controller.placement_model import Placement
from controller.realisation import RealisationResult
from controller.topology import Topology
from slices.profiles import SliceIntent

# Kinds whose set of objects changes with the placement: the ones pruning has to look at.
# (The namespace, quota, limit range and policy have fixed names and are always desired.)
_PRUNED_KINDS = ("PodDisruptionBudget", "Service", "Deployment")
_NAMESPACED_KINDS = (*_PRUNED_KINDS, "NetworkPolicy", "LimitRange", "ResourceQuota")


class KubeRealiser:
    name = "kubernetes"

    def __init__(
        self, gateway: kube_gateway.KubeGateway, topology: Topology, settings: KubeSettings | None = None
    ) -> None:
        self.gateway = gateway
        self.topology = topology
        self.settings = settings or KubeSettings()
        # Object keys applied last per slice: when the desired set is unchanged there is nothing
        # to prune and the three list requests are skipped (after a restart the memory is empty,
        # so the first reconcile lists and removes leftovers).
        self._applied: dict[str, frozenset[tuple[str, str, str]]] = {}

    def set_topology(self, topology: Topology) -> None:
        """Node labels come from the topology; the runtime hands over a new one when it changes."""
        self.topology = topology

    def realise(self, intent: SliceIntent, placement: Placement, generation: int) -> RealisationResult:
        desired = kube_manifests.render(intent, placement, self.topology, self.settings, generation)
        keys = frozenset(kube_manifests.object_key(m) for m in desired)
        try:
            for manifest in desired:
                self.gateway.apply(manifest)
            pruned = 0
            if self._applied.get(intent.name) != keys:
                pruned = self._prune(intent.name, set(keys), _PRUNED_KINDS)
        except kube_gateway.KubeApiError as exc:
            self._applied.pop(intent.name, None)
            return RealisationResult(False, exc.reason, exc.message)
        self._applied[intent.name] = keys
        sites = ", ".join(placement.edge_sites) or "no edge site"
        message = f"{len(desired)} objects applied in namespace {desired[0]['metadata']['name']} ({sites})"
        if pruned:
            message += f"; {pruned} pruned"
        return RealisationResult(True, "Applied", message)

    def _prune(self, slice_name: str, keep: set[tuple[str, str, str]], kinds: tuple[str, ...]) -> int:
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
        self._applied.pop(name, None)
        namespace = kube_manifests.namespace_name(name, self.settings)
        try:
            removed = self._prune(name, set(), _NAMESPACED_KINDS)
            ns = self.gateway.get("Namespace", namespace)
            labels = (ns or {}).get("metadata", {}).get("labels") or {}
            ours = (
                labels.get(kube_manifests.MANAGED_BY) == kube_manifests.MANAGER
                and labels.get(kube_manifests.SLICE_LABEL) == name
            )
            if ns is not None and ours and self.gateway.delete("Namespace", namespace):
                removed += 1
        except kube_gateway.KubeApiError as exc:
            return RealisationResult(False, exc.reason, exc.message)
        return RealisationResult(True, "Removed", f"{removed} objects deleted")


def build_kube_realiser(
    topology: Topology,
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    node_label_key: str = KubeSettings.node_label_key,
    host: str | None = None,
) -> KubeRealiser:
    """The realiser for ``controller --kube``: in-cluster config, or a kubeconfig and context."""
    api = kube_gateway.api_client_for(kubeconfig, context, in_cluster, host)
    return KubeRealiser(kube_gateway.KubeGateway(api), topology, KubeSettings(node_label_key=node_label_key))
