"""``bundle create``: copy a locked closure (and everything attached to it) into a bundle folder.

Every artifact is copied by the digest the lock pinned, never by what a tag says today, into
the same repository path it has at its origin, so ``--registry ./bundle`` and a mirror entry find
it where the lock says. Artifacts move several at a time. A rerun after an interruption keeps
what is already there once it re-hashes correctly (blobs are written atomically, so only whole
files exist) and copies the rest; ``bundle.json`` is written last, so a bundle without it is
one whose create did not finish.

Speed (a bundle is hundreds of small graphs): files are not fsynced one by one but synced once
before ``bundle.json`` is written (a crash before that leaves files that the rerun re-hashes
anyway); a repository's ``index.json`` is written once per artifact, not once per manifest;
blobs of every artifact share one pool of threads; and each finished artifact is noted in a
progress journal (``journal.py``: ``.bundle-progress``, removed when the bundle is complete),
so a rerun after an interruption asks the registry nothing about an artifact whose content is
all there and verifies, and a resumed ``create OUT REF…`` copies what its references resolved
to when it began instead of resolving them again.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DigestMismatch, NotFound, ProvisioningError
from ..oci.attached import attached
from ..oci.copy import CopyError, CopyOptions, CopyResult, copy_graph
from ..oci.descriptor import Descriptor, successors
from ..oci.layout import INDEX_FILE, LAYOUT_FILE, LayoutError, LayoutStorage, read_layout
from ..oci.store import ReferrersApiAware, Storage, Verifier, fetch_manifest, verified
from ..safefile import replace_file
from .journal import Job, Journal, Resolved, lock_job
from .manifest import BUNDLE_FILE, Bundle, BundleArtifact, BundleError
from .tarball import write_tar

INLINE_BELOW = 1 << 20
"""Blobs smaller than this are copied by the thread copying their artifact; larger ones (image layers) share a
pool, several at a time. Hundreds of artifacts already move side by side; a thread handoff per small blob costs
more than it overlaps."""


@dataclass(frozen=True)
class Wanted:
    """One artifact to put in the bundle: where to read it and how the bundle names it."""

    source: Storage
    repository: str
    kind: str
    tag: str | None = None
    desc: Descriptor | None = None  # pinned (from a lock); else resolved from ``digest`` or ``tag``
    digest: str | None = None
    registry: str | None = None  # recorded when it is not the bundle's origin
    optional: bool = False  # "where reachable": a failure becomes a note, not an error
    host: str | None = None  # the registry ``source`` reads (a resumed create reads there again)


@dataclass
class CreateReport:
    """What a create did, for the summary line."""

    root: Path
    artifacts: int = 0
    copied: int = 0
    reused: int = 0
    bytes_copied: int = 0
    left_out: int = 0  # already in the older lock (--since)
    notes: list[str] = field(default_factory=list)
    tar: Path | None = None


class _VerifiedLayout:
    """A bundle repository whose ``exists`` re-hashes what is on disk once: a resumed create reuses only
    content that verifies (a damaged file is removed and copied again), and a manifest counts as present only
    with every child present."""

    def __init__(self, inner: Any, report: _Counter) -> None:
        self._inner = inner
        self._report = report
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def exists(self, desc: Descriptor) -> bool:
        key = f"{self.name}@{desc.digest}"  # each repository is its own layout with its own blobs
        if self._report.known(key):
            return True
        if not self._inner.exists(desc):
            return self._link(desc, key)
        path = self._inner.blob_path(desc.digest)
        try:
            v = Verifier(desc)
            data = b""
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    v.update(chunk)
                    if desc.is_manifest:
                        data += chunk
            v.check()
            if desc.is_manifest and not all(self.exists(c) for c in successors(desc, data)):
                return False
            if desc.is_manifest and not self._indexed(desc.digest):
                return False  # written just before a crash, never listed: push it again (that lists it)
        except (DigestMismatch, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            return False
        except FileNotFoundError:
            return False
        self._report.reuse(key)
        return True

    def _indexed(self, digest: str) -> bool:
        """Whether index.json lists the manifest: what a registry loaded from the bundle (or a referrers query)
        sees of a repository is what its index lists, not every blob in it."""
        try:
            return any(e.get("digest") == digest for e in self._inner._entries())
        except LayoutError:
            return False

    def _link(self, desc: Descriptor, key: str) -> bool:
        """A blob another repository of the bundle already holds (verified) is hard-linked, not fetched again
        (signatures and referrers share their empty config)."""
        other = None if desc.is_manifest else self._report.holder(desc.digest)
        if other is None or other == self.name or not self._inner.mount(desc, other):
            return False
        self._report.reuse(key)
        return True

    def push(self, desc: Descriptor, content: Any) -> None:
        self._inner.push(desc, content)
        self._report.hold(self.name, desc.digest)

    def resolve(self, reference: str) -> Descriptor:
        desc = self._inner.resolve(reference)
        if not self.exists(desc):
            raise NotFound(f"{self.name}:{reference} is listed but incomplete in the bundle")
        return desc


class _Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verified: set[str] = set()
        self._holders: dict[str, str] = {}  # blob digest -> a repository of the bundle that holds it, verified
        self.reused = 0

    def hold(self, repository: str, digest: str) -> None:
        with self._lock:
            self._holders.setdefault(digest, repository)

    def holder(self, digest: str) -> str | None:
        with self._lock:
            return self._holders.get(digest)

    def known(self, digest: str) -> bool:
        with self._lock:
            return digest in self._verified

    def reuse(self, key: str) -> None:
        with self._lock:
            if key not in self._verified:
                self._verified.add(key)
                self.reused += 1
                repository, _, digest = key.partition("@")
                self._holders.setdefault(digest, repository)


class _Seeded:
    """A source whose root manifest was already read (``fetch_manifest``): copy gets it without a request."""

    def __init__(self, inner: Any, desc: Descriptor, content: bytes) -> None:
        self._inner, self._desc, self._content = inner, desc, content
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def fetch(self, desc: Descriptor) -> Any:
        if desc.digest == self._desc.digest:
            return verified(desc, [self._content])
        return self._inner.fetch(desc)


def _no_referrers_api(target: Any, tags: list[str], digest: str) -> Any:
    """The source as ``attached`` should see it: a registry known to lack the referrers API and without the
    ``sha256-<hex>`` index tag has no referrers to ask for (saves a request per artifact)."""
    known_absent = isinstance(target, ReferrersApiAware) and target.referrers_api is False
    if known_absent and "sha256-" + digest.partition(":")[2] not in tags:
        return _WithoutReferrers(target)
    return target


class _WithoutReferrers:
    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        if name == "referrers":
            raise AttributeError(name)
        return getattr(self._inner, name)


def _repair_indexes(root: Path) -> None:
    """An unfinished bundle may hold an ``index.json`` a crash cut short (files are synced only at the end):
    drop it, so the repository's index is written anew from what the rerun copies and re-hashes."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "blobs" and not d.startswith(".")]
        if INDEX_FILE not in filenames and LAYOUT_FILE not in filenames:
            continue
        try:
            read_layout(Path(dirpath))
        except LayoutError:
            for name in (INDEX_FILE, LAYOUT_FILE):
                (Path(dirpath) / name).unlink(missing_ok=True)


