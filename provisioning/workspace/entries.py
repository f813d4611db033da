"""One entry of ``dependencies.extensions.modules``: what the workspace asks for, as a ``ModuleSpec``.

An entry is a full reference (``oci://host/namespace/name:1.2.3``), a name, ``name@constraint``
or a mapping (``{name, version, source, path, url, ref, registry, namespace, digest}``). The
workspace's ``source_type`` decides what a plain name means (a registry, a local folder, a git
repository). Every problem names the file, the line and the field.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ValidationError, VersionError
from ..oci.reference import InvalidReference, parse_reference, version_for_tag
from ..settings import RegistrySettings, registry_path
from ..yamlfile import field_path
from .display import where

EXTENSION_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")  # also a safe folder name: no '/', no '..'


@dataclass(frozen=True)
class ModuleSpec:
    """One extension the workspace asks for, as written in the config."""

    name: str
    type: str
    constraint: str | None = None  # None: newest compatible
    tag: str | None = None  # an exact tag from a full reference
    digest: str | None = None
    source: str = "oci"  # oci | local | git | gitea
    registry: RegistrySettings | None = None  # None: the workspace default
    path: Path | None = None  # local folder (absolute)
    url: str | None = None  # git
    ref: str | None = None  # git
    entry: str = ""  # the config text, for messages
    location: str = ""  # file:line, for messages

    def key(self, root: Path) -> dict[str, Any]:
        """What about this entry decides the resolution (the lock's input hash)."""
        d: dict[str, Any] = {"name": self.name, "type": self.type, "source": self.source}
        if self.constraint is not None:
            d["constraint"] = self.constraint
        if self.tag:
            d["tag"] = self.tag
        if self.digest:
            d["digest"] = self.digest
        if self.registry:
            d.update(self.registry.key(root))
        if self.path is not None:
            d["path"] = relative(self.path, root)
        if self.url:
            d["url"] = self.url
        if self.ref:
            d["ref"] = self.ref
        return d

    @property
    def requirement_text(self) -> str:
        if self.digest:
            return f"@{self.digest}"
        if self.tag:
            return f"={version_for_tag(self.tag)}"
        return self.constraint or "*"


def relative(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class EntryContext:
    """What an entry is read against: the document (for lines), the workspace and its defaults."""

    file: Path
    doc: Any
    root: Path
    default: RegistrySettings
    source_type: str
    local_path: Path | None
    git_repo: str | None = None


def parse_module(entry: Any, type_: str, at: list[Any], ctx: EntryContext) -> ModuleSpec:
    """One entry of ``modules.<type>s``: a reference, a name, ``name@constraint`` or a mapping."""
    if isinstance(entry, str):
        return _from_text(entry, type_, at, ctx)
    return _from_mapping(entry, type_, at, ctx)  # the schema checked keys and types


def check_constraint(constraint: str, ctx: EntryContext, at: list[Any]) -> str:
    from ..versions import Range

    try:
        Range.parse(constraint)
    except (VersionError, ValueError) as exc:
        at_text = f"{where(ctx.file, ctx.doc, at)}: {field_path(at)}"
        raise ValidationError(f"{at_text}: invalid version constraint: {exc}") from None
    return constraint


def _from_text(entry: str, type_: str, at: list[Any], ctx: EntryContext) -> ModuleSpec:
    loc = where(ctx.file, ctx.doc, at)
    bad = f"{loc}: {field_path(at)}"
    text = entry.strip()
    if ctx.source_type == "local" and not text.startswith("oci://"):
        return _local_module(text.split("@", 1)[0], type_, None, at, ctx, entry)
    if ctx.source_type in ("git", "gitea") and not text.startswith("oci://"):
        name, _, constraint_text = (p.strip() for p in text.partition("@"))
        if not EXTENSION_NAME.match(name):
            raise ValidationError(f"{bad}: {entry!r}: expected name or name@constraint")
        if constraint_text:
            check_constraint(constraint_text, ctx, at)
        return _git_module(name, type_, constraint_text or None, None, ctx.git_repo, ctx.source_type, bad, entry, loc)
    name, constraint, tag, digest, reg = text, None, None, None, None
    if "@" in text and not text.split("@", 1)[1].startswith("sha256:"):
        name, constraint = (s.strip() for s in text.split("@", 1))
        if not constraint:
            raise ValidationError(f"{bad}: {entry!r} has an empty constraint after '@' (write name@^1.2)")
        check_constraint(constraint, ctx, at)
    if "/" in name or ":" in name or "@" in name:
        name, tag, digest, reg = _reference(name, ctx.default, bad)
        if tag and constraint:
            raise ValidationError(f"{bad}: {entry!r} gives both a tag and a constraint; keep one")
    if not EXTENSION_NAME.match(name):
        raise ValidationError(
            f"{bad}: {entry!r}: expected a full reference (oci://host/namespace/name:1.2.3), "
            "a name (kubernetes), name@constraint (kubernetes@^1.28) or a mapping {name, version}"
        )
    return ModuleSpec(
        name=name, type=type_, constraint=constraint, tag=tag, digest=digest, registry=reg, entry=entry, location=loc
    )


def _reference(
    text: str, default: RegistrySettings, bad: str
) -> tuple[str, str | None, str | None, RegistrySettings | None]:
    """(name, tag, digest, registry unless the default) of a reference written in an entry."""
    try:
        ref = parse_reference(text, registry=default.registry, namespace=default.namespace)
    except InvalidReference as exc:
        raise ValidationError(f"{bad}: {exc}") from None
    namespace = ref.repository.rsplit("/", 1)[0] if "/" in ref.repository else default.namespace
    reg = default.with_registry(ref.registry, namespace)
    return ref.name, ref.tag, ref.digest, None if reg == default else reg


def _from_mapping(entry: dict[str, Any], type_: str, at: list[Any], ctx: EntryContext) -> ModuleSpec:
    loc = where(ctx.file, ctx.doc, at)
    name = entry["name"]
    source = entry.get("source") or (ctx.source_type if ctx.source_type in ("local", "git", "gitea") else "oci")
    constraint = entry.get("version")
    if constraint is not None:
        constraint = check_constraint(str(constraint), ctx, [*at, "version"])
    text = json.dumps(dict(entry), sort_keys=True)
    if source == "local":
        return _local_module(name, type_, constraint, at, ctx, text, entry.get("path"))
    if source in ("git", "gitea"):
        url = git_url(entry["url"], ctx.root) if entry.get("url") else ctx.git_repo
        bad = f"{loc}: {field_path(at)}"
        return _git_module(name, type_, constraint, entry.get("ref"), url, source, bad, text, loc)
    registry = entry.get("registry")
    if registry:
        registry = registry_path(registry, ctx.root)
    reg = ctx.default.with_registry(registry, entry.get("namespace"))
    return ModuleSpec(
        name=name,
        type=type_,
        constraint=constraint,
        digest=entry.get("digest"),
        registry=None if reg == ctx.default else reg,
        entry=text,
        location=loc,
    )


def _git_module(
    name: str,
    type_: str,
    constraint: str | None,
    ref: str | None,
    url: str | None,
    source: str,
    bad: str,
    entry: str,
    loc: str,
) -> ModuleSpec:
    if not url:
        raise ValidationError(
            f"{bad}: {name} comes from {source} but no repository is named: set dependencies.extensions.{source}.url "
            "(and organization for gitea), or give the module its own url"
        )
    return ModuleSpec(
        name=name, type=type_, constraint=constraint, source="git", url=url, ref=ref, entry=entry, location=loc
    )


def git_url(url: str, root: Path) -> str:
    """A repository URL; a plain folder path (relative to the workspace) becomes ``file://``."""
    if "://" in url or url.startswith("git@") or ":" in url.split("/", 1)[0]:
        return url
    p = Path(url).expanduser()
    return "file://" + str(p if p.is_absolute() else (root / p).resolve())


def default_git_repo(ext: dict[str, Any], source_type: str, root: Path) -> str | None:
    """The extensions monorepo for source_type git (its url) or gitea (url/organization/provisioning-extensions)."""
    if source_type not in ("git", "gitea"):
        return None
    section = ext.get(source_type) or {}
    url = section.get("url")
    if not url:
        return None
    if source_type == "gitea" and not url.rstrip("/").endswith(".git"):
        org = section.get("organization") or "provisioning"
        url = f"{url.rstrip('/')}/{org}/provisioning-extensions.git"
    return git_url(url, root)


def _local_module(
    name: str,
    type_: str,
    constraint: str | None,
    at: list[Any],
    ctx: EntryContext,
    entry: str,
    path: str | None = None,
) -> ModuleSpec:
    if path:
        folder = Path(path).expanduser()
        folder = folder if folder.is_absolute() else (ctx.root / folder)
    else:
        base = ctx.local_path or (ctx.root / "extensions-src")
        folder = base / f"{type_}s" / name
    return ModuleSpec(
        name=name,
        type=type_,
        constraint=constraint,
        source="local",
        path=Path(os.path.normpath(folder)),
        entry=entry,
        location=where(ctx.file, ctx.doc, at),
    )
