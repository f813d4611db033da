"""Install locked extensions into a workspace: a shared verified cache, safe extraction, atomic swaps.

- The cache (``paths.cache_dir()/blobs/sha256/<hex>``) is content-addressed and shared by all
  workspaces. Content is verified when written *and* when read: a tampered blob is removed
  and fetched again, or refused when no registry can supply it. Writers hold a per-digest
  file lock and rename verified temp files into place, so concurrent runs are safe.
- Extraction accepts only plain files, folders and links that stay inside the extension;
  absolute paths, ``..``, devices, fifos and oversized archives are refused.
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
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from .. import paths
from ..archive import ExtractLimits, check_links, safe_extract
from ..errors import DigestMismatch, NotFound, ProvisioningError, UnsafeArchive, ValidationError
from ..extension import TYPE_FOLDERS
from ..oci.descriptor import MANIFEST, Descriptor, InvalidContent
from ..oci.reference import layout_path
from ..oci.store import Storage, Target, Verifier
from ..safefile import read_small_file, write_new_file
from ..yamlfile import safe_load

if TYPE_CHECKING:
    from .config import RegistrySettings, WorkspaceConfig
    from .lock import Lock, LockedExtension

log = logging.getLogger(__name__)

MARKER = ".provisioning-install.json"
STAGING_PREFIX = ".staging-"
MAX_MARKER_BYTES = 64 * 1024
LOCAL_EXCLUDES = frozenset({"tests", ".git", "__pycache__", ".pytest_cache", "build"})


# --------------------------------------------------------------------------- stores


def open_store(settings: RegistrySettings) -> Storage:
    """The store a registry setting names: an embedded layout for a path, else the registry client."""
    if settings.is_path:
        root = Path(layout_path(settings.registry)).expanduser()
        if not root.is_dir():
            raise NotFound(
                f"embedded store {root} does not exist: publish extensions there first, or point "
                "dependencies.extensions.oci.registry (or PROVISIONING_REGISTRY) at the right place"
            )
    return settings.open()


class Stores:
    """Opens each registry once and only when first needed, so a no-op run makes no request."""

    def __init__(self, factory: Callable[[RegistrySettings], Storage] | None = None) -> None:
        self._factory = factory or open_store
        self._open: dict[tuple[str, str], Storage] = {}
        self._mutex = threading.Lock()  # prefetch threads open stores too
        self._mirrors: dict[str, tuple[str, ...]] = {}
        self._mirror_only = False

    def use_mirrors(self, mirrors: dict[str, tuple[str, ...]], mirror_only: bool = False) -> None:
        """Fetch from these mirrors (origin -> mirrors, tried in order) before, or with ``mirror_only`` instead
        of, the origin registry."""
        self._mirrors, self._mirror_only = dict(mirrors), mirror_only

    def storage(self, settings: RegistrySettings) -> Storage:
        key = (settings.registry, settings.namespace)
        with self._mutex:
            if key not in self._open:
                self._open[key] = self._mirrored(settings) or self._factory(settings)
            return self._open[key]

    def _mirrored(self, settings: RegistrySettings) -> Storage | None:
        mirrors = self._mirrors.get(settings.registry)
        if not mirrors:
            return None
        from ..oci.mirror import MirrorStorage
        from .config import RegistrySettings as Settings

        def opener(where: str) -> Callable[[], Storage]:
            return lambda: open_store(Settings(registry=where, namespace=settings.namespace))

        return MirrorStorage(
            settings.registry,
            [(m, opener(m)) for m in mirrors],
            lambda: self._factory(settings),
            mirror_only=self._mirror_only,
        )

    def target(self, settings: RegistrySettings, name: str) -> Target:
        return self.storage(settings).repository(f"{settings.namespace}/{name}")

    @property
    def opened(self) -> int:
        return len(self._open)

    def close(self) -> None:
        """Close what was opened (remote sessions hold connections)."""
        with self._mutex:
            storages, self._open = list(self._open.values()), {}
        for storage in storages:
            close = getattr(storage, "close", None)
            if close is not None:
                close()


# --------------------------------------------------------------------------- cache


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


# --------------------------------------------------------------------------- extraction


# --------------------------------------------------------------------------- local folders


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


# --------------------------------------------------------------------------- git sources

_MONOREPO_TAG = re.compile(rf"^({'|'.join(TYPE_FOLDERS)})/([a-z0-9][a-z0-9._-]*)/v(\d.*)$")
_VERSION_TAG = re.compile(r"^v?(\d+\.\d+\.\d+.*)$")


def _git(args: list[str], *, what: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ADVICE": "0"}
    try:
        r = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise ProvisioningError("git is not installed; install git to use git or gitea extension sources") from None
    except subprocess.TimeoutExpired:
        raise ProvisioningError(f"git {args[0]} of {what} timed out") from None
    if r.returncode != 0:
        detail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProvisioningError(f"git {args[0]} of {what} failed: {detail}")
    return r.stdout


class GitSource:
    """Tags and shallow checkouts of extension repositories, kept under ``paths.cache_dir()/git``.

    The seed's extensions monorepo tags releases ``{type}s/{name}/v{version}``; a repository
    holding one extension may tag plain versions (``v1.2.0``). A checkout is made once per
    repository and tag and shared by workspaces; the lock records its commit.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else paths.cache_dir() / "git"
        self._tags: dict[str, dict[str, str]] = {}
        self._mutex = threading.Lock()

    def tags(self, url: str) -> dict[str, str]:
        """tag -> commit, from one ``git ls-remote`` per repository and run."""
        with self._mutex:
            if url not in self._tags:
                out = _git(["ls-remote", "--tags", "--refs", url], what=url)
                tags = {}
                for line in out.splitlines():
                    sha, _, ref = line.partition("\t")
                    if ref.startswith("refs/tags/"):
                        tags[ref[len("refs/tags/") :]] = sha
                self._tags[url] = tags
            return self._tags[url]

    def versions(self, url: str, name: str) -> dict[str, str]:
        """version -> tag for ``name``: monorepo tags first, else plain version tags."""
        tags = self.tags(url)
        found = {}
        for tag in tags:
            m = _MONOREPO_TAG.match(tag)
            if m and m.group(2) == name:
                found[m.group(3)] = tag
        if not found:
            for tag in tags:
                m = _VERSION_TAG.match(tag)
                if m and "/" not in tag:
                    found[m.group(1)] = tag
        return found

    def checkout(self, url: str, ref: str, commit: str | None = None) -> tuple[Path, str]:
        """A shallow checkout of ``ref`` (and its commit); ``commit`` given: it must still be that commit."""
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        dest = self.root / key / hashlib.sha256(ref.encode()).hexdigest()[:16]
        if (dest / ".git").is_dir():
            head = _git(["rev-parse", "HEAD"], what=url, cwd=dest).strip()
            if commit is None or head == commit:
                return dest, head
            shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".clone-", dir=dest.parent))
        try:
            _git(["clone", "--quiet", "--depth", "1", "--branch", ref, url, str(tmp / "c")], what=f"{url} at {ref}")
            head = _git(["rev-parse", "HEAD"], what=url, cwd=tmp / "c").strip()
            if commit is not None and head != commit:
                raise ValidationError(
                    f"{url} {ref} now points at {head[:12]}, but the lock pinned {commit[:12]}: the tag was moved. "
                    "Run `provisioning dep resolve` (without --locked) if the new commit is trusted"
                )
            try:
                os.rename(tmp / "c", dest)
            except OSError:  # another run made it first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest, _git(["rev-parse", "HEAD"], what=url, cwd=dest).strip()


