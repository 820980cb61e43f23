"""The one module that imports ``kubernetes``: typed requests to the API server, nothing else.

Objects are plain dicts (the manifests of :mod:`controller.kube.manifests`); requests go through
the official client's :class:`kubernetes.client.ApiClient` (its configuration, auth and TLS), with
paths built from a small table of the kinds edgeslice uses, so there is no discovery round trip.
Writes are server-side apply (``application/apply-patch+yaml``) with our own field manager.

Errors are handled as a controller must: conflicts (409), throttling (429) and server errors (5xx)
are retried with exponential backoff; whatever is left becomes a :class:`KubeApiError` (a
:class:`slices.errors.RealisationError`) carrying a CamelCase reason and the server's message.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from slices import errors

log = logging.getLogger(__name__)

FIELD_MANAGER = "edgeslice"
Obj = dict[str, Any]


@dataclass(frozen=True)
class ResourceType:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        """The REST path of a collection or an object.

        >>> RESOURCES["Deployment"].path("slice-a", "web")
        '/apis/apps/v1/namespaces/slice-a/deployments/web'
        >>> RESOURCES["Namespace"].path(name="slice-a")
        '/api/v1/namespaces/slice-a'
        """
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        if sub is not None:
            base += f"/{sub}"
        return base


RESOURCES: dict[str, ResourceType] = {
    r.kind: r
    for r in (
        ResourceType("v1", "Namespace", "namespaces", False),
        ResourceType("v1", "Node", "nodes", False),  # read by the agent (--site-from-node)
        ResourceType("v1", "ResourceQuota", "resourcequotas", True),
        ResourceType("v1", "LimitRange", "limitranges", True),
        ResourceType("v1", "Service", "services", True),
        ResourceType("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True),
        ResourceType("apps/v1", "Deployment", "deployments", True),
        ResourceType("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True),
        ResourceType("coordination.k8s.io/v1", "Lease", "leases", True),
        ResourceType("v1", "ConfigMap", "configmaps", True),
        ResourceType("v1", "Pod", "pods", True),
        ResourceType("apps/v1", "ReplicaSet", "replicasets", True),
        ResourceType("events.k8s.io/v1", "Event", "events", True),
        ResourceType("edgeslice.io/v1alpha1", "NetworkSlice", "networkslices", False),
    )
}

# Why a request failed, as the Realised condition's reason.
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "Throttled",
}
_RETRYABLE = frozenset({409, 429, 500, 502, 503, 504})


class RequestMetrics:
    """Kubernetes client requests counted by verb, resource and HTTP code (``0``: no answer).

    One instance is shared by every gateway of a process; :meth:`register` exposes it on a
    prometheus_client registry as ``edgeslice_kube_client_requests_total``.

    >>> m = RequestMetrics()
    >>> m.count("get", "deployments", 200); m.count("get", "deployments", 200)
    >>> m.snapshot()
    {('get', 'deployments', '200'): 2}
    """

    NAME = "edgeslice_kube_client_requests"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}

    def count(self, verb: str, resource: str, code: int) -> None:
        key = (verb, resource, str(code))
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self._counts)

    def register(self, registry: Any) -> None:
        """Expose the counts on ``registry`` (a prometheus_client CollectorRegistry)."""
        from prometheus_client.core import CounterMetricFamily

        metrics = self

        class _Collector:
            def collect(self) -> Iterator[CounterMetricFamily]:
                family = CounterMetricFamily(
                    metrics.NAME,
                    "Requests this controller sent to the Kubernetes API server, by verb, resource "
                    "and HTTP status code (0: no answer).",
                    labels=["verb", "resource", "code"],
                )
                for (verb, resource, code), n in sorted(metrics.snapshot().items()):
                    family.add_metric([verb, resource, code], n)
                yield family

            def describe(self) -> list[CounterMetricFamily]:
                return []

        registry.register(_Collector())


class KubeApiError(errors.RealisationError):
    """The API server refused a request; ``reason`` is CamelCase, ``message`` is the server's."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def reason_for(status: int) -> str:
    """CamelCase reason of an HTTP status (0 = the server could not be reached).

    >>> reason_for(422), reason_for(0), reason_for(503)
    ('Invalid', 'Unreachable', 'ServerError')
    """
    if status == 0:
        return "Unreachable"
    return _REASONS.get(status, "ServerError" if status >= 500 else f"Http{status}")


