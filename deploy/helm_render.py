"""Render the edgeslice Helm chart without the ``helm`` binary (so the checks run where helm is not installed).

This implements only the template subset ``deploy/helm/edgeslice/templates`` uses, with Go
template whitespace rules: ``{{ .Values.a.b }}``, ``.Release.Name``/``.Release.Namespace``,
``.Chart.AppVersion``/``.Chart.Version``; ``if``/``if not``/``else``/``end``; the pipeline
functions ``quote``, ``toYaml``, ``nindent N``, ``indent N`` and ``default V``. Anything else is an
error, so a template that drifts beyond the subset fails CI instead of rendering wrongly.

    python deploy/helm_render.py [--set key.path=value ...] > rendered.yaml
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent / "helm" / "edgeslice"
_ACTION = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)


class TemplateError(Exception):
    pass


def _lookup(path: str, scope: dict[str, Any]) -> Any:
    node: Any = scope
    for part in path.lstrip(".").split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip("\n")


def _term(token: str, scope: dict[str, Any]) -> Any:
    if token.startswith("."):
        return _lookup(token, scope)
    if token.startswith('"'):
        return json.loads(token)
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    raise TemplateError(f"unsupported term {token!r}")


def _evaluate(expr: str, scope: dict[str, Any]) -> Any:
    stages = [s.strip() for s in expr.split("|")]
    head = stages[0].split()
    if head[0] == "toYaml" and len(head) == 2:
        value: Any = _to_yaml(_term(head[1], scope))
    elif head[0] == "not" and len(head) == 2:
        value = not _term(head[1], scope)
    elif len(head) == 1:
        value = _term(head[0], scope)
    else:
        raise TemplateError(f"unsupported expression {expr!r}")
    for stage in stages[1:]:
        fn, *args = stage.split()
        if fn == "quote":
            value = json.dumps("" if value is None else str(value))
        elif fn == "toYaml":
            value = _to_yaml(value)
        elif fn in ("nindent", "indent"):
            pad = " " * int(args[0])
            text = "\n".join(pad + line if line else line for line in str(value).split("\n"))
            value = "\n" + text if fn == "nindent" else text
        elif fn == "default":
            value = value if value not in (None, "", False) else _term(args[0], scope)
        else:
            raise TemplateError(f"unsupported function {fn!r}")
    return value


def _render_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_template(text: str, scope: dict[str, Any]) -> str:
    """Render one template.

    >>> render_template("a: {{ .Values.x | quote }}\\n{{- if .Values.y }}\\nb: 1\\n{{- end }}\\n",
    ...                 {"Values": {"x": "hi", "y": False}})
    'a: "hi"\\n'
    """
    out: list[str] = []
    stack: list[tuple[bool, bool]] = []  # (this branch active, parent active)
    pos = 0
    trim_next = False
    for match in _ACTION.finditer(text):
        literal = text[pos : match.start()]
        if trim_next:
            literal = literal.lstrip()
        if match.group(1):
            literal = literal.rstrip()
        active = all(a for a, _ in stack)
        if active:
            out.append(literal)
        expr = match.group(2)
        trim_next = bool(match.group(3))
        pos = match.end()
        words = expr.split(maxsplit=1)
        if words and words[0] == "if":
            stack.append((bool(_evaluate(words[1], scope)) if active else False, active))
        elif expr == "else":
            if not stack:
                raise TemplateError("else without if")
            cond, parent = stack.pop()
            stack.append((parent and not cond, parent))
        elif expr == "end":
            if not stack:
                raise TemplateError("end without if")
            stack.pop()
        elif active:
            out.append(_render_value(_evaluate(expr, scope)))
    if stack:
        raise TemplateError("if without end")
    tail = text[pos:]
    out.append(tail.lstrip() if trim_next else tail)
    return "".join(out)


def _set(values: dict[str, Any], assignment: str) -> None:
    path, _, raw = assignment.partition("=")
    node = values
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(raw)


def render_chart(
    overrides: list[str] | None = None, release: str = "edgeslice", namespace: str = "edgeslice-system"
) -> list[dict[str, Any]]:
    """Every object the chart installs (CRDs included), as dicts."""
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    for assignment in overrides or []:
        _set(values, assignment)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    scope = {
        "Values": values,
        "Release": {"Name": release, "Namespace": namespace},
        "Chart": {"Version": chart["version"], "AppVersion": chart["appVersion"], "Name": chart["name"]},
    }
    docs: list[dict[str, Any]] = []
    for crd in sorted((CHART / "crds").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(crd.read_text(encoding="utf-8")) if d]
    for template in sorted((CHART / "templates").glob("*.yaml")):
        try:
            text = render_template(template.read_text(encoding="utf-8"), scope)
            docs += [d for d in yaml.safe_load_all(text) if d]
        except (TemplateError, yaml.YAMLError) as exc:
            raise TemplateError(f"{template.relative_to(CHART)}: {exc}") from exc
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], help="override a value: key.path=value")
    args = parser.parse_args(argv)
    print(yaml.safe_dump_all(render_chart(args.set), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
