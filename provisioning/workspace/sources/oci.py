"""OCI registries (and embedded stores) as a source: one namespace's extensions, by tag list or catalog.

Versions come from the namespace's catalog when it lists the name, else from the repository's
tag list. A candidate is read from the version's manifest and config blob (the config is the
extension's manifest.yaml as JSON, so dependencies are known without downloading the layer),
through the shared blob cache; something else pushed under an extension's tag is refused.
Fetching a locked version goes by digest: manifest, then the content layer, then a safe
extraction whose manifest.yaml must say what the lock says.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import yaml

from ...archive import ExtractLimits, safe_extract
from ...errors import NotFound, ProvisioningError, ValidationError
from ...extension import manifest_problems
from ...oci.descriptor import (
    ARTIFACT_TYPE,
    CONFIG_TYPE,
    MANIFEST,
    MANIFEST_TYPES,
    Descriptor,
    InvalidContent,
    content_layer,
)
from ...oci.reference import tag_for_version, version_for_tag
from ...oci.store import Cataloger, ReferenceFetcher, Target, fetch_manifest
from ...versions import is_valid_version, sort_versions
from ...yamlfile import safe_load
from .base import Candidate, Memo, candidate_from_manifest

if TYPE_CHECKING:
    from ...settings import RegistrySettings
    from ..cache import BlobCache
    from ..catalogs import Catalogs
    from ..lock import LockedExtension
    from ..stores import Stores

log = logging.getLogger(__name__)


@runtime_checkable
class _Mirrored(Protocol):
    """A store that tried mirrors: it can say where it looked (for messages)."""

    looked_in: str


def _media_type(manifest: bytes) -> str:
    try:
        mt = json.loads(manifest).get("mediaType")
    except (ValueError, AttributeError):
        return MANIFEST
    return mt if isinstance(mt, str) and mt else MANIFEST


class OciFinder:
    """The extensions of one registry namespace (``settings``), read through the blob cache."""

    kind = "oci"

    def __init__(
        self,
        settings: RegistrySettings,
        *,
        stores: Stores | None,
        cache: BlobCache,
        catalogs: Catalogs | None = None,
        warn: Callable[[str], None] | None = None,
        limits: ExtractLimits | None = None,
    ) -> None:
        self.settings = settings
        self.stores = stores
        self.cache = cache
        self.catalogs = catalogs
        self._warn = warn or (lambda message: log.warning("%s", message))
        self.limits = limits
        self.tag_lists = Memo()
        self._candidates = Memo()
        self._targets: dict[str, Target] = {}  # a tag list, a manifest and a config per name: one target

    # --- versions

    def answers_from_memory(self, name: str) -> bool:
        """True when reading ``name`` costs no request worth overlapping (a catalog entry, a folder on disk)."""
        return self.settings.is_path or self._listed(name) is not None

    def _listed(self, name: str) -> Any:
        return self.catalogs.extension(self.settings, name) if self.catalogs is not None else None

    def versions(self, name: str) -> list[str]:
        """The semver versions among ``name``'s tags, newest first (other tags are ignored).

        The namespace's catalog answers when it lists ``name``; a name it does not list costs a
        tag list (published after the catalog was written, or never published).
        """
        listed = self._listed(name)
        if listed is not None:
            return listed.newest_first()
        return self.tag_lists.get(name, lambda: self._read_tags(name))

    def _read_tags(self, name: str) -> list[str]:
        target = self._target(name)  # a store that cannot be opened is an error
        try:
            tags = target.tags()
        except NotFound:
            tags = []
        else:
            assert self.stores is not None  # _target raised otherwise
            self.stores.saw_tags(self.settings, name, tags)
        versions = [version_for_tag(t) for t in tags if t[:1].isdigit()]  # extension tags are bare versions
        return sort_versions([v for v in versions if is_valid_version(v)], reverse=True)

    # --- candidates

    def candidate(self, name: str, version: str) -> Candidate:
        return self.by_tag(name, tag_for_version(version))

    def by_tag(self, name: str, tag: str) -> Candidate:
        return self._candidates.get(
            (name, tag), lambda: self._catalog_candidate(name, tag, None) or self._read(name, tag, None)
        )

    def by_digest(self, name: str, digest: str) -> Candidate:
        return self._candidates.get(
            (name, digest), lambda: self._catalog_candidate(name, None, digest) or self._read(name, None, digest)
        )

    def _catalog_candidate(self, name: str, tag: str | None, digest: str | None) -> Candidate | None:
        """The candidate as the namespace's catalog describes it (no request), or None when it does not."""
        ext = self._listed(name)
        if ext is None:
            return None
        if digest:
            entry = next((e for e in ext.versions.values() if e.digest == digest), None)
        else:
            entry = ext.versions.get(version_for_tag(tag or ""))
        if entry is None:
            return None
        assert self.catalogs is not None
        self.catalogs.note_used(self.settings)
        if entry.deprecated:
            self._warn(f"{name} {entry.version} is marked deprecated in the catalog of {self.settings.reference(name)}")
        return Candidate(
            name=name,
            version=entry.version,
            type=ext.type,
            digest=entry.digest,
            dependencies=dict(entry.dependencies),
            settings=self.settings,
            tag=tag or tag_for_version(entry.version),
            size=entry.size,
            media_type=entry.media_type,
            min_provisioning_version=entry.min_provisioning_version,
            from_catalog=True,
        )

    def _read(self, name: str, tag: str | None, digest: str | None) -> Candidate:
        """Read one version's manifest and config (through the cache); refuse what is not ours."""
        where = self.settings.reference(name, tag, digest)
        desc, manifest = self._manifest(name, tag, digest, where)
        cfg = extension_config(manifest, desc, where)
        target = self._target(name)
        raw = self.cache.ensure_bytes(cfg, lambda: target.fetch(cfg), f"the config of {where}")
        try:
            meta = json.loads(raw)
        except ValueError as exc:
            raise ValidationError(f"{where}: the config blob is not valid JSON ({exc})") from None
        cand = candidate_from_manifest(meta, where, name, schema_checked=cfg.digest in self.cache.schema_checked)
        self.cache.schema_checked.add(cfg.digest)
        if tag and version_for_tag(tag) != cand.version:
            raise ValidationError(
                f"{where}: the tag says {version_for_tag(tag)} but the extension's manifest says {cand.version}; "
                "republish it under the right tag"
            )
        cand.settings = self.settings
        cand.tag = tag or tag_for_version(cand.version)
        cand.digest, cand.size, cand.media_type = desc.digest, desc.size, desc.media_type
        return cand

    def _manifest(self, name: str, tag: str | None, digest: str | None, where: str) -> tuple[Descriptor, bytes]:
        target = self._target(name)
        if digest:
            manifest = self._manifest_by_digest(target, digest)
            return Descriptor.of(_media_type(manifest), manifest), manifest
        if isinstance(target, ReferenceFetcher):  # one request (GET by tag) whether or not the cache has it
            desc, manifest = target.fetch_reference(tag or "")
            self.cache.store_bytes(desc, manifest)
            return desc, manifest
        desc = target.resolve(tag or "")  # resolve the tag, then the manifest from the cache when it is there
        return desc, self.cache.ensure_bytes(desc, lambda: target.fetch(desc), f"the manifest of {where}")

    def _manifest_by_digest(self, target: Target, digest: str) -> bytes:
        """A digest-pinned manifest: from the cache when intact, else one fetch (verified by the store)."""
        data = self.cache.read_digest(digest)
        if data is None:
            desc, data = fetch_manifest(target, digest)
            if desc.digest != digest:
                raise ValidationError(f"{target.name}@{digest}: the store answered with {desc.digest}")
            self.cache.store_bytes(desc, data)
        return data

    def _target(self, name: str) -> Target:
        target = self._targets.get(name)
        if target is None:
            if self.stores is None:
                raise NotFound(f"{self.settings.reference(name)}: no registry is available (offline)")
            target = self._targets[name] = self.stores.target(self.settings, name)
        return target

    # --- fetching a locked version

    def fetch(self, entry: LockedExtension, dest: Path) -> bool:
        """Manifest and content layer by digest (through the cache), extracted safely, checked against the lock."""
        what = f"{entry.name} {entry.version}"
        target_fn = (lambda: self._target(entry.name)) if self.stores is not None else None
        before = len(self.cache.corrupt)
        mdesc = Descriptor(entry.media_type or MANIFEST, entry.digest, entry.size)
        manifest = self.cache.ensure_bytes(mdesc, _fetcher(target_fn, mdesc), f"the manifest of {what}")
        layer = _layer_of(manifest, entry)
        archive = self.cache.ensure(layer, _fetcher(target_fn, layer), f"the content of {what}")
        safe_extract(archive, dest, what=what, limits=self.limits or ExtractLimits.from_env())
        check_extracted(dest, entry)
        return len(self.cache.corrupt) > before

    # --- for messages

    def where(self, name: str) -> str:
        where = self.settings.reference(name)
        looked_in = self.looked_in()
        return f"{where} (looked in {looked_in})" if looked_in else where

    def looked_in(self) -> str | None:
        if self.stores is None:
            return None
        storage = self.stores.storage(self.settings)
        return storage.looked_in if isinstance(storage, _Mirrored) else None

    def known_names(self) -> tuple[list[str], bool]:
        """Extension names in the namespace (its catalog, else ``_catalog`` when the store has one) plus every
        name seen."""
        names = {k for k, v in self.tag_lists.values.items() if v}
        try:
            catalog = self.catalogs.get(self.settings) if self.catalogs is not None else None
            if catalog is not None:  # read already by the resolve, or one read now
                return sorted(names | set(catalog.extensions)), True
        except ProvisioningError as exc:
            log.debug("namespace catalog unavailable: %s", exc)
        if self.stores is None:
            return sorted(names), False
        storage = self.stores.storage(self.settings)
        if not isinstance(storage, Cataloger):
            return sorted(names), False
        try:
            repos = storage.catalog()
        except ProvisioningError as exc:
            log.debug("catalog unavailable: %s", exc)
            return sorted(names), False
        prefix = self.settings.namespace + "/"
        names |= {r[len(prefix) :] for r in repos if r.startswith(prefix) and "/" not in r[len(prefix) :]}
        return sorted(names), True


