"""Honest operations (issue 13, items 4-6): drain says what became of every slice and exits 9
when one could not move; cordon and uncordon; writes carry a request id, so a retry after a
dropped connection is not done twice and the client says "unknown, retrying" then "committed";
default SDs; `slice apply --dry-run=server`, `slice diff`; `agent simulate` on the controller's
topology; `topology fingerprint`; `plan` in the controller's order.

Real parts: real controller processes (tests/support/controller_process.py) and the real `slicectl`
as a subprocess where the behaviour is about processes; a real gRPC server on loopback over the
real ControllerService and SQLite file elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner, Result

from controller.api import auth
from controller.api import client as api_client
from controller.api import server as api_server
from controller.cli import main
from controller.core.topology import Topology
from controller.core.topology_file import write_topology_file
from controller.process import endpoints
from tests.support import cityfixtures as cf
from tests.support import runtime_helpers
from tests.support.controller_process import SLICECTL, ControllerProcess, start_controller

TOKEN = "ops-token-0123456789abcdef"


def slice_yaml(name: str, kind: str, cells: str, extra: str = "") -> str:
    """A slice without snssai: the controller gives it its default SD."""
    return f"""apiVersion: edgeslice.io/v1alpha1
kind: NetworkSlice
metadata: {{name: {name}}}
spec:
  kind: {kind}
  coverage: {{sites: {cells}}}
{extra}"""


def city_file(tmp_path: Path, far_cpu: int = 4000) -> Path:
    """c1..c4 on a1; edge `near` 1 ms away (16 cores) and `far` 4 ms away (``far_cpu``)."""
    path = tmp_path / "city.json"
    write_topology_file(cf.two_edge_file(cells=4, near_cpu=16_000, far_cpu=far_cpu), path)
    return path


def slicectl(proc: ControllerProcess, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    env = {
        "EDGESLICE_SERVER": proc.address,
        "EDGESLICE_TOKEN": proc.token,
        "EDGESLICE_STATE_DIR": "/nonexistent",
    }
    return subprocess.run(
        [*SLICECTL, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **env},
    )


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ControllerProcess]:
    proc = start_controller(tmp_path, city_file(tmp_path), extra=("--no-agents",))
    yield proc
    proc.terminate()


# ---- drain, cordon ------------------------------------------------------------------------------


def test_drain_reports_every_slice_moved_preempted_or_stuck_and_exits_9(
    controller: ControllerProcess,
) -> None:
    with controller.client() as client:
        # Cordoned `near`: the wifi slice w0 can only land on `far` (a cordon steers new placements).
        client.cordon("near")
        client.apply([("w0.yaml", slice_yaml("w0", "wifi", "[c4]"))])
        assert client.get("w0").placement.edges[0].site == "far"
        assert client.uncordon("near")
        client.apply(
            [
                ("s.yaml", slice_yaml("v1", "vehicle", "[c3]")),
                ("t.yaml", slice_yaml("w1", "wifi", "[c1]") + "---\n" + slice_yaml("w2", "wifi", "[c2]")),
            ]
        )
        assert {client.get(n).placement.edges[0].site for n in ("v1", "w1", "w2")} == {"near"}
    out = slicectl(controller, "topology", "drain", "near")
    # v1 (priority 100) moves to far and preempts w0 there; far has no room left for w1, w2.
    assert out.returncode == 9, out.stderr
    rows = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()[1:-1]}
    assert rows == {"v1": "Moved", "w0": "Preempted", "w1": "NotMoved", "w2": "NotMoved"}, out.stdout
    assert "no slice had to move" not in out.stdout
    assert out.stdout.splitlines()[-1] == (
        "site near drained: 1 moved, 1 preempted, 2 could not move (still on the site, Degraded)"
    )
    assert out.stderr.strip() == "error: 2 slices could not move off near: w1, w2 (--force to accept)"
    assert "preempted by slice 'v1'" in out.stdout and "EdgeComputeExhausted" in out.stdout
    with controller.client() as client:
        assert client.get("v1").placement.edges[0].site == "far"
        assert client.get("w0").state == "Preempted"
        assert client.get("w1").placement.edges[0].site == "near"  # it stays: said so above
        # Drained already: nothing done, and that is what it says (exit 0: nothing is stuck by it).
    again = slicectl(controller, "topology", "drain", "near", "-o", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["alreadyDrained"] is True


def test_drain_force_exits_0_and_json_lists_the_moves(controller: ControllerProcess) -> None:
    with controller.client() as client:
        client.apply([("a.yaml", slice_yaml(f"w{i}", "wifi", f"[c{i}]")) for i in range(1, 5)])
    out = slicectl(controller, "topology", "drain", "near", "--force", "-o", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    outcomes = {m["slice"]: m["outcome"] for m in doc["moves"]}
    assert sorted(outcomes) == ["w1", "w2", "w3", "w4"]
    assert sorted(outcomes.values()) == ["Moved", "Moved", "NotMoved", "NotMoved"]  # far fits two
    assert sorted(doc["movedSlices"]) == sorted(n for n, o in outcomes.items() if o == "Moved")


def test_cordon_moves_nothing_steers_new_slices_and_survives_a_restart(tmp_path: Path) -> None:
    topology = city_file(tmp_path, far_cpu=16_000)
    proc = start_controller(tmp_path, topology, extra=("--no-agents",))
    try:
        with proc.client() as client:
            client.apply([("a.yaml", slice_yaml("old", "iot", "[c1]"))])
            assert client.get("old").placement.edges[0].site == "near"
        out = slicectl(proc, "topology", "cordon", "near")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "site near cordoned; 1 slices stay on it (nothing moved)"
        with proc.client() as client:
            assert client.get("old").placement.edges[0].site == "near"  # not moved
            client.apply([("b.yaml", slice_yaml("new", "iot", "[c2]"))])
            assert client.get("new").placement.edges[0].site == "far"
            near = next(s for s in client.topology_status().sites if s.site == "near")
            assert (near.cordoned, near.drained, near.reason) == (True, False, "Cordoned")
        status = slicectl(proc, "topology", "status")
        assert (
            next(line for line in status.stdout.splitlines() if line.startswith("near ")).split()[2]
            == "cordoned"
        )
        data = json.loads(slicectl(proc, "site", "status", "-o", "json").stdout)
        assert {s["site"]: s["cordoned"] for s in data["sites"] if s["kind"] == "edge"} == {
            "near": True,
            "far": False,
        }
        again = slicectl(proc, "topology", "cordon", "near")
        assert again.stdout.startswith("site near was already cordoned")
    finally:
        assert proc.terminate() == 0
    proc = start_controller(tmp_path, topology, extra=("--no-agents",))  # kept in the state
    try:
        with proc.client() as client:
            assert next(s for s in client.topology_status().sites if s.site == "near").cordoned
            client.apply([("c.yaml", slice_yaml("newer", "iot", "[c3]"))])
            assert client.get("newer").placement.edges[0].site == "far"
        out = slicectl(proc, "topology", "uncordon", "near")
        assert out.returncode == 0 and out.stdout.strip() == "site near uncordoned", out.stderr
        with proc.client() as client:
            client.apply([("d.yaml", slice_yaml("last", "iot", "[c4]"))])
            assert client.get("last").placement.edges[0].site == "near"
            actions = [e.action for e in client.events() if e.site == "near"]
            assert actions == ["cordon", "uncordon"]
        out = slicectl(proc, "topology", "uncordon", "near")
        assert out.stdout.strip() == "site near was not cordoned; nothing was done"
        missing = slicectl(proc, "topology", "cordon", "nowhere")
        assert missing.returncode == 4 and missing.stderr.count("\n") == 1 and "nowhere" in missing.stderr
    finally:
        proc.terminate()


# ---- request ids: a dropped connection after the commit ------------------------------------------


class DropAfterCommit(grpc.ServerInterceptor):
    """Runs ``method`` for real (it commits), then fails the call UNAVAILABLE, once: the client
    never sees the answer of a write that happened, as when a connection drops."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.dropped = threading.Event()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(details)
        if handler is None or not details.method.endswith("/" + self.method):
            return handler
        inner = handler.unary_unary
        assert inner is not None

        def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
            answer = inner(request, context)
            if not self.dropped.is_set():
                self.dropped.set()
                context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset (test)")
            return answer

        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@pytest.fixture
