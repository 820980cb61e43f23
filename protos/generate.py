"""Regenerate the committed Python stubs from the .proto files, or check they are current.

    python protos/generate.py          # rewrite the stubs
    python protos/generate.py --check  # exit 1 if a committed stub differs from a fresh one

Protos live at ``protos/edgeslice/<service>/v1/<name>.proto`` with package ``edgeslice.<service>.v1``;
they are compiled from the repository root, so the stubs import as ``protos.edgeslice.<service>.v1``.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _compile(out: Path) -> list[Path]:
    protos = sorted((ROOT / "protos").rglob("*.proto"))
    if not protos:
        return []
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{ROOT}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *(str(p.relative_to(ROOT)) for p in protos),
    ]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return protos


def main(argv: list[str]) -> int:
    check = "--check" in argv
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        protos = _compile(out)
        stale = []
        for proto in protos:
            rel = proto.relative_to(ROOT).with_suffix("")
            for suffix in SUFFIXES:
                fresh = out / f"{rel}{suffix}"
                committed = ROOT / f"{rel}{suffix}"
                if not fresh.exists():
                    continue
                if check:
                    if not committed.exists() or not filecmp.cmp(fresh, committed, shallow=False):
                        stale.append(str(committed.relative_to(ROOT)))
                else:
                    shutil.copyfile(fresh, committed)
            pkg = proto.parent
            while pkg != ROOT / "protos":
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
