"""The embedded Kubernetes backend: render each slice's manifests into
``<state-dir>/manifests/<slice>/NN-kind-name.yaml`` instead of a cluster, so the demo and
offline users can read exactly what ``--kube`` would apply (``slicectl slice manifests NAME``).

Writing is idempotent (an unchanged file is not rewritten) and atomic; files no longer desired (a
re-placement) are removed; ``remove`` deletes the slice's folder and nothing else.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from controller.core.placement_model import Placement
from controller.core.topology import Topology
from controller.kube import manifests as kube_manifests
from controller.kube.manifests import KubeSettings, Manifest
from controller.runtime.realisation import RealisationResult
from slices import errors, files
from slices.intent import is_dns_label
from slices.profiles import SliceIntent

# libyaml's emitter writes the same text faster than the pure-Python one.
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def file_name(index: int, manifest: Manifest) -> str:
    """``NN-kind-name.yaml``, numbered in apply order.

    >>> file_name(4, {"kind": "Deployment", "metadata": {"name": "mqtt-e1"}})
    '04-deployment-mqtt-e1.yaml'
    """
    return f"{index:02d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"


def _write_atomic(folder: Path, name: str, text: str) -> bool:
    target = folder / name
    if target.exists() and target.read_text(encoding="utf-8") == text:
        return False
    files.write_text_atomic(target, text)
    return True


class ManifestFolder:
    """:class:`controller.runtime.realisation.Realiser` that writes manifests instead of applying them."""

    name = "manifests"

    def __init__(self, folder: str | Path, topology: Topology, settings: KubeSettings | None = None) -> None:
        self.folder = Path(folder)
        self.topology = topology
        self.settings = settings or KubeSettings()
        self.writes = 0  # files actually (re)written; lets tests see idempotence

    def slice_folder(self, name: str) -> Path:
        if not is_dns_label(name):
            raise errors.InvalidSpec(f"slice name {name!r}: not a DNS label")
        return self.folder / name

    def realise(self, intent: SliceIntent, placement: Placement, generation: int) -> RealisationResult:
        manifests = kube_manifests.render(intent, placement, self.topology, self.settings, generation)
        folder = self.slice_folder(intent.name)
        wanted = {file_name(i, m): m for i, m in enumerate(manifests, start=1)}
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, manifest in wanted.items():
                if _write_atomic(
                    folder, name, yaml.dump(manifest, Dumper=_DUMPER, sort_keys=False, width=120)
                ):
                    self.writes += 1
            for stale in folder.glob("*.yaml"):
                if stale.name not in wanted:
                    stale.unlink()
        except OSError as exc:
            return RealisationResult(False, "WriteFailed", f"cannot write {folder}: {exc.strerror or exc}")
        return RealisationResult(True, "Applied", f"{len(wanted)} manifests rendered in {folder}")

    def remove(self, name: str) -> RealisationResult:
        folder = self.slice_folder(name)
        if not folder.exists():
            return RealisationResult(True, "Removed", f"no manifests at {folder}")
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            return RealisationResult(False, "RemoveFailed", f"cannot remove {folder}: {exc.strerror or exc}")
        return RealisationResult(True, "Removed", f"{folder} removed")


def read_manifests(folder: str | Path, name: str) -> str:
    """The rendered manifests of a slice as one YAML stream; NotFound when none were rendered."""
    if not is_dns_label(name):
        raise errors.InvalidSpec(f"slice name {name!r}: not a DNS label")
    where = Path(folder) / name
    files = sorted(where.glob("*.yaml")) if where.is_dir() else []
    if not files:
        raise errors.NotFound(f"slice {name!r}: no manifests rendered in {where} (is it placed?)")
    return "---\n".join(f.read_text(encoding="utf-8") for f in files)


def build_manifest_folder_realiser(
    folder: str | Path, topology: Topology, node_label_key: str = KubeSettings.node_label_key
) -> ManifestFolder:
    """The embedded default: ``<state-dir>/manifests``."""
    return ManifestFolder(folder, topology, KubeSettings(node_label_key=node_label_key))
