"""The catalog as an artifact: ``NAMESPACE/provisioning-catalog:latest`` in any store.

Writing pushes the blobs and the new manifest by digest first and moves the tag last, so a
reader sees the old catalog or the new one, never half of one. Reading costs two requests
cold (manifest by tag, then the layer) and one HEAD when the remembered manifest is still the
one tagged (the document comes from the content-addressed cache). Every reader remembers the
highest generation it has seen per registry and namespace, and refuses a lower one: a
replayed or rolled-back catalog could hide a newer release or point at an old one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .. import paths
from ..errors import NotFound, ProvisioningError
from ..extension import manifest_problems
from ..oci.descriptor import (
    ARTIFACT_TYPE,
    CONFIG_TYPE,
    EMPTY_CONFIG_TYPE,
    MANIFEST,
    MANIFEST_TYPES,
    Descriptor,
    canonical_json,
)
from ..oci.reference import version_for_tag
from ..oci.store import Cataloger, ReadOnlyTarget, Storage, Target, fetch_bytes, fetch_manifest
from ..versions import is_valid_version
from .model import Catalog, CatalogError, entry_from_manifest

log = logging.getLogger(__name__)

CATALOG_NAME = "provisioning-catalog"  # a reserved extension name
CATALOG_TAG = "latest"
CATALOG_ARTIFACT_TYPE = "application/vnd.provisioning.catalog.v1"
CATALOG_LAYER_TYPE = "application/vnd.provisioning.catalog.v1+json"
GENERATION_ANNOTATION = "io.provisioning.catalog.generation"
SOURCE_ANNOTATION = "io.provisioning.source.digest"
MAX_CATALOG_SIZE = 64 << 20
EMPTY_CONFIG = b"{}"

Signer = Callable[[Target, Descriptor], None]
"""Signs the catalog manifest ``desc`` in ``target`` (called after the tag moved)."""
Verifier = Callable[[ReadOnlyTarget, Descriptor], None]
"""Raises ``CatalogError`` unless a trusted key signed the catalog manifest ``desc``."""


class BytesCache(Protocol):
    """The content-addressed cache the workspace side shares (``read_digest``/``store_bytes``)."""

    def read_digest(self, digest: str) -> bytes | None: ...

    def store_bytes(self, desc: Descriptor, data: bytes) -> None: ...


def catalog_repository(namespace: str) -> str:
    return f"{namespace.strip('/')}/{CATALOG_NAME}".lstrip("/")


def is_catalog_repository(repository: str) -> bool:
    return repository.rsplit("/", 1)[-1] == CATALOG_NAME


# --------------------------------------------------------------------------- writing


def catalog_parts(catalog: Catalog) -> tuple[list[tuple[Descriptor, bytes]], Descriptor, bytes]:
    """(blobs, manifest descriptor, manifest bytes) of the catalog artifact; the same catalog, the same bytes."""
    return layer_parts(catalog.to_bytes(), catalog.generation)


def layer_parts(layer: bytes, generation: int) -> tuple[list[tuple[Descriptor, bytes]], Descriptor, bytes]:
    """The catalog artifact around any layer bytes (``catalog_parts``; tests use it to push broken ones)."""
    config = Descriptor.of(EMPTY_CONFIG_TYPE, EMPTY_CONFIG)
    ldesc = Descriptor.of(CATALOG_LAYER_TYPE, layer, annotations={"org.opencontainers.image.title": "catalog.json"})
    doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": CATALOG_ARTIFACT_TYPE,
        "config": config.to_dict(),
        "layers": [ldesc.to_dict()],
        "annotations": {
            GENERATION_ANNOTATION: str(generation),
            "org.opencontainers.image.title": CATALOG_NAME,
        },
    }
    manifest = canonical_json(doc)
    return [(config, EMPTY_CONFIG), (ldesc, layer)], Descriptor.of(MANIFEST, manifest), manifest


def write_catalog(storage: Storage, namespace: str, catalog: Catalog, *, sign: Signer | None = None) -> Descriptor:
    """Push the catalog (blobs, manifest by digest), then move ``latest`` to it; sign it when asked."""
    target = storage.repository(catalog_repository(namespace))
    blobs, mdesc, manifest = catalog_parts(catalog)
    for desc, data in blobs:
        target.push(desc, [data])
    target.push(mdesc, [manifest])
    target.tag(mdesc, CATALOG_TAG)
    if sign is not None:
        sign(target, mdesc)
    return mdesc


def next_generation(previous: Catalog | None) -> int:
    return (previous.generation + 1) if previous is not None else 1


# --------------------------------------------------------------------------- reading


@dataclass
class LoadedCatalog:
    """A catalog as read from a store, with the manifest that carried it."""

    catalog: Catalog
    digest: str
    where: str
    requests: int = 0


def _parse_manifest(raw: bytes, where: str) -> Descriptor:
    """The catalog layer's descriptor from the manifest; CatalogError for anything else."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CatalogError(f"{where}: the catalog manifest is not JSON") from None
    if not isinstance(doc, dict) or doc.get("artifactType") != CATALOG_ARTIFACT_TYPE:
        got = doc.get("artifactType") if isinstance(doc, dict) else None
        raise CatalogError(
            f"{where} is not a provisioning catalog (artifactType {got!r}, expected {CATALOG_ARTIFACT_TYPE!r}); "
            f"something else was pushed under {CATALOG_NAME}: rebuild it with `provisioning catalog rebuild`"
        )
    layers = doc.get("layers")
    try:
        ours = [Descriptor.from_dict(d) for d in layers or [] if d.get("mediaType") == CATALOG_LAYER_TYPE]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise CatalogError(f"{where}: the catalog manifest's layers are malformed") from None
    if len(ours) != 1:
        raise CatalogError(f"{where}: expected one {CATALOG_LAYER_TYPE} layer, found {len(ours)}")
    if ours[0].size > MAX_CATALOG_SIZE or ours[0].size < 0:
        raise CatalogError(f"{where}: the catalog layer is {ours[0].size} bytes, more than {MAX_CATALOG_SIZE}")
    return ours[0]


