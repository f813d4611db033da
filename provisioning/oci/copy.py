"""One graph copy, as oras-go's: push, pull and mirror are all ``copy(src, ref, dst)``.

The copy walks the manifest graph from the root and moves only what the destination lacks:
a node the destination already has is skipped with its whole subgraph, children land before
their parents (so a registry never sees a manifest whose blobs are missing), shared nodes are
copied once, and "already exists" is success. Blobs move concurrently and streamed; manifests
(small) are pushed in order by the calling thread once their children are in.

Optional powers of the destination are the typed protocols of store.py, checked here with
``isinstance``: ``ReferencePusher`` (push and tag in one step), ``Mounter`` (cross-repository
blob mount on the same registry) and ``BlindPusher`` (upload a blob without asking first). How
a copy runs (concurrency, progress callback, what the caller already knows) is one
``CopyOptions`` value. A store that must send content again (a registry retrying an upload)
keeps what it needs itself; the copy hands every store the same one-shot stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ..errors import NotFound, ProvisioningError, TagConflict
from .descriptor import MAX_MANIFEST_SIZE, Descriptor, InvalidContent, check_size, successors
from .store import BlindPusher, Mounter, ReadOnlyTarget, ReferencePusher, Target

log = logging.getLogger(__name__)

MAX_MANIFEST = MAX_MANIFEST_SIZE  # (attached.py reads it here)
MAX_DEPTH = 32  # nested indexes; real graphs have two or three levels, a hostile one thousands

OnBlob = Callable[[Descriptor, str], None]
"""Progress callback ``on_blob(desc, status)`` with status ``"copied"``, ``"mounted"`` or ``"skipped"``.
Called once per node handled (blobs from worker threads, manifests from the calling thread)."""

# Errors a store raises for an expected failure; anything else is a bug and is not wrapped.
# (requests' exceptions derive from OSError.)
_EXPECTED = (ProvisioningError, OSError)


class CopyError(ProvisioningError):
    """A copy failed; ``side`` says whether reading the source or writing the destination did."""

    def __init__(self, side: str, target: object, desc: Descriptor | None, cause: BaseException) -> None:
        name = getattr(target, "name", None) or repr(target)
        what = f" {_kind(desc)} {desc.digest}" if desc is not None else ""
        verb = "reading from" if side == "source" else "writing to"
        super().__init__(f"copy failed {verb} the {side} {name}{what}: {cause}")
        self.side = side
        self.target = target
        self.descriptor = desc
        self.cause = cause
        self.exit_code = getattr(cause, "exit_code", 1)


def _kind(desc: Descriptor) -> str:
    return "manifest" if desc.is_manifest else "blob"


@dataclass
class CopyResult:
    """What a copy did. ``up_to_date`` is True when the destination already had the whole graph
    (a tag may still have been moved onto it)."""

    root: Descriptor
    copied: int = 0
    bytes_copied: int = 0
    mounted: int = 0
    skipped: int = 0
    up_to_date: bool = False


class _Progress:
    """Thread-safe counters feeding a CopyResult and the on_blob callback."""

    def __init__(self, root: Descriptor, on_blob: OnBlob | None) -> None:
        self.result = CopyResult(root)
        self._lock = threading.Lock()
        self._on_blob = on_blob

    def done(self, desc: Descriptor, status: str, nbytes: int = 0) -> None:
        with self._lock:
            if status == "copied":
                self.result.copied += 1
                self.result.bytes_copied += nbytes
            elif status == "mounted":
                self.result.mounted += 1
            else:
                self.result.skipped += 1
        if self._on_blob is not None:
            self._on_blob(desc, status)


class _SourceStream:
    """Wraps a source stream: counts bytes and remembers a source failure, so an error that surfaces
    inside the destination's ``push`` is still blamed on the source."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                self.size += len(chunk)
                yield chunk
        except _EXPECTED as e:
            self.error = e
            raise


@dataclass(frozen=True)
class CopyOptions:
    """How one copy runs.

    ``concurrency``: blobs in flight. ``on_blob``: progress callback. ``root_missing``: the caller
    already knows the destination lacks the root (publishing just looked), which saves the two
    up-front checks. ``check_blobs=False`` uploads blobs without asking first: for small blobs
    that are new anyway (a new version's config and layer) the check costs as much as the
    upload, and a registry takes a blob it has as a no-op. ``immutable`` asks the destination not
    to move the tag if it holds other content by the time the root lands (a concurrent push won);
    that raises ``TagConflict`` (not wrapped in ``CopyError``) naming the winner. ``executor``: a pool
    shared by many copies (a bundle copies hundreds of small graphs; a pool of threads for each costs
    more than its blobs); without one, each copy starts ``concurrency`` threads of its own.
    ``inline_below``: blobs smaller than this many bytes are copied on the calling thread, in the order
    found, instead of on the pool: when many copies run side by side (a bundle), handing a config or a small
    layer to another thread and waiting for it costs more than it overlaps.
    """

    concurrency: int = 4
    on_blob: OnBlob | None = None
    root_missing: bool = False
    check_blobs: bool = True
    immutable: bool = False
    executor: Executor | None = None
    inline_below: int = 0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")


