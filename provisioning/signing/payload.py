"""cosign's "simple signing" payload: what a signature says it covers.

``{"critical": {"identity": {"docker-reference": "HOST/REPO"}, "image": {"docker-manifest-digest": "sha256:…"},
"type": "cosign container image signature"}, "optional": null}``. The signature is over these exact bytes, so
the bytes we write are fixed for a given reference and digest (a re-sign can be recognised without a download),
and the bytes we read are parsed strictly: a payload that is not this shape names no digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..oci.reference import DIGEST
from . import SigningError

SIGNATURE_TYPE = "cosign container image signature"
MAX_PAYLOAD = 64 << 10  # cosign's payloads are a few hundred bytes


@dataclass(frozen=True)
class Claim:
    """What a payload claims: the manifest digest it covers and the reference it was signed as."""

    digest: str
    reference: str
    optional: dict[str, Any] | None = None


def simple_signing_payload(docker_reference: str, digest: str, optional: dict[str, Any] | None = None) -> bytes:
    """The payload bytes for a manifest digest, as cosign lays them out (key order included)."""
    if not DIGEST.match(digest):
        raise SigningError(f"cannot sign {digest!r}: only sha256 manifest digests are signed")
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": optional,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def parse_claim(payload: bytes) -> Claim:
    """The claim of a payload; SigningError when it is not a cosign simple-signing payload."""
    if len(payload) > MAX_PAYLOAD:
        raise SigningError(f"the signed payload is {len(payload)} bytes, too large for a simple-signing payload")
    try:
        doc = json.loads(payload)
        critical = doc["critical"]
        digest = critical["image"]["docker-manifest-digest"]
        kind = critical["type"]
        reference = critical.get("identity", {}).get("docker-reference", "")
        optional = doc.get("optional")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SigningError("the signed payload is not a cosign simple-signing payload") from None
    if kind != SIGNATURE_TYPE:
        raise SigningError(f"the signed payload has type {str(kind)[:80]!r}, not {SIGNATURE_TYPE!r}")
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise SigningError("the signed payload names no valid sha256 manifest digest")
    return Claim(digest, str(reference), optional if isinstance(optional, dict) else None)
