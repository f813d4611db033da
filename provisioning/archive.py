"""Safe extraction of artifact layers: plain files and folders inside the target, within bounds.

Shared by installs into workspaces and by ``oci pull``: absolute paths, ``..``, links that
escape (or are written through), devices and fifos are refused, and so is an archive that
unpacks to more than a size bound (zip bombs).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import UnsafeArchive

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 20_000


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds on what one extension archive may unpack to (zip-bomb and inode guards)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS

    @classmethod
    def from_env(cls) -> ExtractLimits:
        raw = os.environ.get("PROVISIONING_MAX_EXTRACT_BYTES")
        return cls(max_bytes=int(raw)) if raw and raw.isdigit() else cls()


def _member_parts(name: str, what: str) -> tuple[str, ...]:
    if not name or "\x00" in name:
        raise UnsafeArchive(f"{what}: a member has an empty or invalid name; the archive was refused")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"{what}: member {name!r} has an absolute path; the archive was refused")
    parts = tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
    if any(p == ".." for p in parts):
        raise UnsafeArchive(f"{what}: member {name!r} climbs out of the extension with '..'; the archive was refused")
    return parts


def _inside(root: Path, path: str) -> bool:
    root_s = os.path.realpath(root)
    p = os.path.realpath(path)
    return p == root_s or p.startswith(root_s + os.sep)


def safe_extract(archive: Path | IO[bytes], dest: Path, *, what: str, limits: ExtractLimits | None = None) -> int:
    """Unpack a tar+gzip layer into the empty folder ``dest``, refusing anything that could escape it.

    Returns the number of files written. ``what`` names the archive in messages.
    """
    limits = limits or ExtractLimits.from_env()
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    files: dict[tuple[str, ...], Path] = {}
    links: set[tuple[str, ...]] = set()
    try:
        tar = (
            tarfile.open(fileobj=archive, mode="r:*")  # type: ignore[arg-type]
            if hasattr(archive, "read")
            else tarfile.open(archive, mode="r:*")
        )
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UnsafeArchive(f"{what}: the layer is not a readable tar archive ({exc})") from None
    with tar:
        try:
            for count, member in enumerate(tar, start=1):
                if count > limits.max_members:
                    raise UnsafeArchive(f"{what}: more than {limits.max_members} archive members; refused")
                parts = _member_parts(member.name, what)
                if not parts:
                    continue
                if any(parts[:i] in links for i in range(1, len(parts))):
                    raise UnsafeArchive(f"{what}: member {member.name!r} would be written through a link; refused")
                target = dest.joinpath(*parts)
                if not _inside(dest, str(target.parent)):
                    raise UnsafeArchive(f"{what}: member {member.name!r} resolves outside the extension; refused")
                if member.isdir():
                    if target.is_symlink() or (target.exists() and not target.is_dir()):
                        raise UnsafeArchive(f"{what}: member {member.name!r} clashes with an earlier member")
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if os.path.lexists(target):
                    raise UnsafeArchive(f"{what}: member {member.name!r} appears twice; refused")
                target.parent.mkdir(parents=True, exist_ok=True)
                if member.issym():
                    link = member.linkname
                    if not link or os.path.isabs(link) or link.startswith("\\"):
                        raise UnsafeArchive(f"{what}: symlink {member.name!r} -> {link!r} is absolute; refused")
                    if not _inside(dest, os.path.join(os.path.realpath(target.parent), link)):
                        raise UnsafeArchive(f"{what}: symlink {member.name!r} -> {link!r} escapes the extension")
                    os.symlink(link, target)
                    links.add(parts)
                elif member.islnk():
                    src = files.get(_member_parts(member.linkname, what))
                    if src is None:
                        raise UnsafeArchive(
                            f"{what}: hard link {member.name!r} -> {member.linkname!r} does not name an earlier "
                            "file of the archive; refused"
                        )
                    total += src.stat().st_size
                    if total > limits.max_bytes:
                        raise UnsafeArchive(f"{what}: unpacks to more than {limits.max_bytes} bytes; refused")
                    shutil.copyfile(src, target)
                    os.chmod(target, stat.S_IMODE(src.stat().st_mode))
                    files[parts] = target
                elif member.isreg():
                    total += member.size
                    if total > limits.max_bytes:
                        raise UnsafeArchive(f"{what}: unpacks to more than {limits.max_bytes} bytes; refused")
                    src_f = tar.extractfile(member)
                    assert src_f is not None
                    with src_f, open(target, "xb") as out:
                        shutil.copyfileobj(src_f, out, 1 << 20)
                    os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
                    files[parts] = target
                else:
                    kind = "device" if member.ischr() or member.isblk() else "fifo" if member.isfifo() else "special"
                    raise UnsafeArchive(f"{what}: member {member.name!r} is a {kind} file; refused")
        except (tarfile.TarError, EOFError, OSError) as exc:
            if isinstance(exc, UnsafeArchive):
                raise
            raise UnsafeArchive(f"{what}: the layer is a damaged tar archive ({exc}); refused") from None
    return len(files)