def extension_in_checkout(checkout: Path, name: str) -> Path | None:
    """The extension's folder in a checkout: ``<type>s/<name>`` (monorepo) or the repository root."""
    for t in TYPE_FOLDERS:
        folder = checkout / t / name
        if (folder / "manifest.yaml").is_file():
            return folder_in_checkout(checkout, f"{t}/{name}", f"{name} in {checkout}")
    return checkout if (checkout / "manifest.yaml").is_file() else None


def folder_in_checkout(checkout: Path, subdir: str, what: str) -> Path:
    """``checkout/subdir``, refused when the name climbs out or a link in the repository leads outside it."""
    parts = Path(subdir).parts
    if Path(subdir).is_absolute() or ".." in parts:
        raise UnsafeArchive(f"{what}: the extension folder {subdir!r} is not a path inside the repository; refused")
    folder = checkout.joinpath(*parts)
    real, top = os.path.realpath(folder), os.path.realpath(checkout)
    if real != top and not real.startswith(top + os.sep):
        raise UnsafeArchive(f"{what}: {subdir} is a link that leads outside the repository; refused")
    return folder


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


def _fetcher(target_fn: Callable[[], Target] | None, desc: Descriptor) -> Callable[[], Iterable[bytes]] | None:
    if target_fn is None:
        return None
    return lambda: target_fn().fetch(desc)