def _mounter(src: object, dst: object) -> Mounter | None:
    """``dst`` when it can mount from ``src``: another repository of the same registry."""
    if isinstance(src, Mounter) and isinstance(dst, Mounter):
        if src.registry_host == dst.registry_host and getattr(src, "name", None) != getattr(dst, "name", None):
            return dst
    return None


def copy(
    src: ReadOnlyTarget,
    src_ref: str,
    dst: Target,
    dst_tag: str | None = None,
    *,
    concurrency: int = 4,
    on_blob: OnBlob | None = None,
    options: CopyOptions | None = None,
) -> CopyResult:
    """Copy the artifact ``src_ref`` (tag or digest) and its whole graph from ``src`` to ``dst``.

    ``dst_tag`` defaults to ``src_ref`` when that is a tag; copying by digest without ``dst_tag`` leaves the
    destination untagged.
    """
    try:
        root = src.resolve(src_ref)
    except _EXPECTED as e:
        raise CopyError("source", src, None, e) from e
    if dst_tag is None and not src_ref.startswith("sha256:"):
        dst_tag = src_ref
    options = options or CopyOptions(concurrency=concurrency, on_blob=on_blob)
    return copy_graph(src, dst, root, tag=dst_tag, options=options)


def copy_graph(
    src: ReadOnlyTarget,
    dst: Target,
    root: Descriptor,
    *,
    tag: str | None = None,
    concurrency: int = 4,
    on_blob: OnBlob | None = None,
    root_missing: bool = False,
    check_blobs: bool = True,
    immutable: bool = False,
    options: CopyOptions | None = None,
) -> CopyResult:
    """Copy the graph under ``root`` from ``src`` to ``dst`` and optionally tag the root there.

    ``options`` says how (see ``CopyOptions``); the keywords before it build one when it is not given.
    """
    if options is None:
        options = CopyOptions(
            concurrency, on_blob, root_missing=root_missing, check_blobs=check_blobs, immutable=immutable
        )
    progress = _Progress(root, options.on_blob)
    if options.root_missing:
        _GraphCopy(src, dst, progress, options).run(root, tag)
        return progress.result

    # Cheapest check first: a republish of unchanged content costs one request (resolve the tag).
    if tag is not None:
        try:
            current = dst.resolve(tag)
        except _EXPECTED as e:
            if not isinstance(e, NotFound):
                raise CopyError("destination", dst, root, e) from e
            current = None
        if current is not None and current.digest == root.digest:
            progress.done(root, "skipped")
            progress.result.up_to_date = True
            return progress.result
    if _dst(dst, root, dst.exists, root):
        progress.done(root, "skipped")
        progress.result.up_to_date = True
        if tag is not None:
            _dst(dst, root, dst.tag, root, tag)
        return progress.result

    _GraphCopy(src, dst, progress, replace(options, check_blobs=True)).run(root, tag)
    return progress.result


