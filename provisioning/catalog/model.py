"""The catalog document: every extension of a namespace, every version, what resolving needs.

One JSON document, written sorted so the same registry contents give the same bytes (only
``generation`` moves). Each version carries what a resolver would otherwise read from the
manifest and config blob: manifest digest and size, source digest, dependency ranges,
``min_provisioning_version``, platforms and a ``deprecated`` flag. The document arrives from a
registry, so ``Catalog.parse`` treats it as hostile: every field is checked, and what is wrong is
named (``CatalogError``), never half-used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from ..extension import TYPES
from ..jsondoc import json_object
from ..oci.descriptor import MANIFEST, MANIFEST_TYPES, canonical_json
from ..oci.reference import DIGEST
from ..versions import is_valid_version, sort_versions

SCHEMA_VERSION = 1
_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
MAX_ENTRIES = 200_000


class CatalogError(ValidationError):
    """A catalog that cannot be trusted: not JSON, wrong shape, older than one already seen, badly signed."""


@dataclass(frozen=True)
class VersionEntry:
    """One published version: where its manifest is and what it declares."""

    version: str
    digest: str
    size: int
    media_type: str = MANIFEST
    source_digest: str | None = None
    dependencies: dict[str, str] = field(default_factory=dict)
    min_provisioning_version: str | None = None
    platforms: tuple[str, ...] = ()
    deprecated: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "digest": self.digest,
            "size": self.size,
            "mediaType": self.media_type,
            "dependencies": dict(sorted(self.dependencies.items())),
            "platforms": list(self.platforms),
            "deprecated": self.deprecated,
        }
        if self.source_digest:
            d["source_digest"] = self.source_digest
        if self.min_provisioning_version:
            d["min_provisioning_version"] = self.min_provisioning_version
        return d


@dataclass
class ExtensionEntry:
    """One extension: its type, the newest release's description and keywords, every version."""

    name: str
    type: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    versions: dict[str, VersionEntry] = field(default_factory=dict)

    def newest_first(self) -> list[str]:
        key = tuple(self.versions)
        if getattr(self, "_sorted_for", None) != key:  # resolvers ask this for every requirement: sort once
            self._sorted_for, self._sorted = key, sort_versions(list(self.versions), reverse=True)
        return list(self._sorted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "description": self.description,
            "tags": list(self.keywords),
            "versions": {v: self.versions[v].to_dict() for v in sort_versions(list(self.versions))},
        }


