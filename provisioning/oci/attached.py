"""What is attached to a manifest (signatures, attestations, SBOMs, referrers), found and carried along.

Two conventions attach artifacts to a manifest ``sha256:<hex>`` in the same repository:

* cosign's **tag schema**: a manifest tagged ``sha256-<hex>.sig`` (signatures), ``.att`` (attestations) or
  ``.sbom``; it has no ``subject``, so only its tag ties it to the manifest;
* OCI 1.1 **referrers**: manifests whose ``subject`` is the manifest (cosign 3's Sigstore bundles, oras attach,
  notation), listed by the referrers API where the store has it (``referrers(desc)``), else by the fallback
  index tagged ``sha256-<hex>``.

``attached()`` finds both in one tag listing plus (for referrers) one query; ``copy_attached()`` copies them next
to an already-copied manifest, so that ``oci copy``, bundles and mirrors keep an artifact's signatures. A store
without a referrers API gets the fallback index written, so the referrers are found there again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import NotFound, ProvisioningError
from .copy import MAX_MANIFEST, CopyResult, copy_graph
from .descriptor import INDEX, Descriptor
from .store import ReadOnlyTarget, ReferrerLister, Target, fetch_bytes

TAG_SUFFIXES = ("sig", "att", "sbom")
"""cosign's tag-schema suffixes: ``sha256-<hex>.sig`` and friends."""

MAX_ATTACHED = 256
"""More attached artifacts than this for one manifest is refused as hostile, not walked."""

_HEX = re.compile(r"^sha256:([0-9a-f]{64})$")


class AttachedError(ProvisioningError):
    """What is attached to a manifest cannot be listed or copied."""


@dataclass(frozen=True)
class Attached:
    """One artifact attached to ``subject``: by a cosign tag (``tag`` set) or as a referrer (``tag`` None)."""

    subject: Descriptor
    descriptor: Descriptor
    kind: str  # "sig", "att", "sbom" (tag schema) or "referrer"
    tag: str | None = None


def referrers_tag(digest: str) -> str:
    """The fallback referrers index tag of a manifest: ``sha256-<hex>``."""
    m = _HEX.match(digest)
    if not m:
        raise AttachedError(f"cannot attach to {digest!r}: only sha256:<64 hex digits> digests are supported")
    return "sha256-" + m.group(1)


def attached_tag(digest: str, suffix: str = "sig") -> str:
    """cosign's tag for what is attached to ``digest``: ``sha256-<hex>.sig`` (``.att``, ``.sbom``)."""
    if suffix not in TAG_SUFFIXES:
        raise ValueError(f"unknown attachment suffix {suffix!r}; expected one of {', '.join(TAG_SUFFIXES)}")
    return f"{referrers_tag(digest)}.{suffix}"


def attached(target: ReadOnlyTarget, subject: Descriptor, *, tags: list[str] | None = None) -> list[Attached]:
    """Everything attached to ``subject`` in ``target``: cosign tags first (sig, att, sbom), then referrers.

    ``tags`` is the repository's tag list when the caller has it already (saves a request).
    """
    base = referrers_tag(subject.digest)
    present = set(target.tags() if tags is None else tags)
    found: list[Attached] = []
    for suffix in TAG_SUFFIXES:
        tag = f"{base}.{suffix}"
        if tag in present:
            try:
                found.append(Attached(subject, target.resolve(tag), suffix, tag))
            except NotFound:
                continue  # removed between the listing and now
    for desc in _referrers(target, subject, base in present):
        found.append(Attached(subject, desc, "referrer"))
    if len(found) > MAX_ATTACHED:
        raise AttachedError(
            f"{getattr(target, 'name', target)}@{subject.digest} has {len(found)} attached artifacts, more than "
            f"the {MAX_ATTACHED} accepted; refusing to walk them"
        )
    return found


def _referrers(target: ReadOnlyTarget, subject: Descriptor, has_index_tag: bool) -> list[Descriptor]:
    if isinstance(target, ReferrerLister):
        return [d for d in target.referrers(subject) if d.is_manifest]
    if not has_index_tag:
        return []
    return _read_index(target, referrers_tag(subject.digest))


def _read_index(target: ReadOnlyTarget, tag: str) -> list[Descriptor]:
    """The manifests listed in a fallback referrers index (empty when it is absent or not an index)."""
    try:
        desc = target.resolve(tag)
    except NotFound:
        return []
    if desc.size > MAX_MANIFEST:
        raise AttachedError(f"{getattr(target, 'name', target)}:{tag} is {desc.size} bytes, over the manifest limit")
    try:
        doc = json.loads(fetch_bytes(target, desc))
    except ValueError:
        return []
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(manifests, list):
        return []
    out = []
    for m in manifests[: MAX_ATTACHED + 1]:
        try:
            d = Descriptor.from_dict(m)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if d.is_manifest and _HEX.match(d.digest):
            out.append(d)
    return out


Merge = Callable[[ReadOnlyTarget, Attached, Target, Descriptor], None]
"""``merge(src, item, dst, current)``: the destination already has ``item.tag`` on another manifest
(``current``); combine the two there (signatures: the union of both signature layers)."""


def copy_attached(
    src: ReadOnlyTarget,
    dst: Target,
    subject: Descriptor,
    *,
    merge: Merge | None = None,
    concurrency: int = 4,
    depth: int = 2,
) -> list[Attached]:
    """Copy what is attached to ``subject`` (already in ``dst``) from ``src`` to ``dst``; returns what was found.

    A cosign tag the destination has on other content is handed to ``merge``; without one it is left as it is
    there (never silently replaced, so the destination's own signatures survive). Referrers of referrers are
    followed ``depth`` levels deep.
    """
    items = attached(src, subject)
    if not items:
        return []
    dst_tags = None
    for item in items:
        if item.tag is not None:
            if dst_tags is None:
                dst_tags = set(dst.tags())
            current = dst.resolve(item.tag) if item.tag in dst_tags else None
            if current is not None and current.digest != item.descriptor.digest:
                if merge is not None:
                    merge(src, item, dst, current)
                continue
            copy_graph(src, dst, item.descriptor, tag=item.tag, concurrency=concurrency)
        else:
            result: CopyResult = copy_graph(src, dst, item.descriptor, concurrency=concurrency)
            if not result.up_to_date and not isinstance(dst, ReferrerLister):
                _index_referrer(dst, subject, item.descriptor)
        if depth > 1:
            copy_attached(src, dst, item.descriptor, merge=merge, concurrency=concurrency, depth=depth - 1)
    return items


def _index_referrer(dst: Target, subject: Descriptor, referrer: Descriptor) -> None:
    """Add ``referrer`` to the destination's fallback index ``sha256-<hex>`` (a store with no referrers API)."""
    tag = referrers_tag(subject.digest)
    current = _read_index(dst, tag)
    if any(d.digest == referrer.digest for d in current):
        return
    entries: list[dict[str, Any]] = [d.to_dict() for d in current] + [referrer.to_dict()]
    data = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}, separators=(",", ":")).encode()
    index = Descriptor.of(INDEX, data)
    dst.push(index, [data])
    dst.tag(index, tag)
