"""Attach a cosign signature to an artifact: one more layer in its ``sha256-<hex>.sig`` manifest.

Blobs go up first and the manifest is pushed and tagged last, in one step where the store can, so a failure
leaves the previous signatures exactly as they were (never a half-written tag). Signing what this key already
signed is recognised from the ``.sig`` manifest alone (our payload bytes are fixed), so a re-run costs one
request and adds nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ProvisioningError
from ..oci.descriptor import Descriptor
from ..oci.reference import is_path_registry
from ..oci.store import ReferencePusher, Target
from . import SigningError
from .check import verify_signature
from .keys import PrivateKey, PublicKey
from .manifest import SIGNATURE_ANNOTATION, SIMPLESIGNING_TYPE, SignatureManifest, read_signature_manifest
from .payload import simple_signing_payload


@dataclass(frozen=True)
class Signed:
    """What ``sign_artifact`` did: ``signed`` now, or ``already`` signed by this key; the ``.sig`` manifest."""

    subject: str
    status: str  # "signed" or "already-signed"
    signature: Descriptor  # the .sig manifest as it is now
    layer: str  # digest of the payload layer carrying this key's signature
    tag: str


def docker_reference(registry: str, repository: str, *, embedded: bool = False) -> str:
    """The identity a payload names: ``HOST/REPO`` for a registry; the repository alone for the embedded store
    (a path on one machine is no identity, and a copy to a registry keeps the signature valid)."""
    return repository if embedded else f"{registry}/{repository}"


def identity_in(registry: str, repository: str) -> str:
    """``docker_reference`` for a configured registry: a host, a URL, or an embedded store's path."""
    return docker_reference(registry.split("://", 1)[-1], repository, embedded=is_path_registry(registry))


def registry_signer(key: PrivateKey, registry: str) -> Callable[[Target, Descriptor], Signed]:
    """Signs a manifest in any repository of ``registry`` with ``key``, naming it as ``identity_in`` does."""

    def sign(target: Target, subject: Descriptor) -> Signed:
        return sign_artifact(target, subject, key, identity_in(registry, target.name))

    return sign


def signed_by(sig: SignatureManifest, key: PublicKey, payload: bytes) -> Descriptor | None:
    """The layer of ``sig`` whose content is ``payload`` and whose signature ``key`` verifies, if any."""
    want = Descriptor.of(SIMPLESIGNING_TYPE, payload).digest
    for layer in sig.layers:
        if layer.digest != want:
            continue
        try:
            signature = base64.b64decode(layer.annotations.get(SIGNATURE_ANNOTATION, ""), validate=True)
        except ValueError:
            continue
        if verify_signature(signature, payload, [key]) is not None:
            return layer
    return None


def sign_artifact(
    target: Target, subject: Descriptor, key: PrivateKey, reference: str, *, current: SignatureManifest | None = None
) -> Signed:
    """Sign the manifest ``subject`` in ``target`` with ``key``, naming it ``reference`` in the payload.

    ``current`` is the ``.sig`` manifest when the caller read it already.
    """
    sig = current if current is not None else read_signature_manifest(target, subject.digest)
    payload = simple_signing_payload(reference, subject.digest)
    found = signed_by(sig, key.public, payload)
    if found is not None and sig.descriptor is not None:
        return Signed(subject.digest, "already-signed", sig.descriptor, found.digest, sig.tag)
    signature = base64.b64encode(key.sign(payload)).decode()
    layer = Descriptor.of(SIMPLESIGNING_TYPE, payload, annotations={SIGNATURE_ANNOTATION: signature})
    sig.layers = [*sig.layers, layer]
    manifest = store_signatures(target, sig, {layer.digest: payload})
    return Signed(subject.digest, "signed", manifest, layer.digest, sig.tag)


def store_signatures(target: Target, sig: SignatureManifest, payloads: dict[str, bytes]) -> Descriptor:
    """Push ``sig`` (its new payload blobs, config, then the manifest and its tag in one step where the store
    can); the tag moves last, so a refusal leaves the earlier signatures exactly as they were."""
    manifest, data, config, config_bytes = sig.build()
    where = f"{getattr(target, 'name', target)}:{sig.tag}"
    try:
        for layer in sig.layers:
            if layer.digest in payloads:
                target.push(layer, [payloads[layer.digest]])
        target.push(config, [config_bytes])
        if isinstance(target, ReferencePusher):
            target.push_reference(manifest, [data], sig.tag)
        else:
            target.push(manifest, [data])
            target.tag(manifest, sig.tag)
    except ProvisioningError as e:
        raise SigningError(
            f"{where}: the store refused the signature ({e}); the artifact is not signed, its earlier signatures "
            "are unchanged. The registry must accept the tag sha256-<hex>.sig and the simple-signing media types"
        ) from e
    except OSError as e:
        raise SigningError(f"{where}: writing the signature failed ({e}); the artifact is not signed") from e
    return manifest
