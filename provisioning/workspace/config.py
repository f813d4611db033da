"""Load and validate a workspace's ``config/provisioning.yaml``.

YAML is read with a loader that remembers where every mapping key and list item sits,
so a schema error names the file, the line and the field path
(``config/provisioning.yaml:12: dependencies.extensions.oci.tls_enabled: 'yes' is not of
type 'boolean'``). The validated document becomes a frozen ``WorkspaceConfig``: the
registry to use, the core version, and one ``ModuleSpec`` per listed extension
(``entries.py`` reads each entry; ``config_edit.py`` changes one in place).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__, yamlfile
from ..errors import ValidationError
from ..extension import TYPES
from ..oci.reference import version_for_tag
from ..settings import RegistrySettings, from_document, portable_registry, registry_path  # noqa: F401 (re-exported)
from ..yamlfile import field_path
from .config_edit import set_module_entry  # noqa: F401 (re-exported)
from .display import display_path, load_yaml, where  # noqa: F401 (re-exported)
from .entries import EntryContext, ModuleSpec, default_git_repo, parse_module, relative

CONFIG_RELPATH = Path("config") / "provisioning.yaml"
PLURALS = {f"{t}s": t for t in TYPES}
SOURCE_TYPES = ("oci", "local", "gitea", "git")


# --------------------------------------------------------------------------- schema


def validate_document(doc: Any, file: Path) -> None:
    """Schema-check a parsed config; all problems at once, each with its line and field path."""
    errors = yamlfile.schema_errors(doc, "workspace.schema.json", display_path(file))
    if errors:
        more = f"\n({len(errors) - 10} more)" if len(errors) > 10 else ""
        raise ValidationError("\n".join(errors[:10]) + more)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class TrustPolicy:
    """``dependencies.extensions.verify``: the keys an artifact must be signed by before it is installed."""

    keys: tuple[Path, ...]
    require: bool = True  # False: check what is signed, only warn about what is not
    location: str = ""  # where the policy is written (messages point there)


@dataclass(frozen=True)
class WorkspaceConfig:
    """A validated workspace configuration."""

    root: Path
    path: Path
    data: dict[str, Any]
    core_version: str
    core_source: str | None
    source_type: str
    registry: RegistrySettings
    local_path: Path | None
    modules: tuple[ModuleSpec, ...]
    platform_images: dict[str, str] = field(default_factory=dict)
    platform_registry: RegistrySettings | None = None
    git_repo: str | None = None  # the extensions monorepo for source_type git/gitea
    verify: TrustPolicy | None = None
    mirrors: dict[str, tuple[str, ...]] = field(default_factory=dict)  # origin -> mirrors (not in the lock inputs)
    mirror_only: bool = False

    @property
    def lock_path(self) -> Path:
        return self.path.with_name("provisioning.lock")

    def module(self, name: str) -> ModuleSpec | None:
        return next((m for m in self.modules if m.name == name), None)

    def inputs(self) -> dict[str, Any]:
        """Everything in the config that decides what resolves; the lock stores its hash."""
        return {
            "core_version": self.core_version,
            "source_type": self.source_type,
            "registry": self.registry.key(self.root),
            "local_path": relative(self.local_path, self.root) if self.local_path else None,
            "git_repo": self.git_repo,
            "modules": sorted((m.key(self.root) for m in self.modules), key=lambda d: (d["type"], d["name"])),
            "platform_images": dict(sorted(self.platform_images.items())),
        }

    def inputs_hash(self) -> str:
        blob = json.dumps(self.inputs(), sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()


def config_path(workspace: Path) -> Path:
    return workspace / CONFIG_RELPATH


def _get(doc: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(k)
    return doc


def registry_settings(
    doc: dict[str, Any],
    root: Path,
    *,
    registry: str | None = None,
    namespace: str | None = None,
    env: dict[str, str] | None = None,
) -> RegistrySettings:
    """Registry and namespace: command line, then the environment, then the config, then defaults.

    The one loader every command uses (``provisioning.settings.from_document``): an air-gapped CI
    points ``PROVISIONING_REGISTRY`` at its mirror without editing workspaces.
    """
    return from_document(doc, root, registry=registry, namespace=namespace, env=env)


def _core_version(doc: dict[str, Any], file: Path) -> tuple[str, str | None]:
    """The core version: ``dependencies.core.version``, else the source's tag, else ours."""
    from ..versions import is_valid_version

    core = _get(doc, "dependencies", "core") or {}
    source = core.get("source")
    version = core.get("version")
    at = ["dependencies", "core", "version"]
    if version is None and source:
        tail = source.rsplit("/", 1)[-1]
        if ":" in tail and "://" not in tail:
            version = version_for_tag(tail.rsplit(":", 1)[1])
            at = ["dependencies", "core", "source"]
    if version is None:
        return __version__, source
    version = str(version)
    bare = version[1:] if version[:1] in "vV" else version
    if not is_valid_version(bare):
        raise ValidationError(
            f"{where(file, doc, at)}: {field_path(at)}: {version!r} is not a semantic version "
            "(write MAJOR.MINOR.PATCH, e.g. v3.5.0)"
        )
    return bare, source