def _resolved(wanted: list[Wanted]) -> list[Resolved] | None:
    """What the journal records of ``wanted``: each artifact pinned by digest and read from a named registry;
    None when one is not (a workspace's core, resolved by its tag at copy time)."""
    out = []
    for w in wanted:
        if w.desc is None or w.host is None or w.optional:
            return None
        d = w.desc
        out.append(Resolved(w.host, w.repository, w.kind, w.tag, d.media_type, d.digest, d.size, w.registry))
    return out


def _key(w: Wanted) -> str:
    return "|".join((w.repository, w.tag or "", w.desc.digest if w.desc else w.digest or ""))


def _reuse(w: Wanted, store: LayoutStorage, counter: _Counter, listed: list[BundleArtifact]) -> bool:
    """Whether an artifact the journal says is done is whole in the bundle: every manifest it listed present
    under its tag and, with everything below it, re-hashing to its digest."""
    if not listed or listed[0].repository != w.repository:
        return False
    target = store.repository(w.repository)
    dst = _VerifiedLayout(target, counter)
    try:
        with target.batch():  # index.json read once (nothing is written)
            tags = set(dst.tags())
            for a in listed:
                if a.repository != w.repository or (a.tag is not None and a.tag not in tags):
                    return False
                desc = Descriptor(a.media_type, a.digest, a.size)
                if (a.tag is not None and dst.resolve(a.tag).digest != a.digest) or not dst.exists(desc):
                    return False
    except (ProvisioningError, OSError):
        return False
    return True