def _layer_of(manifest: bytes, entry: LockedExtension) -> Descriptor:
    from ..oci.descriptor import content_layer

    try:
        doc = json.loads(manifest)
    except ValueError as exc:
        raise ValidationError(f"{entry.name} {entry.version}: manifest {entry.digest} is not JSON: {exc}") from None
    try:
        return content_layer(doc)
    except (ValueError, InvalidContent) as exc:
        raise ValidationError(
            f"{entry.name} {entry.version} ({entry.digest}) is not an extension artifact: {exc}; "
            "it was not published by provisioning"
        ) from None


def _check_extracted(folder: Path, entry: LockedExtension) -> None:
    """The unpacked manifest.yaml must be a valid manifest naming the extension and version the lock says."""
    import yaml

    from ..extension import manifest_problems
    from ..platforms import PlatformError, parse_platform

    mf = folder / "manifest.yaml"
    if not mf.is_file():
        return
    what = f"{entry.name} {entry.version}: the artifact's manifest.yaml"
    try:
        doc = safe_load(mf.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{what} is not readable YAML ({exc.__class__.__name__}); republish it") from None
    platforms = doc.get("platforms") if isinstance(doc, dict) else None
    for text in platforms if isinstance(platforms, list) else []:
        try:
            parse_platform(text)
        except PlatformError as exc:
            raise ValidationError(f"{entry.name} {entry.version}: manifest.yaml platforms: {exc}") from None
    problems = manifest_problems(doc, what)
    if problems:
        raise ValidationError(f"{what} is invalid: " + "; ".join(problems[:5]) + "; republish it fixed")
    if isinstance(doc, dict) and (doc.get("name"), str(doc.get("version"))) != (entry.name, entry.version):
        raise ValidationError(
            f"{entry.name} {entry.version}: the artifact's manifest.yaml says {doc.get('name')} {doc.get('version')}; "
            "the artifact is inconsistent, republish it"
        )
    deps = doc.get("dependencies") if isinstance(doc, dict) else None
    got = (
        {str(k): str(v) if v not in (None, "") else "*" for k, v in (deps or {}).items()}
        if isinstance(deps, (dict, type(None)))
        else None
    )
    locked = getattr(entry, "dependencies", None)
    if got is not None and locked is not None and got != dict(locked):
        raise ValidationError(
            f"{entry.name} {entry.version}: the artifact's manifest.yaml declares dependencies {got}, the lock says "
            f"{dict(locked)}; the lock (or the catalog it came from) does not describe this artifact"
        )


def stage_extension(
    entry: LockedExtension,
    dest: Path,
    *,
    cache: BlobCache,
    stores: Stores | None,
    limits: ExtractLimits,
    settings: RegistrySettings | None = None,
    git: GitSource | None = None,
) -> bool:
    """Fetch (through the cache) and unpack one extension into ``dest``. True if a blob was refetched."""
    what = f"{entry.name} {entry.version}"
    refetched = False
    if entry.source == "git":
        checkout, _ = (git or GitSource()).checkout(entry.url or "", entry.ref or "", entry.commit)
        folder = folder_in_checkout(checkout, entry.subdir or ".", what)
        if tree_digest(folder) != entry.digest:
            raise DigestMismatch(
                f"{what}: {entry.url} at {entry.ref} does not hold what the lock pinned ({entry.digest}); "
                "the checkout in the cache may be damaged: delete it and rerun"
            )
        copy_local(folder, dest, what=f"{what} from {entry.url} at {entry.ref}")
    elif entry.source == "local":
        folder = Path(entry.path or "")
        if not (folder / "manifest.yaml").is_file():
            raise NotFound(f"{what}: local folder {folder} has no manifest.yaml (module load --source local)")
        if tree_digest(folder) != entry.digest:
            raise ValidationError(
                f"{what}: local folder {folder} changed since the lock was written; run `provisioning dep resolve`"
            )
        copy_local(folder, dest, what=f"{what} from {folder}")
    else:
        settings = settings or entry.settings()
        target_fn = (lambda: stores.target(settings, entry.name)) if stores is not None else None
        before = len(cache.corrupt)
        mdesc = Descriptor(entry.media_type or MANIFEST, entry.digest, entry.size)
        manifest = cache.ensure_bytes(mdesc, _fetcher(target_fn, mdesc), f"the manifest of {what}")
        layer = _layer_of(manifest, entry)
        archive = cache.ensure(layer, _fetcher(target_fn, layer), f"the content of {what}")
        safe_extract(archive, dest, what=what, limits=limits)
        _check_extracted(dest, entry)
        refetched = len(cache.corrupt) > before
    write_new_file(dest / MARKER, (json.dumps(marker_for(entry), sort_keys=True, indent=2) + "\n").encode())
    return refetched


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
    from .config import TYPES

    for folder in [ext_root, *(ext_root / f"{t}s" for t in TYPES)]:
        if os.path.islink(folder):  # a workspace from a pull request must not redirect the install elsewhere
            raise UnsafeArchive(
                f"{folder} is a symbolic link; extensions are installed only into real folders of the workspace: "
                "replace the link with a folder"
            )
    with _workspace_lock(root):
        recover(root)
        todo = []
        foreign = []
        for name in lock.order:
            entry = lock.extensions[name]
            if is_installed(root, entry):
                report.unchanged.append(name)
            else:
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
        if not todo and not stale:
            return report
        created_ext_root = not ext_root.exists()
        ext_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=ext_root))
        try:
            for entry in todo:
                dest = staging / "new" / f"{entry.type}s" / entry.name
                settings = entry.settings(config) if entry.source == "oci" else None
                if stage_extension(entry, dest, cache=cache, stores=stores, limits=limits, settings=settings):
                    report.refetched.append(entry.name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if created_ext_root:
                shutil.rmtree(ext_root, ignore_errors=True)
            raise
        # Commit: swap folders in install order; each swap is two renames, undone by recover().
        for entry in todo:
            dest = extension_dir(root, entry.type, entry.name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(dest):
                old = staging / "old" / f"{entry.type}s" / entry.name
                old.parent.mkdir(parents=True, exist_ok=True)
                os.rename(dest, old)
            os.rename(staging / "new" / f"{entry.type}s" / entry.name, dest)
            report.installed.append(entry.name)
        for folder in stale:
            old = staging / "old" / folder.parent.name / folder.name
            old.parent.mkdir(parents=True, exist_ok=True)
            os.rename(folder, old)
            report.removed.append(folder.name)
        shutil.rmtree(staging, ignore_errors=True)
    return report
