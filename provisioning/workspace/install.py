"""Install locked extensions into a workspace: fetched through their finders, unpacked, swapped in atomically.

- Each entry is fetched by the finder of its source (``sources/``): an OCI artifact by digest
  through the verified blob cache (``cache.py``) and extracted safely, a git checkout or a local
  folder copied by the same rules; what lands must be what the lock says.
- Installing is two-phase: every extension is fetched and extracted into a staging folder
  first; only when all succeeded are the folders swapped in (rename), in topological order.
  A failure leaves the workspace as it was; an interrupted swap is rolled back by the next
  run, which then completes the job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from .. import paths
from ..archive import ExtractLimits
from ..errors import UnsafeArchive, ValidationError
from ..extension import TYPES
from ..safefile import read_small_file, write_new_file
from .cache import BlobCache
from .sources import GitSource, finder_for_entry

if TYPE_CHECKING:
    from .config import WorkspaceConfig
    from .lock import Lock, LockedExtension
    from .stores import Stores

log = logging.getLogger(__name__)

MARKER = ".provisioning-install.json"
STAGING_PREFIX = ".staging-"
MAX_MARKER_BYTES = 64 * 1024


# --------------------------------------------------------------------------- install


@dataclass
class InstallReport:
    installed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refetched: list[str] = field(default_factory=list)


def extension_dir(root: Path, type_: str, name: str) -> Path:
    return root / "extensions" / f"{type_}s" / name


def read_marker(folder: Path) -> dict[str, Any] | None:
    raw = read_small_file(folder / MARKER, MAX_MARKER_BYTES)  # never through a link, never a device
    try:
        data = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def marker_for(entry: LockedExtension) -> dict[str, Any]:
    return {"name": entry.name, "type": entry.type, "version": entry.version, "digest": entry.digest}


def is_installed(root: Path, entry: LockedExtension) -> bool:
    return read_marker(extension_dir(root, entry.type, entry.name)) == marker_for(entry)


def _workspace_lock(root: Path) -> FileLock:
    d = paths.cache_dir() / "locks"
    d.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32]
    return FileLock(str(d / f"workspace-{key}.lock"))


def recover(root: Path) -> None:
    """Undo what an interrupted install left: restore swapped-out folders, drop staging folders."""
    ext = root / "extensions"
    if not ext.is_dir():
        return
    for staging in sorted(ext.glob(f"{STAGING_PREFIX}*")):
        old = staging / "old"
        if old.is_dir():
            for type_dir in old.iterdir():
                for folder in type_dir.iterdir():
                    dest = ext / type_dir.name / folder.name
                    if not os.path.lexists(dest):
                        log.warning("restoring %s after an interrupted install", dest)
                        os.rename(folder, dest)
        shutil.rmtree(staging, ignore_errors=True)


def stage_extension(
    entry: LockedExtension,
    dest: Path,
    *,
    cache: BlobCache,
    stores: Stores | None,
    limits: ExtractLimits,
    git: GitSource | None = None,
    config: WorkspaceConfig | None = None,
) -> bool:
    """Fetch (through the cache) and unpack one extension into ``dest``. True if a blob was refetched."""
    finder = finder_for_entry(entry, config=config, stores=stores, cache=cache, limits=limits, git=git)
    refetched = finder.fetch(entry, dest)
    write_new_file(dest / MARKER, (json.dumps(marker_for(entry), sort_keys=True, indent=2) + "\n").encode())
    return refetched


@dataclass
class _Plan:
    """What an install changes: entries to (re)install, folders no longer locked."""

    todo: list[LockedExtension]
    stale: list[Path]


def _refuse_links(ext_root: Path) -> None:
    for folder in [ext_root, *(ext_root / f"{t}s" for t in TYPES)]:
        if os.path.islink(folder):  # a workspace from a pull request must not redirect the install elsewhere
            raise UnsafeArchive(
                f"{folder} is a symbolic link; extensions are installed only into real folders of the workspace: "
                "replace the link with a folder"
            )


def _plan(root: Path, lock: Lock, report: InstallReport, prune: bool) -> _Plan:
    """Compare the lock with the workspace; refuse to replace folders provisioning did not install."""
    todo, foreign = [], []
    for name in lock.order:
        entry = lock.extensions[name]
        if is_installed(root, entry):
            report.unchanged.append(name)
            continue
        todo.append(entry)
        dest = extension_dir(root, entry.type, entry.name)
        if os.path.lexists(dest) and read_marker(dest) is None:
            foreign.append(dest)
    if foreign:
        raise ValidationError(
            "these folders were not installed by provisioning and would be replaced: "
            + ", ".join(str(f.relative_to(root)) for f in foreign)
            + "; move them away (or load them with `provisioning module load TYPE WORKSPACE NAME --source local "
            "--path DIR`) and run again"
        )
    ext_root = root / "extensions"
    stale = []
    if prune and ext_root.is_dir():
        wanted = {(e.type, e.name) for e in lock.extensions.values()}
        for type_dir in sorted(ext_root.glob("*s")):
            if not type_dir.is_dir() or type_dir.name.startswith("."):
                continue
            for folder in sorted(type_dir.iterdir()):
                marker = read_marker(folder)
                if marker and (type_dir.name[:-1], folder.name) not in wanted:
                    stale.append(folder)
    return _Plan(todo, stale)


def _commit(root: Path, staging: Path, plan: _Plan, report: InstallReport) -> None:
    """Swap folders in install order; each swap is two renames, undone by recover()."""
    for entry in plan.todo:
        dest = extension_dir(root, entry.type, entry.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(dest):
            old = staging / "old" / f"{entry.type}s" / entry.name
            old.parent.mkdir(parents=True, exist_ok=True)
            os.rename(dest, old)
        os.rename(staging / "new" / f"{entry.type}s" / entry.name, dest)
        report.installed.append(entry.name)
    for folder in plan.stale:
        old = staging / "old" / folder.parent.name / folder.name
        old.parent.mkdir(parents=True, exist_ok=True)
        os.rename(folder, old)
        report.removed.append(folder.name)


def install(
    root: Path,
    lock: Lock,
    *,
    cache: BlobCache | None = None,
    stores: Stores | None = None,
    limits: ExtractLimits | None = None,
    prune: bool = True,
    config: WorkspaceConfig | None = None,
) -> InstallReport:
    """Make ``<root>/extensions`` match the lock, all or nothing."""
    root = Path(root).resolve()
    cache = cache or BlobCache()
    limits = limits or ExtractLimits.from_env()
    report = InstallReport()
    ext_root = root / "extensions"
    _refuse_links(ext_root)
    with _workspace_lock(root):
        recover(root)
        plan = _plan(root, lock, report, prune)
        if not plan.todo and not plan.stale:
            return report
        created_ext_root = not ext_root.exists()
        ext_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=ext_root))
        try:
            for entry in plan.todo:
                dest = staging / "new" / f"{entry.type}s" / entry.name
                if stage_extension(entry, dest, cache=cache, stores=stores, limits=limits, config=config):
                    report.refetched.append(entry.name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if created_ext_root:
                shutil.rmtree(ext_root, ignore_errors=True)
            raise
        _commit(root, staging, plan, report)
        shutil.rmtree(staging, ignore_errors=True)
    return report
