"""OCI descriptors and media types: the nouns every store speaks."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProvisioningError

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


_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")  # the OCI digest grammar

MiB = 1 << 20
MAX_MANIFEST_SIZE = 4 * MiB  # what distribution accepts; more is not a manifest
MAX_JSON_BLOB_SIZE = 4 * MiB  # configs, signatures, catalogs: JSON documents a tool reads whole
MAX_EXTENSION_LAYER_SIZE = 512 * MiB  # as the extraction bound: a layer larger cannot be installed


class InvalidContent(ProvisioningError):
    """A descriptor, manifest or index from a store is malformed (wrong types, missing fields, too large)."""


def size_limit(media_type: str) -> int | None:
    """The most bytes content of ``media_type`` may have (None: no bound, e.g. a container image layer)."""
    if media_type in MANIFEST_TYPES:
        return MAX_MANIFEST_SIZE
    if media_type.endswith("+json") or media_type == "application/json":
        return MAX_JSON_BLOB_SIZE
    if media_type == LAYER_TYPE:
        return MAX_EXTENSION_LAYER_SIZE
    return None


def check_size(desc: Descriptor, source: str) -> None:
    """Refuse a descriptor that claims more than its media type may hold, before anything is downloaded."""
    limit = size_limit(desc.media_type)
    if limit is not None and desc.size > limit:
        raise InvalidContent(
            f"{source}: {desc.digest} claims {desc.size} bytes for {desc.media_type}, more than the {limit} such "
            "content may have; refused before downloading"
        )


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
    def from_dict(cls, d: Any) -> Descriptor:
        """A descriptor from JSON a store sent; any wrong type is ``InvalidContent`` naming the field."""
        if not isinstance(d, dict):
            raise InvalidContent(f"a descriptor must be a JSON object, not {type(d).__name__}")
        digest, size = d.get("digest"), d.get("size")
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise InvalidContent(f"a descriptor has no valid 'digest' (found {str(digest)[:80]!r})")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidContent(f"descriptor {digest}: 'size' must be a non-negative integer, not {size!r:.80}")
        media_type = d.get("mediaType", "")
        artifact_type = d.get("artifactType")
        if not isinstance(media_type, str) or not (artifact_type is None or isinstance(artifact_type, str)):
            raise InvalidContent(f"descriptor {digest}: 'mediaType' and 'artifactType' must be strings")
        annotations = d.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise InvalidContent(f"descriptor {digest}: 'annotations' must map strings to strings")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=dict(annotations),
            artifact_type=artifact_type,
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


def parse_manifest(content: bytes) -> dict[str, Any]:
    """A manifest or index document: a JSON object whose ``config``, ``layers`` and ``manifests`` have the
    right shapes (``InvalidContent`` otherwise)."""
    try:
        doc = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise InvalidContent(f"the manifest is not JSON ({str(exc)[:120]})") from None
    if not isinstance(doc, dict):
        raise InvalidContent(f"the manifest must be a JSON object, not {type(doc).__name__}")
    if "config" in doc and not isinstance(doc["config"], dict):
        raise InvalidContent("the manifest's 'config' must be a descriptor object")
    for key in ("layers", "manifests", "blobs"):
        if doc.get(key) is not None and not isinstance(doc[key], list):
            raise InvalidContent(f"the manifest's {key!r} must be a list of descriptors")
    if doc.get("annotations") is not None and not isinstance(doc["annotations"], dict):
        raise InvalidContent("the manifest's 'annotations' must be an object")
    return doc


# Layers that hold an extension's files when the artifact was not built by us (oras push, other tools):
# a tar archive, compressed or not. Ours carry LAYER_TYPE exactly.
TAR_LAYER_SUFFIXES = ("tar+gzip", ".tar.gzip", "tar.gz", ".tar")


def content_layer(doc: Any) -> Descriptor:
    """The one layer of an extension artifact that holds its files (for pull and install alike).

    Our own layer type first; else the only tar layer. ``ValueError`` says what was found instead.
    """
    if not isinstance(doc, dict):
        raise ValueError("the manifest is not a JSON object")
    if doc.get("mediaType") == INDEX or "manifests" in doc:
        raise ValueError("it is an index of several manifests, not an extension artifact")
    try:
        layers = [Descriptor.from_dict(d) for d in doc.get("layers") or []]
    except (KeyError, TypeError, ValueError, AttributeError, InvalidContent) as exc:
        raise ValueError(f"its layers are malformed ({exc.__class__.__name__}: {exc})") from None
    ours = [d for d in layers if d.media_type == LAYER_TYPE]
    tars = ours or [d for d in layers if d.media_type.endswith(TAR_LAYER_SUFFIXES)]
    if len(tars) != 1:
        found = ", ".join(d.media_type for d in layers) or "no layers"
        raise ValueError(f"expected one {LAYER_TYPE} layer, found {found}")
    return tars[0]


def successors(manifest_desc: Descriptor, content: bytes) -> list[Descriptor]:
    """The children of a manifest or index (config and layers, or manifests)."""
    if not manifest_desc.is_manifest:
        return []
    doc = parse_manifest(content)
    children: list[Descriptor] = []
    if "config" in doc:
        children.append(Descriptor.from_dict(doc["config"]))
    for key in ("layers", "manifests", "blobs"):
        children.extend(Descriptor.from_dict(d) for d in doc.get(key) or [])
    return children
