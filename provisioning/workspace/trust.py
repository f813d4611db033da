"""The workspace's signature policy, applied before anything is installed.

``dependencies.extensions.verify: {keys: [PUB…], require: true}``: every OCI artifact in the lock must carry a
signature by one of the keys that covers its locked digest. The signature that verified is recorded in the lock
(its manifest and layer digests), and its bytes are kept in the blob cache, so a ``--locked`` install checks the
same signature again offline, from the cache alone; only what the cache lacks is fetched (by digest, and
checked against the keys all the same). With ``require: false`` problems are warnings instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .. import paths
from ..catalog import CatalogError
from ..catalog.registry import Verifier
from ..errors import NotFound, ValidationError
from ..oci.attached import attached_tag
from ..oci.descriptor import MANIFEST, Descriptor
from ..oci.store import ReadOnlyTarget, fetch_manifest
from ..signing.bundle import BUNDLE_TYPES
from ..signing.keys import PublicKey, load_public_key
from ..signing.verify import Verification, verify_artifact
from .cache import BlobCache
from .config import TrustPolicy, WorkspaceConfig
from .lock import Lock, LockedExtension
from .stores import Stores

_SMALL = 4 << 20  # signature manifests, payloads and bundles are cached whole; nothing larger is read


class CachedSignature:
    """A read-only store holding one locked signature, served from the blob cache (no network)."""

    def __init__(self, name: str, cache: BlobCache, subject: Descriptor, signature: dict[str, Any]) -> None:
        self.name = f"{name} (cache)"
        self._cache = cache
        self._manifest = Descriptor(MANIFEST, signature["manifest"], signature["manifest_size"])
        self._kind = signature["kind"]
        self._tag = attached_tag(subject.digest)

    def exists(self, desc: Descriptor) -> bool:
        return self._cache.read(desc) is not None

    def fetch(self, desc: Descriptor) -> Iterator[bytes]:
        data = self._cache.read(desc) if desc.size <= _SMALL else None
        if data is None:
            raise NotFound(f"{desc.digest} is not in the cache")
        return iter([data])

    def resolve(self, reference: str) -> Descriptor:
        if self._kind == "simple-signing" and reference == self._tag:
            return self._manifest
        raise NotFound(f"{reference} is not in the cache")

    def tags(self) -> list[str]:
        return [self._tag] if self._kind == "simple-signing" else []

    def referrers(self, desc: Descriptor) -> list[Descriptor]:
        if self._kind != "sigstore-bundle":
            return []
        m = self._manifest
        return [Descriptor(m.media_type, m.digest, m.size, artifact_type=BUNDLE_TYPES[0])]


class CachingTarget:
    """A registry repository whose small reads (signature manifests, payloads, bundles) land in the cache.

    ``tags``: the repository's tag list as this run read it already (the resolver's), answered
    instead of a second listing; a tag gone since is met as NotFound when it is resolved.
    """

    def __init__(self, inner: ReadOnlyTarget, cache: BlobCache, *, tags: list[str] | None = None) -> None:
        self._inner = inner
        self._cache = cache
        self._tags = tags
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:  # resolve, exists, referrers (where the store has it)
        return getattr(self._inner, name)

    def tags(self) -> list[str]:
        return list(self._tags) if self._tags is not None else self._inner.tags()

    def fetch(self, desc: Descriptor) -> Iterable[bytes]:
        if desc.size > _SMALL:
            return self._inner.fetch(desc)
        data = b"".join(self._inner.fetch(desc))
        self._cache.store_bytes(desc, data)
        return iter([data])

    def fetch_reference(self, reference: str) -> tuple[Descriptor, bytes]:
        desc, data = fetch_manifest(self._inner, reference)
        if len(data) <= _SMALL:
            self._cache.store_bytes(desc, data)
        return desc, data


def load_keys(policy: TrustPolicy) -> list[PublicKey]:
    """The policy's public keys; a missing or unusable one names the policy's line."""
    from ..signing import SigningError

    keys = []
    for path in policy.keys:
        try:
            keys.append(load_public_key(path))
        except SigningError as e:
            raise ValidationError(f"{policy.location}: {e}") from None
    return keys


def _record(result: Verification) -> dict[str, Any]:
    c = result.verified[0]
    return {
        "kind": c.kind,
        "manifest": c.manifest,
        "manifest_size": c.manifest_size,
        "layer": c.layer,
        "key": c.fingerprint,
    }


def verify_entry(
    config: WorkspaceConfig, entry: LockedExtension, keys: list[PublicKey], *, stores: Stores, cache: BlobCache
) -> Verification:
    """The verdict on one locked artifact: offline from the cache when the lock names a cached signature."""
    subject = Descriptor(entry.media_type, entry.digest, entry.size)
    ref = entry.reference or f"{entry.registry}/{entry.namespace}/{entry.name}@{entry.digest}"
    if entry.signature:
        offline = verify_artifact(
            CachedSignature(entry.name, cache, subject, entry.signature), subject, keys, reference=ref
        )
        if offline.ok:
            return offline
    settings = entry.settings(config)
    remote = CachingTarget(stores.target(settings, entry.name), cache, tags=stores.tags_seen(settings, entry.name))
    return verify_artifact(remote, subject, keys, reference=ref)


def verify_lock(
    config: WorkspaceConfig, lock: Lock, *, stores: Stores, cache: BlobCache, record: bool = True
) -> tuple[Lock, list[str], list[str]]:
    """Check every OCI artifact of ``lock`` against the policy (nothing is installed here).

    Returns the lock (a new one when ``record`` and a signature record changed), warnings, and the names of
    the extensions verified. Raises ValidationError naming every refused artifact when the policy requires
    signatures.
    """
    policy = config.verify
    if policy is None:
        return lock, [], []
    keys = load_keys(policy)
    refused, warnings, verified = [], [], []
    changed: dict[str, LockedExtension] = {}
    for name in lock.order:
        entry = lock.extensions[name]
        if entry.source != "oci":
            continue  # a local folder or git checkout carries no OCI signature
        result = verify_entry(config, entry, keys, stores=stores, cache=cache)
        if result.ok:
            verified.append(name)
            rec = _record(result)
            if record and rec != entry.signature:
                changed[name] = dataclasses.replace(entry, signature=rec)
        elif policy.require:
            refused.append(result.reason())
        else:
            warnings.append(f"signature not verified (require: false): {result.reason()}")
    if refused:
        listed = "\n  - ".join(refused)
        raise ValidationError(
            f"the signature policy ({policy.location}) refused {len(refused)} artifact(s); nothing was installed:"
            f"\n  - {listed}\nSign them with a trusted key (`provisioning oci sign REF --key KEY`) or list the key "
            "that signed them"
        )
    if changed:
        lock = dataclasses.replace(lock, extensions={**lock.extensions, **changed})
    return lock, warnings, verified


def verify_core(config: WorkspaceConfig, stores: Stores) -> str | None:
    """The core named by ``dependencies.core.source`` (an OCI reference), checked like any artifact when the
    workspace resolves; a warning when the policy does not require signatures, an error when it does."""
    from ..oci.reference import parse_reference
    from .core import core_settings

    policy, source = config.verify, config.core_source
    if policy is None or not source or not source.startswith("oci://"):
        return None
    ref = parse_reference(source, registry=config.registry.registry, namespace="")
    target = stores.storage(core_settings(config, ref.registry)).repository(ref.repository)
    desc = target.resolve(ref.digest or ref.tag or "")
    result = verify_artifact(target, desc, load_keys(policy), reference=source)
    if result.ok:
        return None
    if policy.require:
        raise ValidationError(
            f"the signature policy ({policy.location}) refused the core; nothing was installed: {result.reason()}"
        )
    return f"signature not verified (require: false): {result.reason()}"


def catalog_verifier(config: WorkspaceConfig) -> Verifier | None:
    """Under a signature policy, the check a catalog must pass before it may choose any digest.

    A catalog manifest verified once by a key is remembered by its digest (content-addressed,
    so the verdict cannot go stale), and an unchanged catalog costs no more than its HEAD.
    """
    policy = config.verify
    if policy is None:
        return None
    keys = load_keys(policy)
    trusted = {k.fingerprint for k in keys}

    def verify(target: ReadOnlyTarget, desc: Descriptor) -> None:
        if trusted & _verified_by(desc.digest):
            return
        result = verify_artifact(target, desc, keys, reference=f"{target.name}@{desc.digest}")
        if not result.ok:
            raise CatalogError(
                f"the catalog {target.name}@{desc.digest} is not signed by a key the signature policy "
                f"({policy.location}) trusts: {result.reason()}"
            )
        _remember_verified(desc.digest, {c.fingerprint for c in result.verified if c.fingerprint})

    return verify


def _verified_file(digest: str) -> Path:
    return paths.home() / "catalogs" / "verified" / f"{digest.partition(':')[2][:64]}.json"


def _verified_by(digest: str) -> set[str]:
    """Fingerprints of the keys that verified this catalog manifest on this machine before."""
    try:
        doc = json.loads(_verified_file(digest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    keys = doc.get("keys") if isinstance(doc, dict) else None
    return {k for k in keys if isinstance(k, str)} if isinstance(keys, list) else set()


def _remember_verified(digest: str, fingerprints: set[str]) -> None:
    file = _verified_file(digest)
    file.parent.mkdir(parents=True, exist_ok=True)
    known = _verified_by(digest) | fingerprints
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".verified-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"digest": digest, "keys": sorted(known)}, fh, sort_keys=True)
    os.replace(tmp, file)