def dropping(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, DropAfterCommit, Any]]:
    drop = DropAfterCommit(request.param)
    service, store = runtime_helpers.make_service(tmp_path, cf.two_edge_city(cells=4))
    server = api_server.serve(
        service, "127.0.0.1:0", auth.Authenticator({"ops": TOKEN}), None, dev=True, interceptors=[drop]
    )
    yield server.address, drop, service
    server.stop(0)
    store.close()


@pytest.mark.parametrize("dropping", ["ApplySlices"], indirect=True)
def test_apply_retried_after_a_dropped_answer_is_done_once_and_says_so(
    dropping: tuple[str, DropAfterCommit, Any],
) -> None:
    address, drop, service = dropping
    said: list[str] = []
    with api_client.ApiClient(address, TOKEN, timeout_s=20) as client:
        response = client.apply_response(
            [("a.yaml", slice_yaml("cars", "vehicle", "[c1]"))], on_retry=said.append
        )
    assert drop.dropped.is_set()
    assert len(said) == 1 and said[0].startswith("unknown, retrying: the answer to the apply (request id ")
    assert "connection reset (test)" in said[0]
    # The retry got the FIRST answer (changed: the slice was created by it), not a second apply.
    assert response.replayed and [(r.name, r.generation, r.changed) for r in response.results] == [
        ("cars", 1, True)
    ]
    applies = [e for e in service.events() if e.action == "apply"]
    assert len(applies) == 1


