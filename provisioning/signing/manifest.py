"""The signature manifest cosign tags ``sha256-<hex>.sig``: one simple-signing layer per signature.

Each layer's content is a payload (see ``payload``) and its annotation ``dev.cosignproject.cosign/signature`` the
base64 signature over it. The config is an OCI image config whose ``rootfs.diff_ids`` list the layers, as cosign
(go-containerregistry) writes it, so cosign can append its own signature to ours and we to its. Reading is
bounded: a manifest with more layers than ``MAX_SIGNATURES`` is refused as hostile rather than walked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFound
from ..oci.attached import attached_tag
from ..oci.descriptor import MANIFEST, Descriptor
from ..oci.store import ReadOnlyTarget, fetch_manifest
from . import SigningError

SIMPLESIGNING_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
IMAGE_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MAX_SIGNATURES = 100
MAX_SIGNATURE_MANIFEST = 1 << 20
_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class SignatureManifest:
    """The ``.sig`` manifest of one artifact (``descriptor`` None while it does not exist yet)."""

    tag: str
    descriptor: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)

    def build(self) -> tuple[Descriptor, bytes, Descriptor, bytes]:
        """(manifest, its bytes, config, its bytes) for the current layers."""
        config = {
            "architecture": "",
            "created": _ZERO_TIME,
            "history": [{"created": _ZERO_TIME} for _ in self.layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [d.digest for d in self.layers]},
            "config": {},
        }
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_desc = Descriptor.of(IMAGE_CONFIG_TYPE, config_bytes)
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config_desc.to_dict(),
            "layers": [d.to_dict() for d in self.layers],
        }
        if self.annotations:
            doc["annotations"] = self.annotations
        data = json.dumps(doc, separators=(",", ":")).encode()
        return Descriptor.of(MANIFEST, data), data, config_desc, config_bytes


def read_signature_manifest(target: ReadOnlyTarget, subject_digest: str) -> SignatureManifest:
    """The ``.sig`` manifest for ``subject_digest`` (empty when there is none); hostile shapes are refused."""
    tag = attached_tag(subject_digest, "sig")
    where = f"{getattr(target, 'name', target)}:{tag}"
    try:
        desc, data = fetch_manifest(target, tag)
    except NotFound:
        return SignatureManifest(tag)
    if len(data) > MAX_SIGNATURE_MANIFEST:
        raise SigningError(f"{where}: the signature manifest is {len(data)} bytes; refused as hostile")
    try:
        doc = json.loads(data)
        raw_layers = doc.get("layers") or []
        if not isinstance(raw_layers, list):
            raise TypeError("layers is not a list")
        if len(raw_layers) > MAX_SIGNATURES:
            raise SigningError(
                f"{where}: the signature manifest has {len(raw_layers)} layers, more than the {MAX_SIGNATURES} "
                "signatures accepted; refused as hostile (delete the tag and sign again)"
            )
        layers = [Descriptor.from_dict(d) for d in raw_layers]
        annotations = {str(k): str(v) for k, v in (doc.get("annotations") or {}).items()}
    except SigningError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SigningError(f"{where}: not a signature manifest ({type(e).__name__}: {e})") from None
    return SignatureManifest(tag, desc, layers, annotations)
