"""``doit publish sign=KEY``: every artifact the run publishes, or finds unchanged, carries a signature by KEY.

An unchanged artifact already signed by the key costs one request more (the ``.sig`` manifest; our payload bytes
are fixed, so no payload download); one that is not signed gets signed. The key is loaded once per process,
before anything is published; a key that cannot be loaded stops publishing (nothing is uploaded unsigned).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from ..advice import message as error_text
from ..errors import ProvisioningError
from ..oci.descriptor import MANIFEST, Descriptor
from ..publish import FAILED, PublishResult
from ..signing.keys import PrivateKey, load_private_key
from ..signing.sign import identity_in, sign_artifact
from .context import PipelineContext


@cache
def _load(path: Path) -> PrivateKey | ProvisioningError:
    try:
        return load_private_key(path)
    except ProvisioningError as exc:
        return exc


def signing_key(ctx: PipelineContext) -> PrivateKey | None:
    """The run's key (None when the run does not sign); raises the key's error every time it is asked."""
    if ctx.signing_key is None:
        return None
    key = _load(ctx.signing_key)
    if isinstance(key, ProvisioningError):
        raise ProvisioningError(f"signing key (sign=…, signing.key): {key}")
    return key


def key_identity(ctx: PipelineContext) -> str | None:
    """What doit's ``config_changed`` tracks: the key file's content hash (no password needed)."""
    if ctx.signing_key is None:
        return None
    try:
        return hashlib.sha256(ctx.signing_key.read_bytes()).hexdigest()
    except OSError:
        return f"unreadable:{ctx.signing_key}"


def sign_result(ctx: PipelineContext, storage, result: PublishResult) -> None:
    """Sign what ``result`` says is at the destination; a failure turns the result into a failure."""
    if ctx.signing_key is None or not result.ok or not result.digest or not result.repository:
        return
    try:
        key = signing_key(ctx)
    except ProvisioningError as exc:  # published by the preflight before the key was asked for: say so
        result.status, result.message = FAILED, f"{result.reference} is published but not signed: {error_text(exc)}"
        return
    assert key is not None
    identity = identity_in(ctx.settings.registry, result.repository)
    try:
        signed = sign_artifact(
            storage.repository(result.repository), Descriptor(MANIFEST, result.digest, 0), key, identity
        )
    except ProvisioningError as exc:
        result.status = FAILED
        result.message = f"{result.reference} is published ({result.digest}) but not signed: {error_text(exc)}"
        return
    result.signature = {
        "status": signed.status,
        "tag": signed.tag,
        "manifest": signed.signature.digest,
        "key": str(ctx.signing_key),
        "fingerprint": key.public.fingerprint,
    }
