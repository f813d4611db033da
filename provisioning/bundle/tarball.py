"""A bundle as one deterministic tar: same tree, same bytes; and reading one back safely.

Members are sorted, owned by 0:0 with no names, mtime 0, mode 0644/0755; lock and temp files
are left out. Reading extracts into a fresh folder through the shared safe extraction (no
absolute paths, no ``..``, no links out, no devices), so a hostile tar cannot write outside.

A tar named as a registry or a mirror (``--registry ./bundle.tar``) is unpacked once into the
cache and verified whole (``bundle verify``) before anything reads it; later runs reuse that
tree while the tar's path, size and modification time are unchanged (every read is still
checked against its digest, as from any store).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..archive import ExtractLimits, safe_extract
from ..errors import UnsafeArchive
from .manifest import BundleError

_SKIP_SUFFIXES = (".lock",)
_SKIP_PREFIXES = (".tmp-", ".")
MAX_BUNDLE_BYTES = 1 << 40


def _members(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(_SKIP_PREFIXES))
        for name in sorted(filenames):
            if name.startswith(_SKIP_PREFIXES) or name.endswith(_SKIP_SUFFIXES):
                continue
            out.append(Path(dirpath) / name)
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def write_tar(root: Path, out: Path) -> int:
    """Write ``root`` as a deterministic tar at ``out`` (atomically); returns the number of files."""
    files = _members(root)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            dirs: set[str] = set()
            for path in files:
                rel = path.relative_to(root).as_posix()
                parts = rel.split("/")
                for i in range(1, len(parts)):
                    d = "/".join(parts[:i])
                    if d not in dirs:
                        dirs.add(d)
                        tar.addfile(_info(d + "/", tarfile.DIRTYPE, 0o755))
                info = _info(rel, tarfile.REGTYPE, 0o644)
                info.size = path.stat().st_size
                with open(path, "rb") as f:
                    tar.addfile(info, f)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(files)


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def is_tar(path: Path) -> bool:
    return Path(path).is_file() and tarfile.is_tarfile(path)


def extract_tar(path: Path, into: Path | None = None) -> Path:
    """Unpack a bundle tar into a new folder (under ``into`` or the temp dir) and return it."""
    dest = Path(tempfile.mkdtemp(prefix="bundle-", dir=into))
    try:
        safe_extract(Path(path), dest, what=f"bundle {path}", limits=ExtractLimits(MAX_BUNDLE_BYTES, 10_000_000))
    except UnsafeArchive as e:
        shutil.rmtree(dest, ignore_errors=True)
        raise BundleError(f"{e}; the bundle was not used") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


VERIFIED_MARK = ".verified"


def unpacked(path: Path, cache: Path) -> Path:
    """The tree of the bundle tar ``path``, unpacked safely under ``cache`` and verified whole, once.

    Keyed by the tar's real path, size and modification time: the same file is not unpacked or verified
    again; a changed one gets a fresh tree. A tree is used only once its verification wrote the mark.
    """
    real = Path(path).resolve()
    st = real.stat()
    key = hashlib.sha256(f"{real}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:32]
    folder = cache / "bundles"
    final = folder / key
    if (final / VERIFIED_MARK).is_file():
        return final
    folder.mkdir(parents=True, exist_ok=True)
    tree = extract_tar(real, folder)
    try:
        from .verify import verify_bundle

        try:
            verify_bundle(tree)
        except BundleError as e:
            raise BundleError(f"bundle {path} failed its check, so nothing was read from it: {e}") from None
        (tree / VERIFIED_MARK).write_text(f"{real}\n", encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)  # an older attempt that never got its mark
        try:
            os.rename(tree, final)
        except OSError:  # another process put the same tree there first
            if not (final / VERIFIED_MARK).is_file():
                raise
            shutil.rmtree(tree, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tree, ignore_errors=True)
        raise
    return final