def extension_config(manifest: bytes, desc: Descriptor, where: str) -> Descriptor:
    """The config descriptor of an extension artifact's manifest; ValidationError for anything else."""
    if desc.media_type not in MANIFEST_TYPES:
        raise ValidationError(f"{where} is not an OCI manifest (media type {desc.media_type!r})")
    try:
        doc = json.loads(manifest)
    except ValueError as exc:
        raise ValidationError(f"{where}: the manifest is not valid JSON ({exc})") from None
    cfg = doc.get("config") if isinstance(doc, dict) else None
    artifact_type = doc.get("artifactType") if isinstance(doc, dict) else None
    cfg_type = cfg.get("mediaType") if isinstance(cfg, dict) else None
    if cfg_type != CONFIG_TYPE or artifact_type not in (None, ARTIFACT_TYPE):
        raise ValidationError(
            f"{where} is not a provisioning extension: its artifactType is {artifact_type!r} and its config "
            f"media type is {cfg_type!r} (expected {ARTIFACT_TYPE!r} with config {CONFIG_TYPE!r}). "
            "Something else was pushed under this tag; remove the tag or republish the extension"
        )
    assert isinstance(cfg, dict)
    return Descriptor.from_dict(cfg)


def _fetcher(target_fn: Callable[[], Target] | None, desc: Descriptor) -> Callable[[], Iterable[bytes]] | None:
    if target_fn is None:
        return None
    return lambda: target_fn().fetch(desc)