def _where(storage: Storage, namespace: str) -> str:
    host = getattr(storage, "registry_host", None) or getattr(storage, "registry", None) or "store"
    return f"{host}/{catalog_repository(namespace)}:{CATALOG_TAG}"


def read_catalog(
    storage: Storage,
    namespace: str,
    *,
    cache: BytesCache | None = None,
    known_digest: str | None = None,
    verify: Verifier | None = None,
    lazy: bool = False,
) -> LoadedCatalog | None:
    """The namespace's catalog, or None when there is none; CatalogError when it cannot be trusted.

    With ``known_digest`` (the manifest read last time) and a cache that still holds it, one HEAD
    tells whether it is still current; otherwise the manifest and the layer are fetched.
    """
    target = storage.repository(catalog_repository(namespace))
    where = _where(storage, namespace)
    requests = 0
    manifest: bytes | None = None
    try:
        if known_digest and cache is not None and cache.read_digest(known_digest) is not None:
            requests += 1
            desc = target.resolve(CATALOG_TAG)
            if desc.digest == known_digest:
                manifest = cache.read_digest(known_digest)
        if manifest is None:
            requests += 1
            desc, manifest = fetch_manifest(target, CATALOG_TAG)
            if desc.media_type not in MANIFEST_TYPES:
                raise CatalogError(f"{where} is not an OCI manifest ({desc.media_type})")
            if cache is not None:
                cache.store_bytes(desc, manifest)
    except NotFound:
        return None
    layer = _parse_manifest(manifest, where)
    data = cache.read_digest(layer.digest) if cache is not None else None
    if data is None:
        requests += 1
        try:
            data = fetch_bytes(target, layer)  # verified against the layer's digest and size
        except NotFound:
            raise CatalogError(f"{where}: the catalog manifest names a layer {layer.digest} that is missing") from None
        if cache is not None:
            cache.store_bytes(layer, data)
    if verify is not None:
        verify(target, desc)
    catalog = Catalog.parse(data, where, lazy=lazy)
    return LoadedCatalog(catalog, desc.digest, where, requests)


# --------------------------------------------------------------------------- what a reader last saw


def _memory_file(registry: str, namespace: str) -> Path:
    key = hashlib.sha256(f"{registry}\n{namespace}".encode()).hexdigest()[:32]
    return paths.home() / "catalogs" / f"{key}.json"


def remembered(registry: str, namespace: str) -> dict[str, Any]:
    """``{"generation": int, "digest": str}`` last accepted for this registry/namespace (empty: never)."""
    try:
        doc = json.loads(_memory_file(registry, namespace).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("generation"), int):
        return {}
    return doc


