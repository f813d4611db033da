"""What a bundle of a workspace holds: every locked extension, the core, the pinned platform images.

Read from the lock (never resolved again), so the bundle holds exactly the digests the lock
pins and the same lock installs from it. Local and git extensions live in folders, not
registries, and are named in the notes; the core and platform images are taken where
reachable.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import ProvisioningError
from ..oci.descriptor import MANIFEST, Descriptor
from ..oci.reference import parse_reference
from ..workspace.config import RegistrySettings, WorkspaceConfig, display_path, load_config
from ..workspace.lock import Lock, read_lock
from ..workspace.stores import Stores
from .create import Wanted
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