def _layer_of(manifest: bytes, entry: LockedExtension) -> Descriptor:
    """The content layer, picked as ``oci pull`` picks it (``descriptor.content_layer``)."""
    try:
        doc = json.loads(manifest)
    except ValueError as exc:
        raise ValidationError(f"{entry.name} {entry.version}: manifest {entry.digest} is not JSON: {exc}") from None
    try:
        return content_layer(doc)
    except (ValueError, InvalidContent) as exc:
        raise ValidationError(
            f"{entry.name} {entry.version} ({entry.digest}) is not an extension artifact: {exc}; "
            "it was not published by provisioning"
        ) from None


def check_extracted(folder: Path, entry: LockedExtension) -> None:
    """The unpacked manifest.yaml must be a valid manifest naming the extension and version the lock says."""
    mf = folder / "manifest.yaml"
    if not mf.is_file():
        return
    what = f"{entry.name} {entry.version}: manifest.yaml"
    try:
        doc = safe_load(mf.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{what} is not readable YAML ({exc.__class__.__name__}); republish it") from None
    problems = manifest_problems(doc, what)  # the schema decides, as for validation and resolve
    if problems:
        raise ValidationError("the artifact is invalid: " + "; ".join(problems[:5]) + "; republish it fixed")
    if (doc.get("name"), str(doc.get("version"))) != (entry.name, entry.version):
        raise ValidationError(
            f"{entry.name} {entry.version}: the artifact's manifest.yaml says {doc.get('name')} {doc.get('version')}; "
            "the artifact is inconsistent, republish it"
        )
    got = {str(k): str(v) for k, v in (doc.get("dependencies") or {}).items()}
    if got != dict(entry.dependencies):
        raise ValidationError(
            f"{entry.name} {entry.version}: the artifact's manifest.yaml declares dependencies {got}, the lock says "
            f"{dict(entry.dependencies)}; the lock (or the catalog it came from) does not describe this artifact"
        )
