"""kubectl habits shared by the get/list commands: ``-o wide|name|json|yaml|jsonpath=EXPR`` and
``-l`` label selectors.

The JSONPath here is the subset of kubectl's template syntax that scripts use: ``{.a.b}``,
``{.items[0]}``, ``{.items[*].name}``, ``{.x['dotted.key']}``, ``{"literal\\n"}`` and
``{range .items[*]}...{end}``; text outside braces is printed as it is. A template without braces
is one expression (``-o jsonpath=.name``). Strings print bare, other values as compact JSON,
several results of one expression separated by spaces (as kubectl does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import click

from slices import errors

GET_FORMATS = ("table", "wide", "name", "json", "yaml")
T = TypeVar("T")


# ---- -o -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """A parsed ``-o``: ``kind`` is one of :data:`GET_FORMATS` or ``jsonpath``."""

    kind: str
    template: Template | None = None


class FormatType(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.5 on
    name = "FORMAT"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[table|wide|name|json|yaml|jsonpath=EXPR]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Format:
        if isinstance(value, Format):
            return value
        text = str(value)
        if text in GET_FORMATS:
            return Format(text)
        kind, sep, expr = text.partition("=")
        if kind == "jsonpath" and sep:
            try:
                return Format("jsonpath", parse_template(expr))
            except errors.InvalidSpec as exc:
                self.fail(f"{text!r}: {exc}", param, ctx)
        self.fail(f"{text!r} is not one of table, wide, name, json, yaml or jsonpath=EXPR.", param, ctx)


get_output_option = click.option(
    "-o",
    "--output",
    "fmt",
    type=FormatType(),
    default="table",
    show_default=True,
    help="Output format: table, wide (more columns), name (slice/NAME lines), json, yaml, or "
    "jsonpath=EXPR (e.g. '{.items[*].name}' for a list, '{.state}' for one).",
)


# ---- JSONPath -------------------------------------------------------------------------------

_STEP = re.compile(
    r"""\.\*|\.(?P<field>[A-Za-z_][\w-]*)|\[(?P<index>-?\d+)\]|\[\*\]|\[(?P<q>['"])(?P<key>.*?)(?P=q)\]"""
)


@dataclass(frozen=True)
class _Path:
    steps: tuple[str | int | None, ...]  # field name, index, or None for every element


@dataclass(frozen=True)
class _Range:
    path: _Path
    body: tuple[_Node, ...]


_Node = str | _Path | _Range  # a str is literal text


@dataclass(frozen=True)
class Template:
    nodes: tuple[_Node, ...]


def _parse_path(expr: str) -> _Path:
    """``.items[*].name`` → steps.

    >>> _parse_path("$.items[*]['app.kubernetes.io/name'][0]").steps
    ('items', None, 'app.kubernetes.io/name', 0)
    >>> _parse_path(".").steps
    ()
    """
    text = expr.strip()
    if text.startswith("$"):
        text = text[1:]
    if text in ("", "."):
        return _Path(())
    if not text.startswith((".", "[")):
        text = "." + text
    steps: list[str | int | None] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise errors.InvalidSpec(f"cannot read the JSONPath {expr!r} at {text[pos:]!r}")
        if m.group("field") is not None:
            steps.append(m.group("field"))
        elif m.group("index") is not None:
            steps.append(int(m.group("index")))
        elif m.group("key") is not None:
            steps.append(m.group("key"))
        else:
            steps.append(None)
        pos = m.end()
    return _Path(tuple(steps))


def parse_template(text: str) -> Template:
    """A kubectl-style template (see the module doc).

    >>> t = parse_template('{range .items[*]}{.name}{"\\\\n"}{end}')
    >>> len(t.nodes), type(t.nodes[0]).__name__
    (1, '_Range')
    """
    if "{" not in text and "}" not in text:
        return Template((_parse_path(text),))
    stack: list[tuple[_Path | None, list[_Node]]] = [(None, [])]
    pos = 0
    while pos < len(text):
        start = text.find("{", pos)
        if start < 0:
            stack[-1][1].append(text[pos:])
            break
        if start > pos:
            stack[-1][1].append(text[pos:start])
        end = text.find("}", start)
        if end < 0:
            raise errors.InvalidSpec(f"JSONPath template {text!r}: '{{' without '}}'")
        inner = text[start + 1 : end].strip()
        pos = end + 1
        if inner.startswith(("'", '"')) and len(inner) >= 2 and inner[-1] == inner[0]:
            stack[-1][1].append(inner[1:-1].encode().decode("unicode_escape"))
        elif inner.startswith("range "):
            stack.append((_parse_path(inner[len("range ") :]), []))
        elif inner == "end":
            if len(stack) == 1:
                raise errors.InvalidSpec(f"JSONPath template {text!r}: {{end}} without {{range}}")
            path, body = stack.pop()
            assert path is not None
            stack[-1][1].append(_Range(path, tuple(body)))
        else:
            stack[-1][1].append(_parse_path(inner))
    if len(stack) != 1:
        raise errors.InvalidSpec(f"JSONPath template {text!r}: {{range}} without {{end}}")
    return Template(tuple(stack[0][1]))


def _select(data: Any, steps: Sequence[str | int | None]) -> Iterator[Any]:
    if not steps:
        yield data
        return
    step, rest = steps[0], steps[1:]
    if step is None:
        values = data.values() if isinstance(data, Mapping) else data if isinstance(data, list) else ()
        for value in values:
            yield from _select(value, rest)
    elif isinstance(step, int):
        if isinstance(data, list) and -len(data) <= step < len(data):
            yield from _select(data[step], rest)
    elif isinstance(data, Mapping) and step in data:
        yield from _select(data[step], rest)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=str)


def _render(nodes: Sequence[_Node], data: Any) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Path):
            out.append(" ".join(_text(v) for v in _select(data, node.steps)))
        else:
            out += [_render(node.body, item) for item in _select(data, node.path.steps)]
    return "".join(out)