def bundle_root(out: Path, tar: bool) -> Path:
    """The folder a create fills: ``out`` itself, or for a tar ``out.d`` (removed once the tar is written)."""
    return out.with_name(out.name + ".d") if tar else out


def create_bundle(
    out: Path,
    wanted: list[Wanted],
    *,
    origin: dict[str, str],
    lock: dict[str, Any] | None = None,
    since: set[str] | None = None,
    since_digest: str | None = None,
    tar: bool = False,
    parallel: int = 8,
    on_artifact: Callable[[str], None] | None = None,
    journal: Journal | None = None,
    notes: list[str] | None = None,
) -> CreateReport:
    """Fill ``out`` (a folder, or with ``tar`` a tar file built from ``out.d``) with ``wanted`` and all that is
    attached to each; write ``bundle.json`` last.

    ``journal`` is this job's (``Journal.read`` before resolving, so that a resume can take the references as
    they resolved then); without one, the job is the lock (or the origin) and ``since``. ``notes`` are what
    resolving said, recorded for a resume to say again."""
    root = bundle_root(out, tar)
    if tar and out.is_dir():
        raise BundleError(f"{out} is a folder; a tar bundle needs a file name (for example {out}.tar)")
    if not tar and out.exists() and not out.is_dir():
        raise BundleError(f"{out} exists and is not a folder; choose another OUT or remove it")
    report = CreateReport(root=out)
    if journal is None:
        job = lock_job(origin, lock, since_digest) if lock is not None else Job(origin=origin, since=since_digest)
        journal = Journal.read(root, job)
    resuming = journal.begun is not None
    try:
        resumed = root.is_dir() and not (root / BUNDLE_FILE).exists()
        root.mkdir(parents=True, exist_ok=True)
        (root / BUNDLE_FILE).unlink(missing_ok=True)  # the bundle is complete again only when this is rewritten
        if resumed:
            _repair_indexes(root)
    except OSError as e:
        raise _disk_error(out, e) from None
    store = LayoutStorage(root, durable=False)  # synced once, before bundle.json
    counter = _Counter()
    since = since or set()
    artifacts: list[BundleArtifact] = []
    errors: list[BaseException] = []
    mutex = threading.Lock()
    try:
        journal.begin(_resolved(wanted), notes or [])
    except OSError as e:
        raise _disk_error(out, e) from None
    blobs = ThreadPoolExecutor(max_workers=max(2, parallel), thread_name_prefix="bundle-blob")
    options = CopyOptions(executor=blobs, inline_below=INLINE_BELOW)

    def one(w: Wanted) -> None:
        key = _key(w)
        try:
            done = journal.done.get(key)
            if done is not None and done[0].digest not in since and _reuse(w, store, counter, done):
                found: tuple[list[BundleArtifact], list[CopyResult]] | None = (done, [])
            else:
                found = _copy_one(w, store, counter, since, options)
                if found is not None:
                    journal.record(key, found[0])
        except (ProvisioningError, OSError) as e:
            if w.optional:
                with mutex:
                    report.notes.append(f"left out {w.repository}:{w.tag or w.desc}: {e}")
                return
            with mutex:
                errors.append(_explain(out, w, e, journal.path if resuming else None))
            return
        with mutex:
            if found is None:
                report.left_out += 1
            else:
                listed, results = found
                artifacts.extend(listed)
                for r in results:
                    report.copied += r.copied
                    report.bytes_copied += r.bytes_copied
        if on_artifact is not None:
            on_artifact(w.repository)

    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="bundle") as pool:
            list(pool.map(one, wanted))
    finally:
        blobs.shutdown(wait=True, cancel_futures=True)
    if errors:
        raise errors[0]
    report.reused = counter.reused
    unique = {(a.repository, a.tag, a.digest): a for a in artifacts}
    bundle = Bundle(origin=origin, artifacts=list(unique.values()), lock=lock, since=since_digest)
    report.artifacts = len(bundle.artifacts)
    try:
        store.sync()  # everything listed is on disk before bundle.json says the bundle is whole
        replace_file(root / BUNDLE_FILE, bundle.dumps())
        journal.remove()
        if tar:
            write_tar(root, out)
            shutil.rmtree(root)
            report.tar = out
    except OSError as e:
        raise _disk_error(out, e) from None
    return report


