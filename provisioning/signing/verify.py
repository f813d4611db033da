"""Check an artifact's cosign signatures against trusted public keys, saying which key verified which signature
or exactly why none did.

A signature counts only when (1) its payload blob matches the layer digest (the store verifies that on fetch),
(2) its base64 DER signature verifies over those bytes with one of the keys, and (3) the payload names this
manifest's digest. Everything read is bounded; every failure is a reason in the result, never an exception,
except a store that cannot be read at all.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import DigestMismatch, NotFound
from ..oci.descriptor import Descriptor
from ..oci.store import ReadOnlyTarget, fetch_bytes
from . import SigningError
from .bundle import bundle_checks
from .check import SignatureCheck, verify_signature
from .keys import PublicKey
from .manifest import SIGNATURE_ANNOTATION, SIMPLESIGNING_TYPE, SignatureManifest, read_signature_manifest
from .payload import MAX_PAYLOAD, parse_claim


@dataclass
class Verification:
    """All signatures found for one artifact, and whether a trusted key covers its digest."""

    reference: str
    digest: str
    keys: list[str]
    checks: list[SignatureCheck] = field(default_factory=list)
    problem: str | None = None  # why there was nothing to check (no signature, hostile signature manifest)

    @property
    def ok(self) -> bool:
        return any(c.ok for c in self.checks)

    @property
    def verified(self) -> list[SignatureCheck]:
        return [c for c in self.checks if c.ok]

    def reason(self) -> str:
        """One sentence: which key verified, or exactly why none did."""
        if self.ok:
            c = self.verified[0]
            return f"{self.reference} ({self.digest}) is signed by {c.key} ({c.fingerprint})"
        if self.problem:
            return f"{self.reference}: {self.problem}"
        why = "; ".join(f"signature {c.layer[:19]}…: {c.reason}" for c in self.checks[:5])
        more = f" (and {len(self.checks) - 5} more)" if len(self.checks) > 5 else ""
        return f"{self.reference} ({self.digest}) has no signature by a trusted key: {why}{more}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "verified": self.ok,
            "keys": self.keys,
            "problem": self.problem,
            "signatures": [asdict(c) | {"verified": c.ok} for c in self.checks],
        }


def _key_names(keys: Sequence[PublicKey]) -> str:
    return ", ".join(k.source for k in keys) or "no key"


def check_layer(
    target: ReadOnlyTarget, manifest: str, layer: Descriptor, subject: Descriptor, keys: Sequence[PublicKey]
) -> SignatureCheck:
    """The verdict on one simple-signing layer of a ``.sig`` manifest."""
    check = SignatureCheck("simple-signing", manifest, layer.digest)
    encoded = layer.annotations.get(SIGNATURE_ANNOTATION)
    if layer.media_type != SIMPLESIGNING_TYPE:
        check.reason = f"layer of type {layer.media_type[:80]!r} is not a simple-signing payload"
    elif encoded is None:
        check.reason = f"no {SIGNATURE_ANNOTATION} annotation on the layer"
    elif layer.size > MAX_PAYLOAD:
        check.reason = f"payload of {layer.size} bytes is too large for a signature payload"
    if check.reason:
        return check
    try:
        signature = base64.b64decode(encoded or "", validate=True)
    except (binascii.Error, ValueError):
        check.reason = f"the {SIGNATURE_ANNOTATION} annotation is not base64"
        return check
    try:
        payload = fetch_bytes(target, layer)
    except DigestMismatch:
        check.reason = "the payload does not match its digest (tampered with in the store)"
        return check
    except NotFound:
        check.reason = "the payload blob is missing from the store"
        return check
    key = verify_signature(signature, payload, keys)
    if key is None:
        check.reason = f"does not verify with {_key_names(keys)} (signed by another key, or the payload was altered)"
        return check
    check.key, check.fingerprint = key.source, key.fingerprint
    try:
        claim = parse_claim(payload)
    except SigningError as e:
        check.reason = str(e)
        return check
    check.signed_reference = claim.reference
    if claim.digest != subject.digest:
        check.reason = f"signed by {key.source} but covers {claim.digest}, not this artifact ({subject.digest})"
    return check


def verify_artifact(
    target: ReadOnlyTarget,
    subject: Descriptor,
    keys: Sequence[PublicKey],
    *,
    reference: str = "",
    current: SignatureManifest | None = None,
) -> Verification:
    """Every signature of ``subject`` in ``target`` (the ``.sig`` tag and cosign 3 bundles) checked against ``keys``.

    A hostile ``.sig`` manifest (too many layers, not JSON) is a ``problem``, not an exception.
    """
    result = Verification(reference or subject.digest, subject.digest, [k.source for k in keys])
    try:
        sig = current if current is not None else read_signature_manifest(target, subject.digest)
    except SigningError as e:
        result.problem = str(e)
        return result
    if sig.descriptor is not None:
        for layer in sig.layers:
            check = check_layer(target, sig.descriptor.digest, layer, subject, keys)
            check.manifest_size = sig.descriptor.size
            result.checks.append(check)
    try:
        result.checks.extend(bundle_checks(target, subject, keys))
    except SigningError as e:
        if not result.checks:
            result.problem = str(e)
    if not result.checks and result.problem is None:
        result.problem = (
            f"not signed: no {sig.tag} signature and no Sigstore bundle referrer for {subject.digest} "
            "(sign it with `provisioning oci sign REF --key KEY`)"
        )
    return result
