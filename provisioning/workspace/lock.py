"""The lock file ``config/provisioning.lock``: what resolved, pinned by digest, and in what order to install.

JSON, written deterministically (sorted keys, fixed indentation, paths relative to the
workspace) so the same resolution gives the same bytes on any machine. ``inputs`` is a hash
of everything in the config that decides the resolution: when it matches, the lock is up to
date and resolving again needs no registry; ``dep resolve --locked`` fails when it does not.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import ValidationError
from ..oci.descriptor import MANIFEST
from ..oci.reference import DIGEST, InvalidReference, is_path_registry, layout_path, validate_repository
from ..safefile import UnsafeFile, read_bounded, replace_file
from .config import TYPES, RegistrySettings, display_path, portable_registry
from .entries import EXTENSION_NAME

if TYPE_CHECKING:
    from .config import WorkspaceConfig

LOCK_VERSION = 1
MAX_LOCK_BYTES = 64 << 20  # thousands of extensions fit in a few megabytes
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def absolute_registry(registry: str, root: Path) -> str:
    if is_path_registry(registry) or registry.startswith(".") or "/" in registry:
        p = Path(layout_path(registry)).expanduser()
        return str(p if p.is_absolute() else (root / p).resolve())
    return registry


@dataclass(frozen=True)
class LockedExtension:
    """One resolved extension: enough to fetch it again by digest, offline from the cache."""

    name: str
    type: str
    version: str
    digest: str  # manifest digest (oci) or tree digest (local)
    source: str = "oci"  # oci | local
    registry: str | None = None  # absolute path or HOST[:PORT]
    namespace: str | None = None
    tag: str | None = None
    size: int = 0
    media_type: str = MANIFEST
    path: str | None = None  # local folder, absolute in memory
    reference: str = ""
    dependencies: dict[str, str] = field(default_factory=dict)
    requested: bool = False  # listed in the config (not only pulled in)
    registry_text: str | None = field(default=None, compare=False)  # the registry as the lock records it
    url: str | None = None  # git: repository
    ref: str | None = None  # git: tag
    commit: str | None = None  # git: the tag's commit when locked
    subdir: str | None = None  # git: the extension's folder in the repository
    signature: dict[str, Any] | None = None  # oci, under a verify policy: the signature that was verified

    def to_json(self, root: Path) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "version": self.version,
            "digest": self.digest,
            "source": self.source,
            "reference": self.reference,
            "dependencies": dict(sorted(self.dependencies.items())),
            "requested": self.requested,
        }
        if self.source == "local":
            d["path"] = os.path.relpath(self.path or "", root)
        elif self.source == "git":
            d.update({"url": self.url, "ref": self.ref, "commit": self.commit, "subdir": self.subdir or "."})
        else:
            where = self.registry_text or portable_registry(self.registry or "", root)
            if is_path_registry(self.registry or ""):  # keep the lock free of this machine's paths
                d["reference"] = f"{where}/{self.namespace}/{self.name}:{self.tag}"
            d.update(
                {
                    "registry": where,
                    "namespace": self.namespace,
                    "tag": self.tag,
                    "size": self.size,
                    "mediaType": self.media_type,
                }
            )
            if self.signature:
                d["signature"] = dict(sorted(self.signature.items()))
        return d

    def settings(self, config: WorkspaceConfig | None = None) -> RegistrySettings:
        """Where to fetch from; transport settings (TLS, token) come from the config for its registry."""
        if config is not None:
            spec = config.module(self.name)
            for s in (spec.registry if spec else None, config.registry):
                if s and s.registry == self.registry:
                    return s.with_registry(None, self.namespace)
        return RegistrySettings(registry=self.registry or "", namespace=self.namespace or "")


@dataclass
class Lock:
    inputs: str
    core_version: str
    extensions: dict[str, LockedExtension]
    order: list[str]
    platform_images: dict[str, dict[str, str | None]] = field(default_factory=dict)

    def to_json(self, root: Path) -> dict[str, Any]:
        return {
            "lockVersion": LOCK_VERSION,
            "generator": f"provisioning {__version__}",
            "inputs": self.inputs,
            "core": {"version": self.core_version},
            "order": list(self.order),
            "extensions": {n: self.extensions[n].to_json(root) for n in sorted(self.extensions)},
            "platform": {"images": {k: dict(sorted(v.items())) for k, v in sorted(self.platform_images.items())}},
        }

    def dumps(self, root: Path) -> str:
        return json.dumps(self.to_json(root), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def write(self, path: Path) -> bool:
        """Write atomically; returns False when the file already says exactly this."""
        text = self.dumps(path.parent.parent)
        try:
            if path.read_text(encoding="utf-8") == text:
                return False
        except OSError:
            pass
        replace_file(path, text.encode("utf-8"))  # a link at the lock's name is replaced, not written through
        return True


def _fail(path: Path, why: str) -> ValidationError:
    return ValidationError(
        f"{display_path(path)} is corrupt: {why}. Delete it and run `provisioning dep resolve` to write a new one "
        "(or restore it from version control)"
    )


def _str(d: dict[str, Any], key: str, path: Path, where: str, *, optional: bool = False) -> str | None:
    v = d.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, str) or not v:
        raise _fail(path, f"{where}.{key} must be a non-empty string")
    return v


SIGNATURE_FIELDS = ("kind", "manifest", "manifest_size", "layer", "key")


def _signature(raw: Any, path: Path, where: str) -> dict[str, Any] | None:
    """A locked signature: which manifest (and layer in it) carried the signature that verified."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("kind") not in ("simple-signing", "sigstore-bundle"):
        raise _fail(path, f"{where}.signature must be an object with kind simple-signing or sigstore-bundle")
    for key in ("manifest", "layer"):
        if not DIGEST.match(str(raw.get(key, ""))):
            raise _fail(path, f"{where}.signature.{key} is not a sha256 digest")
    if not isinstance(raw.get("manifest_size"), int) or raw["manifest_size"] < 0:
        raise _fail(path, f"{where}.signature.manifest_size must be a non-negative integer")
    return {k: raw[k] for k in SIGNATURE_FIELDS if k in raw}


