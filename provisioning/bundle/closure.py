"""What a bundle holds: a workspace's locked closure, or the closure of the references named.

A workspace's bundle is read from the lock (never resolved again), so it holds exactly the
digests the lock pins and the same lock installs from it: every locked extension, the core, the
pinned platform images. Local and git extensions live in folders, not registries, and are named
in the notes; the core and platform images are taken where reachable.

References named instead (``bundle create OUT REF…``) are resolved the way a workspace asking
for exactly those versions would be (the same resolver, the same checks): each extension with
every dependency, by the digest the resolution pins. A reference that is not an extension (any
other artifact) is bundled alone.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ProvisioningError, ValidationError
from ..oci.descriptor import CONFIG_TYPE, MANIFEST, MAX_MANIFEST_SIZE, Descriptor
from ..oci.reference import Reference, parse_reference
from ..oci.store import fetch_manifest
from ..workspace.cache import BlobCache
from ..workspace.config import RegistrySettings, WorkspaceConfig, display_path, load_config
from ..workspace.entries import ModuleSpec
from ..workspace.lock import Lock, read_lock
from ..workspace.stores import Stores
from .create import Wanted
from .journal import Resolved
from .manifest import BundleError

CORE_REPOSITORY = "provisioning-core"


def lock_digests(lock: Lock) -> set[str]:
    """Every manifest digest a lock pins (for ``--since``)."""
    out = {e.digest for e in lock.extensions.values() if e.source == "oci"}
    out |= {str(v["digest"]) for v in lock.platform_images.values() if v.get("digest")}
    return out


def file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def workspace_closure(
    workspace: Path, stores: Stores
) -> tuple[dict[str, str], list[Wanted], dict[str, Any], list[str], WorkspaceConfig]:
    """(origin, what to copy, the lock document, notes, config) for the workspace's lock."""
    config = load_config(workspace)
    stores.use_mirrors(config.mirrors, config.mirror_only)  # a site that pulls through mirrors bundles from them
    lock = read_lock(config.lock_path)
    if lock is None:
        raise BundleError(
            f"{display_path(config.lock_path)} does not exist: run `provisioning dep resolve` in {workspace} online "
            "first; a bundle carries exactly what the lock pins"
        )
    lock_doc = json.loads(config.lock_path.read_text(encoding="utf-8"))
    origin_settings = config.registry
    origin = {"registry": origin_settings.portable(config.root), "namespace": origin_settings.namespace}
    wanted: list[Wanted] = []
    notes: list[str] = []
    for name in lock.order:
        e = lock.extensions[name]
        if e.source != "oci":
            notes.append(f"{name} comes from a {e.source} source, not a registry: it is not in the bundle")
            continue
        settings = e.settings(config)
        wanted.append(
            Wanted(
                source=stores.storage(settings),
                repository=f"{e.namespace}/{e.name}",
                kind="extension",
                tag=e.tag,
                desc=Descriptor(e.media_type or MANIFEST, e.digest, e.size),
                registry=None if settings.registry == origin_settings.registry else (e.registry_text or e.registry),
            )
        )
    wanted.append(
        Wanted(
            source=stores.storage(origin_settings),
            repository=CORE_REPOSITORY,
            kind="core",
            tag=f"v{lock.core_version}",
            optional=True,
        )
    )
    for service, pin in sorted(lock.platform_images.items()):
        reference, digest = pin.get("reference"), pin.get("digest")
        if not reference or not digest:
            notes.append(f"platform image {service} is not pinned in the lock: it is not in the bundle")
            continue
        try:
            ref = parse_reference(str(reference))
            storage = stores.storage(RegistrySettings(registry=ref.registry, namespace=ref.repository))
        except ProvisioningError as exc:
            notes.append(f"platform image {service} ({reference}) left out: {exc}")
            continue
        wanted.append(
            Wanted(
                source=storage,
                repository=ref.repository,
                kind="platform",
                tag=ref.tag,
                digest=str(digest),  # the pinned digest, even if the tag moved since
                registry=ref.registry,
                optional=True,
            )
        )
    return origin, wanted, lock_doc, notes, config


