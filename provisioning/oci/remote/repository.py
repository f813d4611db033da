"""``RemoteTarget``: one repository of a registry, speaking the ``Target`` protocol of store.py (plus
mount, push and fetch by reference, delete and referrers): reads (exists, fetch, resolve, tags) and
manifest writes, one status switch per operation. Uploads and referrers are parts it holds, not
mixins; all of them build on ``api.RepositoryAPI`` over one ``Connection``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import requests

from ...errors import DigestMismatch, NotFound, RegistryError, TagConflict
from ..descriptor import INDEX, MANIFEST, MANIFEST_TYPES, MAX_MANIFEST_SIZE, Descriptor, check_size
from ..reference import tag_for_version
from ..store import verified
from .api import RepositoryAPI, manifest_ref
from .auth import repository_scope
from .connection import Capabilities, Connection
from .errors import media_type
from .referrers import Referrers
from .upload import Uploader
from .watch import body_chunks

log = logging.getLogger(__name__)


def _bounded(chunks: Iterable[bytes], desc: Descriptor) -> Iterator[bytes]:
    """Stop reading as soon as a download exceeds its descriptor's size."""
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > desc.size:
            raise DigestMismatch(f"the registry sent more than the {desc.size} bytes of {desc.digest}; rejected")
        yield chunk


class RemoteTarget:
    """One repository of a registry, speaking the ``Target`` protocol (plus mount, delete, referrers).

    ``push`` takes one-shot streams: what it must be able to send again (an upload restarted
    after a fault) it spools as it streams, so copy() need not read a blob whole beforehand.
    """

    def __init__(self, conn: Connection, name: str) -> None:
        self.conn = conn
        self.name = name
        self.api = RepositoryAPI(conn, name)
        self._uploads = Uploader(self.api)
        self._referrers = Referrers(self.api)
        self._absent: set[str] = set()  # blobs exists() just found missing: push skips its own check

    def __repr__(self) -> str:
        return f"RemoteTarget({self.conn.host}/{self.name})"

    @property
    def registry_host(self) -> str:
        """Targets with the same host may mount blobs from each other (copy() checks this)."""
        return self.conn.host

    @property
    def capabilities(self) -> Capabilities:
        """What the registry was found to support (shared by its repositories)."""
        return self.conn.capabilities

    @property
    def referrers_api(self) -> bool | None:
        """Whether the registry has the referrers API (None: not learnt yet)."""
        return self.conn.capabilities.referrers

    # -- read --------------------------------------------------------------------------------------
    def exists(self, desc: Descriptor) -> bool:
        found = self.api.head(desc, self.api.pull)
        if not found and not desc.is_manifest:
            self._absent.add(desc.digest)
        return found

    def expect_absent(self, desc: Descriptor) -> None:
        """The caller knows the blob is new: the next push uploads it without asking first."""
        self._absent.add(desc.digest)

    def fetch(self, desc: Descriptor) -> Iterator[bytes]:
        """Stream content, verifying size and digest as it passes (DigestMismatch before the last chunk)."""
        check_size(desc, self.api.where)
        path = self.api.path(self.api.kind(desc), desc.digest)
        resp = self.conn.request(
            "GET", path, scopes=self.api.pull, ok=(200, 404), stream=True, headers=self.api.accept(desc)
        )
        match resp.status_code:
            case 404:
                resp.close()
                raise NotFound(f"{self.api.where}@{desc.digest} not found")
            case _:
                return self._stream(desc, resp)

    def _stream(self, desc: Descriptor, resp: requests.Response) -> Iterator[bytes]:
        def body() -> Iterator[bytes]:
            try:
                yield from body_chunks(resp)
            except requests.RequestException as exc:
                raise self.conn.transport.broken_body("GET", resp.url, resp, exc) from None

        try:
            yield from verified(desc, _bounded(body(), desc))
        except DigestMismatch as exc:
            raise DigestMismatch(f"{self.api.where}: {exc}") from None
        finally:
            resp.close()

    def resolve(self, reference: str) -> Descriptor:
        """Tag or digest -> the manifest's descriptor, by HEAD (GET when the registry omits the digest)."""
        ref = manifest_ref(reference)
        resp = self.conn.request(
            "HEAD", self.api.path("manifests", ref), scopes=self.api.pull, ok=(200, 404), headers=self.api.accept()
        )
        resp.close()
        match resp.status_code:
            case 404:
                raise self.api.not_found(ref)
        digest = resp.headers.get("Docker-Content-Digest", "")
        kind = media_type(resp)
        size = resp.headers.get("Content-Length", "")
        if not digest or kind not in MANIFEST_TYPES or not size.isdigit():
            return self.fetch_reference(ref)[0]
        if ref.startswith("sha256:") and digest != ref:
            raise DigestMismatch(f"{self.api.where}: asked for {ref}, the registry named {digest}")
        return Descriptor(kind, digest, int(size))

    def fetch_reference(self, reference: str) -> tuple[Descriptor, bytes]:
        """Resolve and fetch a manifest in one GET (the optional power store.fetch_manifest uses)."""
        return self.api.get_manifest(reference)

    def tags(self) -> list[str]:
        """All tags, sorted, following Link pagination; empty when the repository does not exist."""
        page = self.conn.page_size
        first = f"/v2/{self.name}/tags/list" + (f"?n={page}" if page else "")
        found: list[str] = []
        for resp in self.conn.pages(first, f"tags of {self.name}", scopes=self.api.pull, ok=(200, 404)):
            match resp.status_code:
                case 404:
                    return []
                case _:
                    found.extend(self.conn.string_list(resp, "tags"))
        return sorted(set(found))

    def referrers(self, desc: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``desc``: the referrers API, else the tag-schema index."""
        return self._referrers.list(desc, artifact_type)

    # -- write -------------------------------------------------------------------------------------
    def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        """Manifests are PUT by digest; blobs are checked first, then uploaded (chunked when large)."""
        if desc.is_manifest:
            self._put_manifest(desc, self._read_manifest(desc, content), desc.digest)
        elif desc.digest in self._absent:
            self._absent.discard(desc.digest)  # copy() asked a moment ago: no second HEAD
            self._uploads.upload(desc, content)
        elif not self.api.head(desc, self.api.push):
            self._uploads.upload(desc, content)

    def mount(self, desc: Descriptor, from_repository: str) -> bool:
        """Link a blob from another repository of this registry; False when the registry would not."""
        return self._uploads.mount(desc, from_repository)

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
        where = f"{self.api.where}:{ref}"
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
        resp = self.conn.request(
            "DELETE",
            self.api.path(self.api.kind(desc), desc.digest),
            scopes=(repository_scope(self.name, "delete"),),
            ok=(200, 202, 204, 404),
        )
        resp.close()
        match resp.status_code:
            case 404:
                raise NotFound(f"{self.api.where}@{desc.digest} not found; nothing deleted")

    def _read_manifest(self, desc: Descriptor, content: Iterable[bytes]) -> bytes:
        if desc.size > MAX_MANIFEST_SIZE:
            raise RegistryError(f"manifest {desc.digest} is {desc.size} bytes; registries accept at most 4 MiB")
        return b"".join(verified(desc, content))

    def _put_manifest(self, desc: Descriptor, data: bytes, ref: str) -> None:
        resp = self.api.put_manifest(desc, data, ref)
        if resp.headers.get("OCI-Subject"):
            self.conn.capabilities.referrers = True
        elif desc.media_type in (MANIFEST, INDEX):
            self._referrers.index(desc, data)
