"""The embedded store: one OCI image layout per repository under a root folder.

``<root>/<namespace>/<name>/`` holds ``oci-layout``, ``index.json`` (tags as
``org.opencontainers.image.ref.name`` annotations) and ``blobs/sha256/<hex>``: exactly what
``skopeo copy oci:<dir>:<tag>`` reads and what zot serves, so a publish needs no server.

Writes are crash- and race-safe the way oras-go's OCI store is: a blob streams into a temp
file beside its final name while size and digest are checked, and is renamed into place only
when both match, so a reader never sees a half-written or wrong blob. ``index.json`` is
rewritten whole (temp file + ``os.replace``) under a per-repository file lock, so concurrent
processes never lose each other's tags. Reads take no lock: ``os.replace`` is atomic.
Content that is already there is never rewritten (file mtimes stay put), which is what lets
``doit publish`` and a CI republish treat "nothing changed" as "nothing written".

A writer that pushes several manifests into one repository at once (a bundle: an extension
and what is attached to it) wraps them in ``batch()``: index.json is then read once, kept in
memory, and written once at the end under the lock, with every change re-applied to what is on
disk by then, so a concurrent writer's tags are still kept.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..errors import DigestMismatch, NotFound, ProvisioningError, TagConflict
from ..safefile import UnsafeFile, read_bounded, read_small_file, replace_file
from .descriptor import (
    INDEX,
    MANIFEST,
    MANIFEST_TYPES,
    MAX_MANIFEST_SIZE,
    Descriptor,
    InvalidContent,
    check_size,
    parse_manifest,
    sha256_digest,
    successors,
)
from .reference import InvalidReference, validate_repository
from .store import Verifier, verified

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LOCK_FILE = "index.json.lock"
LAYOUT_VERSION = "1.0.0"
CHUNK = 1 << 20
LOCK_TIMEOUT = 120.0

MAX_INDEX_BYTES = 64 << 20  # index.json of a repository with tens of thousands of tags
_DIGEST = re.compile(r"^sha256:([a-f0-9]{64})$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_TMP_PREFIX = ".tmp-"


class LayoutError(ProvisioningError):
    """An OCI image layout on disk is missing a file or holds one that cannot be read."""


def read_layout(path: Path) -> dict[str, Any]:
    """Read and check one layout's ``index.json``; errors name the file and say how to fix it.

    Returns the index document with ``manifests`` always a list of descriptor dicts.
    """
    path = Path(path)
    index_path = path / INDEX_FILE
    _check_layout_file(path / LAYOUT_FILE)
    try:
        raw = read_bounded(index_path, MAX_INDEX_BYTES)
    except UnsafeFile as e:
        raise LayoutError(f"{e}: {path} is not an OCI image layout this tool will read") from None
    except FileNotFoundError:
        raise LayoutError(
            f"{index_path} is missing: {path} is not a complete OCI image layout (it needs oci-layout, index.json "
            f"and blobs/sha256/); restore the file or re-publish into an empty folder"
        ) from None
    except OSError as e:
        raise LayoutError(f"cannot read {index_path}: {e.strerror or e}") from e
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LayoutError(
            f"{index_path} is not valid JSON ({e}); the OCI image layout is corrupt: restore the file from a backup "
            f"or re-publish into an empty folder"
        ) from None
    except RecursionError:
        raise LayoutError(f"{index_path} nests too deeply to be an OCI image index") from None
    if not isinstance(doc, dict):
        raise LayoutError(f"{index_path} must hold a JSON object (an OCI image index), not {type(doc).__name__}")
    if doc.get("schemaVersion", 2) != 2:
        raise LayoutError(f"{index_path} has schemaVersion {doc.get('schemaVersion')!r}; only 2 is supported")
    manifests = doc.get("manifests")
    if manifests is None:
        manifests = doc["manifests"] = []
    if not isinstance(manifests, list):
        raise LayoutError(f"{index_path}: 'manifests' must be a list of descriptors")
    for i, entry in enumerate(manifests):
        try:
            Descriptor.from_dict(entry)
        except InvalidContent as e:
            raise LayoutError(f"{index_path}: manifests[{i}] is not a descriptor: {e}") from None
    return doc


def _check_layout_file(path: Path) -> None:
    """A present ``oci-layout`` must name version 1.x; a missing one is tolerated (we write it last)."""
    try:
        raw = read_bounded(path, 4096)
    except UnsafeFile as e:
        raise LayoutError(str(e)) from None
    except FileNotFoundError:
        return
    try:
        version = json.loads(raw).get("imageLayoutVersion")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise LayoutError(f'{path} is not valid JSON; expected {{"imageLayoutVersion": "1.0.0"}}') from None
    if not isinstance(version, str) or not version.startswith("1."):
        raise LayoutError(f"{path} names imageLayoutVersion {version!r}; only 1.x layouts are supported")


_write_atomic = replace_file  # bundle.create writes bundle.json the same way


def _ref_name(entry: dict[str, Any]) -> str | None:
    return (entry.get("annotations") or {}).get(REF_NAME)


def _entry(desc: Descriptor, tag: str | None) -> dict[str, Any]:
    """An index.json entry for ``desc``: its own annotations, with the ref name set or removed."""
    d = desc.to_dict()
    annotations = {k: v for k, v in (d.get("annotations") or {}).items() if k != REF_NAME}
    if tag is not None:
        annotations[REF_NAME] = tag
    if annotations:
        d["annotations"] = dict(sorted(annotations.items()))
    else:
        d.pop("annotations", None)
    return d


def _descriptor(entry: dict[str, Any]) -> Descriptor:
    """The descriptor an index entry stands for (the tag annotation is the index's business, not the manifest's)."""
    d = dict(entry)
    d["annotations"] = {k: v for k, v in (entry.get("annotations") or {}).items() if k != REF_NAME}
    return Descriptor.from_dict(d)


def _sort_key(entry: dict[str, Any]) -> tuple[int, str, str]:
    name = _ref_name(entry)
    return (0, name, entry["digest"]) if name is not None else (1, "", entry["digest"])


def _validate_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise InvalidReference(
            f"invalid tag {tag!r}: use letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')"
        )
    return tag


class LayoutTarget:
    """One repository: an OCI image layout folder. Created on first push; reads of a missing one are empty."""

    def __init__(self, root: Path, name: str, *, durable: bool = True) -> None:
        self.name = validate_repository(name)
        self.root = Path(root)
        self.durable = durable  # False: no fsync per file; the writer calls LayoutStorage.sync() at the end
        self.path = self.root.joinpath(*name.split("/"))
        self._blobs_dir = self.path / "blobs" / "sha256"
        self._blobs_ready = False  # blobs_dir made, and no link on the way to it, as this instance last looked
        self._batch: _Batch | None = None
        # Repositories of one root are "one registry": copy may mount (hard-link) blobs between them.
        self.registry_host = f"oci-layout:{os.path.abspath(self.root)}"

    def __repr__(self) -> str:
        return f"LayoutTarget({str(self.path)!r})"

    # -- paths -------------------------------------------------------------------------------------------------

    @property
    def blobs_dir(self) -> Path:
        return self._blobs_dir

    def blob_path(self, digest: str) -> Path:
        """Where a blob lives; only well-formed sha256 digests, so no digest can name a path outside."""
        m = _DIGEST.match(digest)
        if not m:
            raise DigestMismatch(f"unsupported or malformed digest {digest!r} (only sha256:<64 hex digits>)")
        return self.blobs_dir / m.group(1)

    # -- reading -----------------------------------------------------------------------------------------------

    def _entries(self) -> list[dict[str, Any]]:
        """index.json's manifests; empty when the repository does not exist yet."""
        if self._batch is not None:
            return self._batch.entries
        if not (self.path / INDEX_FILE).exists() and not (self.path / LAYOUT_FILE).exists():
            return []
        return read_layout(self.path)["manifests"]

    def exists(self, desc: Descriptor) -> bool:
        try:
            return self.blob_path(desc.digest).stat().st_size == desc.size
        except FileNotFoundError:
            return False

    def fetch(self, desc: Descriptor) -> Iterator[bytes]:
        check_size(desc, str(self.path))
        path = self.blob_path(desc.digest)
        try:  # not through a link, never a fifo or device: a hostile layout cannot make a read hang
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise NotFound(f"{self.name}@{desc.digest} not found in {self.path}") from None
        except OSError as e:
            raise LayoutError(f"cannot read {path}: {e.strerror or e} (a link or special file?)") from None
        f = os.fdopen(fd, "rb")
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != desc.size:
            f.close()
            raise DigestMismatch(
                f"{path} holds {st.st_size} bytes (or is not a regular file) but {desc.digest} should have "
                f"{desc.size}: the blob is corrupt; delete it and push again"
            )
        return verified(desc, self._read(f))

    @staticmethod
    def _read(f: Any) -> Iterator[bytes]:
        with f:
            while chunk := f.read(CHUNK):
                yield chunk

    def resolve(self, reference: str) -> Descriptor:
        entries = self._entries()
        if reference.startswith("sha256:"):
            for entry in entries:
                if entry["digest"] == reference:
                    return _descriptor(entry)
            desc = self._unindexed_manifest(reference)
            if desc is not None:
                return desc
        else:
            found = [e for e in entries if _ref_name(e) == reference]
            if found:
                return _descriptor(found[-1])
        raise NotFound(f"{self.name}:{reference} not found in {self.path}")

    def _unindexed_manifest(self, digest: str) -> Descriptor | None:
        """A manifest present only as a blob (a child of an image index written by another tool)."""
        path = self.blob_path(digest)
        try:
            data = read_small_file(path, MAX_MANIFEST_SIZE)
            if data is None or sha256_digest(data) != digest:
                return None
            doc = json.loads(data)
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
            return None
        media_type = doc.get("mediaType") or (INDEX if "manifests" in doc else MANIFEST)
        if media_type not in MANIFEST_TYPES:
            return None
        return Descriptor(media_type, digest, len(data), artifact_type=doc.get("artifactType"))

    def tags(self) -> list[str]:
        return sorted({t for e in self._entries() if (t := _ref_name(e)) is not None})

    # -- writing -----------------------------------------------------------------------------------------------

    @contextmanager
    def _locked(self, *, lay_out: bool = True) -> Iterator[list[dict[str, Any]]]:
        """Hold the repository lock and yield index.json's entries as they are now (creating the layout files if
        missing; with ``lay_out=False`` the caller does, after writing index.json itself). Every
        read-modify-write of index.json happens inside this, so concurrent writers never lose each other's
        changes."""
        self._real_folders(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        if os.path.islink(self.path / LOCK_FILE):  # opening it would truncate whatever it points at
            raise LayoutError(f"{self.path / LOCK_FILE} is a symbolic link; remove it (the store was tampered with)")
        try:
            with FileLock(str(self.path / LOCK_FILE), timeout=LOCK_TIMEOUT):
                if lay_out:
                    self._lay_out()
                    yield read_layout(self.path)["manifests"]
                else:
                    yield read_layout(self.path)["manifests"] if (self.path / INDEX_FILE).exists() else []
        except Timeout:
            raise ProvisioningError(
                f"{self.path / LOCK_FILE} stayed locked for {LOCK_TIMEOUT:.0f}s: another process is writing this "
                f"repository; wait for it to finish and try again"
            ) from None

    def _real_folders(self, folder: Path) -> None:
        """Refuse to write below a link inside the store: a hostile store must not redirect our writes."""
        try:
            rel = folder.relative_to(self.root)
        except ValueError:
            return
        current = self.root
        for part in rel.parts:
            current = current / part
            if os.path.islink(current):
                raise LayoutError(f"{current} is a symbolic link inside the store; refusing to write through it")

    def _lay_out(self) -> None:
        """Write index.json (empty) and then oci-layout where missing: a reader that sees oci-layout can rely on
        index.json. Called with the lock held."""
        if not (self.path / INDEX_FILE).exists():
            self._write_index([])
        if not (self.path / LAYOUT_FILE).exists():
            data = json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode()
            replace_file(self.path / LAYOUT_FILE, data, durable=self.durable)

    def _write_index(self, entries: list[dict[str, Any]]) -> None:
        """Write index.json sorted (tags by name, then untagged manifests by digest): same state, same bytes."""
        doc = {"schemaVersion": 2, "mediaType": INDEX, "manifests": sorted(entries, key=_sort_key)}
        data = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
        replace_file(self.path / INDEX_FILE, data, durable=self.durable)

    def _update_index(self, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None]) -> None:
        """Read-modify-write index.json; ``change(entries)`` returns the new list, or None to write nothing."""
        if self._batch is not None:
            self._batch.change(change)
            return
        with self._locked(lay_out=False) as entries:  # a new repository's index.json is written once, not twice
            new = change(list(entries))
            if new is not None:
                self._write_index(new)
            self._lay_out()

    def _ensure_layout(self) -> None:
        if self._batch is not None:
            self._batch.wrote = True  # the layout files are made when the batch ends
            return
        if not (self.path / LAYOUT_FILE).exists() or not (self.path / INDEX_FILE).exists():
            with self._locked():
                pass

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Keep index.json in memory while the block pushes and tags, and write it once when the block ends.

        Reads in the block see the pending changes. The lock is not held meanwhile (a download may take long):
        at the end each change is applied again, in order, to index.json as it is then, under the lock. When the
        block fails nothing is written: the manifests it pushed stay unlisted, which a rerun takes for absent.
        Only push, tag and reads belong in a batch (manifests from one thread; blobs from any).
        """
        if self._batch is not None:
            yield
            return
        self._batch = _Batch(list(self._entries()))
        try:
            yield
            batch = self._batch
        finally:
            self._batch = None
        if batch.changes:
            self._update_index(batch.replay)
        elif batch.wrote:
            self._ensure_layout()

    def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        """Store content after checking size and digest; what exists already is not written again."""
        if not self.exists(desc):
            self._write_blob(desc, content)
        if desc.is_manifest:
            self._index_manifest(desc)

    def _write_blob(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        final = self.blob_path(desc.digest)
        verifier = Verifier(desc)
        tmp = self.blobs_dir / f"{_TMP_PREFIX}{final.name}-{secrets.token_hex(8)}"
        try:
            with self._new_blob_file(tmp) as f:
                for chunk in content:
                    if chunk:
                        verifier.update(chunk)
                        f.write(chunk)
                verifier.check()
                f.flush()
                if self.durable:
                    os.fsync(f.fileno())
            self._ensure_layout()
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _blob_folder(self) -> None:
        """Make ``blobs/sha256`` (refusing links on the way), once per instance: a bundle writes thousands of
        blobs, and the checks cost a few system calls each."""
        self._real_folders(self.blobs_dir)
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        self._blobs_ready = True

    def _new_blob_file(self, tmp: Path) -> Any:
        if not self._blobs_ready:
            self._blob_folder()
        try:
            return open(tmp, "xb")
        except FileNotFoundError:  # the folder went away since (a test, a cleanup): look again
            self._blob_folder()
            return open(tmp, "xb")

    def _index_manifest(self, desc: Descriptor) -> None:
        """List a pushed manifest in index.json (untagged) so resolve-by-digest and garbage collection see it."""
        if any(e["digest"] == desc.digest for e in self._entries()):
            return

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            if any(e["digest"] == desc.digest for e in entries):
                return None
            return [*entries, _entry(desc, None)]

        self._update_index(change)

    def tag(self, desc: Descriptor, tag: str, *, immutable: bool = False) -> None:
        """Point ``tag`` at an existing manifest; the tag moves if it pointed elsewhere (``immutable``: it may not,
        decided under the repository lock, so of two concurrent pushes exactly one wins). A no-op writes nothing."""
        _validate_tag(tag)
        if not self.exists(desc):
            raise NotFound(f"cannot tag {self.name}:{tag}: manifest {desc.digest} is not in {self.path}")
        if any(_ref_name(e) == tag and e["digest"] == desc.digest for e in self._entries()):
            return

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            current = [e for e in entries if _ref_name(e) == tag]
            if len(current) == 1 and current[0]["digest"] == desc.digest:
                return None
            if immutable and current:
                raise TagConflict(
                    f"{self.name}:{tag} was published with other content ({current[-1]['digest']}) while this "
                    f"push ({desc.digest}) was in flight; the other push won and the version keeps its content",
                    reference=f"{self.path}:{tag}",
                    ours=desc.digest,
                    winner=current[-1]["digest"],
                )
            # Start from the manifest's existing entry (keeps fields such as platform that Descriptor lacks).
            base = next((e for e in entries if e["digest"] == desc.digest), None) or _entry(desc, None)
            new = {**base, "annotations": {**(base.get("annotations") or {}), REF_NAME: tag}}
            if not new.get("mediaType"):
                new["mediaType"] = desc.media_type
            # Drop the tag wherever it was, and the manifest's untagged entry (the tag entry replaces it).
            kept = [e for e in entries if _ref_name(e) != tag and not (e["digest"] == desc.digest and not _ref_name(e))]
            kept.append(new)
            return self._keep_untagged(kept, current)

        self._update_index(change)

    @staticmethod
    def _keep_untagged(entries: list[dict[str, Any]], dropped: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A manifest that lost its last tag stays listed untagged (as in oras-go): only delete() forgets it."""
        listed = {e["digest"] for e in entries}
        for e in dropped:
            if e["digest"] not in listed:
                listed.add(e["digest"])
                entries.append(_entry(_descriptor(e), None))
        return entries

    def push_reference(self, desc: Descriptor, content: Iterable[bytes], tag: str, *, immutable: bool = False) -> None:
        """Push a manifest and tag it with one index.json write (``immutable``: refuse to move an existing tag)."""
        _validate_tag(tag)
        if not self.exists(desc):
            self._write_blob(desc, content)
        self.tag(desc, tag, immutable=immutable)

    def untag(self, tag: str) -> None:
        """Remove one tag; the manifest stays (untagged) unless it is deleted."""

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            dropped = [e for e in entries if _ref_name(e) == tag]
            if not dropped:
                return None
            return self._keep_untagged([e for e in entries if _ref_name(e) != tag], dropped)

        if not any(_ref_name(e) == tag for e in self._entries()):
            raise NotFound(f"{self.name}:{tag} not found in {self.path}")
        self._update_index(change)

    def delete(self, desc: Descriptor, *, gc: bool = True) -> list[str]:
        """Untag a manifest and remove it from index.json; with ``gc``, also remove the blobs of its graph that no
        remaining manifest references. Returns the digests of removed blobs.

        Only the deleted manifest's own graph is collected, so blobs that a concurrent push has written but not
        yet referenced from a manifest are left alone.
        """
        if not any(e["digest"] == desc.digest for e in self._entries()) and not self.exists(desc):
            raise NotFound(f"cannot delete {self.name}@{desc.digest}: not in {self.path}")
        removed: list[str] = []
        with self._locked() as entries:
            # The listed entry knows the media type even when the caller's descriptor does not.
            root = next((_descriptor(e) for e in entries if e["digest"] == desc.digest), desc)
            kept = [e for e in entries if e["digest"] != desc.digest]
            if len(kept) != len(entries):
                self._write_index(kept)
            if gc:
                # After the index write: a crash in between leaves unreferenced blobs, never a dangling tag.
                reachable = self._graph([_descriptor(e) for e in kept])
                for digest in sorted(self._graph([root]) - reachable):
                    self.blob_path(digest).unlink(missing_ok=True)
                    removed.append(digest)
        return removed

    def collect_garbage(self) -> list[str]:
        """Remove every blob (and leftover temp file) that no listed manifest references.

        Unlike ``delete``, this sweeps blobs that a push in flight may be about to reference: run it only when no
        other process is writing the repository.
        """
        removed: list[str] = []
        if not self.path.is_dir():
            return removed
        with self._locked() as entries:
            reachable = self._graph([_descriptor(e) for e in entries])
            for path in sorted(self.blobs_dir.iterdir()) if self.blobs_dir.is_dir() else []:
                if path.name.startswith(_TMP_PREFIX):
                    path.unlink(missing_ok=True)
                elif f"sha256:{path.name}" not in reachable:
                    path.unlink(missing_ok=True)
                    removed.append(f"sha256:{path.name}")
        return removed

    def _graph(self, roots: list[Descriptor]) -> set[str]:
        """Digests of ``roots`` and everything they reference that is present here."""
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            desc = stack.pop()
            if desc.digest in seen or not _DIGEST.match(desc.digest):
                continue
            seen.add(desc.digest)
            if desc.is_manifest:
                try:
                    data = read_small_file(self.blob_path(desc.digest), MAX_MANIFEST_SIZE)
                    stack.extend(successors(desc, data) if data is not None else [])
                except (InvalidContent, DigestMismatch):
                    continue
        return seen

    # -- optional powers -----------------------------------------------------------------------------------------

    def referrers(self, desc: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        """Listed manifests whose ``subject`` is ``desc`` (what the referrers API answers), sorted by digest."""
        found: dict[str, Descriptor] = {}
        for entry in self._entries():
            if entry.get("size", 0) > MAX_MANIFEST_SIZE or entry["digest"] in found:
                continue
            try:
                doc = parse_manifest(read_small_file(self.blob_path(entry["digest"]), MAX_MANIFEST_SIZE) or b"")
            except (InvalidContent, DigestMismatch):
                continue
            subject = doc.get("subject")
            if not isinstance(subject, dict) or subject.get("digest") != desc.digest:
                continue
            kind = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
            if artifact_type is None or kind == artifact_type:
                found[entry["digest"]] = Descriptor(
                    entry.get("mediaType") or doc.get("mediaType") or MANIFEST,
                    entry["digest"],
                    entry["size"],
                    annotations=dict(doc.get("annotations") or {}),
                    artifact_type=kind,
                )
        return [found[d] for d in sorted(found)]

    def mount(self, desc: Descriptor, from_repository: str) -> bool:
        """Hard-link a blob from another repository of the same root (as zot deduplicates); False when that
        repository lacks it or the filesystem cannot link, so the caller copies bytes instead."""
        if desc.is_manifest:
            return False
        source = LayoutTarget(self.root, from_repository, durable=self.durable)
        if not source.exists(desc):
            return False
        if self.exists(desc):
            return True
        if not self._blobs_ready:
            self._blob_folder()
        final = self.blob_path(desc.digest)
        tmp = self.blobs_dir / f"{_TMP_PREFIX}{final.name}-{secrets.token_hex(8)}"
        try:
            os.link(source.blob_path(desc.digest), tmp)
            self._ensure_layout()
            os.replace(tmp, final)
        except OSError:
            tmp.unlink(missing_ok=True)
            return False
        return True


class _Batch:
    """index.json's entries as a batch has changed them, and the changes, to apply again at its end."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.changes: list[Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None]] = []
        self.wrote = False
        self._lock = threading.Lock()

    def change(self, fn: Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None]) -> None:
        with self._lock:
            new = fn(list(self.entries))
            if new is not None:
                self.entries = new
                self.changes.append(fn)

    def replay(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        changed = False
        for fn in self.changes:
            new = fn(list(entries))
            if new is not None:
                entries, changed = new, True
        return entries if changed else None


class LayoutStorage:
    """A folder of OCI image layouts, one per repository: the embedded default store."""

    def __init__(self, root: Path | str, *, durable: bool = True) -> None:
        self.root = Path(root)
        self.registry_host = f"oci-layout:{os.path.abspath(self.root)}"
        # durable=False: files are not fsynced one by one (the cost of a bundle of many small artifacts);
        # whoever writes this way calls sync() before it declares the store complete.
        self.durable = durable

    def __repr__(self) -> str:
        return f"LayoutStorage({str(self.root)!r})"

    def repository(self, name: str) -> LayoutTarget:
        return LayoutTarget(self.root, name, durable=self.durable)

    def sync(self) -> None:
        """Make everything written so far durable at once (one ``sync`` instead of one fsync per file)."""
        if hasattr(os, "sync"):
            os.sync()

    def catalog(self) -> list[str]:
        """Repositories that have at least one tag, sorted."""
        names: list[str] = []
        if not self.root.is_dir():
            return names
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "blobs")
            if INDEX_FILE not in filenames and LAYOUT_FILE not in filenames:
                continue
            name = Path(dirpath).relative_to(self.root).as_posix()
            try:
                if name != "." and self.repository(name).tags():
                    names.append(name)
            except InvalidReference:
                continue
        return sorted(names)
