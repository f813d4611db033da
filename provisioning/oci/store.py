"""The store interface, small as oras-go's: every place that holds artifacts speaks it.

A ``Target`` is one repository (``provisioning-extensions/kubernetes``) in some store: a
remote registry, an OCI image layout on disk, or memory. A ``Storage`` hands out targets
by repository name. Optional powers are typed protocols below, checked with ``isinstance``
where they are used (``isinstance(dst, Mounter)``), never forced on every store and never
looked up by name: ``Mounter`` (cross-repository blob mount on one registry),
``ReferencePusher`` (push a manifest and tag it in one step), ``ReferenceFetcher`` (resolve
and fetch a manifest in one step), ``Deleter``, ``ReferrerLister`` (manifests whose subject is
a given one) and, for a whole store, ``Cataloger`` (list repositories). ``BlindPusher`` is a
target whose ``push`` checks for a blob itself and can be told it is new.

Content moves as iterables of byte chunks so large blobs are never whole in memory.
A store verifies size and digest of everything it is given (``push``) and of everything
it hands out (``fetch`` raises ``DigestMismatch`` before the last chunk is yielded), so
callers write to a temporary file and rename only once iteration completed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

from .descriptor import Descriptor


@runtime_checkable
class ReadOnlyTarget(Protocol):
    name: str

    def exists(self, desc: Descriptor) -> bool:
        """True when the blob or manifest is present."""

    def fetch(self, desc: Descriptor) -> Iterator[bytes]:
        """Stream content, verified against ``desc`` (NotFound, DigestMismatch)."""

    def resolve(self, reference: str) -> Descriptor:
        """Tag or ``sha256:`` digest to the manifest's descriptor (NotFound)."""

    def tags(self) -> list[str]:
        """All tags, sorted; empty when the repository does not exist."""


@runtime_checkable
class Target(ReadOnlyTarget, Protocol):
    def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        """Store content under ``desc`` after checking size and digest. Pushing what exists is fine."""

    def tag(self, desc: Descriptor, tag: str) -> None:
        """Point ``tag`` at an existing manifest."""


class Storage(Protocol):
    def repository(self, name: str) -> Target:
        """The target for one repository (created on first push)."""


# --------------------------------------------------------------------------- optional powers


@runtime_checkable
class Mounter(Protocol):
    """Links a blob from another repository of the same registry (``registry_host``) without copying it."""

    registry_host: str

    def mount(self, desc: Descriptor, from_repository: str) -> bool:
        """True when the blob is now here; False means "copy the bytes instead"."""


@runtime_checkable
class ReferencePusher(Protocol):
    def push_reference(self, desc: Descriptor, content: Iterable[bytes], tag: str) -> None:
        """Push a manifest and point ``tag`` at it in one step."""


@runtime_checkable
class ReferenceFetcher(Protocol):
    def fetch_reference(self, reference: str) -> tuple[Descriptor, bytes]:
        """Resolve a tag or digest and fetch the manifest in one step."""


@runtime_checkable
class BlindPusher(Protocol):
    def expect_absent(self, desc: Descriptor) -> None:
        """The caller knows the blob is new: the next ``push`` of it skips its own existence check."""


@runtime_checkable
class Deleter(Protocol):
    def delete(self, desc: Descriptor) -> None:
        """Delete a manifest (its tags go with it) or a blob (NotFound when absent)."""


@runtime_checkable
class ReferrerLister(Protocol):
    def referrers(self, desc: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``desc`` (optionally of one artifact type)."""


@runtime_checkable
class ReferrersApiAware(Protocol):
    """A target that knows whether its registry has the referrers API (None: not asked yet)."""

    @property
    def referrers_api(self) -> bool | None: ...


@runtime_checkable
class Cataloger(Protocol):
    def catalog(self) -> list[str]:
        """All repository names of the store, sorted."""


def fetch_bytes(target: ReadOnlyTarget, desc: Descriptor) -> bytes:
    """Fetch small content (manifests, configs) whole."""
    return b"".join(target.fetch(desc))


class Verifier:
    """Checks a stream's size and sha256 digest as it passes; ``check()`` at the end."""

    def __init__(self, desc: Descriptor) -> None:
        import hashlib

        from ..errors import DigestMismatch

        algo, _, self.expected = desc.digest.partition(":")
        if algo != "sha256" or len(self.expected) != 64:
            raise DigestMismatch(f"unsupported or malformed digest {desc.digest!r} (only sha256 is supported)")
        self.desc = desc
        self.size = 0
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._hash.update(chunk)

    def check(self) -> None:
        from ..errors import DigestMismatch

        got = self._hash.hexdigest()
        if self.size != self.desc.size or got != self.expected:
            raise DigestMismatch(
                f"content for {self.desc.digest} does not match: expected {self.desc.size} bytes, "
                f"got {self.size} bytes with digest sha256:{got}; the content was rejected and not stored"
            )


def verified(desc: Descriptor, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pass chunks through, raising DigestMismatch before the last chunk if content is wrong.

    Content longer than the descriptor says is refused as soon as it overflows.
    """
    from ..errors import DigestMismatch

    v = Verifier(desc)
    pending: bytes | None = None
    for chunk in chunks:
        if not chunk:
            continue
        v.update(chunk)
        if v.size > desc.size:
            raise DigestMismatch(
                f"content for {desc.digest} is larger than the {desc.size} bytes its descriptor says; rejected"
            )
        if pending is not None:
            yield pending
        pending = bytes(chunk)
    v.check()
    if pending is not None:
        yield pending


def fetch_manifest(target: ReadOnlyTarget, reference: str) -> tuple[Descriptor, bytes]:
    """Resolve and fetch a manifest; one request where the store can (``fetch_reference``)."""
    if isinstance(target, ReferenceFetcher):
        return target.fetch_reference(reference)
    desc = target.resolve(reference)
    return desc, fetch_bytes(target, desc)
