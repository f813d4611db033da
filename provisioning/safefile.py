"""Files we write or read where someone else may have put a link: no write follows one, no read hangs.

A workspace, lock or store can come from a pull request or another tool, so a name we write
(install marker, lock file, index.json, cache entry) may already be a symlink to a file outside,
and a name we read may be a link to ``/dev/zero`` or a fifo. Writes create a new file exclusively
(``O_EXCL | O_NOFOLLOW``) and rename it over the name, which replaces a link instead of following
it; reads refuse anything but a regular file and stop at a size bound.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from pathlib import Path

from .errors import ProvisioningError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class UnsafeFile(ProvisioningError):
    """A file we must read is a link, a device or a fifo, or larger than anything it may hold."""


def _create(path: Path, mode: int) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)


def write_new_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``path`` in a folder we created: whatever entry has that name (a link an archive or a source
    folder put there) is removed first, and the file is created exclusively."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    with os.fdopen(_create(path, mode), "wb") as f:
        f.write(data)


def replace_file(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Replace ``path`` whole and atomically (readers see the old or the new file); a link at ``path`` is
    replaced, not followed; the temp file is removed on any failure (a full disk leaves nothing behind).
    ``durable=False`` skips the fsync, for a writer that syncs once at the end (a bundle being made)."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{secrets.token_hex(8)}")
    try:
        with os.fdopen(_create(tmp, mode), "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_file(path: Path, data: bytes) -> None:
    """Append to a regular file this process made (``replace_file``); a link at ``path`` is refused (OSError)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | _NOFOLLOW)
    with os.fdopen(fd, "ab") as f:
        f.write(data)


def read_bounded(path: Path, limit: int, what: str = "") -> bytes:
    """A regular file's bytes (not through a link); ``FileNotFoundError`` when missing, ``UnsafeFile`` when it is
    a link, not a regular file, or larger than ``limit``."""
    shown = what or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafeFile(
                f"{shown} is a symbolic link; refusing to read through it (replace it with the file)"
            ) from None
        raise UnsafeFile(f"cannot read {shown}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{shown} is not a regular file; refused")
        if st.st_size > limit:
            raise UnsafeFile(f"{shown} is {st.st_size} bytes, more than the {limit} it may hold; refused")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise UnsafeFile(f"{shown} grew past {limit} bytes while being read; refused")
    return data


def read_small_file(path: Path, limit: int) -> bytes | None:
    """Like ``read_bounded``, but None for a missing, linked, special or oversized file (markers, caches)."""
    try:
        return read_bounded(path, limit)
    except (OSError, UnsafeFile):
        return None
