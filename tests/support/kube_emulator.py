"""A Kubernetes API server on loopback for tests and benchmarks, built on ``kmock``.

kmock's :class:`kmock.KubernetesScaffold` serves the HTTP side (aiohttp on 127.0.0.1, a random
port, Kubernetes-shaped ``Status`` errors). Its stateful ``KubernetesEmulator`` cannot play an API
server for a controller: it has no server-side apply (a PATCH of a missing object is a 404), no
label selectors, no resourceVersion (so no optimistic concurrency for Leases), no status
subresource and it fails to parse ``/api/v1/namespaces``. So this module puts one catch-all kmock
reaction in front that implements those semantics in memory:

- server-side apply (``application/apply-patch+yaml`` + ``fieldManager``): creates when missing;
  otherwise merges the applied fields over the object and drops fields this manager applied
  before but no longer applies (fields set by others stay); a no-op apply does not bump the
  resourceVersion, like a real server;
- merge patch (RFC 7386), PUT with resourceVersion preconditions (409 on mismatch), POST (409
  when it exists), DELETE, GET of objects and collections with equality label selectors;
- ``/status`` subresources that change only ``status``;
- watches (``?watch=true``) from a resourceVersion, with ``timeoutSeconds``;
- fault injection (:meth:`KubeEmulator.fail`) for 403/409/422/429/5xx, and a request log.

The official client talks HTTP to it: nothing in the client is patched.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import kmock

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # (api prefix, plural, namespace, name)


@dataclass
class Fault:
    method: str
    path_part: str
    status: int
    times: int
    message: str
    retry_after: str | None = None


@dataclass
class _Watcher:
    prefix: str
    plural: str
    namespace: str
    queue: asyncio.Queue[Obj | None] = field(default_factory=asyncio.Queue)


def _parse(path: str) -> tuple[str, str, str, str, str] | None:
    """(api prefix, plural, namespace, name, subresource) of a REST path."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) >= 2:
        prefix, rest = "/".join(parts[:2]), parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        prefix, rest = "/".join(parts[:3]), parts[3:]
    else:
        return None
    namespace = ""
    # /api/v1/namespaces/NAME is the namespace object itself, unless a plural follows.
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    return prefix, plural, namespace, name, sub