class _Extensions(dict):
    """Extensions by name, each checked the first time it is looked up.

    A resolve needs a few hundred of a thousand extensions; checking only those keeps a cold
    resolve's cost in the part it uses. Iterating (listing, merging, writing) checks everything.
    """

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        super().__init__()
        self._raw, self._where = dict(raw), where

    def _load(self, name: str) -> None:
        raw = self._raw.pop(name)
        super().__setitem__(name, _extension(name, raw, f"{self._where}: extensions.{name}"))

    def _load_all(self) -> None:
        for name in list(self._raw):
            self._load(name)

    def __contains__(self, name: object) -> bool:
        return name in self._raw or super().__contains__(name)

    def __getitem__(self, name: str) -> ExtensionEntry:
        if name in self._raw:
            self._load(name)
        return super().__getitem__(name)

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    def setdefault(self, name: str, default: Any = None) -> Any:
        if name in self._raw:
            self._load(name)
        return super().setdefault(name, default)

    def __setitem__(self, name: str, value: ExtensionEntry) -> None:
        self._raw.pop(name, None)
        super().__setitem__(name, value)

    def __delitem__(self, name: str) -> None:
        if name in self._raw:
            del self._raw[name]
        else:
            super().__delitem__(name)

    def __len__(self) -> int:
        return len(self._raw) + super().__len__()

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return super().__iter__()

    def keys(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return super().keys()

    def items(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return super().items()

    def values(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return super().values()

    def __eq__(self, other: object) -> bool:
        self._load_all()
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class Catalog:
    """Everything published in one namespace, with a generation that only grows."""

    namespace: str
    generation: int = 0
    extensions: dict[str, ExtensionEntry] = field(default_factory=dict)

    def content(self) -> dict[str, Any]:
        """The document without its generation: what two catalogs of the same registry share."""
        return {
            "schemaVersion": SCHEMA_VERSION,
            "namespace": self.namespace,
            "extensions": {n: self.extensions[n].to_dict() for n in sorted(self.extensions)},
        }

    def to_bytes(self) -> bytes:
        return canonical_json({**self.content(), "generation": self.generation})

    def same_content(self, other: Catalog) -> bool:
        return self.content() == other.content()

    def version(self, name: str, version: str) -> VersionEntry | None:
        ext = self.extensions.get(name)
        return ext.versions.get(version) if ext else None

    def add(self, name: str, entry: VersionEntry, *, type_: str, description: str, keywords: tuple[str, ...]) -> None:
        """Record a version; the newest release's description and keywords describe the extension."""
        ext = self.extensions.setdefault(name, ExtensionEntry(name, type_))
        ext.versions[entry.version] = entry
        if ext.newest_first()[0] == entry.version:
            ext.type, ext.description, ext.keywords = type_, description, keywords

    def merge(self, other: Catalog) -> None:
        """Take every version ``other`` knows (its entries win), keeping the rest."""
        for name, ext in other.extensions.items():
            for entry in ext.versions.values():
                self.add(name, entry, type_=ext.type, description=ext.description, keywords=ext.keywords)

    @classmethod
    def parse(cls, data: bytes, where: str, *, lazy: bool = False) -> Catalog:
        """A catalog from untrusted bytes; ``CatalogError`` naming the first bad part.

        ``lazy`` checks each extension when it is first looked up (the error comes then).
        """
        advice = "upgrade provisioning or rebuild the catalog (`provisioning catalog rebuild`)"
        doc = json_object(
            data, where, what="catalog", error=CatalogError, version=("schemaVersion", SCHEMA_VERSION, advice)
        )
        gen = doc.get("generation")
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 0:
            raise CatalogError(f"{where}: generation {gen!r} is not a non-negative integer")
        namespace = doc.get("namespace")
        if not isinstance(namespace, str):
            raise CatalogError(f"{where}: namespace {namespace!r} is not a string")
        exts = doc.get("extensions")
        if not isinstance(exts, dict):
            raise CatalogError(f"{where}: 'extensions' is not an object")
        total = sum(
            len(x["versions"]) for x in exts.values() if isinstance(x, dict) and isinstance(x.get("versions"), dict)
        )
        if total > MAX_ENTRIES:
            raise CatalogError(f"{where}: more than {MAX_ENTRIES} versions; refused")
        cat = cls(namespace, gen)
        cat.extensions = _Extensions(exts, where)
        if not lazy:
            cat.extensions = dict(cat.extensions.items())
        return cat


def _extension(name: Any, raw: Any, at: str) -> ExtensionEntry:
    if not isinstance(name, str) or not _NAME.match(name):
        raise CatalogError(f"{at}: not a valid extension name")
    if not isinstance(raw, dict):
        raise CatalogError(f"{at}: not an object")
    type_ = raw.get("type")
    if type_ not in TYPES:
        raise CatalogError(f"{at}: type {type_!r} is not one of {', '.join(TYPES)}")
    versions = raw.get("versions")
    if not isinstance(versions, dict):
        raise CatalogError(f"{at}: 'versions' is not an object")
    ext = ExtensionEntry(
        name, type_, _text(raw.get("description"), f"{at}.description"), tuple(_strings(raw.get("tags"), f"{at}.tags"))
    )
    for version, v in versions.items():
        ext.versions[version] = _version_entry(version, v, f"{at}.versions.{version}")
    return ext


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CatalogError(f"{where}: {value!r} is not a string")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise CatalogError(f"{where}: not a list of strings")
    return value


def _version_entry(version: Any, v: Any, at: str) -> VersionEntry:
    if not isinstance(version, str) or not is_valid_version(version):
        raise CatalogError(f"{at}: not a semantic version")
    if not isinstance(v, dict):
        raise CatalogError(f"{at}: not an object")
    digest = v.get("digest")
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise CatalogError(f"{at}.digest: {digest!r} is not a sha256 digest")
    size = v.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise CatalogError(f"{at}.size: {size!r} is not a positive integer")
    media_type = v.get("mediaType", MANIFEST)
    if media_type not in MANIFEST_TYPES:
        raise CatalogError(f"{at}.mediaType: {media_type!r} is not a manifest media type")
    deps = v.get("dependencies") or {}
    if not isinstance(deps, dict) or not all(isinstance(k, str) and isinstance(c, str) for k, c in deps.items()):
        raise CatalogError(f"{at}.dependencies: not an object of name -> version range")
    source = v.get("source_digest")
    if source is not None and (not isinstance(source, str) or not DIGEST.match(source)):
        raise CatalogError(f"{at}.source_digest: {source!r} is not a sha256 digest")
    mpv = v.get("min_provisioning_version")
    if mpv is not None and not isinstance(mpv, str):
        raise CatalogError(f"{at}.min_provisioning_version: {mpv!r} is not a string")
    deprecated = v.get("deprecated", False)
    if not isinstance(deprecated, bool):
        raise CatalogError(f"{at}.deprecated: {deprecated!r} is not true or false")
    return VersionEntry(
        version=version,
        digest=digest,
        size=size,
        media_type=media_type,
        source_digest=source,
        dependencies=dict(deps),
        min_provisioning_version=mpv or None,
        platforms=tuple(_strings(v.get("platforms"), f"{at}.platforms")),
        deprecated=deprecated,
    )


def entry_from_manifest(
    meta: dict[str, Any], digest: str, size: int, media_type: str, source_digest: str | None
) -> tuple[VersionEntry, str, str, tuple[str, ...]]:
    """A version entry (and type, description, keywords) from an extension's manifest.yaml as JSON.

    The config blob of every published artifact is exactly that document, so the publisher
    (which has the manifest) and a rebuild (which reads the config) give the same entry.
    """
    deps = meta.get("dependencies") or {}
    if isinstance(deps, list):
        deps = {str(d): "*" for d in deps}
    mpv = meta.get("min_provisioning_version")
    platforms = meta.get("platforms") or []
    keywords = meta.get("tags") or []
    entry = VersionEntry(
        version=str(meta.get("version", "")),
        digest=digest,
        size=size,
        media_type=media_type,
        source_digest=source_digest,
        dependencies={str(k): str(c) if c not in (None, "") else "*" for k, c in dict(deps).items()},
        min_provisioning_version=str(mpv) if mpv else None,
        platforms=tuple(str(p) for p in platforms) if isinstance(platforms, list) else (),
        deprecated=meta.get("deprecated") is True,
    )
    description = meta.get("description")
    return (
        entry,
        str(meta.get("type", "")),
        description if isinstance(description, str) else "",
        tuple(str(k) for k in keywords) if isinstance(keywords, list) else (),
    )