def _server_message(status: int, body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("message"):
        return str(doc["message"])
    text = body.decode("utf-8", "replace").strip()
    return text[:300] or f"HTTP {status}"


def _resource_of(path: str) -> str:
    """The resource (and subresource) a REST path names.

    >>> _resource_of("/apis/apps/v1/namespaces/a/deployments/web")
    'deployments'
    >>> _resource_of("/apis/edgeslice.io/v1alpha1/networkslices/cars/status")
    'networkslices/status'
    >>> _resource_of("/api/v1/namespaces")
    'namespaces'
    """
    parts = [p for p in path.split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] != "finalize":
        rest = rest[2:]
    if len(rest) >= 3:
        return f"{rest[0]}/{rest[2]}"
    return rest[0] if rest else ""


def _verb_of(method: str, path: str, query: dict[str, str] | None) -> str:
    if method == "GET":
        if (query or {}).get("watch") == "true":
            return "watch"
        parts = [p for p in path.split("/") if p]
        rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
        return "get" if len(rest) % 2 == 0 else "list"
    if method == "PATCH" and (query or {}).get("force") == "true":
        return "apply"
    return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, method)


def api_client_for(
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    host: str | None = None,
) -> k8s_client.ApiClient:
    """An ApiClient from in-cluster config, a kubeconfig (and context), or a bare URL (tests)."""
    cfg = k8s_client.Configuration()
    try:
        if host is not None:
            cfg.host = host.rstrip("/")
        elif in_cluster:
            k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=cfg
            )
    except (k8s_config.ConfigException, OSError) as exc:
        where = "in-cluster config" if in_cluster else f"kubeconfig {kubeconfig or '(default)'}"
        raise errors.InvalidSpec(f"--kube: cannot load {where}: {exc}") from exc
    # We retry ourselves, with backoff we control; urllib3 must not hide failures behind its own.
    cfg.retries = 0
    return k8s_client.ApiClient(cfg)


