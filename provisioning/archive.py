"""Safe extraction of artifact layers: plain files and folders inside the target, within bounds.

Shared by installs into workspaces and by ``oci pull``. The decision is made on the whole member
list, not member by member: a link that looks inside when it is written can point outside once
later members exist, so links are created last, after every link target was resolved (through
every other link of the archive) and found inside the destination. Until then no link exists in
the tree, so no write can follow one. Refused: absolute paths, ``..`` above the root, members
written through a link, links that resolve outside, devices, fifos, sparse files, extended
headers larger than a name can be (a 2 GiB GNU long name costs no memory), too many members,
and archives that unpack to more than a size bound (zip bombs).

``check_links`` applies the same link rule to a folder on disk (git and local sources).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import UnsafeArchive

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_MEMBERS = 20_000
MAX_HEADER_BYTES = 64 * 1024  # a GNU long name/link or pax header: far more than any real path needs
MAX_NAME_BYTES = 4096  # PATH_MAX
MAX_LINK_HOPS = 40  # as the kernel's limit on nested symlinks

_EXTENDED_HEADERS = frozenset(
    {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE}
)

Parts = tuple[str, ...]


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds on what one extension archive may unpack to (zip-bomb and inode guards)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS

    @classmethod
    def from_env(cls) -> ExtractLimits:
        raw = os.environ.get("PROVISIONING_MAX_EXTRACT_BYTES")
        return cls(max_bytes=int(raw)) if raw and raw.isdigit() else cls()


class _BoundedTarInfo(tarfile.TarInfo):
    """A header reader that refuses oversized extended headers before tarfile reads them into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:  # type: ignore[override]
        if self.type in _EXTENDED_HEADERS and self.size > MAX_HEADER_BYTES:
            raise UnsafeArchive(
                f"an extended tar header (long name or pax) of {self.size} bytes, more than the "
                f"{MAX_HEADER_BYTES} a name needs"
            )
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise UnsafeArchive(f"member {self.name!r} is a sparse file")
        return super()._proc_member(tarfile_)  # type: ignore[misc]


def _member_parts(name: str, what: str) -> Parts:
    if not name or "\x00" in name or len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise UnsafeArchive(f"{what}: a member has an empty, invalid or overlong name; the archive was refused")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"{what}: member {name!r} has an absolute path; the archive was refused")
    parts = tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
    if any(p == ".." for p in parts):
        raise UnsafeArchive(f"{what}: member {name!r} climbs out of the extension with '..'; the archive was refused")
    return parts


def link_stays_inside(link: Parts, target: str, links: Mapping[Parts, str]) -> bool:
    """True when the symlink ``link -> target`` resolves inside the root, following ``links`` (the tree's own
    symlinks, by path) the way the kernel would. Missing components are taken as plain folders, so the answer
    holds whatever is created later without links."""
    if not target or "\x00" in target or target.startswith(("/", "\\")):
        return False
    stack = list(link[:-1])
    pending = target.replace("\\", "/").split("/")
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return False
            stack.pop()
            continue
        stack.append(part)
        nested = links.get(tuple(stack))
        if nested is not None:
            hops += 1
            if hops > MAX_LINK_HOPS or nested.startswith(("/", "\\")):
                return False
            stack.pop()
            pending = nested.replace("\\", "/").split("/") + pending
    return True


def check_links(links: Mapping[Parts, str], what: str) -> None:
    """Refuse a tree (an archive's member list, a source folder) with a link that is absolute or escapes."""
    for parts, target in sorted(links.items()):
        shown = "/".join(parts)
        if not target or target.startswith(("/", "\\")):
            raise UnsafeArchive(f"{what}: symlink {shown!r} -> {target!r} is absolute; refused")
        if not link_stays_inside(parts, target, links):
            raise UnsafeArchive(f"{what}: symlink {shown!r} -> {target!r} escapes the extension; refused")


