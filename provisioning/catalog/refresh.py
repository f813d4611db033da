"""Bring a namespace's catalog up to date at the end of a publish run (or of the merge of a sharded one).

The catalog must say what the registry holds, so every entry is read from the registry (the
manifest the tag points to and its config, as a rebuild reads them), never taken from the
publisher's own belief. A version or a repository deleted since the last catalog leaves it: each
repository the catalog names gets one tag list, except where the run's own look-ups (the publish
sweep asks for every extension of the tree) saw every version the catalog lists for it, which is
every repository of a tree without older releases. Only versions the catalog does not describe yet
(or that the run saw under another digest) cost the two requests of reading them. ``doit
publish_catalog`` run alone (``full``) reads every version again, as a rebuild does, so a
version pushed by another tool into a repository the run saw whole, or a tag deleted and pushed
again with other content, is found there too. A run that changed nothing writes nothing.
Without a catalog (or with one that cannot be trusted) the whole namespace is rebuilt, so the
first catalog knows every published version. A catalog is never pushed over one with the same or
a higher generation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFound
from ..oci.descriptor import MANIFEST, Descriptor
from ..oci.reference import tag_for_version, version_for_tag
from ..oci.store import ReadOnlyTarget, Storage, fetch_manifest
from ..versions import is_valid_version
from .model import Catalog, CatalogError
from .registry import (
    CATALOG_NAME,
    CATALOG_TAG,
    GENERATION_ANNOTATION,
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
    removed: list[str] = field(default_factory=list)  # "name version" the catalog had, no longer in the registry
    rebuilt: bool = False
    note: str = ""
    checked: int = 0  # repositories whose tag list was read
    requests: int = 0  # requests the refresh made to read (not counting the write)

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
            "checked": self.checked,
            "requests": self.requests,
        }

    def line(self) -> str:
        if self.status == "unchanged":
            return (
                f"catalog: {self.reference} is up to date (generation {self.generation}; "
                f"{self.checked} repositories checked)"
            )
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
    full: bool = False,
) -> CatalogUpdate:
    """Make the catalog agree with the registry for every repository it or the run names.

    ``versions`` are (name, version, digest the run saw there); ``names`` the tree's extensions,
    which a first catalog must cover even where ``_catalog`` is refused. A repository gets one tag
    list unless the run saw every version the catalog lists for it; ``full`` reads every version of
    every repository of the catalog, the run and the tree again (a rebuild over those names). When
    another writer moves the catalog past the one this refresh started from, the refresh starts
    again from theirs.
    """
    versions, names = list(versions), list(names)
    for _ in range(RACE_ATTEMPTS - 1):
        try:
            return _refresh(storage, namespace, versions, names, registry, cache, sign, workers, full)
        except CatalogRaced as exc:
            log.info("%s; refreshing again from the newer catalog", exc)
    return _refresh(storage, namespace, versions, names, registry, cache, sign, workers, full)


RACE_ATTEMPTS = 3


class CatalogRaced(CatalogError):
    """The registry's catalog is at this generation or past it: another writer got there first."""


def write_over(storage: Storage, namespace: str, catalog: Catalog, *, sign: Signer | None = None) -> Descriptor:
    """``write_catalog``, unless the registry's catalog already has this generation or a higher one.

    A generation only grows: a writer that started from an older catalog (a second merge job, a
    rebuild racing a publish) must not push its view over a newer one; it refreshes again instead.
    """
    tagged = tagged_generation(storage, namespace)
    if tagged >= catalog.generation:
        raise CatalogRaced(
            f"{catalog_repository(namespace)}:{CATALOG_TAG} in the registry is at generation {tagged}, "
            f"this catalog would be generation {catalog.generation}: not pushed over it (another run wrote it "
            "meanwhile); run `doit publish_catalog` (or `provisioning catalog rebuild`) again to merge with it"
        )
    return write_catalog(storage, namespace, catalog, sign=sign)