class KubeGateway:
    """Requests to one API server. Thread-safe as far as the ApiClient is (urllib3 pools are).

    ``requests`` counts HTTP requests sent (retries included), for benchmarks.
    """

    def __init__(
        self,
        api: k8s_client.ApiClient,
        field_manager: str = FIELD_MANAGER,
        attempts: int = 5,
        backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        timeout_s: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        metrics: RequestMetrics | None = None,
    ) -> None:
        self.api = api
        self.metrics = metrics if metrics is not None else RequestMetrics()
        self.field_manager = field_manager
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.sleep = sleep
        self.requests = 0

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    # -- plumbing ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout_s: float | None = None,
        verb: str = "",
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # param_serialize adds the configured credentials (bearer token, exec plugin output).
        _, url, headers, _, _ = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        # The client JSON-encodes bodies of JSON content types itself; apply-patch+yaml goes as text
        # (JSON is YAML).
        data: Any = body
        if body is not None and not content_type.endswith("json"):
            data = json.dumps(body)
        self.requests += 1
        resource = _resource_of(path)
        verb = verb or _verb_of(method, path, query)
        try:
            resp = self.api.call_api(
                method,
                url,
                header_params=headers,
                body=data,
                _request_timeout=timeout_s or self.timeout_s,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self.metrics.count(verb, resource, 0)
            raise KubeApiError(0, "Unreachable", f"{self.api.configuration.host}: {exc}") from exc
        except k8s_client.ApiException as exc:  # TLS failures surface as status 0
            self.metrics.count(verb, resource, exc.status or 0)
            raise KubeApiError(exc.status or 0, reason_for(exc.status or 0), str(exc.reason)) from exc
        self.metrics.count(verb, resource, int(resp.status))
        return resp

    def _request(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        retry_conflicts: bool = True,
    ) -> Obj:
        """Send, retrying what a controller retries; return the decoded JSON object."""
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self._send(method, path, query, body, content_type)
            except KubeApiError:
                if attempt == self.attempts:
                    raise
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            raw = resp.read()
            status = int(resp.status)
            if 200 <= status < 300:
                decoded = json.loads(raw) if raw else {}
                return decoded if isinstance(decoded, dict) else {}
            retry = status in _RETRYABLE and (retry_conflicts or status != 409)
            if not retry or attempt == self.attempts:
                raise KubeApiError(status, reason_for(status), _server_message(status, raw))
            wait = delay
            after = resp.getheader("Retry-After")
            if status == 429 and after and after.isdigit():
                wait = min(float(after), self.max_backoff_s)
            self.sleep(wait)
            delay = min(delay * 2, self.max_backoff_s)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- operations -------------------------------------------------------------------------

    def apply(self, manifest: Obj) -> Obj:
        """Server-side apply: create or update the fields we own; idempotent."""
        rt = RESOURCES[manifest["kind"]]
        meta = manifest["metadata"]
        return self._request(
            "PATCH",
            rt.path(meta.get("namespace"), meta["name"]),
            {"fieldManager": self.field_manager, "force": "true"},
            manifest,
            "application/apply-patch+yaml",
        )

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return self._request("GET", RESOURCES[kind].path(namespace, name))
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> tuple[list[Obj], str]:
        """Items and the list's resourceVersion (to start a watch from)."""
        query = {"labelSelector": selector} if selector else None
        doc = self._request("GET", RESOURCES[kind].path(namespace), query)
        return list(doc.get("items") or []), str((doc.get("metadata") or {}).get("resourceVersion", ""))

    def create(self, manifest: Obj) -> Obj:
        rt = RESOURCES[manifest["kind"]]
        return self._request(
            "POST",
            rt.path(manifest["metadata"].get("namespace")),
            {"fieldManager": self.field_manager},
            manifest,
            retry_conflicts=False,
        )

    def replace(self, manifest: Obj) -> Obj:
        """PUT with the object's resourceVersion: a 409 means someone else wrote first (not retried)."""
        rt = RESOURCES[manifest["kind"]]
        meta = manifest["metadata"]
        return self._request(
            "PUT",
            rt.path(meta.get("namespace"), meta["name"]),
            {"fieldManager": self.field_manager},
            manifest,
            retry_conflicts=False,
        )

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete (background propagation); False when it was already gone."""
        try:
            self._request(
                "DELETE",
                RESOURCES[kind].path(namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def patch_status(self, kind: str, name: str, status: Obj, namespace: str | None = None) -> Obj:
        """Merge-patch the status subresource (the spec is the user's, never touched)."""
        return self._request(
            "PATCH",
            RESOURCES[kind].path(namespace, name, "status"),
            {"fieldManager": self.field_manager},
            {"status": status},
            "application/merge-patch+json",
        )

    def patch(
        self,
        kind: str,
        name: str,
        body: Any,
        namespace: str | None = None,
        content_type: str = "application/merge-patch+json",
        sub: str | None = None,
    ) -> Obj:
        """A merge patch (or a JSON patch, ``application/json-patch+json``, with a list body).

        Not retried on conflict: a patch carrying a resourceVersion or a ``test`` operation means
        "only if nobody wrote meanwhile", and the caller decides again from a fresh read.
        """
        return self._request(
            "PATCH",
            RESOURCES[kind].path(namespace, name, sub),
            {"fieldManager": self.field_manager},
            body,
            content_type,
            retry_conflicts=False,
        )

    def watch(
        self,
        kind: str,
        resource_version: str,
        timeout_s: int = 60,
        namespace: str | None = None,
        selector: str | None = None,
    ) -> Iterator[tuple[str, Obj]]:
        """(event type, object) pairs until the server ends the stream after ``timeout_s``.

        A 410 (resourceVersion too old) raises :class:`KubeApiError`; the caller lists again.
        """
        query = {"watch": "true", "timeoutSeconds": str(timeout_s), "allowWatchBookmarks": "false"}
        if resource_version:
            query["resourceVersion"] = resource_version
        if selector:
            query["labelSelector"] = selector
        resp = self._send("GET", RESOURCES[kind].path(namespace), query, timeout_s=timeout_s + 5)
        status = int(resp.status)
        if status != 200:
            raw = resp.read()
            raise KubeApiError(status, reason_for(status), _server_message(status, raw))
        raw_response = resp.response
        try:
            for line in raw_response:
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    code = int(obj.get("code", 500))
                    raise KubeApiError(code, reason_for(code), str(obj.get("message", "")))
                yield str(event.get("type")), obj
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeApiError(0, "Unreachable", f"watch {kind}: {exc}") from exc
        finally:
            raw_response.release_conn()


def micro_time(at: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC).

    >>> micro_time(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    '2026-01-02T03:04:05.000006Z'
    """
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventRecorder:
    """Kubernetes Events (``events.k8s.io/v1``) about the objects edgeslice manages.

    Events about a cluster-scoped object (a NetworkSlice) go to namespace ``default``, as
    kubectl expects (``kubectl describe networkslice`` and ``kubectl events --for``). A failure to
    record is logged, never raised: an Event is a report, not a decision.
    """

    CONTROLLER = "edgeslice.io/controller"

    def __init__(
        self, gateway: KubeGateway, instance: str, now: Callable[[], datetime] | None = None
    ) -> None:
        self.gateway = gateway
        self.instance = instance
        self.now = now or (lambda: datetime.now(UTC))
        self.emitted = 0

    def emit(self, regarding: Obj, type_: str, reason: str, action: str, note: str) -> bool:
        namespace = str(regarding.get("namespace") or "default")
        at = self.now()
        name = f"{regarding.get('name', 'object')}.{int(at.timestamp() * 1e9):x}"
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name[:253], "namespace": namespace},
            "eventTime": micro_time(at),
            "reportingController": self.CONTROLLER,
            "reportingInstance": self.instance[:128],
            "action": action[:128],
            "reason": reason[:128],
            "type": type_,
            "regarding": {k: v for k, v in regarding.items() if v},
            "note": note[:1024],
        }
        try:
            self.gateway.create(body)
        except KubeApiError as exc:
            log.warning("could not record event %s on %s: %s", reason, regarding.get("name"), exc)
            return False
        self.emitted += 1
        return True
