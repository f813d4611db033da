"""Local folders as a source: an extension under development, used as it is on disk.

A local override wins over any constraint (mismatches become warnings in the resolver); the
lock pins the folder's tree digest, so an edit makes the lock stale and a changed folder is
never installed silently. Copies follow the archive rules: plain files and links that stay
inside the extension.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ...archive import check_links
from ...errors import NotFound, UnsafeArchive, ValidationError
from ...yamlfile import safe_load
from ..config import display_path
from .base import Candidate, candidate_from_manifest

if TYPE_CHECKING:
    from ..lock import LockedExtension

LOCAL_EXCLUDES = frozenset({"tests", ".git", "__pycache__", ".pytest_cache", "build"})


def _local_files(folder: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(folder):
        rel = Path(dirpath).relative_to(folder)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in LOCAL_EXCLUDES]
        else:
            dirnames[:] = [d for d in dirnames if d not in (".git", "__pycache__")]
        dirnames.sort()
        for name in sorted(filenames):
            yield (rel / name).as_posix(), Path(dirpath) / name


def tree_digest(folder: Path) -> str:
    """A digest of a local extension folder's files (paths, exec bits, contents); tests/ left out."""
    h = hashlib.sha256()
    for rel, p in _local_files(folder):
        mode = p.lstat().st_mode
        if stat.S_ISLNK(mode):
            h.update(f"L {rel} {os.readlink(p)}\n".encode())
            continue
        if not stat.S_ISREG(mode):
            raise UnsafeArchive(f"{folder}: {rel} is not a regular file, folder or link; refused")
        h.update(f"F {rel} {1 if os.access(p, os.X_OK) else 0} ".encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def copy_local(folder: Path, dest: Path, *, what: str = "") -> None:
    """Copy a source folder (git checkout, local path) by the archive rules: plain files, and links that
    resolve inside it, made last so no copy follows one."""
    what = what or str(folder)
    dest.mkdir(parents=True, exist_ok=True)
    links: dict[tuple[str, ...], str] = {}
    for rel, p in _local_files(folder):
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode):
            links[tuple(rel.split("/"))] = os.readlink(p)
            continue
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeArchive(f"{what}: {rel} is not a regular file, folder or link; refused")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target, follow_symlinks=False)
        os.chmod(target, 0o755 if st.st_mode & 0o111 else 0o644)
    check_links(links, what)
    for parts, link in sorted(links.items()):
        dest.joinpath(*parts[:-1]).mkdir(parents=True, exist_ok=True)
        os.symlink(link, dest.joinpath(*parts))


def folder_candidate(name: str, folder: Path, shown: str) -> Candidate:
    """The extension in ``folder`` (its manifest.yaml, checked by the schema) with its tree digest."""
    mf = folder / "manifest.yaml"
    if not mf.is_file():
        raise NotFound(
            f"local extension {name}: {folder} has no manifest.yaml; fix the path (module load TYPE WORKSPACE "
            f"{name} --source local --path DIR)"
        )
    try:
        meta = safe_load(mf.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValidationError(f"{shown}: malformed YAML: {exc}") from None
    cand = candidate_from_manifest(meta, shown, name)
    cand.source = "local"
    cand.path = folder
    cand.digest = tree_digest(folder)
    return cand


class LocalFinder:
    """One local extension folder (``--source local``, or ``source_type: local``)."""

    kind = "local"

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._candidate: Candidate | None = None

    def candidate(self, name: str, version: str | None = None) -> Candidate:
        if self._candidate is None:
            assert self.folder is not None
            self._candidate = folder_candidate(name, self.folder, display_path(self.folder / "manifest.yaml"))
        return self._candidate

    def versions(self, name: str) -> list[str]:
        return [] if self.folder is None else [self.candidate(name).version]

    def fetch(self, entry: LockedExtension, dest: Path) -> bool:
        what = f"{entry.name} {entry.version}"
        folder = Path(entry.path or "")
        if not (folder / "manifest.yaml").is_file():
            raise NotFound(f"{what}: local folder {folder} has no manifest.yaml (module load --source local)")
        if tree_digest(folder) != entry.digest:
            raise ValidationError(
                f"{what}: local folder {folder} changed since the lock was written; run `provisioning dep resolve`"
            )
        copy_local(folder, dest, what=f"{what} from {folder}")
        return False

    def where(self, name: str) -> str:
        return f"the local extensions folder ({self.folder})"

    def known_names(self) -> tuple[list[str], bool]:
        return [], False
