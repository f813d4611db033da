"""YAML that remembers where things are, and JSON Schema errors that say file, line and field.

Users fix what they can find: ``extensions/taskservs/redis/manifest.yaml:4: version: '1.0' is
not a semantic version`` beats a bare jsonschema dump. Mappings and lists loaded here carry
the line of themselves and of each key or item, so any later check can point at its line too.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import jsonschema  # imported where used: a run that validates nothing should not pay for it

from .errors import ValidationError
from .safefile import UnsafeFile, read_bounded

MAX_YAML_BYTES = 16 << 20  # a manifest or workspace config; more is not one


class LineDict(dict):
    """A mapping that knows the line of itself and of each of its keys (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list):
    """A list that knows the line of itself and of each item (1-based)."""

    line: int = 0
    item_lines: list[int]


# libyaml's parser when PyYAML was built with it (about 8x faster on a hundred manifests); the
# constructors below stay Python, so the data and the lines are the same either way.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


MAX_EXPANDED_NODES = 100_000  # what a document may stand for once aliases are expanded (configs have hundreds)
MAX_DEPTH = 256


class YAMLBomb(yaml.YAMLError):
    """A document whose aliases expand beyond the budget, or that nests deeper than any config does."""


def check_expansion(root: yaml.Node, budget: int = MAX_EXPANDED_NODES, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a composed document that stands for more than ``budget`` nodes with aliases expanded.

    Aliases make the node graph a DAG; its expanded size is counted bottom-up with each node's size
    remembered, so a "billion laughs" costs as many steps as it has distinct nodes, not what it expands to.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if id(node) in sizes:
            continue
        if depth > max_depth:
            raise YAMLBomb(f"the document nests deeper than {max_depth} levels")
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            sizes[id(node)] = 1
            continue
        if not done:
            stack.append((node, depth, True))
            stack.extend((c, depth + 1, False) for c in children if id(c) not in sizes)
            continue
        total = 1 + sum(sizes.get(id(c), 1) for c in children)
        if total > budget:
            raise YAMLBomb(f"its aliases expand to more than {budget} values (an alias bomb?)")
        sizes[id(node)] = total


class LineLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe loader whose mappings and sequences record their node marks, refusing alias bombs."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        check_expansion(node)
        return self.construct_document(node)


class BoundedSafeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """``yaml.safe_load`` with the same alias and depth budget (plain data, no line information)."""

    get_single_data = LineLoader.get_single_data


def safe_load(text: str | bytes) -> Any:
    """Parse untrusted YAML (an artifact's manifest.yaml, a config): ``yaml.safe_load`` within a budget."""
    return yaml.load(text, Loader=BoundedSafeLoader)  # noqa: S506 - a SafeLoader subclass


def _construct_map(loader: LineLoader, node: yaml.MappingNode):  # type: ignore[no-untyped-def]
    data = LineDict()
    yield data
    data.update(loader.construct_mapping(node, deep=True))  # flattens merge keys in node.value
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        data.key_lines.setdefault(key, key_node.start_mark.line + 1)


def _construct_seq(loader: LineLoader, node: yaml.SequenceNode):  # type: ignore[no-untyped-def]
    data = LineList()
    yield data
    data.extend(loader.construct_sequence(node, deep=True))
    data.line = node.start_mark.line + 1
    data.item_lines = [n.start_mark.line + 1 for n in node.value]


LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_yaml(path: Path, *, display: str | None = None, text: str | None = None) -> Any:
    """Parse one YAML document with line information; a syntax error becomes ``file:line: problem``."""
    shown = display or str(path)
    if text is None:
        try:
            text = read_bounded(path, MAX_YAML_BYTES, shown).decode("utf-8")
        except UnsafeFile as exc:
            raise ValidationError(str(exc)) from None
        except FileNotFoundError:
            raise ValidationError(f"{shown}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"{shown}: cannot read: {exc}") from None
    try:
        return yaml.load(text, Loader=LineLoader)  # noqa: S506 - a SafeLoader subclass
    except YAMLBomb as exc:
        raise ValidationError(f"{shown}: refused: {exc}; write the values out instead") from None
    except RecursionError:
        raise ValidationError(f"{shown}: refused: the document nests too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else problem
        raise ValidationError(f"{shown}{line}: malformed YAML: {detail}; fix the syntax at that line") from None


def line_of(doc: Any, path: Sequence[Any]) -> int:
    """The line of the deepest element of ``path`` that the document recorded (0 if none)."""
    line = getattr(doc, "line", 0)
    node = doc
    for part in path:
        if isinstance(node, LineDict) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line


def field_path(path: Iterable[Any]) -> str:
    """``dependencies.extensions.modules.taskservs[2]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema from ``schemas/`` (through ``resources``: the checkout's, or the wheel's)."""
    from .resources import resource

    return json.loads(resource("schemas", name).read_text(encoding="utf-8"))


_VALIDATORS: dict[str, Any] = {}
_VALIDATORS_LOCK = threading.Lock()


def _validator(name: str) -> Any:
    """The schema's validator, built once per process (under a lock: threads that resolve at the same time would
    otherwise each build it, about 0.1 s of CPU apiece)."""
    found = _VALIDATORS.get(name)
    if found is not None:
        return found
    import jsonschema

    with _VALIDATORS_LOCK:
        if name not in _VALIDATORS:
            schema = load_schema(name)
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            _VALIDATORS[name] = cls(schema, format_checker=cls.FORMAT_CHECKER)
        return _VALIDATORS[name]


def schema_errors(doc: Any, schema_name: str, display: str) -> list[str]:
    """Every schema violation as ``FILE:LINE: FIELD: message``, in document order."""
    found = []
    picked = [p for err in _validator(schema_name).iter_errors(doc) for p in _pick(err)]
    for err, expected in picked:
        path = list(err.absolute_path)
        line = line_of(doc, path)
        where = f"{display}:{line}" if line else display
        if expected is not None:  # the schema says in words what belongs here
            found.append((line, f"{where}: {field_path(path)}: expected {expected}, got {_kind(err.instance)}"))
        else:
            found.append((line, f"{where}: {field_path(path)}: {_describe(err)}"))
    return [msg for _, msg in sorted(found, key=lambda item: item[0])]


_KINDS = {
    bool: "true/false",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
    type(None): "nothing (an empty value)",
}


def _kind(value: Any) -> str:
    """What a value is, in words, with the value itself when it is short."""
    kind = next((word for t, word in _KINDS.items() if isinstance(value, t)), type(value).__name__)
    shown = repr(value)
    if isinstance(value, (dict, list)) or len(shown) > 60:
        return kind
    return f"{kind} {shown}" if value is not None else kind


def _expected(err: jsonschema.ValidationError) -> str | None:
    """The schema's ``x-expected`` words for a wrong shape (type, or none of anyOf's forms matched)."""
    words = err.schema.get("x-expected") if isinstance(err.schema, dict) else None
    if not words or err.validator not in ("type", "anyOf", "oneOf"):
        return None
    if any(sub.relative_path or sub.validator not in ("type", "anyOf", "oneOf") for sub in err.context or ()):
        return None  # one form fits the shape and fails inside: that deeper error says more
    return str(words)


def _pick(err: jsonschema.ValidationError) -> list[tuple[jsonschema.ValidationError, str | None]]:
    """The errors to report: the schema's words where it has them, else the failing insides of anyOf's best form."""
    expected = _expected(err)
    if expected is not None or not err.context:
        return [(err, expected)]
    deeper = [e for e in err.context if e.relative_path]  # a form that fits the shape and fails inside
    if not deeper:
        fits = [e for e in err.context if e.validator != "type"] or list(err.context)
        return _pick(max(fits, key=_relevance))
    branch = max(deeper, key=_relevance).schema_path[0]
    return [p for e in deeper if e.schema_path[0] == branch for p in _pick(e)]


def _relevance(err: jsonschema.ValidationError) -> Any:
    from jsonschema.exceptions import relevance

    return relevance(err)


def _describe(err: jsonschema.ValidationError) -> str:
    if err.validator == "pattern" and "description" in err.schema:
        return f"{err.instance!r} {err.schema['description']}"
    if err.validator == "enum":
        return f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    return err.message
