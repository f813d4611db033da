"""Bring a namespace's catalog up to date at the end of a publish run (or of the merge of a sharded one).

The catalog must say what the registry holds, so every entry is read from the registry (the
manifest the tag points to and its config, as a rebuild reads them), never taken from the
publisher's own belief. Only versions the catalog does not describe yet cost requests: a run that
changed nothing reads the catalog and writes nothing. Without a catalog (or with one that cannot be
trusted) the whole namespace is rebuilt, so the first catalog knows every published version.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..oci.reference import tag_for_version
from ..oci.store import Storage
from .model import Catalog, CatalogError
from .registry import (
    BytesCache,
    Signer,
    catalog_repository,
    extension_names,
    next_generation,
    read_catalog,
    read_version,
    rebuild_catalog,
    write_catalog,
)

log = logging.getLogger(__name__)


@dataclass
class CatalogUpdate:
    """What happened to the catalog: ``written`` (a new generation), ``unchanged``, with what changed."""

    reference: str
    status: str
    generation: int
    digest: str | None = None
    added: list[str] = field(default_factory=list)  # "name version" read from the registry into it
    removed: list[str] = field(default_factory=list)  # named by the run, no longer in the registry
    rebuilt: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "status": self.status,
            "generation": self.generation,
            "digest": self.digest,
            "added": self.added,
            "removed": self.removed,
            "rebuilt": self.rebuilt,
            "note": self.note,
        }

    def line(self) -> str:
        if self.status == "unchanged":
            return f"catalog: {self.reference} is up to date (generation {self.generation})"
        how = "rebuilt from the registry" if self.rebuilt else f"{len(self.added)} versions added"
        gone = f", {len(self.removed)} removed" if self.removed else ""
        return f"catalog: {self.reference} written, generation {self.generation} ({how}{gone}) {self.digest}"


def refresh_catalog(
    storage: Storage,
    namespace: str,
    versions: Iterable[tuple[str, str, str | None]],
    *,
    names: Iterable[str] = (),
    registry: str = "",
    cache: BytesCache | None = None,
    sign: Signer | None = None,
    workers: int = 8,
) -> CatalogUpdate:
    """Make the catalog describe ``versions`` ((name, version, digest the run saw)) as the registry holds them.

    ``names`` are the extensions a first catalog must cover even where ``_catalog`` is refused.
    """
    where = f"{registry or 'store'}/{catalog_repository(namespace)}:latest"
    note = ""
    try:
        loaded = read_catalog(storage, namespace, cache=cache)
    except CatalogError as exc:
        loaded, note = None, f"the old catalog was not trusted ({exc}); rebuilt"
    if loaded is None:
        previous_generation = _tagged_generation(storage, namespace)
        catalog = rebuild_catalog(storage, namespace, names=extension_names(storage, namespace, None, names))
        catalog.generation = previous_generation + 1
        digest = write_catalog(storage, namespace, catalog, sign=sign).digest
        return CatalogUpdate(where, "written", catalog.generation, digest, rebuilt=True, note=note)
    catalog = loaded.catalog
    todo = sorted(
        {
            (name, version)
            for name, version, digest in versions
            if version
            and (catalog.version(name, version) is None or (digest and catalog.version(name, version).digest != digest))  # type: ignore[union-attr]
        }
    )
    if not todo:
        return _unchanged(storage, namespace, where, loaded, sign)

    def read(item: tuple[str, str]) -> Any:
        name, version = item
        return read_version(storage.repository(f"{namespace}/{name}".lstrip("/")), tag_for_version(version))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = list(pool.map(read, todo))
    update = Catalog(namespace, next_generation(catalog))
    update.extensions = catalog.extensions
    added, removed = [], []
    for (name, version), got in zip(todo, found, strict=True):
        if got is None:  # the run named it, the registry does not hold it (or not as an extension)
            ext = update.extensions.get(name)
            if ext is not None and ext.versions.pop(version, None) is not None:
                removed.append(f"{name} {version}")
                if not ext.versions:
                    del update.extensions[name]
            continue
        entry, type_, description, keywords = got
        update.add(name, entry, type_=type_, description=description, keywords=keywords)
        added.append(f"{name} {version}")
    if not added and not removed:
        return _unchanged(storage, namespace, where, loaded, sign)
    digest = write_catalog(storage, namespace, update, sign=sign).digest
    return CatalogUpdate(where, "written", update.generation, digest, added, removed)


def _unchanged(storage: Storage, namespace: str, where: str, loaded: Any, sign: Signer | None) -> CatalogUpdate:
    """Nothing to write; with a key, the catalog still ends up signed by it (a no-op when it already is)."""
    if sign is not None:
        from ..oci.descriptor import MANIFEST, Descriptor

        sign(storage.repository(catalog_repository(namespace)), Descriptor(MANIFEST, loaded.digest, 0))
    return CatalogUpdate(where, "unchanged", loaded.catalog.generation, loaded.digest)


def _tagged_generation(storage: Storage, namespace: str) -> int:
    """The generation a distrusted catalog claimed (from its manifest annotation), so the next one passes it."""
    import json

    from ..errors import ProvisioningError
    from ..oci.store import fetch_manifest
    from .registry import CATALOG_TAG, GENERATION_ANNOTATION

    try:
        _, raw = fetch_manifest(storage.repository(catalog_repository(namespace)), CATALOG_TAG)
        text = (json.loads(raw).get("annotations") or {}).get(GENERATION_ANNOTATION, "0")
        return int(text) if str(text).isdigit() else 0
    except (ProvisioningError, ValueError, AttributeError):
        return 0
