"""The typed client against the real ControllerService on a real SQLite file, served on port 0."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import grpc
import pytest

from controller.api import client as api_client
from controller.api import reports
from controller.runtime.service import ControllerService
from controller.runtime.store import Store
from slices import errors
from tests.support.api_service_rig import TOKEN, Running, slice_yaml


@pytest.fixture
def client(running: Running) -> Iterator[api_client.ApiClient]:
    with api_client.ApiClient(running.address, TOKEN, timeout_s=20) as c:
        yield c


def test_apply_get_list_explain_delete(client: api_client.ApiClient, running: Running) -> None:
    results = client.apply(
        [("cars.yaml", slice_yaml("cars") + "---\n" + slice_yaml("meters", "iot", "[c3]"))]
    )
    assert [(r.name, r.generation, r.changed) for r in results] == [("cars", 1, True), ("meters", 1, True)]
    assert {r.state for r in results} <= {"Ready", "Admitted"}
    again = client.apply([("cars.yaml", slice_yaml("cars"))])
    assert (again[0].generation, again[0].changed) == (1, False)
    cars = client.get("cars")
    assert (cars.kind, cars.snssai.split("-")[0], cars.priority) == ("vehicle", "4", 100)
    assert cars.placement.edges[0].site == "e1" and cars.placement.cells_served == 1
    assert [c.type for c in cars.conditions][:2] == ["Admitted", "Placed"]
    assert [s.name for s in client.list_slices()] == ["cars", "meters"]
    why = client.explain("cars")
    assert why.slice == "cars" and why.generation == 1
    assert reports.explanation_data(why)["generation"] == 1  # whole numbers come back as ints
    assert all(check.passed for check in why.checks)
    client.delete("cars")
    with pytest.raises(errors.NotFound, match="cars"):
        client.get("cars")
    with pytest.raises(errors.NotFound):
        client.delete("cars")
    assert [s.name for s in client.list_slices()] == ["meters"]


def test_rejected_slices_are_stored_and_reported(client: api_client.ApiClient) -> None:
    greedy = slice_yaml("greedy", "wifi", "[c1]", "  sla: {dlMbpsPerCell: 5000}\n")
    (result,) = client.apply([("greedy.yaml", greedy)])
    assert result.state == "Rejected" and result.reason and result.message
    assert client.get("greedy").state == "Rejected"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("spec: [", r"bad.yaml: not valid YAML at line \d+, column \d+"),
        ("", "bad.yaml: no NetworkSlice documents in it"),
        (
            slice_yaml("x").replace("kind: vehicle", "kind: vehicle\n  colour: red"),
            "spec.colour: unknown field",
        ),
        (
            slice_yaml("x", extra="  priority: 1001\n"),
            "spec.priority: Input should be less than or equal to 1000",
        ),
        (slice_yaml("x", extra="  sla: {latencyMs: 50}\n"), "x: spec.sla.latencyMs: 50 ms is too loose"),
        (
            slice_yaml("x") + "---\n" + slice_yaml("x"),
            "bad.yaml\\[doc 2\\]: metadata.name: slice 'x' appears twice",
        ),
    ],
)
def test_bad_input_is_invalid_spec_and_stores_nothing(
    client: api_client.ApiClient, running: Running, content: str, message: str
) -> None:
    client.apply([("ok.yaml", slice_yaml("first"))])
    before = (running.rows(), client.events()[-1].seq)
    with pytest.raises((errors.InvalidSpec, errors.TopologyError), match=message):
        client.apply([("good.yaml", slice_yaml("second")), ("bad.yaml", content)])
    assert (running.rows(), client.events()[-1].seq) == before
    assert [s.name for s in client.list_slices()] == ["first"]


def test_oversized_apply_is_refused_with_a_message(client: api_client.ApiClient, running: Running) -> None:
    huge = slice_yaml("huge") + ("# " + "x" * 1022 + "\n") * 4200
    with pytest.raises(errors.InvalidSpec, match=r"too large or too many: .*larger than max"):
        client.apply([("huge.yaml", huge)])
    assert running.rows() == 0


def test_authentication_errors_are_clear(running: Running) -> None:
    for token in ("", "not-the-token-0123456789"):
        with (
            api_client.ApiClient(running.address, token, timeout_s=5) as c,
            pytest.raises(api_client.NotAuthenticated, match=f"not authenticated by {running.address}"),
        ):
            c.list_slices()
    assert api_client.NotAuthenticated.exit_code == 8


def test_unreachable_server_names_the_address(tmp_path: Path) -> None:
    r = Running(tmp_path)
    address = r.address
    r.stop()
    with (
        api_client.ApiClient(address, TOKEN, timeout_s=5) as c,
        pytest.raises(errors.Unavailable, match=f"cannot reach the controller at {address}"),
    ):
        c.list_slices()


def test_events_list_and_watch(client: api_client.ApiClient, running: Running) -> None:
    client.apply([("a.yaml", slice_yaml("cars"))])
    every = client.events()
    assert every and every[0].action == "apply" and every[0].actor == "operator:ops"
    assert all(e.slice == "cars" for e in client.events(slice_name="cars"))
    last = every[-1].seq
    stream = client.watch(after_seq=last)
    later = threading.Timer(0.2, lambda: running.service.drain("e2", "operator:other"))
    later.start()
    got = next(stream)
    later.join()
    assert (got.action, got.site, got.actor) == ("drain", "e2", "operator:other")
    assert isinstance(stream, Generator)  # watch's promise: closing the iterator stops it
    stream.close()  # cancels the call


def test_topology_drain_undrain_what_if(client: api_client.ApiClient) -> None:
    client.apply([("a.yaml", slice_yaml("cars"))])
    status = client.topology_status()
    assert status.name == "small"
    e1 = next(s for s in status.sites if s.site == "e1")
    assert e1.cpu_reserved_millicores == 4000 and e1.slices == 1
    assert client.drain("e1") == ["cars"]
    assert client.get("cars").placement.edges[0].site == "e2"
    assert next(s for s in client.topology_status().sites if s.site == "e1").drained
    client.undrain("e1")
    assert not next(s for s in client.topology_status().sites if s.site == "e1").drained
    with pytest.raises(errors.NotFound, match="nowhere"):
        client.drain("nowhere")
    report = client.what_if(["e2"], [("a1", "e1")])
    assert report.affected[0].slice == "cars"
    assert client.health() == "SERVING"


def test_translate_without_trailing_metadata() -> None:
    class Failed(grpc.RpcError, grpc.Call):
        """A finished call that failed without trailing metadata (grpc then answers None)."""

        def __init__(self, code: grpc.StatusCode, details: str) -> None:
            self._code, self._details = code, details

        def code(self) -> grpc.StatusCode:
            return self._code

        def details(self) -> str:
            return self._details

        def initial_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
            return ()

        # grpc returns None when a call has no trailing metadata; the stubs say a tuple.
        def trailing_metadata(self) -> None:  # type: ignore[override]  # None is what is tested
            return None

        def add_callback(self, callback: Callable[[], None]) -> bool:
            return False

        def cancel(self) -> bool:
            return False

        def is_active(self) -> bool:
            return False

        def time_remaining(self) -> float:
            return 0.0

    cases = {
        grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidSpec,
        grpc.StatusCode.NOT_FOUND: errors.NotFound,
        grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
        grpc.StatusCode.DEADLINE_EXCEEDED: errors.Unavailable,
        grpc.StatusCode.UNAUTHENTICATED: api_client.NotAuthenticated,
        grpc.StatusCode.PERMISSION_DENIED: errors.EdgesliceError,
    }
    for code, kind in cases.items():
        exc = api_client.translate(Failed(code, "why"), "host:1")
        assert type(exc) is kind, code
        assert "\n" not in str(exc)


def test_service_is_the_contract_type(running: Running) -> None:
    assert isinstance(running.service, ControllerService) and isinstance(running.store, Store)
