"""`slicectl agent run`: where its site comes from and which TLS files it takes (one-line errors).

Resolving a site from a node on a real API server is tested in tests/e2e/test_deploy_server.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import main


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["agent", "run", "--controller", "127.0.0.1:1", *args])
    return result.exit_code, result.output.strip()


@pytest.mark.parametrize("args", [(), ("--site", "e1", "--site-from-node", "rack-1")])
def test_exactly_one_source_of_the_site(args: tuple[str, ...]) -> None:
    code, out = _run(*args, "--insecure")
    assert code != 0
    assert out.endswith("give exactly one of --site SITE or --site-from-node NODE")
    assert len(out.splitlines()) == 1


def test_site_placeholder_in_tls_paths_names_the_missing_file(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("x")
    (tmp_path / "site-e1.crt").write_text("x")
    args = ["--site", "e1", "--tls-ca", str(tmp_path / "ca.crt")]
    args += ["--tls-cert", str(tmp_path / "site-{site}.crt"), "--tls-key", str(tmp_path / "site-{site}.key")]
    code, out = _run(*args)
    assert code != 0
    assert out.endswith(f"--tls-key: {tmp_path / 'site-e1.key'}: no such file")
    assert len(out.splitlines()) == 1


def test_site_from_node_without_cluster_credentials_is_one_line(tmp_path: Path) -> None:
    code, out = _run("--site-from-node", "rack-1", "--kubeconfig", str(tmp_path / "missing"), "--insecure")
    assert code != 0
    assert "--site-from-node: cannot load kubeconfig" in out and len(out.splitlines()) == 1
