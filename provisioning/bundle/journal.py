"""The progress journal of an unfinished ``bundle create``: what it was asked, what that resolved to, what is done.

``.bundle-progress`` (JSON lines; left out of tars; removed once ``bundle.json`` is written):

* line 1, the header: ``{"journal": 1, "begun": "YYYY-MM-DD HH:MM:SS UTC", "job": {...}, "resolved": [...],
  "notes": [...]}``. ``job`` is what the create was asked (the origin, the references named or the digest of the
  lock, ``--since``); ``resolved`` is every artifact those references resolved to, each as ``[registry,
  repository, kind, tag, mediaType, digest, size, bundle registry]`` (``null`` for a workspace's create: the
  lock pins the digests itself); ``notes`` are what resolving had to say;
* then one line per finished artifact: ``{"key": ..., "listed": [[repository, digest, mediaType, size, kind,
  tag, subject, registry], ...]}``.

A rerun of the same job into the same OUT finishes the interrupted job as it was begun: the references as they
resolved then (a tag that moved since does not change the bundle half-way), the finished artifacts not asked
about again. A create into a fresh OUT, or into a complete bundle, resolves anew.

The file may come from anywhere (an OUT copied from another machine): it is read bounded and never through a
link; a header that does not parse, names another job, or names a registry none of the references do makes the
whole journal ignored (``ignored`` says why) and the create starts over; every digest, repository, tag, kind and
size in it is checked before use, and a finished entry is only a hint that ``create`` verifies on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..oci.descriptor import MANIFEST_TYPES, MAX_MANIFEST_SIZE
from ..oci.reference import DIGEST, TAG, InvalidReference, validate_repository
from ..safefile import append_file, read_small_file, replace_file
from .manifest import BUNDLE_FILE, KINDS, BundleArtifact

PROGRESS_FILE = ".bundle-progress"
JOURNAL_VERSION = 1
MAX_PROGRESS_BYTES = 64 << 20
MAX_RESOLVED = 100_000  # artifacts of one create; a longer list is not a journal we wrote
MAX_TEXT = 4096  # a note, a registry name
_BEGUN = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


class _Refused(Exception):
    """Why a journal is not used (the reason, worded for the operator)."""


@dataclass(frozen=True)
class Job:
    """What a create was asked: a journal belongs to this job and is used by no other."""

    origin: dict[str, str]
    refs: tuple[str, ...] = ()  # the references named, in full (HOST/NS/NAME:TAG)
    registries: tuple[str, ...] = ()  # the registries they name: the only ones a resolution may read from
    lock: str | None = None  # the digest of the workspace's lock document
    since: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"origin": dict(sorted(self.origin.items())), "refs": list(self.refs), "lock": self.lock,
                "since": self.since}  # fmt: skip


def lock_job(origin: dict[str, str], lock: dict[str, Any], since: str | None) -> Job:
    """The job of a workspace's create: its lock, by digest."""
    text = json.dumps(lock, sort_keys=True, separators=(",", ":")).encode()
    return Job(origin=origin, lock="sha256:" + hashlib.sha256(text).hexdigest(), since=since)


@dataclass(frozen=True)
class Resolved:
    """One artifact a reference resolved to, as the journal records it."""

    registry: str  # the registry it is read from
    repository: str
    kind: str
    tag: str | None
    media_type: str
    digest: str
    size: int
    bundle_registry: str | None  # ``Wanted.registry``: recorded in bundle.json when not the origin

    def to_json(self) -> list[Any]:
        return [self.registry, self.repository, self.kind, self.tag, self.media_type, self.digest, self.size,
                self.bundle_registry]  # fmt: skip


