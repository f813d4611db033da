"""Two ``.sig`` manifests for one artifact, made one: what a copy does when the destination has signatures of
its own (its earlier signatures are kept, the source's added), instead of replacing or skipping them."""

from __future__ import annotations

from ..oci.attached import Attached
from ..oci.descriptor import Descriptor
from ..oci.store import ReadOnlyTarget, Target, fetch_bytes
from . import SigningError
from .manifest import MAX_SIGNATURES, SIGNATURE_ANNOTATION, read_signature_manifest
from .payload import MAX_PAYLOAD
from .sign import store_signatures


def _key(layer: Descriptor) -> tuple[str, str | None]:
    return layer.digest, layer.annotations.get(SIGNATURE_ANNOTATION)


def merge_signatures(src: ReadOnlyTarget, item: Attached, dst: Target, current: Descriptor) -> None:
    """``copy_attached``'s merge: add the source's signature layers the destination's ``.sig`` lacks."""
    if item.kind != "sig":
        return  # attestations and SBOMs: the destination's are kept as they are
    theirs = read_signature_manifest(dst, item.subject.digest)
    ours = read_signature_manifest(src, item.subject.digest)
    have = {_key(layer) for layer in theirs.layers}
    new = [layer for layer in ours.layers if _key(layer) not in have]
    if not new:
        return
    if len(theirs.layers) + len(new) > MAX_SIGNATURES:
        raise SigningError(
            f"{dst.name}:{theirs.tag}: merging would give more than {MAX_SIGNATURES} signatures; not merged"
        )
    payloads = {}
    for layer in new:
        if layer.size > MAX_PAYLOAD:
            raise SigningError(f"{src.name}:{ours.tag}: a signature payload of {layer.size} bytes; not copied")
        if not dst.exists(layer):
            payloads[layer.digest] = fetch_bytes(src, layer)
    theirs.layers = [*theirs.layers, *new]
    store_signatures(dst, theirs, payloads)
