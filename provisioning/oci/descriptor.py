"""OCI descriptors and media types: the nouns every store speaks."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (MANIFEST, INDEX, DOCKER_MANIFEST, DOCKER_LIST)

ARTIFACT_TYPE = "application/vnd.provisioning.extension.v1"
CONFIG_TYPE = "application/vnd.provisioning.extension.config.v1+json"
LAYER_TYPE = "application/vnd.provisioning.extension.content.v1.tar+gzip"
CORE_ARTIFACT_TYPE = "application/vnd.provisioning.core.v1"
CORE_CONFIG_TYPE = "application/vnd.provisioning.core.config.v1+json"
EMPTY_CONFIG_TYPE = "application/vnd.oci.empty.v1+json"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """What a store needs to find and verify one piece of content."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    artifact_type: str | None = field(default=None, compare=False, hash=False)

    @classmethod
    def of(cls, media_type: str, data: bytes, **kwargs: Any) -> Descriptor:
        return cls(media_type, sha256_digest(data), len(data), **kwargs)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Descriptor:
        return cls(
            media_type=d.get("mediaType", ""),
            digest=d["digest"],
            size=int(d["size"]),
            annotations=dict(d.get("annotations") or {}),
            artifact_type=d.get("artifactType"),
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        if self.annotations:
            d["annotations"] = dict(sorted(self.annotations.items()))
        return d

    @property
    def is_manifest(self) -> bool:
        return self.media_type in MANIFEST_TYPES


def canonical_json(obj: Any) -> bytes:
    """Stable JSON bytes: sorted keys, no whitespace, UTF-8. Digests depend on it."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def successors(manifest_desc: Descriptor, content: bytes) -> list[Descriptor]:
    """The children of a manifest or index (config and layers, or manifests)."""
    if not manifest_desc.is_manifest:
        return []
    doc = json.loads(content)
    children: list[Descriptor] = []
    if "config" in doc:
        children.append(Descriptor.from_dict(doc["config"]))
    for key in ("layers", "manifests", "blobs"):
        children.extend(Descriptor.from_dict(d) for d in doc.get(key) or [])
    return children
