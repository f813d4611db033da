"""Sample signatures and referrers for copy, bundle and mirror tests (cosign's shapes, no key needed)."""

from __future__ import annotations

import base64

from provisioning.oci.descriptor import EMPTY_CONFIG_TYPE, MANIFEST, Descriptor, canonical_json
from provisioning.oci.store import Target

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SBOM_TYPE = "application/vnd.example.sbom.v1+json"
EMPTY = b"{}"


def _manifest(layer_type: str, layer: bytes, *, annotations: dict | None = None, **extra: object) -> tuple:
    config = Descriptor.of(EMPTY_CONFIG_TYPE, EMPTY)
    blob = Descriptor.of(layer_type, layer, annotations=annotations or {})
    doc = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config.to_dict(), "layers": [blob.to_dict()], **extra}
    data = canonical_json(doc)
    return (config, EMPTY), (blob, layer), data


def push_signature(target: Target, subject: Descriptor, note: str = "") -> Descriptor:
    """A cosign-shaped signature manifest tagged ``sha256-<hex>.sig`` (the signature itself is not checked here)."""
    payload = canonical_json(
        {
            "critical": {
                "identity": {"docker-reference": target.name},
                "image": {"docker-manifest-digest": subject.digest},
                "type": "cosign container image signature",
            },
            "optional": {"note": note} if note else None,
        }
    )
    sig = base64.b64encode(b"not-a-real-signature" + note.encode()).decode()
    (c, cb), (lay, lb), data = _manifest(
        SIMPLESIGNING, payload, annotations={"dev.cosignproject.cosign/signature": sig}
    )
    desc = Descriptor.of(MANIFEST, data)
    for d, b in ((c, cb), (lay, lb), (desc, data)):
        target.push(d, [b])
    target.tag(desc, "sha256-" + subject.digest.split(":", 1)[1] + ".sig")
    return desc


def push_referrer(target: Target, subject: Descriptor, text: bytes = b"sbom") -> Descriptor:
    """An untagged manifest whose ``subject`` is ``subject`` (what the referrers API lists)."""
    (c, cb), (lay, lb), data = _manifest(SBOM_TYPE, text, artifactType=SBOM_TYPE, subject=subject.to_dict())
    desc = Descriptor.of(MANIFEST, data, artifact_type=SBOM_TYPE)
    for d, b in ((c, cb), (lay, lb), (desc, data)):
        target.push(d, [b])
    return desc
