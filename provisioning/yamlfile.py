"""YAML that remembers where things are, and JSON Schema errors that say file, line and field.

Users fix what they can find: ``extensions/taskservs/redis/manifest.yaml:4: version: '1.0' is
not a valid semantic version`` beats a bare jsonschema dump.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ValidationError

SCHEMA_DIRS = (Path(__file__).resolve().parent.parent / "schemas", Path(__file__).resolve().parent / "schemas")

Location = tuple[str | int, ...]


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that records the line of every mapping key and sequence item."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[Location, int] = {}

    def construct_document(self, node: yaml.Node) -> Any:
        self._record(node, ())
        return super().construct_document(node)

    def _record(self, node: yaml.Node, path: Location) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
                self.lines[path + (key,)] = key_node.start_mark.line + 1
                self._record(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._record(item, path + (i,))


def load_yaml(path: Path, display: str | None = None) -> tuple[Any, dict[Location, int]]:
    """Load one YAML document; return the data and the line of each field path."""
    display = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"{display}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{display}: cannot read: {exc}") from None
    loader = _LineLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ValidationError(
            f"{display}{line}: malformed YAML: {exc.problem or exc.context}; fix the syntax at that line"
        ) from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{display}: malformed YAML: {exc}") from None
    finally:
        loader.dispose()
    return data, loader.lines


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema from ``schemas/`` (the repository's, or the copy shipped in the wheel)."""
    for folder in SCHEMA_DIRS:
        candidate = folder / name
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    raise FileNotFoundError(f"schema {name} not found in {', '.join(map(str, SCHEMA_DIRS))}")


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def field_path(path: Location) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def schema_errors(data: Any, schema_name: str, lines: dict[Location, int], display: str) -> list[str]:
    """Every schema violation as ``FILE:LINE: FIELD: message``, in document order."""
    found = []
    for err in _validator(schema_name).iter_errors(data):
        where = tuple(err.absolute_path)
        probe = where
        while probe not in lines and probe:
            probe = probe[:-1]
        line = lines.get(probe, 1)
        found.append((line, f"{display}:{line}: {field_path(where)}: {_describe(err)}"))
    return [msg for _, msg in sorted(found)]


def _describe(err: jsonschema.ValidationError) -> str:
    if err.validator == "pattern" and "description" in err.schema:
        return f"{err.instance!r} {err.schema['description']}"
    if err.validator == "enum":
        return f"{err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    return err.message
