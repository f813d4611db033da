"""One extension folder: load its manifest, check its structure, compile and syntax-check it.

Every problem found is reported at once (an author fixes them in one go), each naming the
file, the line where known, and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ValidationError, VersionError
from .yamlfile import line_of, load_schema, load_yaml, schema_errors

TYPES: tuple[str, ...] = tuple(load_schema("manifest.schema.json")["properties"]["type"]["enum"])
"""The extension types, as the manifest schema names them (the one place they are spelled out)."""
TYPE_FOLDERS = {f"{t}s": t for t in TYPES}
TASKSERV_SCRIPTS = ("install.nu", "check.nu", "uninstall.nu")
RESERVED_NAMES = {"provisioning-catalog": "the namespace's catalog (docs/catalog.md) is published under it"}
"""Repository names in an extension namespace that the tool itself writes: no extension may take one."""


@dataclass(frozen=True)
class Extension:
    """A loaded extension: its folder and its manifest (the published config)."""

    path: Path
    manifest: dict[str, Any] = field(compare=False)

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def type(self) -> str:
        return self.manifest["type"]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def dependencies(self) -> dict[str, str]:
        return dict(self.manifest.get("dependencies") or {})

    @property
    def key(self) -> str:
        """``taskservs/kubernetes``: the doit subtask name and the tag-trigger prefix."""
        return f"{self.type}s/{self.name}"


def display(path: Path) -> str:
    """A path as the user typed it, relative to the current folder when possible."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def discover(root: Path) -> list[Path]:
    """Extension folders under ``root/<type>s/<name>/``, sorted; a root that is itself one is returned alone."""
    root = Path(root)
    if (root / "manifest.yaml").is_file():
        return [root]
    found = []
    for folder in sorted(TYPE_FOLDERS):
        base = root / folder
        if base.is_dir():
            found.extend(p for p in sorted(base.iterdir()) if p.is_dir() and not p.name.startswith("."))
    return found


def load_extension(path: Path) -> Extension:
    """Read and schema-check ``manifest.yaml``; structure and compilation are ``validate_extension``'s job."""
    path = Path(path)
    shown = display(path / "manifest.yaml")
    if not path.is_dir():
        raise ValidationError(f"{display(path)}: no such extension folder; pass the folder holding manifest.yaml")
    data = load_yaml(path / "manifest.yaml", display=shown)
    if data is None:
        raise ValidationError(f"{shown}: the manifest is empty; it needs at least name, type, version, description")
    problems = manifest_problems(data, shown)
    if problems:
        raise ValidationError(_summary(path, problems))
    return Extension(path, data)


def manifest_problems(data: Any, shown: str) -> list[str]:
    """What is wrong with an extension manifest: the one definition of valid, for validation, resolve and install.

    The JSON Schema (``schemas/manifest.schema.json``) decides, plus the version ranges of its
    dependencies (which a schema cannot parse). ``shown`` names the file (or artifact) in messages.
    """
    if not isinstance(data, dict):
        return [f"{shown}:1: the manifest must be a mapping of fields, not {type(data).__name__}"]
    return (
        schema_errors(data, "manifest.schema.json", shown)
        + _reserved_errors(data, shown)
        + _constraint_errors(data, shown)
    )


def _reserved_errors(data: dict[str, Any], shown: str) -> list[str]:
    name = data.get("name")
    if not isinstance(name, str) or name not in RESERVED_NAMES:
        return []
    return [
        f"{shown}:{line_of(data, ('name',))}: name: {name!r} is reserved ({RESERVED_NAMES[name]}); "
        "give the extension another name (and rename its folder)"
    ]


def _constraint_errors(data: dict[str, Any], shown: str) -> list[str]:
    from .versions import parse_constraint

    out = []
    deps = data.get("dependencies") or {}
    if isinstance(deps, dict):
        for name, constraint in deps.items():
            if not isinstance(constraint, str):
                continue
            try:
                parse_constraint(constraint)
            except VersionError as exc:
                out.append(f"{shown}:{line_of(data, ('dependencies', name))}: dependencies.{name}: {exc}")
    return out


def _summary(path: Path, problems: list[str]) -> str:
    head = f"extension {display(path)} is invalid ({len(problems)} problem{'s' if len(problems) != 1 else ''}):"
    return "\n".join([head, *(f"  - {p}" for p in problems)])


