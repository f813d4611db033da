"""Tag-triggered releases: ``taskservs/kubernetes/v1.28.0`` publishes exactly that extension;
``v3.5.0`` publishes the core artifact ``provisioning-core:v3.5.0``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ValidationError
from ..extension import TYPE_FOLDERS
from .context import PipelineContext, task_key, try_load

EXTENSION_TAG = re.compile(rf"^(?P<type>{'|'.join(TYPE_FOLDERS)})/(?P<name>[a-z0-9][a-z0-9_-]*)/v(?P<version>\S+)$")
CORE_TAG = re.compile(r"^v(?P<version>\d+\.\d+\.\d+\S*)$")


def parse_release_tag(tag: str) -> tuple[str, str | None, str]:
    """('extension', 'taskservs/kubernetes', '1.28.0') or ('core', None, '3.5.0')."""
    tag = tag.removeprefix("refs/tags/")
    if m := EXTENSION_TAG.match(tag):
        return "extension", f"{m['type']}/{m['name']}", m["version"]
    if m := CORE_TAG.match(tag):
        return "core", None, m["version"]
    raise ValidationError(
        f"release tag {tag!r} is neither an extension tag ({{type}}/{{name}}/v{{version}}, e.g. "
        "taskservs/kubernetes/v1.28.0) nor a core tag (v{version}, e.g. v3.5.0)"
    )


def release_filter(ctx: PipelineContext, ext_dirs: list[Path]) -> list[Path]:
    """The extensions a run publishes: all of them, or the one its release tag names (version checked)."""
    if not ctx.release_tag:
        return ext_dirs
    kind, key, version = parse_release_tag(ctx.release_tag)
    if kind == "core":
        return []
    matches = [d for d in ext_dirs if task_key(d) == key]
    if not matches:
        raise ValidationError(f"release tag {ctx.release_tag!r} names {key}, which is not in {ctx.extensions_dir}")
    ext = try_load(matches[0])
    if ext is not None and ext.version != version:
        raise ValidationError(
            f"release tag {ctx.release_tag!r} says version {version} but {key}/manifest.yaml says {ext.version}; "
            "tag the commit with the manifest's version, or bump the manifest first"
        )
    return matches


def core_version_error(ctx: PipelineContext) -> str | None:
    """A core tag must carry the version the tool declares."""
    from .. import __version__

    _, _, version = parse_release_tag(ctx.release_tag or "")
    if version != __version__:
        return (
            f"core release tag {ctx.release_tag!r} says {version} but the tool's version is {__version__}; "
            "bump the version in pyproject.toml and provisioning/__init__.py first"
        )
    return None
