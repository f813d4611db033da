"""The blob cache shared by all workspaces: content-addressed, verified when written and when read.

``paths.cache_dir()/blobs/sha256/<hex>``. A tampered blob is removed and fetched again, or
refused when no registry can supply it. Writers rename verified temp files into place (large
content under a per-digest file lock), so concurrent runs are safe. The resolver keeps
manifests and configs here; the installer reads the same files.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from filelock import FileLock

from .. import paths
from ..errors import DigestMismatch, ProvisioningError
from ..oci.descriptor import MANIFEST, Descriptor
from ..oci.store import Verifier

log = logging.getLogger(__name__)

_HEX = re.compile(r"[0-9a-f]{64}")
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_serial = itertools.count()  # temp names: unique per process and thread without asking for randomness


class BlobCache:
    """Content-addressed blobs under ``<root>/blobs/sha256/<hex>``, verified on write and on read."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else paths.cache_dir()
        self.corrupt: list[str] = []  # digests found tampered and discarded in this run
        # configs whose bytes passed the extension schema in this run: a bundle's reference lookup and the
        # resolve after it read the same configs through one cache, and the schema check is the costly part
        self.schema_checked: set[str] = set()
        self._blobs = os.path.join(self.root, "blobs", "sha256")  # a resolve asks for a path per read and write

    def path(self, digest: str) -> Path:
        return Path(self._file(digest))

    def _file(self, digest: str) -> str:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or not _HEX.fullmatch(hexd):
            raise DigestMismatch(f"unsupported or malformed digest {digest!r} (only sha256 is supported)")
        return os.path.join(self._blobs, hexd)

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
        p = self._file(desc.digest)
        try:
            with open(p, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        v = Verifier(desc)
        v.update(data)
        try:
            v.check()
        except DigestMismatch:
            log.warning("cached blob %s is corrupt; discarding it", desc.digest)
            self.corrupt.append(desc.digest)
            Path(p).unlink(missing_ok=True)
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
        self._write(desc, chunks)
        return self.path(desc.digest)

    def store_bytes(self, desc: Descriptor, data: bytes) -> None:
        if not os.path.exists(self._file(desc.digest)):
            self._write(desc, [data])

    def _write(self, desc: Descriptor, chunks: Iterable[bytes], keep: bool = False) -> bytes:
        """Stream ``chunks`` into a temp file next to the blob and rename it into place once verified.

        The temp file is made with O_EXCL and without following links, named by process, thread
        and a counter (a resolve writes hundreds of small blobs: a random name and a chmod by path
        each time cost more than the write). With ``keep`` the content is also returned.
        """
        final = self._file(desc.digest)
        fd, tmp = self._temp(final)
        kept: list[bytes] = []
        try:
            v = Verifier(desc)
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    v.update(chunk)
                    f.write(chunk)
                    if keep:
                        kept.append(chunk)
                os.fchmod(f.fileno(), 0o444)
            v.check()
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return b"".join(kept)

    def _temp(self, final: str) -> tuple[int, str]:
        head, name = os.path.split(final)
        for attempt in range(100):
            tmp = os.path.join(head, f".{name[:16]}.{os.getpid()}.{threading.get_ident()}.{next(_serial)}.part")
            try:
                return os.open(tmp, _TEMP_FLAGS, 0o600), tmp
            except FileNotFoundError:
                if attempt:
                    raise
                os.makedirs(head, exist_ok=True)  # the first write into this cache
            except FileExistsError:
                continue  # left by a run that died, or planted: take the next name
        raise FileExistsError(f"{head}: no free temp name for {name}")

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
            self._refetch(desc, fetch, what)
            return self.path(desc.digest)
        with self._lock(desc.digest):
            p = self.valid_path(desc)
            if p:
                return p
            self._refetch(desc, fetch, what)
            return self.path(desc.digest)

    def _refetch(
        self, desc: Descriptor, fetch: Callable[[], Iterable[bytes]] | None, what: str, *, keep: bool = False
    ) -> bytes:
        """Fetch and store ``desc`` (returning its content with ``keep``); words what went wrong."""
        if fetch is None:
            raise DigestMismatch(
                f"{what} ({desc.digest}) is not in the cache or the cached copy is corrupt, and no registry is "
                "available to fetch it again; restore access to the registry and rerun"
            )
        try:
            return self._write(desc, fetch(), keep)
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
        return self._refetch(desc, fetch, what, keep=True)
