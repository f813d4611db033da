"""Load and validate a workspace's ``config/provisioning.yaml``.

YAML is read with a loader that remembers where every mapping key and list item sits,
so a schema error names the file, the line and the field path
(``config/provisioning.yaml:12: dependencies.extensions.oci.tls_enabled: 'yes' is not of
type 'boolean'``). The validated document becomes a frozen ``WorkspaceConfig``: the
registry to use, the core version, and one ``ModuleSpec`` per listed extension.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .. import __version__, yamlfile
from ..errors import ValidationError, VersionError
from ..extension import TYPES
from ..oci.reference import InvalidReference, parse_reference, version_for_tag
from ..settings import RegistrySettings, from_document, portable_registry, registry_path  # noqa: F401 (re-exported)
from ..yamlfile import field_path, line_of

CONFIG_RELPATH = Path("config") / "provisioning.yaml"
PLURALS = {f"{t}s": t for t in TYPES}
SOURCE_TYPES = ("oci", "local", "gitea", "git")
EXTENSION_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")  # also a safe folder name: no '/', no '..'
_NAME = EXTENSION_NAME


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when below it."""
    return _display(str(path), os.getcwd())


@lru_cache(maxsize=256)
def _display(path: str, cwd: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(cwd).resolve()))
    except ValueError:
        return path


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse YAML with line information, turning a syntax error into ``file:line: problem``."""
    return yamlfile.load_yaml(path, display=display_path(path), text=text)


def where(file: Path, doc: Any, path: Sequence[Any]) -> str:
    line = line_of(doc, path)
    return f"{display_path(file)}:{line}" if line else display_path(file)


# --------------------------------------------------------------------------- schema


def validate_document(doc: Any, file: Path) -> None:
    """Schema-check a parsed config; all problems at once, each with its line and field path."""
    errors = yamlfile.schema_errors(doc, "workspace.schema.json", display_path(file))
    if errors:
        more = f"\n({len(errors) - 10} more)" if len(errors) > 10 else ""
        raise ValidationError("\n".join(errors[:10]) + more)


# --------------------------------------------------------------------------- model


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
            d["path"] = _rel(self.path, root)
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


def _rel(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


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
            "local_path": _rel(self.local_path, self.root) if self.local_path else None,
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


def _check_constraint(constraint: str, file: Path, doc: Any, at: list[Any]) -> str:
    from ..versions import Range

    try:
        Range.parse(constraint)
    except (VersionError, ValueError) as exc:
        raise ValidationError(f"{where(file, doc, at)}: {field_path(at)}: invalid version constraint: {exc}") from None
    return constraint


def parse_module(
    entry: Any,
    type_: str,
    *,
    file: Path,
    doc: Any,
    at: list[Any],
    root: Path,
    default: RegistrySettings,
    source_type: str,
    local_path: Path | None,
    git_repo: str | None = None,
) -> ModuleSpec:
    """One entry of ``modules.<type>s``: a reference, a name, ``name@constraint`` or a mapping."""
    loc = where(file, doc, at)
    bad = f"{loc}: {field_path(at)}"
    if isinstance(entry, str):
        text = entry.strip()
        if source_type in ("local",) and not text.startswith("oci://"):
            name = text.split("@", 1)[0]
            return _local_module(name, type_, None, file, doc, at, root, local_path, entry)
        if source_type in ("git", "gitea") and not text.startswith("oci://"):
            name, _, constraint_text = (p.strip() for p in text.partition("@"))
            if not _NAME.match(name):
                raise ValidationError(f"{bad}: {entry!r}: expected name or name@constraint")
            if constraint_text:
                _check_constraint(constraint_text, file, doc, at)
            return _git_module(name, type_, constraint_text or None, None, git_repo, source_type, bad, entry, loc)
        name, constraint, tag, digest, reg = text, None, None, None, None
        if "@" in text and not text.split("@", 1)[1].startswith("sha256:"):
            name, constraint = (s.strip() for s in text.split("@", 1))
            if not constraint:
                raise ValidationError(f"{bad}: {entry!r} has an empty constraint after '@' (write name@^1.2)")
            _check_constraint(constraint, file, doc, at)
        if "/" in name or ":" in name or "@" in name:
            try:
                ref = parse_reference(name, registry=default.registry, namespace=default.namespace)
            except InvalidReference as exc:
                raise ValidationError(f"{bad}: {exc}") from None
            name, tag, digest = ref.name, ref.tag, ref.digest
            if tag and constraint:
                raise ValidationError(f"{bad}: {entry!r} gives both a tag and a constraint; keep one")
            namespace = ref.repository.rsplit("/", 1)[0] if "/" in ref.repository else default.namespace
            reg = default.with_registry(ref.registry, namespace)
            if reg == default:
                reg = None
        if not _NAME.match(name):
            raise ValidationError(
                f"{bad}: {entry!r}: expected a full reference (oci://host/namespace/name:1.2.3), "
                "a name (kubernetes), name@constraint (kubernetes@^1.28) or a mapping {name, version}"
            )
        return ModuleSpec(
            name=name,
            type=type_,
            constraint=constraint,
            tag=tag,
            digest=digest,
            registry=reg,
            entry=entry,
            location=loc,
        )
    # mapping (the schema checked keys and types)
    name = entry["name"]
    source = entry.get("source") or (source_type if source_type in ("local", "git", "gitea") else "oci")
    constraint = entry.get("version")
    if constraint is not None:
        constraint = _check_constraint(str(constraint), file, doc, [*at, "version"])
    text = json.dumps(dict(entry), sort_keys=True)
    if source == "local":
        return _local_module(name, type_, constraint, file, doc, at, root, local_path, text, entry.get("path"))
    if source in ("git", "gitea"):
        url = git_url(entry["url"], root) if entry.get("url") else git_repo
        return _git_module(name, type_, constraint, entry.get("ref"), url, source, bad, text, loc)
    registry = entry.get("registry")
    if registry:
        registry = registry_path(registry, root)
    reg = default.with_registry(registry, entry.get("namespace"))
    return ModuleSpec(
        name=name,
        type=type_,
        constraint=constraint,
        digest=entry.get("digest"),
        registry=None if reg == default else reg,
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
    file: Path,
    doc: Any,
    at: list[Any],
    root: Path,
    local_path: Path | None,
    entry: str,
    path: str | None = None,
) -> ModuleSpec:
    if path:
        folder = Path(path).expanduser()
        folder = folder if folder.is_absolute() else (root / folder)
    else:
        base = local_path or (root / "extensions-src")
        folder = base / f"{type_}s" / name
    return ModuleSpec(
        name=name,
        type=type_,
        constraint=constraint,
        source="local",
        path=Path(os.path.normpath(folder)),
        entry=entry,
        location=where(file, doc, at),
    )


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
            "dependencies.extensions.modules.{providers,taskservs,clusters}"
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
    modules: list[ModuleSpec] = []
    seen: dict[str, ModuleSpec] = {}
    for plural, type_ in PLURALS.items():
        entries = _get(ext, "modules", plural) or []
        for i, entry in enumerate(entries):
            at = ["dependencies", "extensions", "modules", plural, i]
            spec = parse_module(
                entry,
                type_,
                file=file,
                doc=doc,
                at=at,
                root=root,
                default=default,
                source_type=source_type,
                local_path=local_path,
                git_repo=git_repo,
            )
            if spec.name in seen:
                raise ValidationError(
                    f"{spec.location}: {field_path(at)}: {spec.name} is already listed at {seen[spec.name].location}; "
                    "list each extension once"
                )
            seen[spec.name] = spec
            modules.append(spec)
    if require_modules and not modules:
        raise ValidationError(
            f"{display_path(file)} names no extensions: list them under dependencies.extensions.modules "
            '(providers, taskservs, clusters), e.g. taskservs: ["kubernetes@^1.28"]'
        )
    platform = _get(doc, "dependencies", "platform") or _get(doc, "platform") or {}
    images = {str(k): str(v) for k, v in (platform.get("images") or {}).items()}
    pl_oci = platform.get("oci") or {}
    platform_registry = None
    if pl_oci:
        platform_registry = RegistrySettings(
            registry=registry_path(pl_oci.get("registry") or default.registry, root),
            namespace=pl_oci.get("namespace", "provisioning-platform"),
            tls_enabled=pl_oci.get("tls_enabled"),
            insecure=bool(pl_oci.get("insecure", False)),
            auth_token_path=pl_oci.get("auth_token_path"),
            ca_file=pl_oci.get("ca_file"),
        )
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
        platform_images=images,
        platform_registry=platform_registry,
        git_repo=git_repo,
        mirrors=mirrors,
        mirror_only=mirror_only,
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


# --------------------------------------------------------------------------- editing


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
