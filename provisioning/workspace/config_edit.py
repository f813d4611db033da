"""Editing a workspace config in place: one module entry replaced or added, comments and layout kept.

``module load`` and ``migrate-to-oci`` change one list item each; the text is edited where the
item stands, and the whole document is rewritten only when the list is missing or written in
flow style. What was written is read back before anyone relies on it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from .. import yamlfile
from ..oci.reference import InvalidReference, parse_reference
from .display import load_yaml


def set_module_entry(file: Path, type_: str, name: str, entry: Any) -> None:
    """Replace (or append) the config entry for ``name`` under ``modules.<type>s``.

    Edits the text in place where it can, so comments and layout survive; falls back to
    rewriting the document when the list is missing or written in flow style.
    """
    text = file.read_text(encoding="utf-8")
    plural = f"{type_}s"
    new_text = _edit_text(text, plural, name, entry)
    if new_text is None:
        doc = yamlfile.safe_load(text) or {}
        mods = doc.setdefault("dependencies", {}).setdefault("extensions", {}).setdefault("modules", {}) or {}
        doc["dependencies"]["extensions"]["modules"] = mods
        items = list(mods.get(plural) or [])
        idx = next((i for i, e in enumerate(items) if _entry_name(e) == name), None)
        if idx is None:
            items.append(entry)
        else:
            items[idx] = entry
        mods[plural] = items
        new_text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    _atomic_write(file, new_text)
    # Make sure what we wrote still reads (and means what we think).
    load_yaml(file)


def _entry_name(entry: Any) -> str | None:
    if isinstance(entry, dict):
        return entry.get("name")
    if isinstance(entry, str):
        text = entry.strip()
        if text.startswith("oci://") or "/" in text or ":" in text:
            try:
                return parse_reference(text.split("@", 1)[0] if "@" in text and "sha256:" not in text else text).name
            except InvalidReference:
                return None
        return text.split("@", 1)[0].strip()
    return None


def _flow(entry: Any) -> str:
    """One entry as flow-style YAML that fits where a list item stood."""
    if isinstance(entry, str):
        return json.dumps(entry)  # a double-quoted YAML scalar
    text = yaml.safe_dump(entry, default_flow_style=True, width=10_000, sort_keys=False).strip()
    return text.removesuffix("...").strip()


def _edit_text(text: str, plural: str, name: str, entry: Any) -> str | None:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    node, key_node = root, None
    for key in ("dependencies", "extensions", "modules", plural):
        if not isinstance(node, yaml.MappingNode):
            return None
        key_node, node = next(
            ((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), (None, None)
        )
        if node is None:
            return None
    if key_node is not None and _is_empty_list(node):  # `taskservs:` (comments below kept) or `taskservs: []`
        assert node is not None
        line_end = text.find("\n", node.end_mark.index)
        line_end = len(text) if line_end < 0 else line_end
        item = " " * (key_node.start_mark.column + 2) + "- " + _flow(entry)
        return (
            text[: node.start_mark.index].rstrip(" ")
            + text[node.end_mark.index : line_end]
            + "\n"
            + item
            + (text[line_end:] if line_end < len(text) else "\n")
        )
    if not isinstance(node, yaml.SequenceNode) or node.flow_style or not node.value:
        return None
    for item in node.value:
        value = yaml.safe_load(yaml.serialize(item))
        if _entry_name(value) == name:
            return text[: item.start_mark.index] + _flow(entry) + text[_content_end(item) :]
    last = node.value[-1]
    line_start = text.rfind("\n", 0, last.start_mark.index) + 1
    prefix = text[line_start : last.start_mark.index]  # e.g. "      - "
    if prefix.strip() != "-":
        return None
    end = _content_end(last)
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    return text[:line_end] + "\n" + prefix + _flow(entry) + text[line_end:]


def _is_empty_list(node: yaml.Node | None) -> bool:
    """A list key with nothing in it yet: no value, ``null``, ``~`` or ``[]``."""
    if isinstance(node, yaml.ScalarNode):
        return node.tag == "tag:yaml.org,2002:null"
    return isinstance(node, yaml.SequenceNode) and node.flow_style and not node.value


def _content_end(node: yaml.Node) -> int:
    """Where a node's own text ends (a block collection's end mark lies past trailing comments)."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False) or not node.value:
        return node.end_mark.index
    last = node.value[-1]
    return _content_end(last[1] if isinstance(last, tuple) else last)


def _atomic_write(file: Path, text: str) -> None:
    tmp = file.with_name(f".{file.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, file)