def render(template: Template, data: Any) -> str:
    """The template applied to ``data``.

    >>> data = {"items": [{"name": "a", "n": 1}, {"name": "b", "n": 2}]}
    >>> render(parse_template("{.items[*].name}"), data)
    'a b'
    >>> render(parse_template('{range .items[*]}{.name}={.n}{"\\\\n"}{end}'), data)
    'a=1\\nb=2\\n'
    >>> render(parse_template(".items[1]"), data)
    '{"name":"b","n":2}'
    """
    return _render(template.nodes, data)


# ---- -l -------------------------------------------------------------------------------------

_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "exists", "!exists"
    value: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "=":
            return labels.get(self.key) == self.value
        if self.op == "!=":
            return labels.get(self.key) != self.value
        if self.op == "exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def parse_selector(text: str, flag: str = "--selector") -> Selector:
    """Kubernetes equality-based selectors, comma-separated: ``k=v``, ``k==v``, ``k!=v``, ``k``
    (has the label), ``!k`` (has not).

    >>> s = parse_selector("tier=gold,region!=north,!legacy")
    >>> s.matches({"tier": "gold"}), s.matches({"tier": "gold", "region": "north"})
    (True, False)
    >>> parse_selector("tier in (a)")
    Traceback (most recent call last):
    ...
    slices.errors.InvalidSpec: --selector 'tier in (a)': 'tier in (a)' is not a label key (use key=value, key!=value, key or !key)
    """
    requirements: list[Requirement] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise errors.InvalidSpec(f"{flag} {text!r}: an empty requirement (two commas, or one at an end)")
        if "!=" in part:
            key, _, value = part.partition("!=")
            op = "!="
        elif "=" in part:
            key, _, value = part.partition("==") if "==" in part else part.partition("=")
            op = "="
        elif part.startswith("!"):
            key, value, op = part[1:], "", "!exists"
        else:
            key, value, op = part, "", "exists"
        key, value = key.strip(), value.strip()
        if not _LABEL_KEY.match(key) or len(key.rpartition("/")[2]) > 63:
            raise errors.InvalidSpec(
                f"{flag} {text!r}: {key!r} is not a label key (use key=value, key!=value, key or !key)"
            )
        if not _LABEL_VALUE.match(value) or len(value) > 63:
            raise errors.InvalidSpec(f"{flag} {text!r}: {value!r} is not a label value")
        requirements.append(Requirement(key, op, value))
    return Selector(tuple(requirements))


class ParsedType(click.ParamType, Generic[T]):  # type: ignore[type-arg]  # generic from click 8.5 on
    """A flag's value read by ``parse``, whose :class:`~slices.errors.InvalidSpec` names ``flag``:
    click's usage error says it without the flag (click names the parameter itself); a value that
    is already a ``parsed`` (a default) passes as it is."""

    parsed: type[T]
    flag: str

    def parse(self, text: str) -> T:
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> T:
        if isinstance(value, self.parsed):
            return value
        try:
            return self.parse(str(value))
        except errors.InvalidSpec as exc:
            self.fail(str(exc).removeprefix(f"{self.flag} "), param, ctx)


class SelectorType(ParsedType[Selector]):
    name = "SELECTOR"
    parsed = Selector
    flag = "--selector"

    def parse(self, text: str) -> Selector:
        return parse_selector(text)


selector_option = click.option(
    "-l",
    "--selector",
    type=SelectorType(),
    default=None,
    help="Only slices whose metadata.labels match, e.g. -l tier=gold,region!=north (also key, !key).",
)