def structure_errors(ext: Extension) -> list[str]:
    """Folder layout rules per type; the folder name and kcl.mod version must agree with the manifest."""
    p, shown = ext.path, display(ext.path)
    out = []
    if p.name != ext.name:
        out.append(
            f"{shown}/manifest.yaml: name: the manifest names {ext.name!r} but the folder is {p.name!r}; "
            "rename one so they match"
        )
    parent_type = TYPE_FOLDERS.get(p.parent.name)
    if parent_type and parent_type != ext.type:
        out.append(
            f"{shown}/manifest.yaml: type: {ext.type!r} but the extension lives under {p.parent.name}/; "
            f"move it to {ext.type}s/ or fix the type"
        )
    required = ["kcl/kcl.mod", f"kcl/{ext.name}.k", "docs/README.md", "scripts/install.nu"]
    if ext.type == "taskserv":
        required += [f"scripts/{s}" for s in TASKSERV_SCRIPTS[1:]]
    for rel in required:
        if not (p / rel).is_file():
            out.append(f"{shown}/{rel}: missing (every {ext.type} needs it)")
    mod = p / "kcl" / "kcl.mod"
    if mod.is_file():
        mod_version = kcl_mod_version(mod)
        if mod_version is not None and mod_version != ext.version:
            out.append(
                f"{shown}/kcl/kcl.mod: version {mod_version!r} differs from manifest.yaml version "
                f"{ext.version!r}; set both to the same version"
            )
    return out


def kcl_mod_version(mod: Path) -> str | None:
    """The ``[package] version`` of a kcl.mod (TOML)."""
    text = mod.read_text(encoding="utf-8")
    section = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[] ")
        elif section == "package" and (m := re.match(r'version\s*=\s*"([^"]*)"', line)):
            return m.group(1)
    return None


def dependency_errors(ext: Extension, known: Iterable[str]) -> list[str]:
    """A dependency must be in the tree or listed under ``external``."""
    known = set(known)
    external = set(ext.manifest.get("external") or [])
    shown = display(ext.path / "manifest.yaml")
    out = []
    for name in ext.dependencies:
        if name not in known and name not in external:
            out.append(
                f"{shown}: dependencies.{name}: no extension {name!r} in this tree; add it, fix the name, "
                f"or list it under 'external' if it is published elsewhere"
            )
        if name == ext.name:
            out.append(f"{shown}: dependencies.{name}: an extension cannot depend on itself")
    for name in sorted(external - set(ext.dependencies)):
        out.append(f"{shown}: external: {name!r} is not one of the dependencies")
    return out


def validate_extension(
    path: Path,
    *,
    known: Iterable[str] | None = None,
    compile_kcl: bool = True,
    check_scripts: bool = True,
) -> Extension:
    """Full validation of one extension; raises ValidationError listing every problem.

    ``known`` are the names in the same tree (default: the folder's siblings under the tree root).
    """
    ext = load_extension(path)
    if known is None:
        known = [p.name for p in discover(ext.path.parent.parent)]
    problems = validate_extensions([ext], known, compile_kcl=compile_kcl, check_scripts=check_scripts)[ext.path]
    if problems:
        raise ValidationError(_summary(ext.path, problems))
    return ext


def validate_extensions(
    exts: list[Extension],
    known: Iterable[str],
    *,
    compile_kcl: bool = True,
    check_scripts: bool = True,
) -> dict[Path, list[str]]:
    """Structure, dependency, KCL and Nushell problems of many loaded extensions, checked in batches.

    KCL compiles the base schemas once for all; Nushell parses all scripts in one or two processes.
    """
    known = list(known)
    problems = {ext.path: structure_errors(ext) + dependency_errors(ext, known) for ext in exts}
    if compile_kcl:
        from .checks import compile_kcl_many

        with_kcl = [ext.path for ext in exts if (ext.path / "kcl").is_dir()]
        for path, messages in compile_kcl_many(with_kcl).items():
            problems[path] += messages
    if check_scripts:
        for path, messages in script_errors([ext.path for ext in exts]).items():
            problems[path] += messages
    return problems


def invalid(path: Path, problems: list[str]) -> ValidationError:
    """The error for an extension with ``problems``: one line per problem under a heading."""
    return ValidationError(_summary(path, problems))


def script_errors(ext_dirs: list[Path]) -> dict[Path, list[str]]:
    """Nushell syntax errors for many extensions in as few ``nu`` processes as possible."""
    from .checks import check_nu, nu_available

    if not nu_available():
        return {}
    scripts = [s for d in ext_dirs for s in sorted((d / "scripts").glob("*.nu"))]
    failures = check_nu(scripts) if scripts else {}
    out: dict[Path, list[str]] = {}
    for script, message in failures.items():
        owner = next(d for d in ext_dirs if d in Path(script).parents)
        out.setdefault(owner, []).append(f"{display(Path(script))}: {message}")
    return out