def read_lock(path: Path) -> Lock | None:
    """The lock beside a config, or None when there is none; anything malformed is a clear error."""
    doc = _read_document(path)
    if doc is None:
        return None
    root = path.parent.parent
    inputs = _str(doc, "inputs", path, "lock")
    core = doc.get("core")
    if not isinstance(core, dict):
        raise _fail(path, "core must be an object")
    core_version = _str(core, "version", path, "core")
    raw = doc.get("extensions")
    if not isinstance(raw, dict):
        raise _fail(path, "extensions must be an object")
    exts = {name: _entry(name, e, path, root) for name, e in raw.items()}
    order = _order(doc.get("order"), exts, path)
    platform = doc.get("platform") or {}
    images = (platform.get("images") or {}) if isinstance(platform, dict) else None
    if not isinstance(images, dict):
        raise _fail(path, "platform.images must be an object")
    return Lock(
        inputs=inputs or "",
        core_version=core_version or "",
        extensions=exts,
        order=order,
        platform_images={
            str(k): {str(a): b if isinstance(b, str) else None for a, b in v.items()}
            for k, v in images.items()
            if isinstance(v, dict)
        },
    )


def _read_document(path: Path) -> dict[str, Any] | None:
    """The lock's JSON object of a version we read (bounded, never through a link); None: no lock."""
    try:
        text = read_bounded(path, MAX_LOCK_BYTES, display_path(path)).decode("utf-8")
    except FileNotFoundError:
        return None
    except UnsafeFile as exc:
        raise ValidationError(f"{exc}; restore the lock file from version control") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot read it ({exc})") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise _fail(path, f"not valid JSON (line {line}: {getattr(exc, 'msg', exc)})" if line else str(exc)) from None
    if not isinstance(doc, dict):
        raise _fail(path, "the top level is not an object")
    if doc.get("lockVersion") != LOCK_VERSION:
        raise _fail(path, f"lockVersion is {doc.get('lockVersion')!r}, this provisioning reads {LOCK_VERSION}")
    return doc