class _Plan:
    """The whole member list as a tree, checked before any link is made."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.dirs: set[Parts] = set()
        self.files: dict[Parts, Path] = {}
        self.links: dict[Parts, str] = {}

    def claim(self, parts: Parts, name: str, kind: str) -> None:
        """Record one member; refuse a path under a link, a second member of one name, a file/folder clash."""
        what = self.what
        for i in range(1, len(parts)):
            prefix = parts[:i]
            if prefix in self.links:
                raise UnsafeArchive(f"{what}: member {name!r} would be written through a link; refused")
            if prefix in self.files:
                raise UnsafeArchive(f"{what}: member {name!r} clashes with an earlier member")
        if kind == "dir":
            if parts in self.files or parts in self.links:
                raise UnsafeArchive(f"{what}: member {name!r} clashes with an earlier member")
        elif parts in self.files or parts in self.links:
            raise UnsafeArchive(f"{what}: member {name!r} appears twice; refused")
        elif parts in self.dirs:
            raise UnsafeArchive(f"{what}: member {name!r} clashes with an earlier member")
        self.dirs.update(parts[:i] for i in range(1, len(parts)))
        if kind == "dir":
            self.dirs.add(parts)


def _open(archive: Path | IO[bytes], what: str) -> tarfile.TarFile:
    try:
        if hasattr(archive, "read"):
            return tarfile.open(fileobj=archive, mode="r:*", tarinfo=_BoundedTarInfo)  # type: ignore[arg-type]
        return tarfile.open(archive, mode="r:*", tarinfo=_BoundedTarInfo)
    except UnsafeArchive as exc:
        raise UnsafeArchive(f"{what}: {exc}; refused") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UnsafeArchive(f"{what}: the layer is not a readable tar archive ({exc})") from None


def safe_extract(archive: Path | IO[bytes], dest: Path, *, what: str, limits: ExtractLimits | None = None) -> int:
    """Unpack a tar+gzip layer into the empty folder ``dest``, refusing anything that could escape it.

    Returns the number of files written. ``what`` names the archive in messages.
    """
    limits = limits or ExtractLimits.from_env()
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    plan = _Plan(what)
    with _open(archive, what) as tar:
        try:
            for count, member in enumerate(tar, start=1):
                if count > limits.max_members:
                    raise UnsafeArchive(f"{what}: more than {limits.max_members} archive members; refused")
                parts = _member_parts(member.name, what)
                if not parts:
                    continue
                target = dest.joinpath(*parts)
                if member.isdir():
                    plan.claim(parts, member.name, "dir")
                    target.mkdir(parents=True, exist_ok=True)
                elif member.issym():
                    plan.claim(parts, member.name, "link")
                    plan.links[parts] = member.linkname
                elif member.islnk():
                    plan.claim(parts, member.name, "file")
                    src = plan.files.get(_member_parts(member.linkname, what))
                    if src is None:
                        raise UnsafeArchive(
                            f"{what}: hard link {member.name!r} -> {member.linkname!r} does not name an earlier "
                            "file of the archive; refused"
                        )
                    total += src.stat().st_size
                    if total > limits.max_bytes:
                        raise UnsafeArchive(f"{what}: unpacks to more than {limits.max_bytes} bytes; refused")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, target, follow_symlinks=False)
                    os.chmod(target, stat.S_IMODE(src.stat().st_mode))
                    plan.files[parts] = target
                elif member.isreg():
                    plan.claim(parts, member.name, "file")
                    total += member.size
                    if total > limits.max_bytes:
                        raise UnsafeArchive(f"{what}: unpacks to more than {limits.max_bytes} bytes; refused")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src_f = tar.extractfile(member)
                    assert src_f is not None
                    with src_f, open(target, "xb") as out:
                        shutil.copyfileobj(src_f, out, 1 << 20)
                    os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
                    plan.files[parts] = target
                else:
                    kind = "device" if member.ischr() or member.isblk() else "fifo" if member.isfifo() else "special"
                    raise UnsafeArchive(f"{what}: member {member.name!r} is a {kind} file; refused")
        except UnsafeArchive as exc:
            if str(exc).startswith(what):
                raise
            raise UnsafeArchive(f"{what}: {exc}; refused") from None
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise UnsafeArchive(f"{what}: the layer is a damaged tar archive ({exc}); refused") from None
    # Every member is known: links are judged against the final tree, then made (no write follows them).
    check_links(plan.links, what)
    for parts, link in sorted(plan.links.items()):
        dest.joinpath(*parts[:-1]).mkdir(parents=True, exist_ok=True)
        os.symlink(link, dest.joinpath(*parts))
    return len(plan.files)
