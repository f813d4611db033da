"""One signature's verdict, and the ECDSA check every signature kind shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from .keys import PublicKey


@dataclass
class SignatureCheck:
    """One signature and its verdict: ``key`` (the file) verified it, or ``reason`` says why not."""

    kind: str  # "simple-signing" (the .sig tag) or "sigstore-bundle" (a cosign 3 referrer)
    manifest: str  # digest of the manifest holding the signature
    layer: str  # digest of the signed payload (or bundle) blob
    manifest_size: int = 0
    key: str | None = None
    fingerprint: str | None = None
    signed_reference: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.key is not None and self.reason is None


def verify_signature(signature: bytes, payload: bytes, keys: Sequence[PublicKey]) -> PublicKey | None:
    """The first key whose ECDSA signature over ``payload`` this is."""
    for key in keys:
        try:
            key.key.verify(signature, payload, ec.ECDSA(key.hash))
        except InvalidSignature:
            continue
        return key
    return None