def remember(registry: str, namespace: str, loaded: LoadedCatalog) -> None:
    """Record the generation and manifest accepted (atomically; a lower generation is never written)."""
    current = remembered(registry, namespace)
    if current.get("generation", -1) > loaded.catalog.generation:
        return
    file = _memory_file(registry, namespace)
    file.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "registry": registry,
        "namespace": namespace,
        "generation": loaded.catalog.generation,
        "digest": loaded.digest,
    }
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".catalog-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, sort_keys=True)
    os.replace(tmp, file)


def check_generation(registry: str, namespace: str, loaded: LoadedCatalog) -> None:
    """Refuse a catalog older than one this machine already accepted."""
    seen = remembered(registry, namespace).get("generation")
    if isinstance(seen, int) and loaded.catalog.generation < seen:
        raise CatalogError(
            f"{loaded.where} has generation {loaded.catalog.generation}, lower than generation {seen} seen before: "
            "the catalog was rolled back or replayed. Ignoring it; if the registry was rebuilt on purpose, "
            "republish the catalog (`doit publish_catalog`) so its generation passes the old one"
        )


# --------------------------------------------------------------------------- rebuilding from the registry


def extension_names(storage: Storage, namespace: str, previous: Catalog | None, extra: Iterable[str] = ()) -> list[str]:
    """Names to look at: the registry's ``_catalog`` when it answers, else what the old catalog and caller know."""
    names = set(extra)
    if previous is not None:
        names |= set(previous.extensions)
    if isinstance(storage, Cataloger):
        try:
            prefix = namespace.strip("/") + "/"
            for repo in storage.catalog():
                rest = repo[len(prefix) :] if repo.startswith(prefix) else None
                if rest and "/" not in rest and rest != CATALOG_NAME:
                    names.add(rest)
        except ProvisioningError as exc:
            if not names:
                raise ProvisioningError(
                    f"{exc}. To rebuild the catalog without it, name the extensions (--name NAME, or "
                    "--extensions DIR with the extension tree)"
                ) from None
            log.info("registry listing unavailable (%s); using %d known names", exc, len(names))
    names.discard(CATALOG_NAME)
    return sorted(names)


def read_version(target: ReadOnlyTarget, tag: str) -> tuple[Any, ...] | None:
    """(entry, type, description, keywords) of one published extension version; None if not ours."""
    try:
        desc, raw = fetch_manifest(target, tag)
    except NotFound:
        return None
    try:
        doc = json.loads(raw)
        cfg = Descriptor.from_dict(doc["config"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if cfg.media_type != CONFIG_TYPE or doc.get("artifactType") not in (None, ARTIFACT_TYPE) or cfg.size > 4 << 20:
        return None
    try:
        meta = json.loads(fetch_bytes(target, cfg))
    except (ValueError, NotFound):
        return None
    if not isinstance(meta, dict) or str(meta.get("version")) != version_for_tag(tag):
        return None
    if meta.get("name") != target.name.rsplit("/", 1)[-1] or manifest_problems(meta, target.name):
        return None  # not this extension, or a manifest the resolver would refuse (the one schema decides)
    source = (doc.get("annotations") or {}).get(SOURCE_ANNOTATION)
    return entry_from_manifest(meta, desc.digest, desc.size, desc.media_type, source)


def rebuild_catalog(
    storage: Storage,
    namespace: str,
    *,
    names: Iterable[str] | None = None,
    previous: Catalog | None = None,
    workers: int = 8,
) -> Catalog:
    """The catalog the registry's contents imply: every extension version tagged in the namespace."""
    todo = sorted(names) if names is not None else extension_names(storage, namespace, previous)
    catalog = Catalog(namespace, next_generation(previous))

    def tags_of(name: str) -> list[tuple[str, str]]:
        tags = storage.repository(f"{namespace}/{name}".lstrip("/")).tags()
        return [(name, t) for t in tags if t[:1].isdigit() and is_valid_version(version_for_tag(t))]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pairs = [p for chunk in pool.map(tags_of, todo) for p in chunk]
        found = pool.map(lambda p: read_version(storage.repository(f"{namespace}/{p[0]}".lstrip("/")), p[1]), pairs)
        for (name, _), got in zip(pairs, list(found), strict=True):
            if got is not None:
                entry, type_, description, keywords = got
                catalog.add(name, entry, type_=type_, description=description, keywords=keywords)
    return catalog