def load_config(
    workspace: Path,
    *,
    registry: str | None = None,
    namespace: str | None = None,
    require_modules: bool = True,
) -> WorkspaceConfig:
    """Read, schema-check and interpret ``<workspace>/config/provisioning.yaml``."""
    root = Path(workspace).expanduser().resolve()
    file = config_path(root)
    if not file.is_file():
        raise ValidationError(
            f"no workspace config at {display_path(file)}: run inside a workspace (a folder with "
            "config/provisioning.yaml) or pass --workspace PATH"
        )
    doc = load_yaml(file)
    if doc is None:
        raise ValidationError(
            f"{display_path(file)} is empty: list the extensions to install under "
            f"dependencies.extensions.modules.{{{','.join(PLURALS)}}}"
        )
    validate_document(doc, file)
    return interpret(doc, root, file, registry=registry, namespace=namespace, require_modules=require_modules)


def interpret(
    doc: dict[str, Any],
    root: Path,
    file: Path,
    *,
    registry: str | None = None,
    namespace: str | None = None,
    require_modules: bool = True,
) -> WorkspaceConfig:
    """The validated document as a ``WorkspaceConfig`` (registry, core, modules, platform, policies)."""
    core_version, core_source = _core_version(doc, file)
    ext = _get(doc, "dependencies", "extensions") or {}
    source_type = ext.get("source_type") or "oci"
    default = registry_settings(doc, root, registry=registry, namespace=namespace)
    from .mirrors import read_mirrors, through_bundle

    mirrors, mirror_only = read_mirrors(doc, root)
    default, mirrors, mirror_only = through_bundle(
        default, doc, root, namespace=namespace, mirrors=mirrors, mirror_only=mirror_only
    )
    local = _get(ext, "local", "path")
    local_path = None
    if local:
        p = Path(local).expanduser()
        local_path = Path(os.path.normpath(p if p.is_absolute() else root / p))
    git_repo = default_git_repo(ext, source_type, root)
    ctx = EntryContext(file, doc, root, default, source_type, local_path, git_repo)
    modules = _modules(ext, ctx)
    if require_modules and not modules:
        raise ValidationError(
            f"{display_path(file)} names no extensions: list them under dependencies.extensions.modules "
            f'({", ".join(PLURALS)}), e.g. taskservs: ["kubernetes@^1.28"]'
        )
    platform = _get(doc, "dependencies", "platform") or _get(doc, "platform") or {}
    return WorkspaceConfig(
        verify=_trust_policy(ext, root, file, doc),
        root=root,
        path=file,
        data=doc,
        core_version=core_version,
        core_source=core_source,
        source_type=source_type,
        registry=default,
        local_path=local_path,
        modules=tuple(modules),
        platform_images={str(k): str(v) for k, v in (platform.get("images") or {}).items()},
        platform_registry=_platform_registry(platform, default, root),
        git_repo=git_repo,
        mirrors=mirrors,
        mirror_only=mirror_only,
    )


def _modules(ext: dict[str, Any], ctx: EntryContext) -> list[ModuleSpec]:
    """Every module entry, by type; a name listed twice is refused."""
    modules: list[ModuleSpec] = []
    seen: dict[str, ModuleSpec] = {}
    for plural, type_ in PLURALS.items():
        for i, entry in enumerate(_get(ext, "modules", plural) or []):
            at = ["dependencies", "extensions", "modules", plural, i]
            spec = parse_module(entry, type_, at, ctx)
            if spec.name in seen:
                raise ValidationError(
                    f"{spec.location}: {field_path(at)}: {spec.name} is already listed at {seen[spec.name].location}; "
                    "list each extension once"
                )
            seen[spec.name] = spec
            modules.append(spec)
    return modules


def _platform_registry(platform: dict[str, Any], default: RegistrySettings, root: Path) -> RegistrySettings | None:
    pl_oci = platform.get("oci") or {}
    if not pl_oci:
        return None
    return RegistrySettings(
        registry=registry_path(pl_oci.get("registry") or default.registry, root),
        namespace=pl_oci.get("namespace", "provisioning-platform"),
        tls_enabled=pl_oci.get("tls_enabled"),
        insecure=bool(pl_oci.get("insecure", False)),
        auth_token_path=pl_oci.get("auth_token_path"),
        ca_file=pl_oci.get("ca_file"),
    )


def _trust_policy(ext: dict[str, Any], root: Path, file: Path, doc: Any) -> TrustPolicy | None:
    """The signature policy; key paths are relative to the workspace (the schema checked the shape)."""
    verify = ext.get("verify")
    if not verify:
        return None
    at = ["dependencies", "extensions", "verify", "keys"]
    keys = []
    for text in verify["keys"]:
        p = Path(text).expanduser()
        keys.append(p if p.is_absolute() else root / p)
    return TrustPolicy(tuple(keys), bool(verify.get("require", True)), f"{where(file, doc, at)}: {field_path(at)}")
