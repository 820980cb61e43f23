"""Reading YAML and JSON documents strictly, with problems an operator can act on.

Both loaders refuse what PyYAML and :mod:`json` accept silently or fail on with a traceback:

* a key given twice in one mapping (PyYAML and :mod:`json` keep the last one);
* an integer too long for Python to convert (more than ``sys.get_int_max_str_digits()``
  digits; :class:`ValueError` deep inside the parser otherwise).

Every problem is a :class:`DocumentError`: one line, with the line and column where the YAML
parser knows them. No I/O here: callers read the file and name it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.constructor import ConstructorError

# libyaml's C parser when PyYAML was built with it (much faster); the constructor stays Python.
_BASE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class DocumentError(ValueError):
    """A document that cannot be read; ``str()`` is one line, without the file name."""


class _StrictLoader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """A safe loader that refuses duplicate keys and over-long integers, naming the line."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # `<<: *anchor` merges: keys it brings may be overridden on purpose
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first.get(key)
            except TypeError:
                continue  # an unhashable key: the base constructor reports it
            if seen is not None:
                raise ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"key {key!r} is given twice (first at line {seen.start_mark.line + 1})",
                    key_node.start_mark,
                )
            first[key] = key_node
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    digits = sum(ch.isdigit() for ch in str(node.value))
    limit = sys.get_int_max_str_digits()
    if limit and digits > limit:
        raise ConstructorError(
            None, None, f"an integer of {digits} digits is too large (at most {limit})", node.start_mark
        )
    value: int = yaml.SafeLoader.construct_yaml_int(loader, node)
    return value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: where and what (PyYAML's own text spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    context = getattr(exc, "context", None)
    if context and problem.startswith("but "):  # "expected a single document ..., but found another"
        problem = f"{context}, {problem}"
    return f"not valid YAML{at}: {problem}"


def load_yaml_all(text: str) -> Iterator[object]:
    """Every document of a YAML stream; raises :class:`DocumentError` on the first problem.

    >>> list(load_yaml_all("a: 1\\n---\\nb: 2\\n"))
    [{'a': 1}, {'b': 2}]
    >>> list(load_yaml_all("a: 1\\nb: 2\\na: 3\\n"))
    Traceback (most recent call last):
    ...
    slices.documents.DocumentError: not valid YAML at line 3, column 1: key 'a' is given twice (first at line 1)
    """
    try:
        yield from yaml.load_all(text, Loader=_StrictLoader)  # a safe loader
    except yaml.YAMLError as exc:
        raise DocumentError(_yaml_problem(exc)) from exc
    except ValueError as exc:  # a number the constructor cannot convert
        raise DocumentError(f"not valid YAML: {' '.join(str(exc).split())}") from exc


def load_yaml(text: str) -> object:
    """One YAML document (``None`` for an empty one); raises :class:`DocumentError`."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a safe loader
    except yaml.YAMLError as exc:
        raise DocumentError(_yaml_problem(exc)) from exc
    except ValueError as exc:
        raise DocumentError(f"not valid YAML: {' '.join(str(exc).split())}") from exc


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DocumentError(f"not valid JSON: key {key!r} is given twice in one object")
            seen.add(key)
    return out


def load_json(text: str) -> object:
    """One JSON document; raises :class:`DocumentError` (duplicate keys, over-long integers too).

    >>> load_json('{"a": [1, 2]}')
    {'a': [1, 2]}
    >>> load_json('{"a": 1, "a": 2}')
    Traceback (most recent call last):
    ...
    slices.documents.DocumentError: not valid JSON: key 'a' is given twice in one object
    """
    try:
        return _json(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"not valid JSON: {exc}") from exc


def _json(text: str) -> object:
    """:func:`json.loads` strictly; only a text that is not JSON at all raises JSONDecodeError."""
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except (json.JSONDecodeError, DocumentError):
        raise
    except ValueError as exc:  # an integer beyond the conversion limit
        limit = sys.get_int_max_str_digits()
        raise DocumentError(f"not valid JSON: an integer is too large (more than {limit} digits)") from exc


def load_document(text: str, is_json: bool = False) -> object:
    """One JSON or YAML document. JSON is YAML too and reads far faster, so JSON is
    tried first on what looks like JSON; flow-style YAML that is not JSON goes to the YAML parser.

    >>> load_document('{"a": [1, 2]}'), load_document("a: [1, 2]"), load_document("{a: 1}")
    ({'a': [1, 2]}, {'a': [1, 2]}, {'a': 1})
    """
    if is_json:
        return load_json(text)
    if text.lstrip().startswith("{"):
        try:
            return _json(text)
        except json.JSONDecodeError:
            pass  # flow-style YAML: the YAML parser reads it, or says precisely where it is wrong
    return load_yaml(text)
