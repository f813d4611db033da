"""cosign 3's signatures: Sigstore bundles attached as OCI referrers of the signed manifest.

``cosign sign --key`` (cosign 3, or 2 with ``--new-bundle-format``) pushes a manifest whose ``subject`` is the
image and whose one layer is a Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``). With a key
the bundle holds a DSSE envelope: an in-toto statement naming the image digest, signed over DSSE's
pre-authentication encoding. We check that signature with the trusted keys and that the statement's subject is
this manifest; transparency-log entries in the bundle are not needed for a key-based check and are not
consulted (that part of Sigstore needs the network).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from ..errors import DigestMismatch, NotFound
from ..oci.attached import attached
from ..oci.descriptor import Descriptor
from ..oci.store import ReadOnlyTarget, fetch_bytes
from . import SigningError
from .check import SignatureCheck, verify_signature
from .keys import PublicKey

BUNDLE_TYPES = (
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle.v0.2+json",
)
MAX_BUNDLE = 1 << 20
MAX_BUNDLES = 32


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature is computed over."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def bundle_checks(target: ReadOnlyTarget, subject: Descriptor, keys: Sequence[PublicKey]) -> list[SignatureCheck]:
    """A ``SignatureCheck`` for every Sigstore bundle referrer of ``subject``."""
    found = [
        a for a in attached(target, subject) if a.kind == "referrer" and a.descriptor.artifact_type in BUNDLE_TYPES
    ]
    checks = []
    for item in found[:MAX_BUNDLES]:
        check = SignatureCheck("sigstore-bundle", item.descriptor.digest, "", item.descriptor.size)
        try:
            layer, bundle = _read_bundle(target, item.descriptor)
            check.layer = layer.digest
            _check_bundle(bundle, subject, keys, check)
        except SigningError as e:
            check.reason = str(e)
        checks.append(check)
    return checks


def _read_bundle(target: ReadOnlyTarget, desc: Descriptor) -> tuple[Descriptor, dict[str, Any]]:
    try:
        if desc.size > MAX_BUNDLE:
            raise SigningError(f"bundle manifest of {desc.size} bytes is too large")
        doc = json.loads(fetch_bytes(target, desc))
        layers = [Descriptor.from_dict(d) for d in doc.get("layers") or []][:4]
        layer = next(d for d in layers if d.media_type in BUNDLE_TYPES)
        if layer.size > MAX_BUNDLE:
            raise SigningError(f"bundle of {layer.size} bytes is too large")
        bundle = json.loads(fetch_bytes(target, layer))
        if not isinstance(bundle, dict):
            raise TypeError("not an object")
        return layer, bundle
    except StopIteration:
        raise SigningError("the bundle manifest has no Sigstore bundle layer") from None
    except DigestMismatch:
        raise SigningError("the bundle does not match its digest (tampered with in the store)") from None
    except NotFound:
        raise SigningError("the bundle blob is missing from the store") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SigningError(f"not a Sigstore bundle ({type(e).__name__})") from None


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise SigningError(f"the bundle's {what} is not base64") from None


def _check_bundle(
    bundle: dict[str, Any], subject: Descriptor, keys: Sequence[PublicKey], check: SignatureCheck
) -> None:
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        if isinstance(bundle.get("messageSignature"), dict):
            raise SigningError("a message-signature bundle signs a blob, not this manifest; not accepted")
        raise SigningError("the bundle holds no DSSE envelope")
    payload = _b64(envelope.get("payload", ""), "payload")
    payload_type = str(envelope.get("payloadType", ""))
    signatures = envelope.get("signatures") or []
    if not isinstance(signatures, list) or not signatures:
        raise SigningError("the bundle's envelope carries no signature")
    message = pae(payload_type, payload)
    for entry in signatures[:8]:
        sig = _b64(entry.get("sig", "") if isinstance(entry, dict) else "", "signature")
        key = verify_signature(sig, message, keys)
        if key is not None:
            break
    else:
        names = ", ".join(k.source for k in keys) or "no key"
        raise SigningError(f"does not verify with {names} (signed by another key, or the bundle was altered)")
    check.key, check.fingerprint = key.source, key.fingerprint
    try:
        statement = json.loads(payload)
        subjects = statement["subject"]
        digests = [s["digest"].get("sha256") for s in subjects if isinstance(s, dict)]
        names = [s.get("name", "") for s in subjects if isinstance(s, dict)]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SigningError(f"signed by {key.source}, but the envelope is not an in-toto statement") from None
    check.signed_reference = next((n for n in names if n), None)
    want = subject.digest.split(":", 1)[1]
    if want not in digests:
        shown = ", ".join(f"sha256:{d}" for d in digests if d) or "no digest"
        raise SigningError(f"signed by {key.source} but covers {shown}, not this artifact ({subject.digest})")