@pytest.mark.parametrize("dropping", ["ApplySlices"], indirect=True)
def test_slicectl_apply_says_unknown_retrying_then_committed(
    dropping: tuple[str, DropAfterCommit, Any], tmp_path: Path
) -> None:
    address, _, service = dropping
    path = tmp_path / "cars.yaml"
    path.write_text(slice_yaml("cars", "vehicle", "[c1]") + "---\n" + slice_yaml("cams", "wifi", "[c2]"))
    env = {"EDGESLICE_SERVER": address, "EDGESLICE_TOKEN": TOKEN, "EDGESLICE_STATE_DIR": "/nonexistent"}
    result: Result = CliRunner().invoke(main, ["slice", "apply", "-f", str(path)], env=env)
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 2 and lines[0].startswith("unknown, retrying: ") and "cannot reach" not in result.stderr
    )
    assert (
        lines[1]
        == "committed: the controller answered the re-sent request with its first answer (it was not done twice)"
    )
    assert [line.split()[:3] for line in result.stdout.splitlines()[1:]] == [
        ["cars", "1", "yes"],
        ["cams", "1", "yes"],
    ]
    assert len([e for e in service.events() if e.action == "apply"]) == 2  # one per slice, once


@pytest.mark.parametrize("dropping", ["DeleteSlice"], indirect=True)
def test_delete_retried_after_a_dropped_answer_is_not_a_not_found(
    dropping: tuple[str, DropAfterCommit, Any],
) -> None:
    address, drop, _ = dropping
    with api_client.ApiClient(address, TOKEN, timeout_s=20) as client:
        client.apply([("a.yaml", slice_yaml("cars", "vehicle", "[c1]"))])
        said: list[str] = []
        client.delete("cars", on_retry=said.append)  # the retry is answered, not NOT_FOUND
        assert drop.dropped.is_set() and len(said) == 1
        assert [s.name for s in client.list_slices()] == []