def refs_closure(refs: list[Reference], stores: Stores, default: RegistrySettings) -> tuple[list[Wanted], list[str]]:
    """What to copy for ``refs``: each extension with its resolved dependency closure, anything else alone.

    Dependencies are looked up where the first extension named lives (its registry and namespace), as a
    workspace whose config names that registry would. Returns (what to copy, notes).
    """
    from ..workspace.catalogs import Catalogs, catalog_policy
    from ..workspace.resolver import resolve
    from ..workspace.sources.oci import OciFinder

    cache = BlobCache()
    catalogs = Catalogs(stores, cache, policy=catalog_policy(None))  # each namespace's catalog read once
    finders: dict[tuple[str, str], OciFinder] = {}
    mutex = threading.Lock()

    def examine(ref: Reference) -> ModuleSpec | Wanted:
        """The reference as an extension to resolve (pinned by the digest its manifest has now), or else as an
        artifact to bundle alone (pinned the same way)."""
        namespace, _, name = ref.repository.rpartition("/")
        if not namespace:
            return _pinned(ref, stores, default, cache)
        settings = default.with_registry(ref.registry, namespace)
        with mutex:
            key = (settings.registry, namespace)
            if key not in finders:
                finders[key] = OciFinder(settings, stores=stores, cache=cache, catalogs=catalogs)
            finder = finders[key]
        try:  # is it an extension? Its manifest and config are read once, into the cache the rest reads from
            cand = finder.by_digest(name, ref.digest) if ref.digest else finder.by_tag(name, ref.tag or "")
        except ValidationError:
            return _pinned(ref, stores, default, cache)
        # pinned by the digest just read: the resolver finds the manifest in the cache, and the bundle gets the
        # content that was looked at even if the tag moves meanwhile
        at = str(ref)
        return ModuleSpec(name, cand.type, tag=cand.tag, digest=cand.digest, registry=settings, entry=at, location=at)

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(refs))), thread_name_prefix="bundle-ref") as pool:
        examined = list(pool.map(examine, refs))  # a round trip or two each, several at a time
    specs = [e for e in examined if isinstance(e, ModuleSpec)]
    wanted = [e for e in examined if isinstance(e, Wanted)]
    notes: list[str] = []
    if not specs:
        return wanted, notes
    config = _config(specs[0].registry or default, tuple(specs))
    resolution = resolve(config, stores=stores, cache=cache, catalogs=catalogs)
    for name in resolution.order:
        c = resolution.candidates[name]
        if c.source != "oci" or c.settings is None:
            notes.append(f"{name} comes from a {c.source} source, not a registry: it is not in the bundle")
            continue
        wanted.append(
            Wanted(
                source=CacheFirst(stores.storage(c.settings), cache),
                repository=f"{c.settings.namespace}/{name}",
                kind="extension",
                tag=c.tag,
                desc=Descriptor(c.media_type or MANIFEST, c.digest, c.size),
                registry=None if c.settings.registry == config.registry.registry else c.settings.registry,
                host=c.settings.registry,
            )
        )
    return wanted, notes


def _pinned(ref: Reference, stores: Stores, default: RegistrySettings, cache: BlobCache) -> Wanted:
    """A reference that is not an extension, pinned now by the digest its manifest has (so that a resumed create
    copies what this one looked at); the manifest is kept in the cache, where the copy reads it."""
    source = CacheFirst(stores.storage(default.with_registry(ref.registry, None)), cache)
    target = source.repository(ref.repository)
    desc, data = fetch_manifest(target, ref.digest or ref.tag or "latest")
    if ref.digest and desc.digest != ref.digest:
        raise BundleError(f"{ref}: the registry answered with {desc.digest}, not the digest named")
    cache.store_bytes(desc, data)
    return Wanted(source, ref.repository, "artifact", tag=ref.tag, desc=desc, host=ref.registry)


def resumed_closure(resolved: list[Resolved], stores: Stores, default: RegistrySettings) -> list[Wanted]:
    """What to copy for a resumed create: the artifacts its references resolved to when it began, read from the
    registries they were read from then (manifests and configs from the cache where it holds them)."""
    cache = BlobCache()
    sources: dict[str, CacheFirst] = {}
    wanted = []
    for r in resolved:
        if r.registry not in sources:
            sources[r.registry] = CacheFirst(stores.storage(default.with_registry(r.registry, None)), cache)
        desc = Descriptor(r.media_type, r.digest, r.size)
        wanted.append(Wanted(sources[r.registry], r.repository, r.kind, tag=r.tag, desc=desc,
                             registry=r.bundle_registry, host=r.registry))  # fmt: skip
    return wanted


class CacheFirst:
    """A store whose small reads (manifests, config blobs) come from the resolver's cache when it holds them,
    verified there by digest: the bundle does not fetch again what resolving just read."""

    def __init__(self, inner: Any, cache: BlobCache) -> None:
        self._inner, self._cache = inner, cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def repository(self, name: str) -> Any:
        return _CacheFirstTarget(self._inner.repository(name), self._cache)


class _CacheFirstTarget:
    def __init__(self, inner: Any, cache: BlobCache) -> None:
        self._inner, self._cache = inner, cache
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def fetch(self, desc: Descriptor) -> Any:
        if desc.size <= MAX_MANIFEST_SIZE and (desc.is_manifest or desc.media_type == CONFIG_TYPE):  # what it keeps
            data = self._cache.read(desc)
            if data is not None:
                return iter([data])
        return self._inner.fetch(desc)


def _config(registry: RegistrySettings, modules: tuple[ModuleSpec, ...]) -> WorkspaceConfig:
    """A workspace config that asks for exactly ``modules``, dependencies from ``registry`` (no file behind it)."""
    root = Path.cwd()
    return WorkspaceConfig(
        root=root,
        path=root / "(references on the command line)",
        data={},
        core_version=__version__,
        core_source=None,
        source_type="oci",
        registry=registry,
        local_path=None,
        modules=modules,
    )