class Journal:
    """The journal in a bundle folder: what an interrupted run of this job left, and this run's notes."""

    def __init__(self, root: Path, job: Job) -> None:
        self.path = root / PROGRESS_FILE
        self.job = job
        self.begun: str | None = None  # when the interrupted run of this job began; None: this run begins it
        self.resolved: list[Resolved] | None = None  # what its references resolved to then
        self.notes: list[str] = []
        self.done: dict[str, list[BundleArtifact]] = {}
        self.ignored: str | None = None  # why a journal found in the folder is not used
        self._lock = threading.Lock()

    @classmethod
    def read(cls, root: Path, job: Job) -> Journal:
        """The journal of ``job`` in ``root``, if an unfinished run of it left one (nothing is written)."""
        journal = cls(root, job)
        if os.path.lexists(journal.path) and not (root / BUNDLE_FILE).exists():
            try:
                journal._load()
            except _Refused as e:
                journal.ignored = str(e)
                journal.begun, journal.resolved, journal.notes, journal.done = None, None, [], {}
        return journal

    def _load(self) -> None:
        raw = read_small_file(self.path, MAX_PROGRESS_BYTES)
        if raw is None:
            raise _Refused(f"it is a link, not a regular file, or larger than {MAX_PROGRESS_BYTES >> 20} MiB")
        first, _, rest = raw.partition(b"\n")
        try:
            header = json.loads(first)
        except (ValueError, RecursionError):
            raise _Refused("its first line is not a header this version of provisioning writes") from None
        if not isinstance(header, dict) or header.get("journal") != JOURNAL_VERSION:
            raise _Refused("its first line is not a header this version of provisioning writes")
        if header.get("job") != self.job.to_json():
            raise _Refused("it was written by a create of other references (or another lock, origin or --since)")
        begun = header.get("begun")
        if not isinstance(begun, str) or not _BEGUN.fullmatch(begun):
            raise _Refused("its header does not say when the create began")
        notes = header.get("notes")
        if not isinstance(notes, list) or not all(_printable(n) for n in notes):  # they are shown on a terminal
            raise _Refused("its notes are not a list of short, printable texts")
        resolved = header.get("resolved")
        self.resolved = None if resolved is None else self._resolution(resolved)
        self.begun, self.notes = begun, notes
        for line in rest.splitlines():
            entry = _done(line)  # a line a crash cut short, or one we did not write, is skipped
            if entry is not None:
                self.done[entry[0]] = entry[1]

    def _resolution(self, items: Any) -> list[Resolved]:
        if not isinstance(items, list) or len(items) > MAX_RESOLVED:
            raise _Refused("its resolution is not a list of artifacts")
        out = []
        for item in items:
            try:
                r = Resolved(*item)
            except TypeError:
                raise _Refused("an artifact of its resolution does not have the fields one has") from None
            if not isinstance(r.registry, str) or r.registry not in self.job.registries:
                shown = str(r.registry)[:100]
                raise _Refused(f"it reads from the registry {shown!r}, which none of the references name")
            if not _valid(r.repository, r.digest, r.size, r.kind, r.tag) or r.media_type not in MANIFEST_TYPES:
                raise _Refused("an artifact of its resolution has a malformed repository, digest, tag, kind or size")
            if r.bundle_registry is not None and not _printable(r.bundle_registry):
                raise _Refused("an artifact of its resolution names a malformed registry")
            out.append(r)
        return out

    def begin(self, resolved: list[Resolved] | None, notes: list[str]) -> None:
        """Write the journal anew, as a regular file of our own (a link at its name is replaced, never written
        through): the header (kept as it was when resuming), then the finished artifacts still worth a look.
        ``resolved`` is what this run's references resolved to (None when they are not all pinned)."""
        if self.begun is None:
            self.begun = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
            self.resolved, self.notes = resolved, list(notes)
        header = {
            "journal": JOURNAL_VERSION,
            "begun": self.begun,
            "job": self.job.to_json(),
            "resolved": None if self.resolved is None else [r.to_json() for r in self.resolved],
            "notes": self.notes,
        }
        lines = [_line(header)] + [_line(_done_doc(key, listed)) for key, listed in self.done.items()]
        replace_file(self.path, b"".join(lines), durable=False)

    def record(self, key: str, listed: list[BundleArtifact]) -> None:
        with self._lock:
            append_file(self.path, _line(_done_doc(key, listed)))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def _done_doc(key: str, listed: list[BundleArtifact]) -> dict[str, Any]:
    items = [[a.repository, a.digest, a.media_type, a.size, a.kind, a.tag, a.subject, a.registry] for a in listed]
    return {"key": key, "listed": items}


def _done(line: bytes) -> tuple[str, list[BundleArtifact]] | None:
    """A finished artifact's line, checked; None for anything else."""
    try:
        doc = json.loads(line)
        key, items = doc["key"], doc["listed"]
        listed = [BundleArtifact(*item) for item in items]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(key, str) or not listed:
        return None
    for a in listed:
        if not _valid(a.repository, a.digest, a.size, a.kind, a.tag) or not isinstance(a.media_type, str):
            return None
        if a.subject is not None and not (isinstance(a.subject, str) and DIGEST.fullmatch(a.subject)):
            return None
        if a.registry is not None and not isinstance(a.registry, str):
            return None
    return key, listed


def _printable(text: Any) -> bool:
    return isinstance(text, str) and len(text) <= MAX_TEXT and text.isprintable()


def _valid(repository: Any, digest: Any, size: Any, kind: Any, tag: Any) -> bool:
    """Whether the fields naming a manifest are well formed (no path, digest or tag from the file goes unchecked)."""
    if not isinstance(repository, str) or not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        return False
    if type(size) is not int or not 0 <= size <= MAX_MANIFEST_SIZE or kind not in KINDS:
        return False
    if tag is not None and not (isinstance(tag, str) and TAG.fullmatch(tag)):
        return False
    try:
        validate_repository(repository)
    except InvalidReference:
        return False
    return True