def _copy_one(
    w: Wanted, store: LayoutStorage, counter: _Counter, since: set[str], options: CopyOptions
) -> tuple[list[BundleArtifact], list[CopyResult]] | None:
    src: Any = w.source.repository(w.repository)
    if w.desc is not None:
        desc = w.desc
    else:  # resolve and read the manifest in one request where the store can; copy then reads it from memory
        desc, content = fetch_manifest(src, w.digest or w.tag or "latest")
        src = _Seeded(src, desc, content)
    if desc.digest in since:
        return None
    target = store.repository(w.repository)
    dst = _VerifiedLayout(target, counter)
    with target.batch():  # the artifact and what is attached to it: index.json written once
        results = [copy_graph(src, dst, desc, tag=w.tag, options=options)]
        root = BundleArtifact(w.repository, desc.digest, desc.media_type, desc.size, w.kind, w.tag, None, w.registry)
        listed = [root]
        tags = src.tags()
        for item in attached(_no_referrers_api(src, tags, desc.digest), desc, tags=tags):
            d = item.descriptor
            results.append(copy_graph(src, dst, d, tag=item.tag, options=options))
            kind = "referrer" if item.kind == "referrer" else "signature"
            listed.append(BundleArtifact(w.repository, d.digest, d.media_type, d.size, kind, item.tag, desc.digest))
    return listed, results


def _explain(out: Path, w: Wanted, e: BaseException, journal: Path | None = None) -> BaseException:
    cause = e.cause if isinstance(e, CopyError) else e
    if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return _disk_error(out, cause)
    what = f"{w.repository}:{w.tag}" if w.tag else f"{w.repository}@{w.desc.digest if w.desc else '?'}"
    if journal is not None and isinstance(cause, NotFound) and w.desc is not None:
        return BundleError(
            f"bundle create stopped at {what}: {e}. This create resumes one begun earlier and takes {what} as it "
            f"resolved then ({w.desc.digest}), which the registry no longer has: remove {journal} to resolve the "
            "references anew (what is in the bundle and verifies is still reused)"
        )
    return BundleError(
        f"bundle create stopped at {what}: {e}. Nothing incomplete was kept; run the same command again to "
        "finish (what is already in the bundle and verifies is reused)"
    )


def _disk_error(out: Path, e: OSError) -> BundleError:
    reason = os.strerror(e.errno) if e.errno else str(e)
    return BundleError(
        f"cannot write the bundle at {out}: {reason}. Free space on that disk (or choose another OUT) and run the "
        "same command again: what is complete is kept, verified and reused; bundle.json is written only at the end"
    )