def _dst(dst: object, desc: Descriptor, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a destination method, blaming the destination for an expected failure."""
    try:
        return fn(*args, **kwargs)
    except TagConflict:
        raise  # an outcome the caller reports (who won), not a failure of the copy
    except _EXPECTED as e:
        raise CopyError("destination", dst, desc, e) from e


def _check_tag_free(dst: Target, desc: Descriptor, tag: str) -> None:
    try:
        current = dst.resolve(tag)
    except NotFound:
        return
    if current.digest != desc.digest:
        raise TagConflict(
            f"{dst.name}:{tag} holds {current.digest}, not {desc.digest}: another push of this version won",
            reference=f"{dst.name}:{tag}",
            ours=desc.digest,
            winner=current.digest,
        )


class _GraphCopy:
    """One copy in flight: discovery and manifests on the calling thread, blobs on a pool."""

    def __init__(self, src: ReadOnlyTarget, dst: Target, progress: _Progress, options: CopyOptions) -> None:
        self.src, self.dst, self.progress = src, dst, progress
        self.check_blobs = options.check_blobs
        self.immutable = options.immutable
        self.inline_below = options.inline_below
        self.own_pool = options.executor is None
        self.pool: Executor = options.executor or ThreadPoolExecutor(
            max_workers=options.concurrency, thread_name_prefix="oci-copy"
        )
        self.seen: dict[str, list[Future[None]]] = {}  # digest -> what must finish before a parent may be pushed
        self.manifests: list[tuple[Descriptor, bytes, list[Future[None]]]] = []  # children first
        self.mounter = _mounter(src, dst)

    def run(self, root: Descriptor, tag: str | None) -> None:
        try:
            self._visit(root, known_missing=True)
            for desc, content, children in self.manifests:
                for future in children:
                    future.result()  # re-raises the first failure of a child
                if desc.digest == root.digest and tag is not None:
                    pusher = self.dst if isinstance(self.dst, ReferencePusher) else None
                    if self.immutable and pusher is not None:
                        _dst(self.dst, desc, pusher.push_reference, desc, [content], tag, immutable=True)
                    elif self.immutable:  # a store without the power: check just before tagging
                        _dst(self.dst, desc, self.dst.push, desc, [content])
                        _check_tag_free(self.dst, desc, tag)
                        _dst(self.dst, desc, self.dst.tag, desc, tag)
                    elif pusher is not None:
                        _dst(self.dst, desc, pusher.push_reference, desc, [content], tag)
                    else:
                        _dst(self.dst, desc, self.dst.push, desc, [content])
                        _dst(self.dst, desc, self.dst.tag, desc, tag)
                else:
                    _dst(self.dst, desc, self.dst.push, desc, [content])
                self.progress.done(desc, "copied", len(content))
            if root.digest not in {d.digest for d, _, _ in self.manifests}:
                # A root that is a plain blob: wait for it; it cannot be tagged.
                for future in self.seen[root.digest]:
                    future.result()
        finally:
            if self.own_pool:
                self.pool.shutdown(wait=True, cancel_futures=True)
            else:  # a shared pool: cancel what of ours has not started, wait for the rest
                futures = [f for fs in self.seen.values() for f in fs]
                for f in futures:
                    f.cancel()
                for f in futures:
                    if not f.cancelled():
                        f.exception()

    def _visit(self, desc: Descriptor, *, known_missing: bool = False, depth: int = 0) -> list[Future[None]]:
        """Schedule ``desc`` and its subgraph; returns the futures a parent must wait for."""
        if desc.digest in self.seen:
            return self.seen[desc.digest]
        if depth > MAX_DEPTH:
            raise CopyError(
                "source", self.src, desc, InvalidContent(f"the manifest graph nests deeper than {MAX_DEPTH} levels")
            )
        if not desc.is_manifest:
            if desc.size < self.inline_below:
                self.seen[desc.digest] = []
                self._copy_blob(desc)  # a failure stops the copy here, as it would at the parent's wait
                return []
            future = self.pool.submit(self._copy_blob, desc)
            self.seen[desc.digest] = [future]
            return [future]
        self.seen[desc.digest] = []
        if not known_missing and _dst(self.dst, desc, self.dst.exists, desc):
            self.progress.done(desc, "skipped")
            return []
        content = self._fetch_manifest(desc)
        try:
            children = successors(desc, content)
        except InvalidContent as e:
            raise CopyError("source", self.src, desc, e) from None
        waits: list[Future[None]] = []
        for child in children:
            waits.extend(self._visit(child, depth=depth + 1))
        self.manifests.append((desc, content, waits))
        return waits

    def _fetch_manifest(self, desc: Descriptor) -> bytes:
        if desc.size > MAX_MANIFEST_SIZE:
            raise CopyError(
                "source",
                self.src,
                desc,
                InvalidContent(f"manifest is {desc.size} bytes, over the {MAX_MANIFEST_SIZE} byte limit"),
            )
        try:
            return b"".join(self.src.fetch(desc))
        except _EXPECTED as e:
            raise CopyError("source", self.src, desc, e) from e

    def _copy_blob(self, desc: Descriptor) -> None:
        try:
            check_size(desc, "the manifest")
        except InvalidContent as e:
            raise CopyError("source", self.src, desc, e) from None
        if not self.check_blobs:
            if isinstance(self.dst, BlindPusher):  # a store that checks in push itself
                self.dst.expect_absent(desc)
        elif _dst(self.dst, desc, self.dst.exists, desc):
            self.progress.done(desc, "skipped")
            return
        if self.mounter is not None and self._try_mount(self.mounter, desc):
            self.progress.done(desc, "mounted")
            return
        try:
            stream = _SourceStream(self.src.fetch(desc))
        except _EXPECTED as e:
            raise CopyError("source", self.src, desc, e) from e
        try:
            self.dst.push(desc, stream)
        except _EXPECTED as e:
            if stream.error is not None:
                raise CopyError("source", self.src, desc, stream.error) from stream.error
            raise CopyError("destination", self.dst, desc, e) from e
        self.progress.done(desc, "copied", desc.size)

    def _try_mount(self, mounter: Mounter, desc: Descriptor) -> bool:
        try:
            return bool(mounter.mount(desc, self.src.name))
        except _EXPECTED as e:
            log.debug("mount of %s from %s failed, copying instead: %s", desc.digest, self.src.name, e)
            return False
