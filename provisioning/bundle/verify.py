"""``bundle verify``: check a bundle offline, and stop at the first bad part, named.

Checked: ``bundle.json`` (its checksum, every artifact it lists present under its tag and
digest), every manifest each layout lists (size and digest) and every child of each (config,
layers, index entries: size and digest, recursively), and with keys every extension's signature.
Nothing is written; no network is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DigestMismatch, NotFound, ProvisioningError
from ..oci.descriptor import Descriptor, successors
from ..oci.layout import LayoutStorage, LayoutTarget, read_layout
from ..oci.store import Verifier
from .manifest import Bundle, BundleError, read_bundle

MAX_MANIFEST = 4 << 20


@dataclass
class VerifyReport:
    root: Path
    bundle: Bundle
    repositories: int = 0
    manifests: int = 0
    blobs: int = 0
    bytes: int = 0
    signatures: list[dict[str, Any]] = field(default_factory=list)


def verify_bundle(root: Path, *, keys: list[Path] | None = None) -> VerifyReport:
    """Verify the bundle folder ``root``; raises BundleError naming the first bad part."""
    bundle = read_bundle(root)
    store = LayoutStorage(root)
    report = VerifyReport(root, bundle)
    seen: set[str] = set()
    listed: dict[str, set[str]] = {}  # what each repository's index.json lists (what a push or a registry sees)
    for repo in bundle.repositories():
        target = store.repository(repo)
        if not (target.path / "index.json").is_file():
            raise BundleError(f"{root}: repository {repo} listed in bundle.json is missing from the bundle")
        try:
            entries = read_layout(target.path)["manifests"]
        except ProvisioningError as e:
            raise BundleError(f"{root}: {e}") from None
        report.repositories += 1
        listed[repo] = {str(e.get("digest")) for e in entries}
        for entry in entries:
            _check(target, Descriptor.from_dict(entry), repo, report, seen)
    for a in bundle.artifacts:
        target = store.repository(a.repository)
        if a.tag is not None:
            try:
                found = target.resolve(a.tag)
            except NotFound:
                raise BundleError(
                    f"{root}: {a.repository}:{a.tag} is in bundle.json but not tagged in the bundle"
                ) from None
            if found.digest != a.digest:
                raise BundleError(
                    f"{root}: {a.repository}:{a.tag} is {found.digest} in the bundle but {a.digest} in bundle.json"
                )
        if a.digest not in listed.get(a.repository, set()):
            raise BundleError(
                f"{root}: {a.repository}@{a.digest} ({a.kind}) is in bundle.json but its repository's index.json "
                "does not list it, so `bundle push` and registries serving the folder would leave it out; run "
                "`provisioning bundle create` into the bundle again to repair it"
            )
        desc = Descriptor(a.media_type, a.digest, a.size)
        if f"{a.repository}@{a.digest}" not in seen:
            _check(target, desc, a.repository, report, seen)
    if keys:
        report.signatures = _signatures(store, bundle, keys)
    return report


def _check(target: LayoutTarget, desc: Descriptor, repo: str, report: VerifyReport, seen: set[str]) -> None:
    key = f"{repo}@{desc.digest}"
    if key in seen:
        return
    path = target.blob_path(desc.digest)
    what = f"{'manifest' if desc.is_manifest else 'blob'} {desc.digest} of {repo}"
    if desc.is_manifest and desc.size > MAX_MANIFEST:
        raise BundleError(f"{target.root}: {what} claims {desc.size} bytes, over the manifest limit")
    v = Verifier(desc)
    data = bytearray()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                v.update(chunk)
                if desc.is_manifest:
                    data += chunk
                if v.size > desc.size:
                    break
        v.check()
    except FileNotFoundError:
        raise BundleError(f"{target.root}: {what} is missing ({path.relative_to(target.root)})") from None
    except DigestMismatch:
        raise BundleError(
            f"{target.root}: {what} is damaged: expected {desc.size} bytes with that digest, the file has "
            f"{path.stat().st_size} bytes and other content (truncated or altered); take the bundle from the "
            "original medium again, or re-run `provisioning bundle create` into it"
        ) from None
    seen.add(key)
    report.bytes += desc.size
    if not desc.is_manifest:
        report.blobs += 1
        return
    report.manifests += 1
    try:
        children = successors(desc, bytes(data))
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise BundleError(f"{target.root}: {what} is not a valid manifest ({e})") from None
    for child in children:
        _check(target, child, repo, report, seen)


def _signatures(store: LayoutStorage, bundle: Bundle, keys: list[Path]) -> list[dict[str, Any]]:
    """Every extension and core artifact must carry a signature one of ``keys`` verifies."""
    from ..signing.keys import load_public_key
    from ..signing.verify import verify_artifact

    public = [load_public_key(k) for k in keys]
    out = []
    for a in bundle.artifacts:
        if a.kind not in ("extension", "core"):
            continue
        target = store.repository(a.repository)
        ref = f"{a.repository}:{a.tag}" if a.tag else f"{a.repository}@{a.digest}"
        result = verify_artifact(target, Descriptor(a.media_type, a.digest, a.size), public, reference=ref)
        if not result.ok:
            raise BundleError(f"{store.root}: the signature check failed: {result.reason()}")
        out.append({"repository": a.repository, "tag": a.tag, "digest": a.digest, "key": result.verified[0].key})
    return out