def _refresh(
    storage: Storage,
    namespace: str,
    versions: list[tuple[str, str, str | None]],
    names: list[str],
    registry: str,
    cache: BytesCache | None,
    sign: Signer | None,
    workers: int,
    full: bool,
) -> CatalogUpdate:
    where = f"{registry or 'store'}/{catalog_repository(namespace)}:latest"
    note = ""
    try:
        loaded = read_catalog(storage, namespace, cache=cache)
    except CatalogError as exc:
        loaded, note = None, f"the old catalog was not trusted ({exc}); rebuilt"
    if loaded is None:
        catalog = rebuild_catalog(storage, namespace, names=extension_names(storage, namespace, None, names))
        catalog.generation = tagged_generation(storage, namespace) + 1
        digest = write_over(storage, namespace, catalog, sign=sign).digest
        return CatalogUpdate(where, "written", catalog.generation, digest, rebuilt=True, note=note)
    catalog = loaded.catalog
    run = [(name, version, digest) for name, version, digest in versions if name and version]
    seen: dict[str, dict[str, str | None]] = {}  # name -> version -> the digest the run saw there
    for name, version, digest in run:
        seen.setdefault(name, {})[version] = digest
    candidates = set(catalog.extensions) | set(seen) | (set(names) if full else set())
    check = sorted(candidates - {CATALOG_NAME})

    if full:
        return _rebuild_over(storage, namespace, where, loaded, check, sign, workers)

    def repository(name: str) -> ReadOnlyTarget:
        return storage.repository(f"{namespace}/{name}".lstrip("/"))

    def needs_tag_list(name: str) -> bool:
        """Whether the run alone cannot say what the repository holds: a catalog version it did not see."""
        ext = catalog.extensions.get(name)
        mine = seen.get(name, {})
        if None in mine.values():
            return True
        return any(mine.get(v) != e.digest for v, e in (ext.versions.items() if ext is not None else ()))

    listing = [n for n in check if needs_tag_list(n)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        held = dict(zip(listing, pool.map(lambda n: published_versions(repository(n)), listing), strict=True))
    for name in check:
        held.setdefault(name, set(seen.get(name, {})))  # every version confirmed by the run's own look-up
    todo: list[tuple[str, str]] = []  # versions to read from the registry: new, or the run saw another digest
    gone: list[tuple[str, str]] = []
    for name in check:
        ext = catalog.extensions.get(name)
        known = ext.versions if ext is not None else {}
        gone += [(name, v) for v in sorted(set(known) - held[name])]
        for version in sorted(held[name]):
            entry = known.get(version)
            if entry is None or seen.get(name, {}).get(version) not in (None, entry.digest):
                todo.append((name, version))
    update = Catalog(namespace, next_generation(catalog))
    update.extensions = catalog.extensions
    for name, version in gone:
        ext = update.extensions[name]
        newest = ext.newest_first()[0]
        del ext.versions[version]
        if not ext.versions:
            del update.extensions[name]
        elif version == newest and (name, ext.newest_first()[0]) not in todo:
            todo.append((name, ext.newest_first()[0]))  # the newest release left describes the extension now
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = list(pool.map(lambda item: read_version(repository(item[0]), tag_for_version(item[1])), todo))
    added = []
    for (name, version), got in zip(todo, found, strict=True):
        ext = update.extensions.get(name)
        if got is None:  # tagged, but not one of our extensions (or deleted since the tag list)
            if ext is not None and ext.versions.pop(version, None) is not None:
                gone.append((name, version))
                if not ext.versions:
                    del update.extensions[name]
            continue
        entry, type_, description, keywords = got
        before = ext.versions.get(version) if ext is not None else None
        update.add(name, entry, type_=type_, description=description, keywords=keywords)
        if before != entry:
            added.append(f"{name} {version}")
    removed = [f"{name} {version}" for name, version in gone]
    requests = loaded.requests + len(listing) + 2 * len(todo)
    if not added and not removed:
        return _unchanged(storage, namespace, where, loaded, sign, len(listing), requests)
    digest = write_over(storage, namespace, update, sign=sign).digest
    return CatalogUpdate(
        where, "written", update.generation, digest, added, removed, checked=len(listing), requests=requests
    )


def published_versions(target: ReadOnlyTarget) -> set[str]:
    """The versions a repository tags (one tag list; empty when the repository is gone)."""
    return {version_for_tag(t) for t in target.tags() if t[:1].isdigit() and is_valid_version(version_for_tag(t))}


def _rebuild_over(
    storage: Storage,
    namespace: str,
    where: str,
    loaded: Any,
    names: list[str],
    sign: Signer | None,
    workers: int,
) -> CatalogUpdate:
    """Every version of ``names`` read again, as a rebuild does: also a tag that now names other content."""
    catalog = loaded.catalog
    fresh = rebuild_catalog(storage, namespace, names=names, previous=catalog, workers=workers)
    before = {(n, v): e for n, x in catalog.extensions.items() for v, e in x.versions.items()}
    after = {(n, v): e for n, x in fresh.extensions.items() for v, e in x.versions.items()}
    added = [f"{n} {v}" for (n, v), e in sorted(after.items()) if before.get((n, v)) != e]
    removed = [f"{n} {v}" for n, v in sorted(before.keys() - after.keys())]
    requests = loaded.requests + len(names) + 2 * len(after)
    if fresh.same_content(catalog):
        return _unchanged(storage, namespace, where, loaded, sign, len(names), requests)
    digest = write_over(storage, namespace, fresh, sign=sign).digest
    return CatalogUpdate(
        where, "written", fresh.generation, digest, added, removed, checked=len(names), requests=requests
    )


def _unchanged(
    storage: Storage, namespace: str, where: str, loaded: Any, sign: Signer | None, checked: int, requests: int
) -> CatalogUpdate:
    """Nothing to write; with a key, the catalog still ends up signed by it (a no-op when it already is)."""
    if sign is not None:
        sign(storage.repository(catalog_repository(namespace)), Descriptor(MANIFEST, loaded.digest, 0))
    return CatalogUpdate(
        where, "unchanged", loaded.catalog.generation, loaded.digest, checked=checked, requests=requests
    )


def tagged_generation(storage: Storage, namespace: str) -> int:
    """The generation the tagged catalog claims (its manifest annotation); 0 when there is none.

    Read even from a catalog that is not trusted, so the next one written passes it. A registry
    that cannot answer stops the write (a ProvisioningError): a generation cannot be checked blind.
    """
    try:
        _, raw = fetch_manifest(storage.repository(catalog_repository(namespace)), CATALOG_TAG)
    except NotFound:
        return 0
    try:
        text = (json.loads(raw).get("annotations") or {}).get(GENERATION_ANNOTATION, "0")
    except (ValueError, AttributeError):
        return 0
    return int(text) if isinstance(text, str) and text.isdigit() and len(text) < 19 else 0
