"""The blob cache shared by all workspaces: content-addressed, verified when written and when read.

``paths.cache_dir()/blobs/sha256/<hex>``. A tampered blob is removed and fetched again, or
refused when no registry can supply it. Writers rename verified temp files into place (large
content under a per-digest file lock), so concurrent runs are safe. The resolver keeps
manifests and configs here; the installer reads the same files.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from filelock import FileLock

from .. import paths
from ..errors import DigestMismatch, ProvisioningError
from ..oci.descriptor import MANIFEST, Descriptor
from ..oci.store import Verifier

log = logging.getLogger(__name__)


class BlobCache:
    """Content-addressed blobs under ``<root>/blobs/sha256/<hex>``, verified on write and on read."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else paths.cache_dir()
        self.corrupt: list[str] = []  # digests found tampered and discarded in this run

    def path(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64 or any(c not in "0123456789abcdef" for c in hexd):
            raise DigestMismatch(f"unsupported or malformed digest {digest!r} (only sha256 is supported)")
        return self.root / "blobs" / "sha256" / hexd

    def _lock(self, digest: str) -> FileLock:
        d = self.root / "locks"
        d.mkdir(parents=True, exist_ok=True)
        return FileLock(str(d / f"{digest.partition(':')[2]}.lock"))

    def valid_path(self, desc: Descriptor) -> Path | None:
        """The cached file when present and intact; a tampered file is removed (and remembered)."""
        p = self.path(desc.digest)
        try:
            with p.open("rb") as f:
                v = Verifier(desc)
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    v.update(chunk)
        except FileNotFoundError:
            return None
        try:
            v.check()
        except DigestMismatch:
            log.warning("cached blob %s is corrupt (%s bytes on disk); discarding it", desc.digest, v.size)
            self.corrupt.append(desc.digest)
            p.unlink(missing_ok=True)
            return None
        return p

    def read(self, desc: Descriptor) -> bytes | None:
        """Small content (manifests, configs) from the cache, verified; None when absent or corrupt."""
        p = self.path(desc.digest)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None
        v = Verifier(desc)
        v.update(data)
        try:
            v.check()
        except DigestMismatch:
            log.warning("cached blob %s is corrupt; discarding it", desc.digest)
            self.corrupt.append(desc.digest)
            p.unlink(missing_ok=True)
            return None
        return data

    def read_digest(self, digest: str) -> bytes | None:
        """Content known only by digest (a pinned manifest): verified by hash alone."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            return None
        return self.read(Descriptor(MANIFEST, digest, len(data)))

    def store(self, desc: Descriptor, chunks: Iterable[bytes]) -> Path:
        """Write verified content; a temp file is renamed into place only once the digest matched."""
        p = self.path(desc.digest)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:16]}.", suffix=".part", dir=p.parent)
        try:
            v = Verifier(desc)
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    v.update(chunk)
                    f.write(chunk)
            v.check()
            os.chmod(tmp, 0o444)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return p

    def store_bytes(self, desc: Descriptor, data: bytes) -> None:
        if not self.path(desc.digest).exists():
            self.store(desc, [data])

    def ensure(
        self, desc: Descriptor, fetch: Callable[[], Iterable[bytes]] | None, what: str, *, lock: bool = True
    ) -> Path:
        """The verified cached file for ``desc``, fetching it when missing or corrupt.

        Large content is fetched under a per-digest file lock so concurrent runs download it once;
        small content (manifests, configs) skips the lock: the verified rename is safe on its own.
        """
        p = self.valid_path(desc)
        if p:
            return p
        if not lock or fetch is None:
            return self._refetch(desc, fetch, what)
        with self._lock(desc.digest):
            p = self.valid_path(desc)
            if p:
                return p
            return self._refetch(desc, fetch, what)

    def _refetch(self, desc: Descriptor, fetch: Callable[[], Iterable[bytes]] | None, what: str) -> Path:
        if fetch is None:
            raise DigestMismatch(
                f"{what} ({desc.digest}) is not in the cache or the cached copy is corrupt, and no registry is "
                "available to fetch it again; restore access to the registry and rerun"
            )
        try:
            return self.store(desc, fetch())
        except ProvisioningError as exc:
            if desc.digest not in self.corrupt:
                raise
            raise DigestMismatch(
                f"the cached copy of {what} ({desc.digest}) is corrupt and was discarded, and fetching it "
                f"again failed: {exc}"
            ) from None

    def ensure_bytes(self, desc: Descriptor, fetch: Callable[[], Iterable[bytes]] | None, what: str) -> bytes:
        data = self.read(desc)
        if data is not None:
            return data
        return self._refetch(desc, fetch, what).read_bytes()