def test_a_request_id_reused_for_another_request_is_refused(tmp_path: Path) -> None:
    from protos.edgeslice.operator.v1 import operator_pb2 as pb
    from protos.edgeslice.operator.v1 import operator_pb2_grpc as pb_grpc

    service, store = runtime_helpers.make_service(tmp_path, cf.two_edge_city(cells=4))
    server = api_server.serve(service, "127.0.0.1:0", auth.Authenticator({"ops": TOKEN}), None, dev=True)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.OperatorServiceStub(channel)  # type: ignore[no-untyped-call]
            meta = (("authorization", f"Bearer {TOKEN}"),)
            first = pb.ApplySlicesRequest(
                manifests=[pb.Manifest(source="a", content=slice_yaml("a", "iot", "[c1]"))], request_id="r-1"
            )
            assert not stub.ApplySlices(first, metadata=meta, timeout=10).replayed
            assert stub.ApplySlices(first, metadata=meta, timeout=10).replayed
            other = pb.ApplySlicesRequest(
                manifests=[pb.Manifest(source="b", content=slice_yaml("b", "iot", "[c2]"))], request_id="r-1"
            )
            with pytest.raises(grpc.RpcError) as err:
                stub.ApplySlices(other, metadata=meta, timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "request_id: 'r-1' was already used for a different request" in (err.value.details() or "")
            assert [r.name for r in service.list_slices()] == ["a"]
    finally:
        server.stop(0)
        store.close()


def test_an_unreachable_controller_is_cannot_reach_nothing_sent() -> None:
    with (
        api_client.ApiClient("127.0.0.1:1", TOKEN, timeout_s=2) as client,
        pytest.raises(Exception, match=r"cannot reach the controller at 127.0.0.1:1: .*nothing was sent"),
    ):
        client.apply([("a.yaml", slice_yaml("a", "iot", "[c1]"))])


# ---- default SD, dry run, diff ------------------------------------------------------------------


def test_slices_without_snssai_get_unique_default_sds_and_are_both_admitted(
    controller: ControllerProcess,
) -> None:
    with controller.client() as client:
        results = client.apply(
            [("a.yaml", slice_yaml("meters", "iot", "[c1]") + "---\n" + slice_yaml("sensors", "iot", "[c2]"))]
        )
        assert [r.reason for r in results] == ["", ""] and {r.state for r in results} <= {"Ready", "Admitted"}
        snssais = {client.get(n).snssai for n in ("meters", "sensors")}
        assert len(snssais) == 2 and all(s.startswith("3-") and len(s) == 8 for s in snssais)


def test_dry_run_server_is_the_real_decision_and_stores_nothing(
    controller: ControllerProcess, tmp_path: Path
) -> None:
    with controller.client() as client:
        client.apply([("a.yaml", slice_yaml("big", "wifi", "[c1]", "  sla: {dlMbpsPerCell: 900}\n"))])
        seq = client.events()[-1].seq
    fits = tmp_path / "fits.yaml"
    fits.write_text(slice_yaml("small", "iot", "[c2]") + "---\n" + slice_yaml("more", "iot", "[c3]"))
    out = slicectl(controller, "slice", "apply", "--dry-run=server", "-f", str(fits))
    assert out.returncode == 0, out.stderr
    assert [line.split()[:4] for line in out.stdout.splitlines()[1:]] == [
        ["small", "1", "yes", "Admitted"],
        ["more", "1", "yes", "Admitted"],
    ]
    assert "nothing was stored" in out.stderr
    # c1's radio is 1000 Mbps and `big` holds 900 + 60: a second big slice there would not fit.
    tight = tmp_path / "tight.yaml"
    tight.write_text(slice_yaml("big2", "wifi", "[c1]", "  sla: {dlMbpsPerCell: 300}\n"))
    out = slicectl(controller, "slice", "apply", "--dry-run=server", "-f", str(tight), "-o", "json")
    assert out.returncode == 3, out.stderr
    (result,) = json.loads(out.stdout)
    assert result["state"] == "Rejected" and result["reason"] == "RadioCapacityExceeded"
    assert out.stderr.strip().splitlines()[-1] == "would be rejected: big2"
    with controller.client() as client:
        assert [s.name for s in client.list_slices()] == ["big"]  # nothing stored
        assert client.events()[-1].seq == seq  # no event
        # The real apply takes the same decision the dry run announced.
        assert client.apply([("t.yaml", tight.read_text())])[0].reason == "RadioCapacityExceeded"


def test_slice_diff_against_the_stored_spec(controller: ControllerProcess, tmp_path: Path) -> None:
    path = tmp_path / "cars.yaml"
    path.write_text(slice_yaml("cars", "vehicle", "[c1]", "  priority: 100\n"))
    new = slicectl(controller, "slice", "diff", "-f", str(path))
    assert new.returncode == 1 and new.stdout.startswith("--- cars (not stored)\n+++ cars (file)\n"), (
        new.stderr
    )
    assert slicectl(controller, "slice", "apply", "-f", str(path)).returncode == 0
    same = slicectl(controller, "slice", "diff", "-f", str(path))
    assert (same.returncode, same.stdout) == (0, "")
    path.write_text(slice_yaml("cars", "vehicle", "[c1]", "  priority: 200\n"))
    changed = slicectl(controller, "slice", "diff", "-f", str(path))
    assert changed.returncode == 1
    assert "-  priority: 100\n+  priority: 200\n" in changed.stdout
    with controller.client() as client:
        assert client.get("cars").priority == 100  # diff changes nothing


# ---- topology from the controller, fingerprints, plan -----------------------------------------


def test_agent_simulate_takes_the_controllers_topology_and_another_city_is_refused(tmp_path: Path) -> None:
    topology = city_file(tmp_path)
    # A lease longer than the test: the first simulator's sites stay up after it ends, so the
    # check below sees only what the refused simulator did (the default 3 s lease raced with a
    # slow second slicectl run on a loaded machine).
    extra = ("--agents-listen", "127.0.0.1:0", "--agent-lease", "60")
    proc = start_controller(tmp_path, topology, extra=extra)
    try:
        agents = endpoints.read_endpoints(tmp_path / "state")["agents"]
        ok = slicectl(proc, "agent", "simulate", "--controller", agents, "--sites", "2", "--duration", "1.5")
        assert ok.returncode == 0, ok.stderr
        fingerprint = Topology.from_file(cf.two_edge_file(cells=4, near_cpu=16_000, far_cpu=4000)).fingerprint
        assert (
            ok.stdout.splitlines()[0]
            == f"topology 'two-edge' (7 sites, fingerprint {fingerprint}) from the controller"
        )
        other = tmp_path / "other.json"
        write_topology_file(cf.two_edge_file(cells=5), other)
        bad = slicectl(
            proc, "agent", "simulate", "--controller", agents, "--sites", "1", "--topology", str(other)
        )
        assert bad.returncode == 1, bad.stdout + bad.stderr
        (line,) = bad.stderr.strip().splitlines()
        assert line.startswith(f"error: the controller at {agents} refused the simulator: ")
        assert "FAILED_PRECONDITION" in line and "another city" in line
        with proc.client() as client:  # the other city's agents damaged nothing
            assert all(s.up for s in client.topology_status().sites)
    finally:
        proc.terminate()


def test_topology_fingerprint_prints_the_files_fingerprint(tmp_path: Path) -> None:
    path = city_file(tmp_path)
    result = CliRunner().invoke(main, ["topology", "fingerprint", str(path)])
    assert result.exit_code == 0, result.output
    expected = Topology.from_file(cf.two_edge_file(cells=4, near_cpu=16_000, far_cpu=4000)).fingerprint
    assert result.stdout == expected + "\n"


def test_plan_uses_the_controllers_order_and_says_what_it_cannot_predict(tmp_path: Path) -> None:
    city = city_file(tmp_path)
    slices = tmp_path / "s.yaml"
    slices.write_text(slice_yaml("a", "iot", "[c1]"))
    plain = CliRunner().invoke(main, ["plan", "--topology", str(city), str(slices), "-o", "json"])
    doc = json.loads(plain.stdout)
    assert (doc["order"], doc["predictsLive"]) == ("controller", True)
    assert any("dry-run=server" in c for c in doc["caveats"])
    other = CliRunner().invoke(main, ["plan", "--topology", str(city), str(slices), "--order", "priority"])
    assert "note: --order priority is not the controller's order" in other.stdout
    assert "cannot predict the live result" in other.stdout


def test_a_cordon_is_kept_in_the_cluster_and_restored_by_a_new_leader(
    kube_apiserver: Any, tmp_path: Path
) -> None:
    """Kubernetes mode: the cordon goes to ConfigMap edgeslice-maintenance (as `cordon.<site>`,
    beside drains) before it is committed, and a replica that starts leading restores it."""
    from controller.kube import crd_source
    from controller.runtime.service import ControllerService
    from controller.runtime.store import Store
    from tests.support import kube_fixtures, kube_real
    from tests.support.clock import FakeClock

    namespace = "honest-ops"
    gateway = kube_real.gateway(kube_apiserver)
    if gateway.get("Namespace", namespace) is None:
        gateway.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    maintenance = crd_source.ClusterMaintenance(gateway, namespace)
    stores = [Store.open(tmp_path / "a.db"), Store.open(tmp_path / "b.db")]
    first = ControllerService(kube_fixtures.city(), stores[0], [], FakeClock())
    first.maintenance_hook = maintenance.record
    try:
        assert first.cordon("e1", "operator:ops") == (True, [])
        assert set(maintenance.drained()) == {"cordon.e1"}
        standby = ControllerService(kube_fixtures.city(), stores[1], [], FakeClock())
        assert standby.cordoned() == []
        assert maintenance.restore(standby) == ["e1"]
        assert standby.cordoned() == ["e1"] and standby.drained() == []
        assert first.uncordon("e1", "operator:ops")
        assert maintenance.drained() == {}
    finally:
        gateway.delete("ConfigMap", crd_source.MAINTENANCE_CONFIGMAP, namespace)
        for store in stores:
            store.close()


def test_draining_a_covered_cell_says_the_cell_is_out_of_service(tmp_path: Path) -> None:
    from slices.intent import load_slices

    service, store = runtime_helpers.make_service(tmp_path, cf.two_edge_city(cells=4))
    try:
        service.apply(load_slices(slice_yaml("meters", "iot", "[c1, c2]"), "m.yaml"), "operator:ops")
        report = service.drain_report("c1", "operator:ops")
        ((move),) = report.moves
        assert (move.slice, move.outcome) == ("meters", "CellOutOfService")
        assert move.message.startswith("covered cell c1 is out of service; 1 cells served from near")
        assert report.moved == []
    finally:
        store.close()


def test_a_dry_run_sees_the_slices_before_it_and_names_whom_it_would_preempt(tmp_path: Path) -> None:
    from slices.intent import load_slices

    service, store = runtime_helpers.make_service(tmp_path, cf.two_edge_city(cells=4, radio_mbps=200))
    try:
        service.apply(load_slices(slice_yaml("hotspot", "wifi", "[c1]"), "h.yaml"), "operator:ops")
        before = (service.ledger_snapshot(), service.events(limit=10_000)[-1].seq)
        docs = load_slices(
            slice_yaml("cars", "vehicle", "[c1]") + "---\n" + slice_yaml("bus", "vehicle", "[c1]"), "v.yaml"
        )
        cars, bus = service.apply(docs, "operator:ops", dry_run=True)
        # 200 Mbps of radio: cars (75) fits beside the hotspot (120); bus (75) then preempts it.
        assert (cars.state, cars.reason) == ("Admitted", "Admitted") and "preempt" not in cars.message
        assert (bus.state, bus.reason) == ("Admitted", "AdmittedByPreemption")
        assert "preempts hotspot" in bus.message and bus.message.count("hotspot") == 1
        assert (
            service.ledger_snapshot(),
            service.events(limit=10_000)[-1].seq,
        ) == before  # nothing reserved or written
        assert [s.name for s in service.list_slices()] == ["hotspot"]
        three = load_slices(slice_yaml("van", "vehicle", "[c1]", "  sla: {dlMbpsPerCell: 150}\n"), "x.yaml")
        (van,) = service.apply([*docs, *three], "operator:ops", dry_run=True)[2:]
        assert (van.state, van.reason) == ("Rejected", "RadioCapacityExceeded")
    finally:
        store.close()


def test_the_request_log_forgets_the_oldest_answers_beyond_its_bounds() -> None:
    from protos.edgeslice.operator.v1 import operator_pb2 as pb

    log = api_server.RequestLog(size=10, max_bytes=200)
    done: list[str] = []

    def request(rid: str) -> pb.CordonSiteRequest:
        return pb.CordonSiteRequest(site="x" * 60, request_id=rid)

    def do(rid: str) -> Callable[[], pb.CordonSiteResponse]:
        def answer() -> pb.CordonSiteResponse:
            done.append(rid)
            return pb.CordonSiteResponse(changed=True, slices_on_site=["s" * 30])

        return answer

    for rid in ("a", "b", "c"):
        assert not log.run("CordonSite", request(rid), do(rid)).replayed
    assert log.run("CordonSite", request("c"), do("c")).replayed  # the newest is kept
    assert not log.run("CordonSite", request("a"), do("a")).replayed  # the oldest went over 200 bytes
    assert done == ["a", "b", "c", "a"]
    small = api_server.RequestLog(size=2)
    for rid in ("a", "b", "c"):
        small.run("CordonSite", request(rid), do(rid))
    assert small.run("CordonSite", request("b"), do("b")).replayed
    assert not small.run("CordonSite", request("a"), do("a")).replayed  # beyond the count
