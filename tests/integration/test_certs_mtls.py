"""Dev CA and site certificates, and mutual TLS: the certificate's site must be the claimed site."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509

from slices import errors
from telemetry import agentlink as agent_service
from telemetry.site import agent, certs
from tests.support.telemetry_fakes import FakeService


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    certs.create_dev_pki(d, ["c1", "c2"])
    return d


@pytest.fixture
def server(pki: Path) -> Iterator[agent_service.AgentServer]:
    tls = agent_service.TlsFiles(
        str(pki / "controller.crt"), str(pki / "controller.key"), str(pki / "ca.crt")
    )
    srv = agent_service.serve_agents(FakeService(), "127.0.0.1:0", tls=tls, sla=False)
    yield srv
    srv.stop()


def test_site_certificate_names_the_site_in_cn_and_spiffe_uri(pki: Path) -> None:
    assert certs.certificate_sites((pki / "site-c1.crt").read_bytes()) == {"c1"}
    cert = x509.load_pem_x509_certificate((pki / "site-c1.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://edgeslice/site/c1"]
    assert oct((pki / "site-c1.key").stat().st_mode & 0o777) == "0o600"


def test_existing_ca_is_reused(pki: Path) -> None:
    before = (pki / "ca.crt").read_bytes()
    certs.create_dev_pki(pki, ["e1"])
    assert (pki / "ca.crt").read_bytes() == before and (pki / "site-e1.crt").exists()


def test_bad_ca_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("not pem")
    (tmp_path / "ca.key").write_text("not pem")
    with pytest.raises(errors.InvalidSpec, match="CA: not a PEM"):
        certs.create_dev_pki(tmp_path, ["c1"])


def _connect(
    pki: Path, port: int, cert_site: str, claim: str, until: Callable[[], bool] = lambda: True
) -> agent.SiteAgent:
    async def main() -> agent.SiteAgent:
        creds = agent.channel_credentials(
            str(pki / f"site-{cert_site}.crt"), str(pki / f"site-{cert_site}.key"), str(pki / "ca.crt")
        )
        ch = agent.open_channel(f"localhost:{port}", creds)
        a = agent.SiteAgent(
            claim, lambda: ch, agent.MemoryBackend(), agent.IdleKpiSource(), backoff_max_s=0.2
        )
        task = asyncio.create_task(a.run())
        try:
            applied = asyncio.create_task(a.applied_event.wait())
            await asyncio.wait({task, applied}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
            applied.cancel()
            if task.done():
                task.result()  # raises the refusal
            for _ in range(100):  # the ack is on its way: let the controller see it
                if until():
                    break
                await asyncio.sleep(0.05)
            a.stop()
            await task
        finally:
            if not task.done():
                a.stop()
            await asyncio.gather(task, return_exceptions=True)
            await ch.close()
        return a

    return asyncio.run(main())


def test_agent_with_its_own_certificate_is_accepted(pki: Path, server: agent_service.AgentServer) -> None:
    a = _connect(pki, server.port, "c1", "c1", lambda: server.registry.status("c1").acked_generation == 1)
    assert a.applied is not None and a.applied.site_id == "c1"
    assert server.registry.status("c1").acked_generation == 1


def test_agent_cannot_claim_another_site(pki: Path, server: agent_service.AgentServer) -> None:
    with pytest.raises(errors.Unavailable, match=r"PERMISSION_DENIED.*certificate is for c1, not site 'c2'"):
        _connect(pki, server.port, "c1", "c2")
    assert server.registry.status("c2").messages == 0


def _refused_code(port: int, creds: grpc.ChannelCredentials) -> grpc.StatusCode:
    """The status of an agent stream opened with ``creds``, which the server must refuse."""
    with grpc.secure_channel(f"localhost:{port}", creds) as ch:
        method: Any = ch.stream_stream(agent_service.METHOD)
        call: Any = method(iter([b""]), timeout=3)
        with pytest.raises(grpc.RpcError) as exc:
            list(call)
    code: grpc.StatusCode = exc.value.code()
    return code


def test_client_without_certificate_is_refused(pki: Path, server: agent_service.AgentServer) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=(pki / "ca.crt").read_bytes())
    assert _refused_code(server.port, creds) == grpc.StatusCode.UNAVAILABLE
    assert server.registry.statuses(connected_only=True) == []


def test_certificate_from_another_ca_is_refused(
    tmp_path: Path, pki: Path, server: agent_service.AgentServer
) -> None:
    other = certs.create_ca()
    pair = certs.site_certificate(other, "c1")
    certs.write_pair(pair, tmp_path, "site-c1")
    creds = grpc.ssl_channel_credentials((pki / "ca.crt").read_bytes(), pair.key, pair.cert)
    assert _refused_code(server.port, creds) == grpc.StatusCode.UNAVAILABLE


def test_slicectl_agent_certs_writes_ca_controller_and_site_certificates(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from controller.cli import main

    out = tmp_path / "pki"
    result = CliRunner().invoke(main, ["agent", "certs", "--dir", str(out), "--site", "c1", "--site", "e1"])
    assert result.exit_code == 0, result.output
    assert "2 site certificates" in result.output
    assert certs.certificate_sites((out / "site-e1.crt").read_bytes()) == {"e1"}
    assert (out / "ca.crt").exists() and (out / "controller.key").exists()
    result = CliRunner().invoke(main, ["agent", "certs", "--dir", str(out)])
    assert result.exit_code == 2 and "give --site ID (repeatable) or --all" in result.output


def test_a_certificate_naming_two_sites_is_refused_for_both(
    pki: Path, server: agent_service.AgentServer
) -> None:
    # CN=c1 with a SAN for c2: it must not be good for either site.
    ca = certs.load_pair(pki, "ca")
    two = certs.client_certificate(ca, "c1", uris=[certs.SPIFFE_SITE + "c2"], days=1)
    certs.write_pair(two, pki, "site-two")
    for claim in ("c1", "c2"):
        with pytest.raises(errors.Unavailable, match=r"PERMISSION_DENIED.*names 2 sites \(c1, c2\)"):
            _connect(pki, server.port, "two", claim)
        assert server.registry.status(claim).messages == 0


def test_identity_is_checked_before_existence(pki: Path, server: agent_service.AgentServer) -> None:
    # A stranger learns nothing of the topology: a site that does not exist is PERMISSION_DENIED
    # for a certificate of another site, never NOT_FOUND.
    with pytest.raises(
        errors.Unavailable, match=r"PERMISSION_DENIED.*certificate is for c1, not site 'nowhere'"
    ):
        _connect(pki, server.port, "c1", "nowhere")