def _entry(name: str, e: Any, path: Path, root: Path) -> LockedExtension:
    """One locked extension: the fields every source has, then the source's own."""
    where = f"extensions.{name}"
    if not EXTENSION_NAME.match(name):
        raise _fail(path, f"{where}: {name!r} is not an extension name (lowercase letters, digits, '.', '_', '-')")
    if not isinstance(e, dict) or e.get("name") != name:
        raise _fail(path, f"{where} must be an object whose name is {name!r}")
    type_ = _str(e, "type", path, where)
    if type_ not in TYPES:
        raise _fail(path, f"{where}.type is {type_!r}, expected one of {', '.join(TYPES)}")
    digest = _str(e, "digest", path, where)
    if not DIGEST.match(digest or ""):
        raise _fail(path, f"{where}.digest {digest!r} is not a sha256 digest")
    deps = e.get("dependencies", {})
    if not isinstance(deps, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in deps.items()):
        raise _fail(path, f"{where}.dependencies must map names to constraints")
    reference = e.get("reference") or ""
    if not isinstance(reference, str):
        raise _fail(path, f"{where}.reference must be a string")
    source = e.get("source", "oci")
    common: dict[str, Any] = {
        "name": name,
        "type": type_,
        "version": _str(e, "version", path, where),
        "digest": digest,
        "source": source,
        "reference": reference,
        "dependencies": dict(deps),
        "requested": bool(e.get("requested", False)),
    }
    if source == "local":
        return LockedExtension(**common, path=os.path.normpath(root / (_str(e, "path", path, where) or "")))
    if source == "oci":
        return LockedExtension(**common, **_oci_fields(e, path, where, name, root))
    if source == "git":
        return LockedExtension(**common, **_git_fields(e, path, where))
    raise _fail(path, f"{where}.source is {source!r}, expected oci, local or git")


def _oci_fields(e: dict[str, Any], path: Path, where: str, name: str, root: Path) -> dict[str, Any]:
    size = e.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _fail(path, f"{where}.size must be a non-negative integer")
    namespace = _str(e, "namespace", path, where) or ""
    tag = _str(e, "tag", path, where, optional=True)
    try:
        validate_repository(f"{namespace}/{name}")
    except InvalidReference:
        raise _fail(path, f"{where}.namespace {namespace!r} is not a repository namespace") from None
    if tag is not None and not _TAG.match(tag):
        raise _fail(path, f"{where}.tag {tag!r} is not an OCI tag")
    return {
        "registry": absolute_registry(_str(e, "registry", path, where) or "", root),
        "registry_text": e.get("registry"),
        "namespace": namespace,
        "tag": tag,
        "size": size,
        "media_type": _str(e, "mediaType", path, where) or MANIFEST,
        "signature": _signature(e.get("signature"), path, where),
    }


def _git_fields(e: dict[str, Any], path: Path, where: str) -> dict[str, Any]:
    commit = _str(e, "commit", path, where) or ""
    if not re.match(r"^[0-9a-f]{40}([0-9a-f]{24})?$", commit):
        raise _fail(path, f"{where}.commit {commit!r} is not a git commit id")
    subdir = _str(e, "subdir", path, where) or "."
    if Path(subdir).is_absolute() or ".." in Path(subdir).parts:
        raise _fail(path, f"{where}.subdir {subdir!r} must be a folder inside the repository")
    return {"url": _str(e, "url", path, where), "ref": _str(e, "ref", path, where), "commit": commit, "subdir": subdir}


def _order(order: Any, exts: dict[str, LockedExtension], path: Path) -> list[str]:
    """The install order: every locked extension once, each after its dependencies."""
    if (
        not isinstance(order, list)
        or not all(isinstance(n, str) for n in order)
        or sorted(order) != sorted(exts)
        or len(set(order)) != len(order)
    ):
        raise _fail(path, "order must list every locked extension exactly once")
    for name, e in exts.items():
        missing = [d for d in e.dependencies if d not in exts]
        if missing:
            raise _fail(path, f"{name} depends on {', '.join(missing)}, which the lock does not contain")
        if any(order.index(d) > order.index(name) for d in e.dependencies):
            raise _fail(path, f"order installs {name} before one of its dependencies")
    return list(order)
