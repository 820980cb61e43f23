"""Kubernetes realisation on a real kube-apiserver (+ kube-controller-manager, etcd), started
here with tests/support/envtest.py (KUBEBUILDER_ASSETS, as the tests find them):

- API requests per slice: realising N new slices, re-realising them unchanged, re-placing them;
- drift repair: a Deployment deleted by hand, and one scaled by another field manager, until the
  running realiser (its watches) has put it back: p50 / p95 over the trials;
- fail-over: two ``slicectl controller run --kube --intents crd --leader-elect`` processes; the
  leader is SIGKILLed; seconds until the standby holds the Lease and until it serves.

    .venv/bin/python bench/bench_kube.py [--slices 30] [--trials 20]

The binaries come from ``KUBEBUILDER_ASSETS`` (a folder with kube-apiserver and
kube-controller-manager) or, when it is unset, ``.envtest/bin`` where ``bash .ci/run`` unpacks them.

It prints figures; it asserts only that the work it measures was done.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.kube import gateway as kube_gateway  # noqa: E402
from controller.kube.realiser import KubeRealiser  # noqa: E402
from tests.support import kube_real  # noqa: E402
from tests.support.envtest import KubeApiServer, running_control_plane  # noqa: E402
from tests.support.kube_fixtures import CITY_DOCUMENT, city, intent, placement  # noqa: E402

KINDS = ("iot", "vehicle", "wifi")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _requests(gw: kube_gateway.KubeGateway) -> Counter[str]:
    return Counter({f"{v} {r}": n for (v, r, _), n in gw.metrics.snapshot().items()})


def requests_per_slice(server: KubeApiServer, n: int) -> None:
    gw = kube_real.gateway(server)
    realiser = KubeRealiser(gw, city())
    slices = [intent(f"b{i:03d}", KINDS[i % 3]) for i in range(n)]
    t0 = time.perf_counter()
    for s in slices:
        assert realiser.realise(s, placement(s, "e1"), 1).ok
    new_s, new_req = time.perf_counter() - t0, gw.requests
    before = _requests(gw)
    t0 = time.perf_counter()
    for s in slices:
        assert realiser.realise(s, placement(s, "e1"), 1).ok
    same_s, same_req = time.perf_counter() - t0, gw.requests - new_req
    t0 = time.perf_counter()
    for s in slices:
        assert realiser.realise(s, placement(s, "e2"), 2).ok
    move_s, move_req = time.perf_counter() - t0, gw.requests - new_req - same_req
    print(f"realise {n} new slices:      {new_s:6.2f} s, {new_req / n:5.1f} requests per slice")
    print(f"re-realise them unchanged:   {same_s:6.2f} s, {same_req / n:5.1f} requests per slice")
    print(f"re-place them (e1 -> e2):    {move_s:6.2f} s, {move_req / n:5.1f} requests per slice")
    first = dict(before)
    print(
        "  requests of the first pass by verb/resource:",
        ", ".join(f"{k} {v}" for k, v in sorted(first.items())),
    )
    for s in slices:
        realiser.remove(s.name)


def drift(server: KubeApiServer, trials: int) -> None:
    gw = kube_real.gateway(server)
    realiser = KubeRealiser(gw, city(), resync_s=30)
    stop = threading.Event()
    realiser.start(stop)
    hand = kube_real.gateway(server, "kubectl")
    s = intent("bdrift")
    assert realiser.realise(s, placement(s, "e1"), 1).ok
    ns, name = "slice-bdrift", "v2x-edge-e1"
    deleted: list[float] = []
    scaled: list[float] = []
    try:
        for _ in range(trials):
            uid = (hand.get("Deployment", name, ns) or {})["metadata"]["uid"]
            t0 = time.perf_counter()
            hand.delete("Deployment", name, ns)
            while True:
                dep = hand.get("Deployment", name, ns)
                if dep is not None and dep["metadata"]["uid"] != uid:
                    break
                time.sleep(0.01)
            deleted.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            hand.patch("Deployment", name, {"spec": {"replicas": 9}}, ns, sub="scale")
            while (hand.get("Deployment", name, ns) or {}).get("spec", {}).get("replicas") != 2:
                time.sleep(0.01)
            scaled.append(time.perf_counter() - t0)
    finally:
        stop.set()
        realiser.stop()
        realiser.remove("bdrift")
    for what, values in (("deleted Deployment recreated", deleted), ("scaled Deployment restored", scaled)):
        print(
            f"{what}: p50 {statistics.median(values) * 1000:6.0f} ms, p95 {_pct(values, 0.95) * 1000:6.0f} ms, "
            f"max {max(values) * 1000:6.0f} ms ({len(values)} trials)"
        )


def failover(server: KubeApiServer, folder: Path, lease_s: int, retry_s: float) -> None:
    from tests.support.kube_failover import client_when_up, crd_slice, serving, start_leader_elected

    kube_real.install_crd(server)
    if server.kubectl("get", "ns", "edgeslice-system", check=False).returncode != 0:
        server.kubectl("create", "namespace", "edgeslice-system")
    city_file = folder / "city.yaml"
    city_file.write_text(yaml.safe_dump({"name": "two-edges", **CITY_DOCUMENT}), encoding="utf-8")
    for i in range(3):
        server.apply_yaml(yaml.safe_dump(crd_slice(f"fo-b{i}")))
    gw = kube_real.gateway(server)

    def holder() -> str:
        lease = gw.get("Lease", "edgeslice-controller", "edgeslice-system") or {}
        return str((lease.get("spec") or {}).get("holderIdentity", ""))

    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            start_leader_elected(folder / "a", city_file, server.admin.kubeconfig, "fo-a", lease_s, retry_s)
        )
        a = client_when_up(folder / "a", procs[0])
        while not serving(a):
            time.sleep(0.05)
        procs.append(
            start_leader_elected(folder / "b", city_file, server.admin.kubeconfig, "fo-b", lease_s, retry_s)
        )
        b = client_when_up(folder / "b", procs[1])
        while holder() != "fo-a":
            time.sleep(0.05)
        time.sleep(2.0)  # let B settle as a standby
        procs[0].kill()
        t0 = time.perf_counter()
        procs[0].wait(10)
        while holder() != "fo-b":
            time.sleep(0.02)
        lease_at = time.perf_counter() - t0
        while not serving(b):
            time.sleep(0.02)
        serve_at = time.perf_counter() - t0
        while sorted(x.name for x in b.list_slices()) != [f"fo-b{i}" for i in range(3)]:
            time.sleep(0.02)
        slices_at = time.perf_counter() - t0
        print(
            f"fail-over (lease {lease_s} s, retry {retry_s} s): standby holds the Lease {lease_at:.2f} s after "
            f"the SIGKILL, serves at {serve_at:.2f} s, has the 3 slices at {slices_at:.2f} s"
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        kube_real.delete_slices(server, *(f"fo-b{i}" for i in range(3)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=30)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--lease-duration", type=int, default=15)
    parser.add_argument("--lease-retry", type=float, default=2.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, running_control_plane(Path(tmp) / "cp", True) as server:
        requests_per_slice(server, args.slices)
        drift(server, args.trials)
        failover(server, Path(tmp), args.lease_duration, args.lease_retry)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