def _merge(base: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


def _drop_unapplied(obj: Any, old_applied: Any, new_applied: Any) -> Any:
    """Remove fields the manager applied before and does not apply any more."""
    if not isinstance(obj, dict) or not isinstance(old_applied, dict):
        return obj
    out = dict(obj)
    new = new_applied if isinstance(new_applied, dict) else {}
    for k, v in old_applied.items():
        if k not in new:
            out.pop(k, None)
        elif isinstance(v, dict) and k in out:
            out[k] = _drop_unapplied(out[k], v, new[k])
    return out


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class _WithHeaders(Exception):
    """An error response that carries headers (kmock's own errors cannot)."""

    def __init__(self, status: int, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class _Scaffold(kmock.KubernetesScaffold):
    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, _WithHeaders):
            body = {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": exc.status}
            return aiohttp.web.json_response(
                {**body, "message": exc.message}, status=exc.status, headers=exc.headers
            )
        response: aiohttp.web.StreamResponse = await super()._render_error(exc)
        return response


class KubeEmulator:
    """Start with ``with KubeEmulator() as emu:``; point a client at ``emu.url``."""

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.applied: dict[tuple[Key, str], Obj] = {}  # what each field manager last applied
        self.requests: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self.rv = 0
        self.events: list[tuple[int, str, str, str, Obj]] = []  # (rv, prefix, plural, type, obj)
        self._watchers: list[_Watcher] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> KubeEmulator:
        ready = threading.Event()

        async def serve() -> None:
            self._stop = asyncio.Event()
            async with _Scaffold() as handler, kmock.Server(handler) as server:
                handler << self._handle
                self.url = str(server.url).rstrip("/")
                ready.set()
                await self._stop.wait()
                for w in self._watchers:
                    w.queue.put_nowait(None)

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(serve())
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="kube-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("kube emulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    # -- test helpers -------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        path_part: str,
        status: int,
        times: int = 1,
        message: str = "injected",
        retry_after: str | None = None,
    ) -> None:
        """The next ``times`` requests with ``method`` whose path contains ``path_part`` fail."""
        with self._lock:
            self.faults.append(Fault(method.upper(), path_part, status, times, message, retry_after))

    def stored(self, plural: str, namespace: str = "") -> dict[str, Obj]:
        """Objects of a kind (by plural) in a namespace ("" = cluster-scoped or all), by name."""
        with self._lock:
            return {
                k[3]: copy.deepcopy(v)
                for k, v in self.objects.items()
                if k[1] == plural and (not namespace or k[2] == namespace)
            }

    def count(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for m, _ in self.requests if method is None or m == method)

    # -- the API server -------------------------------------------------------------------------

    def _status(self, code: int, reason: str, message: str) -> kmock.KubernetesError:
        return kmock.KubernetesError(status=code, reason=reason, message=message, details={})

    def _bump(self, key: Key, obj: Obj, kind: str) -> Obj:
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        self.objects[key] = obj
        event = copy.deepcopy(obj)
        self.events.append((self.rv, key[0], key[1], kind, event))
        for w in self._watchers:
            if (w.prefix, w.plural) == key[:2] and (not w.namespace or w.namespace == key[2]):
                w.queue.put_nowait({"type": kind, "object": event})
        return obj

    def _new_meta(self, obj: Obj, key: Key) -> None:
        meta = obj.setdefault("metadata", {})
        meta["name"] = key[3]
        if key[2]:
            meta["namespace"] = key[2]
        meta.setdefault("uid", f"uid-{self.rv + 1}")
        meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        meta["generation"] = 1

    def _handle(self, request: kmock.Request) -> Any:
        method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
        path = request.url.path
        with self._lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if fault.method == method and fault.path_part in path and fault.times > 0:
                    fault.times -= 1
                    if fault.retry_after is not None:
                        raise _WithHeaders(fault.status, fault.message, {"Retry-After": fault.retry_after})
                    raise self._status(fault.status, f"Injected{fault.status}", fault.message)
        parsed = _parse(path)
        if parsed is None:
            raise self._status(404, "NotFound", f"no such path {path}")
        prefix, plural, namespace, name, sub = parsed
        params = dict(request.params)
        if method == "GET" and params.get("watch") == "true":
            return self._watch(prefix, plural, namespace, params)
        with self._lock:
            return self._serve(method, prefix, plural, namespace, name, sub, params, request)

    def _serve(
        self,
        method: str,
        prefix: str,
        plural: str,
        namespace: str,
        name: str,
        sub: str,
        params: dict[str, str],
        request: kmock.Request,
    ) -> Any:
        key: Key = (prefix, plural, namespace, name)
        what = f'{plural} "{name}"'
        if method == "GET" and not name:
            selector = params.get("labelSelector", "")
            items = [
                copy.deepcopy(v)
                for k, v in sorted(self.objects.items())
                if k[:2] == (prefix, plural)
                and (not namespace or k[2] == namespace)
                and _matches(v.get("metadata", {}).get("labels", {}) or {}, selector)
            ]
            return {"kind": "List", "metadata": {"resourceVersion": str(self.rv)}, "items": items}
        if method == "GET":
            if key not in self.objects:
                raise self._status(404, "NotFound", f"{what} not found")
            return copy.deepcopy(self.objects[key])
        body = json.loads(request.body) if request.body else {}
        if method == "POST":
            name = body.get("metadata", {}).get("name", "")
            key = (prefix, plural, namespace, name)
            if key in self.objects:
                raise self._status(409, "AlreadyExists", f'{plural} "{name}" already exists')
            obj = copy.deepcopy(body)
            self._new_meta(obj, key)
            return copy.deepcopy(self._bump(key, obj, "ADDED"))
        if method == "DELETE":
            if key not in self.objects:
                raise self._status(404, "NotFound", f"{what} not found")
            obj = self.objects.pop(key)
            self.rv += 1
            self.events.append((self.rv, prefix, plural, "DELETED", copy.deepcopy(obj)))
            for w in self._watchers:
                if (w.prefix, w.plural) == key[:2] and (not w.namespace or w.namespace == key[2]):
                    w.queue.put_nowait({"type": "DELETED", "object": copy.deepcopy(obj)})
            return {"kind": "Status", "status": "Success", "code": 200}
        content_type = request.headers.get("Content-Type", "")
        if method == "PATCH" and content_type.startswith("application/apply-patch"):
            manager = params.get("fieldManager")
            if not manager:
                raise self._status(422, "Invalid", "fieldManager is required for apply requests")
            existing = self.objects.get(key)
            old_applied = self.applied.get((key, manager), {})
            if existing is None:
                obj = copy.deepcopy(body)
                self._new_meta(obj, key)
            else:
                merged = _merge(_drop_unapplied(copy.deepcopy(existing), old_applied, body), body)
                if merged == existing:
                    self.applied[(key, manager)] = copy.deepcopy(body)
                    return copy.deepcopy(existing)
                obj = merged
                if obj.get("spec") != existing.get("spec"):
                    obj["metadata"]["generation"] = int(existing["metadata"].get("generation", 1)) + 1
            self.applied[(key, manager)] = copy.deepcopy(body)
            return copy.deepcopy(self._bump(key, obj, "ADDED" if existing is None else "MODIFIED"))
        if key not in self.objects:
            raise self._status(404, "NotFound", f"{what} not found")
        existing = self.objects[key]
        want_rv = (body.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != existing["metadata"].get("resourceVersion"):
            raise self._status(
                409,
                "Conflict",
                f"Operation cannot be fulfilled on {what}: the object has been modified; "
                "please apply your changes to the latest version and try again",
            )
        if method == "PUT":
            obj = copy.deepcopy(body)
            if sub == "status":
                obj = {**copy.deepcopy(existing), "status": body.get("status")}
        elif method == "PATCH":
            patch = {"status": body.get("status")} if sub == "status" else body
            obj = _merge(copy.deepcopy(existing), patch)
        else:
            raise self._status(405, "MethodNotAllowed", method)
        for k in ("uid", "creationTimestamp", "generation", "name", "namespace"):
            if k in existing["metadata"]:
                obj.setdefault("metadata", {})[k] = existing["metadata"][k]
        if sub != "status" and obj.get("spec") != existing.get("spec"):
            obj["metadata"]["generation"] = int(existing["metadata"].get("generation", 1)) + 1
        return copy.deepcopy(self._bump(key, obj, "MODIFIED"))

    async def _watch(
        self, prefix: str, plural: str, namespace: str, params: dict[str, str]
    ) -> AsyncIterator[bytes]:
        watcher = _Watcher(prefix, plural, namespace)
        since = params.get("resourceVersion", "")
        with self._lock:
            if since:
                backlog = [
                    {"type": kind, "object": obj}
                    for rv, p, pl, kind, obj in self.events
                    if rv > int(since)
                    and (p, pl) == (prefix, plural)
                    and (not namespace or obj.get("metadata", {}).get("namespace") == namespace)
                ]
            else:
                backlog = [
                    {"type": "ADDED", "object": copy.deepcopy(v)}
                    for k, v in sorted(self.objects.items())
                    if k[:2] == (prefix, plural) and (not namespace or k[2] == namespace)
                ]
            self._watchers.append(watcher)
        deadline = time.monotonic() + float(params.get("timeoutSeconds", "30"))
        try:
            yield b""
            for event in backlog:
                yield json.dumps(event).encode() + b"\n"
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), left)
                except TimeoutError:
                    return
                if item is None:
                    return
                yield json.dumps(item).encode() + b"\n"
        finally:
            with self._lock:
                self._watchers.remove(watcher)
