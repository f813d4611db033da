"""``RemoteTarget``: one repository of a registry, speaking the ``Target`` protocol of store.py:
reads (exists, fetch, resolve, tags) and manifest writes, one status switch per operation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import requests

from ...errors import DigestMismatch, NotFound, RegistryError, TagConflict
from ..descriptor import INDEX, MANIFEST, MANIFEST_TYPES, MAX_MANIFEST_SIZE, Descriptor, check_size, sha256_digest
from ..reference import tag_for_version
from ..store import verified
from .auth import repository_scope
from .errors import _media_type
from .referrers import Referrers
from .transport import MANIFEST_ACCEPT
from .upload import Uploads
from .watch import (
    body_chunks,
)

if TYPE_CHECKING:
    from .client import RemoteStorage

log = logging.getLogger(__name__)


def _bounded(chunks: Iterable[bytes], desc: Descriptor) -> Iterator[bytes]:
    """Stop reading as soon as a download exceeds its descriptor's size."""
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > desc.size:
            raise DigestMismatch(f"the registry sent more than the {desc.size} bytes of {desc.digest}; rejected")
        yield chunk


class RemoteTarget(Uploads, Referrers):
    """One repository of a registry, speaking the ``Target`` protocol (plus mount, delete, referrers).

    ``push`` takes one-shot streams: what it must be able to send again (an upload restarted
    after a fault) it spools as it streams, so copy() need not read a blob whole beforehand.
    """

    def __init__(self, storage: RemoteStorage, name: str) -> None:
        self.storage = storage
        self.name = name
        self._pull = (repository_scope(name, "pull"),)
        self._push = (repository_scope(name, "pull", "push"),)
        self._absent: set[str] = set()  # blobs exists() just found missing: push skips its own check

    def __repr__(self) -> str:
        return f"RemoteTarget({self.storage.registry_host}/{self.name})"

    @property
    def registry_host(self) -> str:
        """Targets with the same host may mount blobs from each other (copy() checks this)."""
        return self.storage.registry_host

    @property
    def referrers_api(self) -> bool | None:
        """Whether the registry has the referrers API (None: not learnt yet)."""
        return self.storage.capabilities.referrers

    def _path(self, kind: str, ref: str) -> str:
        return f"/v2/{self.name}/{kind}/{ref}"

    def _kind(self, desc: Descriptor) -> str:
        return "manifests" if desc.is_manifest else "blobs"

    def _accept(self, desc: Descriptor | None = None) -> dict[str, str]:
        return {"Accept": MANIFEST_ACCEPT} if desc is None or desc.is_manifest else {}

    # -- read --------------------------------------------------------------------------------------
    def exists(self, desc: Descriptor) -> bool:
        found = self._head(desc, self._pull)
        if not found and not desc.is_manifest:
            self._absent.add(desc.digest)
        return found

    def expect_absent(self, desc: Descriptor) -> None:
        """The caller knows the blob is new: the next push uploads it without asking first."""
        self._absent.add(desc.digest)

    def _head(self, desc: Descriptor, scopes: Sequence[str]) -> bool:
        resp = self.storage.request(
            "HEAD", self._path(self._kind(desc), desc.digest), scopes=scopes, ok=(200, 404), headers=self._accept(desc)
        )
        resp.close()
        return resp.status_code == 200

    def fetch(self, desc: Descriptor) -> Iterator[bytes]:
        """Stream content, verifying size and digest as it passes (DigestMismatch before the last chunk)."""
        check_size(desc, f"{self.storage.registry_host}/{self.name}")
        path = self._path(self._kind(desc), desc.digest)
        resp = self.storage.request(
            "GET", path, scopes=self._pull, ok=(200, 404), stream=True, headers=self._accept(desc)
        )
        if resp.status_code == 404:
            resp.close()
            raise NotFound(f"{self.storage.registry_host}/{self.name}@{desc.digest} not found")
        return self._stream(desc, resp)

    def _stream(self, desc: Descriptor, resp: requests.Response) -> Iterator[bytes]:
        def body() -> Iterator[bytes]:
            try:
                yield from body_chunks(resp)
            except requests.RequestException as exc:
                raise self.storage.broken_body("GET", resp.url, resp, exc) from None

        try:
            yield from verified(desc, _bounded(body(), desc))
        except DigestMismatch as exc:
            raise DigestMismatch(f"{self.storage.registry_host}/{self.name}: {exc}") from None
        finally:
            resp.close()

    def resolve(self, reference: str) -> Descriptor:
        """Tag or digest -> the manifest's descriptor, by HEAD (GET when the registry omits the digest)."""
        ref = reference if reference.startswith("sha256:") else tag_for_version(reference)
        resp = self.storage.request(
            "HEAD", self._path("manifests", ref), scopes=self._pull, ok=(200, 404), headers=self._accept()
        )
        resp.close()
        if resp.status_code == 404:
            raise self._not_found(ref)
        digest = resp.headers.get("Docker-Content-Digest", "")
        media_type = _media_type(resp)
        size = resp.headers.get("Content-Length", "")
        if not digest or media_type not in MANIFEST_TYPES or not size.isdigit():
            return self.fetch_reference(ref)[0]
        if ref.startswith("sha256:") and digest != ref:
            raise DigestMismatch(
                f"{self.storage.registry_host}/{self.name}: asked for {ref}, the registry named {digest}"
            )
        return Descriptor(media_type, digest, int(size))

    def fetch_reference(self, reference: str) -> tuple[Descriptor, bytes]:
        """Resolve and fetch a manifest in one GET (the optional power store.fetch_manifest uses)."""
        ref = reference if reference.startswith("sha256:") else tag_for_version(reference)
        resp = self.storage.request(
            "GET", self._path("manifests", ref), scopes=self._pull, ok=(200, 404), stream=True, headers=self._accept()
        )
        try:
            if resp.status_code == 404:
                raise self._not_found(ref)
            data = b""
            for chunk in body_chunks(resp):
                data += chunk
                if len(data) > MAX_MANIFEST_SIZE:
                    raise RegistryError(
                        f"{self.storage.registry_host}/{self.name}:{ref} is larger than {MAX_MANIFEST_SIZE} bytes; "
                        "not a manifest"
                    )
        except requests.RequestException as exc:
            raise self.storage.broken_body("GET", resp.url, resp, exc) from None
        finally:
            resp.close()
        digest = sha256_digest(data)
        named = resp.headers.get("Docker-Content-Digest")
        if (ref.startswith("sha256:") and digest != ref) or (named and named != digest):
            raise DigestMismatch(
                f"{self.storage.registry_host}/{self.name}:{ref}: the manifest's content has digest {digest}, "
                f"not {ref if ref.startswith('sha256:') else named}; rejected"
            )
        media_type = _media_type(resp)
        if media_type not in MANIFEST_TYPES:
            try:
                media_type = json.loads(data).get("mediaType") or MANIFEST
            except (ValueError, AttributeError):
                media_type = MANIFEST
        return Descriptor(media_type, digest, len(data)), data

    def _not_found(self, ref: str) -> NotFound:
        sep = "@" if ref.startswith("sha256:") else ":"
        return NotFound(
            f"{self.storage.registry_host}/{self.name}{sep}{ref} not found: check the name and version "
            f"(`provisioning oci tags {self.name}` lists the versions)"
        )

    def tags(self) -> list[str]:
        """All tags, sorted, following Link pagination; empty when the repository does not exist."""
        page = self.storage.page_size
        first = f"/v2/{self.name}/tags/list" + (f"?n={page}" if page else "")
        found: list[str] = []
        for resp in self.storage.pages(first, f"tags of {self.name}", scopes=self._pull, ok=(200, 404)):
            if resp.status_code == 404:
                return []
            found.extend(self.storage._string_list(resp, "tags"))
        return sorted(set(found))

    # -- write -------------------------------------------------------------------------------------
    def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        """Manifests are PUT by digest; blobs are checked first, then uploaded (chunked when large)."""
        if desc.is_manifest:
            self._put_manifest(desc, self._read_manifest(desc, content), desc.digest)
        else:
            self._push_blob(desc, content)

    def push_reference(self, desc: Descriptor, content: Iterable[bytes], tag: str, *, immutable: bool = False) -> None:
        """PUT a manifest by tag in one request (push and tag together).

        ``immutable``: the tag may not move. Registries have no conditional PUT, so the tag is checked just
        before the PUT and again after it: of two concurrent pushes with different content, the one whose
        content the tag holds afterwards won, and the other reports the conflict (``TagConflict``).
        """
        data = self._read_manifest(desc, content)
        ref = tag_for_version(tag)
        if immutable:
            self._check_tag(ref, desc, before=True)
        self._put_manifest(desc, data, ref)
        if immutable:
            self._check_tag(ref, desc, before=False)

    def _check_tag(self, ref: str, desc: Descriptor, *, before: bool) -> None:
        try:
            now = self.resolve(ref).digest
        except NotFound:
            if before:
                return
            now = "nothing (it was deleted)"
        if now == desc.digest:
            return
        where = f"{self.storage.registry_host}/{self.name}:{ref}"
        when = "was published with other content" if before else "was overwritten by another push"
        raise TagConflict(
            f"{where} {when} ({now}) while this push ({desc.digest}) was in flight; the other push won: the tag holds "
            f"{now}. Versions are immutable: check which content is right and bump the version",
            reference=where,
            ours=desc.digest,
            winner=now,
        )

    def tag(self, desc: Descriptor, tag: str) -> None:
        """Point ``tag`` at an existing manifest by PUTting its bytes again under the tag."""
        _, data = self.fetch_reference(desc.digest)
        self._put_manifest(desc, data, tag_for_version(tag))

    def delete(self, desc: Descriptor) -> None:
        """Delete a manifest (or blob) by digest; its tags go with it."""
        resp = self.storage.request(
            "DELETE",
            self._path(self._kind(desc), desc.digest),
            scopes=(repository_scope(self.name, "delete"),),
            ok=(200, 202, 204, 404),
        )
        resp.close()
        if resp.status_code == 404:
            raise NotFound(f"{self.storage.registry_host}/{self.name}@{desc.digest} not found; nothing deleted")

    def _read_manifest(self, desc: Descriptor, content: Iterable[bytes]) -> bytes:
        if desc.size > MAX_MANIFEST_SIZE:
            raise RegistryError(f"manifest {desc.digest} is {desc.size} bytes; registries accept at most 4 MiB")
        return b"".join(verified(desc, content))

    def _put_manifest(self, desc: Descriptor, data: bytes, ref: str) -> None:
        resp = self.storage.request(
            "PUT",
            self._path("manifests", ref),
            scopes=self._push,
            ok=(200, 201, 202, 204),
            data=data,
            headers={"Content-Type": desc.media_type},
        )
        resp.close()
        named = resp.headers.get("Docker-Content-Digest")
        if named and named != desc.digest:
            raise RegistryError(
                f"{self.storage.registry_host} stored manifest {desc.digest} as {named}: the registry rewrote it; "
                "it may not support this manifest media type"
            )
        if resp.headers.get("OCI-Subject"):
            self.storage.capabilities.referrers = True
        elif desc.media_type in (MANIFEST, INDEX):
            self._index_referrer(desc, data)
