"""Validate every manifest in ``deploy/`` and every rendering of the Helm chart against the
Kubernetes OpenAPI schemas of a current release (bundled by the ``kubernetes-validate`` package,
so this runs offline). Strict: unknown fields are errors.

    python deploy/validate.py [--kubernetes-version 1.37.0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

DEPLOY = Path(__file__).resolve().parent
sys.path.insert(0, str(DEPLOY))

import helm_render  # noqa: E402

# Chart renderings checked: the defaults and every optional branch switched the other way.
RENDERINGS: tuple[tuple[str, ...], ...] = (
    (),
    (
        "agent.enabled=true",
        "topology.existingConfigMap=city-topology",
        "replicas=1",
        "intents=sqlite",
        "leaderElection=false",
        "admissionPolicy.enabled=false",
    ),
)


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.yaml") if "helm" not in p.relative_to(DEPLOY).parts)


def _check(doc: dict[str, Any], where: str, version: str) -> list[str]:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [
            f"{where}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {exc.message} at {'.'.join(map(str, exc.path))}"
        ]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"{where}: no schema for {exc}"]
    return []


def validate(version: str) -> tuple[int, list[str]]:
    problems: list[str] = []
    count = 0
    for path in manifest_files():
        for i, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if doc:
                count += 1
                problems += _check(doc, f"{path.relative_to(DEPLOY.parent)}[{i}]", version)
    for overrides in RENDERINGS:
        label = "helm " + (" ".join(f"--set {o}" for o in overrides) or "(defaults)")
        try:
            docs = helm_render.render_chart(list(overrides))
        except helm_render.TemplateError as exc:
            problems.append(f"{label}: {exc}")
            continue
        for doc in docs:
            count += 1
            problems += _check(doc, label, version)
    return count, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubernetes-version", default=kv_utils.latest_version())
    args = parser.parse_args(argv)
    count, problems = validate(args.kubernetes_version)
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{count} objects checked against Kubernetes {args.kubernetes_version}: {len(problems)} invalid")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
