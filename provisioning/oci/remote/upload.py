"""Blob upload: monolithic, chunked (when the registry takes it) and cross-repository mount; a
failed upload restarts from scratch from content that can be read again, under the transport's
one retry policy (``Transport.retrying``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, urljoin

import requests

from ...errors import DigestMismatch, ProvisioningError, RegistryError
from ..descriptor import Descriptor
from ..reference import validate_repository
from ..store import verified
from .api import RepositoryAPI
from .auth import repository_scope
from .retry import Transient
from .transport import ANY_FINAL_STATUS, DEFAULT_CHUNK_THRESHOLD, READ_SIZE

log = logging.getLogger(__name__)


class _ChunkedUnsupported(Exception):
    """The registry refused the first PATCH: upload this blob (and later ones) monolithically."""


class _Replayable:
    """Upload content that can be read again from the start, so a failed upload restarts from scratch.

    Bytes and re-iterable containers are iterated again; a one-shot iterator (a fetch from
    another registry) is spooled as it passes (in memory up to 8 MiB, then a temporary file).
    """

    def __init__(self, content: Iterable[bytes]) -> None:
        self._spool: Any = None
        if isinstance(content, (bytes, bytearray, memoryview)):
            self._items: Iterable[bytes] | None = [bytes(content)]
            self._iterator: Iterator[bytes] | None = None
        elif iter(content) is not content:
            self._items, self._iterator = content, None
        else:
            self._items, self._iterator = None, iter(content)
            self._spool = tempfile.SpooledTemporaryFile(max_size=DEFAULT_CHUNK_THRESHOLD)  # noqa: SIM115
            self._spooled = 0

    def __iter__(self) -> Iterator[bytes]:
        if self._items is not None:
            yield from self._items
            return
        pos = 0
        while pos < self._spooled:
            self._spool.seek(pos)
            data = self._spool.read(min(READ_SIZE, self._spooled - pos))
            pos += len(data)
            yield data
        assert self._iterator is not None
        for chunk in self._iterator:
            if chunk:
                self._spool.seek(self._spooled)
                self._spool.write(chunk)
                self._spooled += len(chunk)
                yield chunk

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


class _SizedBody:
    """A streamed request body with a known length: sent with Content-Length, not chunked encoding."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = chunks
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup a stream into pieces of exactly ``size`` bytes (the last may be shorter)."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + "digest=" + quote(digest, safe="")


class Uploader:
    """Blob uploads into one repository."""

    def __init__(self, api: RepositoryAPI) -> None:
        self.api = api
        self.conn = api.conn
        self.name = api.name

    def mount(self, desc: Descriptor, from_repository: str) -> bool:
        """Link a blob from another repository of this registry; False when the registry would not."""
        caps = self.conn.capabilities
        if caps.mount is False or from_repository == self.name:
            return False
        scopes = (*self.api.push, repository_scope(from_repository, "pull"))
        query = f"?mount={quote(desc.digest, safe='')}&from={quote(from_repository, safe='/')}"
        resp = self.conn.request("POST", f"/v2/{self.name}/blobs/uploads/{query}", scopes=scopes, ok=(201, 202))
        resp.close()
        if resp.status_code == 201:
            caps.mount = True
            return True
        self._cancel(self._location(resp))
        if caps.mount is None:
            try:
                source = RepositoryAPI(self.conn, validate_repository(from_repository))
                there = source.head(desc, source.pull)
            except ProvisioningError:  # no pull permission on the source: we learnt nothing
                there = False
            if there:
                caps.mount = False  # the blob was there to mount and the registry did not: it cannot
                log.info("%s does not mount blobs across repositories; uploading", self.conn.host)
        return False

    # -- blob upload -------------------------------------------------------------------------------
    def upload(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        """Upload a blob the registry lacks; a failed attempt starts again from the beginning of the content."""
        source = _Replayable(content)
        try:
            self.conn.transport.retrying(
                lambda attempt: self._upload_once(desc, source),
                done=lambda: self.api.head(desc, self.api.push),  # it may have landed although the answer was lost
            )
        finally:
            source.close()

    def _upload_once(self, desc: Descriptor, source: _Replayable) -> None:
        caps = self.conn.capabilities
        if desc.size > self.conn.chunk_threshold and caps.chunked_upload is not False:
            try:
                self._upload_chunked(desc, source)
                return
            except _ChunkedUnsupported:
                caps.chunked_upload = False
                log.info("%s refused a chunked upload; uploading whole blobs", self.conn.host)
        self._upload_monolithic(desc, source)

    def _location(self, resp: requests.Response, previous: str | None = None) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(
                f"{self.conn.host} answered {resp.status_code} to an upload without a Location header",
                method=resp.request.method or "",
                url=resp.url,
                status=resp.status_code,
            )
        return urljoin(previous or resp.url, loc)

    def _start_upload(self) -> requests.Response:
        resp = self.conn.request(
            "POST", f"/v2/{self.name}/blobs/uploads/", scopes=self.api.push, ok=(202,), retry=False
        )
        resp.close()
        return resp

    def _cancel(self, location: str) -> None:
        """Best effort: drop an upload session we will not finish."""
        try:
            self.conn.request("DELETE", location, scopes=self.api.push, ok=ANY_FINAL_STATUS, retry=False).close()
        except (ProvisioningError, Transient):
            pass

    def _upload_monolithic(self, desc: Descriptor, source: _Replayable) -> None:
        location = self._location(self._start_upload())
        chunks = verified(desc, source)
        try:
            body: Any = b"".join(chunks) if desc.size == 0 else _SizedBody(chunks, desc.size)
            self.conn.request(
                "PUT",
                _with_digest(location, desc.digest),
                scopes=self.api.push,
                ok=(201, 204),
                data=body,
                headers={"Content-Type": "application/octet-stream"},
                retry=False,
            ).close()
        except DigestMismatch:
            self._cancel(location)
            raise

    def _upload_chunked(self, desc: Descriptor, source: _Replayable) -> None:
        start = self._start_upload()
        location = self._location(start)
        minimum = start.headers.get("OCI-Chunk-Min-Length", "")
        size = max(self.conn.chunk_size, int(minimum) if minimum.isdigit() else 0)
        offset = 0
        try:
            for piece in _rechunk(verified(desc, source), size):
                end = offset + len(piece) - 1
                refusals = (400, 405, 415, 416, 501) if offset == 0 else ()
                resp = self.conn.request(
                    "PATCH",
                    location,
                    scopes=self.api.push,
                    ok=(202, *refusals),
                    data=piece,
                    headers={"Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{end}"},
                    retry=False,
                )
                resp.close()
                if resp.status_code != 202:
                    self._cancel(location)
                    raise _ChunkedUnsupported
                location = self._location(resp, location)
                offset = end + 1
            self.conn.request(
                "PUT", _with_digest(location, desc.digest), scopes=self.api.push, ok=(201, 204), data=b"", retry=False
            ).close()
        except DigestMismatch:
            self._cancel(location)
            raise
        self.conn.capabilities.chunked_upload = True
