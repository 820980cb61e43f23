"""Kubernetes realisation cost: time and API requests to realise N slices, then to re-place M of
them after their edge site fails, with the official client over HTTP to the kmock-based emulator
(tests/kube_emulator.py) on loopback.

    /work/venv/bin/python bench/bench_kube.py [--slices 500] [--replace 100]

The emulator runs in the same process (its own thread and event loop), so the times include the
server's work too; the request counts are what a real API server would see.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller import kube_gateway  # noqa: E402
from controller.kube_realiser import KubeRealiser  # noqa: E402
from tests.kube_emulator import KubeEmulator  # noqa: E402
from tests.kube_fixtures import city, intent, placement  # noqa: E402

KINDS = ("iot", "vehicle", "wifi")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--replace", type=int, default=100)
    args = parser.parse_args(argv)
    topology = city()
    with KubeEmulator() as emu:
        gw = kube_gateway.KubeGateway(kube_gateway.api_client_for(host=emu.url))
        realiser = KubeRealiser(gw, topology)
        slices = [intent(f"s{i:04d}", KINDS[i % 3]) for i in range(args.slices)]
        # Half on each edge site; the first --replace on e1 are the ones its failure moves.
        sites = ["e1" if i % 2 == 0 else "e2" for i in range(args.slices)]

        t0 = time.perf_counter()
        for s, site in zip(slices, sites, strict=True):
            result = realiser.realise(s, placement(s, site), 1)
            assert result.ok, result
        realise_s = time.perf_counter() - t0
        realise_requests = gw.requests
        objects = len(emu.objects)
        methods = Counter(m for m, _ in emu.requests)

        gw.requests = 0
        t0 = time.perf_counter()
        again = [
            realiser.realise(s, placement(s, site), 1)
            for s, site in zip(slices[:100], sites[:100], strict=True)
        ]
        assert all(r.ok for r in again)
        noop_s = time.perf_counter() - t0
        noop_requests = gw.requests

        moved = [s for s, site in zip(slices, sites, strict=True) if site == "e1"][: args.replace]
        gw.requests = 0
        t0 = time.perf_counter()
        for s in moved:
            result = realiser.realise(s, placement(s, "e2"), 2)
            assert result.ok and "pruned" in result.message, result
        replace_s = time.perf_counter() - t0
        replace_requests = gw.requests

    print(
        f"realise {args.slices} slices: {realise_s:.2f} s, {realise_requests} API requests "
        f"({realise_requests / args.slices:.1f}/slice: {dict(methods)}), {objects} objects"
    )
    print(f"re-apply 100 unchanged slices: {noop_s:.2f} s, {noop_requests} API requests")
    print(
        f"re-place {len(moved)} slices after a site failure: {replace_s:.2f} s, {replace_requests} API requests "
        f"({replace_requests / max(1, len(moved)):.1f}/slice)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
