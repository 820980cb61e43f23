"""Regenerate the committed Python stubs from the .proto files, or check they are current.

    python protos/generate.py          # rewrite the stubs
    python protos/generate.py --check  # exit 1 if a committed stub differs from a fresh one

Protos live at ``protos/edgeslice/<service>/v1/<name>.proto`` with package ``edgeslice.<service>.v1``.
They are compiled with ``-I protos``, so their descriptors are registered under their proto paths
(``edgeslice/agent/v1/agent.proto``, what reflection serves and what another implementation's
``import`` lines name), and a .proto imports another as ``import "edgeslice/agent/v1/agent.proto"``.
The Python stubs still live in (and import as) ``protos.edgeslice.<service>.v1``: protoc writes their
cross-imports as ``from edgeslice.… import``, which this script rewrites to
``from protos.edgeslice.… import`` (what protoletariat does, without the dependency).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PYTHON_PACKAGE = "protos"
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _compile(out: Path) -> list[Path]:
    protos = sorted(PROTO_ROOT.rglob("*.proto"))
    if not protos:
        return []
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(str(p.relative_to(PROTO_ROOT)) for p in protos),
    ]
    subprocess.run(cmd, check=True, cwd=PROTO_ROOT)
    return protos


def _rewrite_imports(text: str, top_packages: set[str]) -> str:
    """``from edgeslice.x import y`` / ``import edgeslice.x`` → the same under ``protos.``.

    Only import statements at the start of a line and only our own top-level proto packages
    (never ``google.protobuf``) are rewritten.
    """
    names = "|".join(sorted(re.escape(p) for p in top_packages))
    pattern = re.compile(rf"^(\s*)(from|import)\s+({names})(\.|\s)", re.MULTILINE)
    return pattern.sub(rf"\1\2 {PYTHON_PACKAGE}.\3\4", text)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        protos = _compile(out)
        top_packages = {p.relative_to(PROTO_ROOT).parts[0] for p in protos}
        stale = []
        for proto in protos:
            rel = proto.relative_to(PROTO_ROOT).with_suffix("")
            for suffix in SUFFIXES:
                fresh_path = out / f"{rel}{suffix}"
                committed = PROTO_ROOT / f"{rel}{suffix}"
                if not fresh_path.exists():
                    continue
                fresh = _rewrite_imports(fresh_path.read_text(encoding="utf-8"), top_packages)
                if check:
                    if not committed.exists() or committed.read_text(encoding="utf-8") != fresh:
                        stale.append(str(committed.relative_to(ROOT)))
                else:
                    committed.write_text(fresh, encoding="utf-8")
            pkg = proto.parent
            while pkg != PROTO_ROOT:
                init = pkg / "__init__.py"
                if not init.exists() and not check:
                    init.write_text("")
                pkg = pkg.parent
    if stale:
        print("stale generated stubs (run: python protos/generate.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
