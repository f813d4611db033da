"""Publishing: idempotent, immutable versions, cheap when nothing changed.

An unchanged extension costs one manifest fetch: the published manifest carries the digest
of the sources it was built from, so a fresh clone recognises it without validating or
packaging. A version already published with other content is refused (bump the version),
unless forced. Pushing is one graph copy from an in-memory store to the destination.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .advice import message as error_text
from .errors import AuthError, NotFound, ProvisioningError, RegistryError, TagConflict
from .extension import Extension, discover, display, invalid, load_extension, validate_extensions
from .oci.memory import MemoryStorage
from .oci.reference import tag_for_version
from .oci.store import Storage, Target, fetch_manifest
from .package import SOURCE_ANNOTATION, Artifact, build_artifact, source_digest

PUBLISHED, UNCHANGED, REFUSED, FAILED = "published", "unchanged", "refused", "failed"


@dataclass
class PublishResult:
    """What happened to one extension; the summary and the JSON report are made of these."""

    key: str
    name: str
    version: str
    reference: str
    status: str
    digest: str | None = None
    message: str = ""
    seconds: float = 0.0
    repository: str = ""
    tag: str = ""
    signature: dict[str, str] | None = None  # with a signing key: status (signed, already-signed), tag, manifest

    @property
    def ok(self) -> bool:
        return self.status in (PUBLISHED, UNCHANGED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _published_source(target: Target, tag: str) -> tuple[str, str | None] | None:
    """(manifest digest, source digest annotation) of what ``tag`` points to, or None if untagged."""
    try:
        desc, raw = fetch_manifest(target, tag)
    except NotFound:
        return None
    try:
        annotations = json.loads(raw).get("annotations") or {}
    except (ValueError, AttributeError):
        annotations = {}
    return desc.digest, annotations.get(SOURCE_ANNOTATION)


Existing = tuple[str, str | None] | None
"""What a tag points to: (manifest digest, source digest annotation), or None when the tag is absent."""


class Sweep:
    """One concurrent look at the destination for many ``(repository, tag)`` pairs, each asked at most once.

    The answers are kept for the rest of this process (a run), so the doit up-to-date check and the
    preflight share one request per extension. An error that says the destination itself is unusable
    (unreachable, credentials refused) stops the sweep: the pairs not yet asked get the same error
    instead of 200 rounds of retries.
    """

    def __init__(self, storage: Storage, workers: int = 16) -> None:
        self.storage = storage
        self.workers = workers
        self.answers: dict[tuple[str, str], Existing] = {}
        self.errors: dict[tuple[str, str], str] = {}
        self._down: str | None = None
        self._lock = threading.Lock()

    def _ask(self, pair: tuple[str, str]) -> None:
        if self._down is not None:
            self.errors[pair] = self._down
            return
        try:
            answer = _published_source(self.storage.repository(pair[0]), pair[1])
        except ProvisioningError as exc:
            message = error_text(exc)
            if destination_down(exc):
                with self._lock:
                    self._down = self._down or message
            self.errors[pair] = message
            return
        self.answers[pair] = answer

    def look(self, pairs: list[tuple[str, str]]) -> None:
        """Ask about every pair not asked yet in this process."""
        todo = list(dict.fromkeys(p for p in pairs if p not in self.answers and p not in self.errors))
        if len(todo) <= 1:
            for pair in todo:
                self._ask(pair)
            return
        with ThreadPoolExecutor(max_workers=min(self.workers, len(todo))) as pool:
            list(pool.map(self._ask, todo))

    def get(self, pair: tuple[str, str]) -> Existing:
        """The answer for ``pair`` (asked now if needed); raises a ProvisioningError with the lookup's error."""
        self.look([pair])
        if pair in self.errors:
            raise ProvisioningError(self.errors[pair])
        return self.answers[pair]


def destination_down(exc: ProvisioningError) -> bool:
    """The destination as a whole is unusable (no answer at all, or credentials refused), not one artifact."""
    return isinstance(exc, AuthError) or (isinstance(exc, RegistryError) and not exc.status)


def repository_of(namespace: str, name: str) -> str:
    return f"{namespace}/{name}".lstrip("/")


def refused_message(name: str, version: str, reference: str) -> str:
    return (
        f"{reference} is already published with different content; versions are immutable. "
        f"Bump 'version' in the manifest.yaml of {name} (and kcl/kcl.mod) and publish again, "
        "or re-publish on purpose with --force (doit publish force=true)"
    )


def push_artifact(artifact: Artifact, target: Target, tag: str | None = None, *, immutable: bool = True) -> None:
    """Copy the artifact's graph into ``target``, tagged with its version.

    Callers have just looked up the tag, so the copy starts at the blobs, and uploads them without
    asking first: a new version's config and layer are new. ``immutable`` (unless forced): a push of
    the same version that landed in the meantime with other content wins, and ``TagConflict`` says so.
    """
    from .oci.copy import copy_graph

    source = MemoryStorage().repository(target.name)
    for desc, data in artifact.parts():
        source.push(desc, [data])
    copy_graph(
        source,
        target,
        artifact.manifest_desc,
        tag=tag or artifact.tag,
        root_missing=True,
        check_blobs=False,
        immutable=immutable,
    )


def _push(result: PublishResult, artifact: Artifact, target: Target, tag: str | None, force: bool) -> None:
    """Push and settle ``result``: published, or refused when a concurrent push of the version won."""
    try:
        push_artifact(artifact, target, tag, immutable=not force)
    except TagConflict as exc:
        result.status, result.digest, result.message = REFUSED, exc.winner, str(exc)
    else:
        result.status, result.digest = PUBLISHED, artifact.manifest_desc.digest


def publish(
    artifact: Artifact,
    storage: Storage,
    namespace: str,
    *,
    force: bool = False,
    tag: str | None = None,
) -> PublishResult:
    """Publish a built artifact unless the same content is already there (``tag`` defaults to its version)."""
    started = time.monotonic()
    tag = tag or artifact.tag
    target = storage.repository(f"{namespace}/{artifact.name}".lstrip("/"))
    result = _result(artifact.extension.key, artifact.name, artifact.version, target, tag)
    existing = _published_source(target, tag)
    same = existing is not None and existing[0] == artifact.manifest_desc.digest
    if not _settled(result, existing, artifact.source_digest, force, same=same):
        _push(result, artifact, target, tag, force)
    result.seconds = time.monotonic() - started
    return result


def _settled(
    result: PublishResult, existing: tuple[str, str | None] | None, digest: str, force: bool, *, same: bool = False
) -> bool:
    """Settle ``result`` when the tag already exists: unchanged (same sources), or refused unless forced.

    Returns False when there is something to push.
    """
    if existing is None:
        return False
    if same or existing[1] == digest:
        result.status, result.digest = UNCHANGED, existing[0]
        return True
    if not force:
        result.status, result.digest = REFUSED, existing[0]
        result.message = refused_message(result.name, result.version, result.reference)
        return True
    return False


def _result(key: str, name: str, version: str, target: Target, tag: str | None = None) -> PublishResult:
    registry = getattr(target, "registry_host", None) or "embedded"
    tag = tag or tag_for_version(version)
    reference = f"{registry}/{target.name}:{tag}"
    return PublishResult(key, name, version, reference, FAILED, repository=target.name, tag=tag)


def test_problems(ext_dirs: list[Path]) -> dict[Path, list[str]]:
    """The extensions' own tests must pass before they are published (run in batches)."""
    from .testing import run_many_extension_tests

    reports = run_many_extension_tests(ext_dirs)
    return {
        path: [] if report.ok else [f"tests failed, not publishing:\n{report.summary()}"]
        for path, report in reports.items()
    }


@dataclass
class Preflight:
    """What one sweep of the destination and one batch of checks learnt about an extension.

    ``problems`` is None when the extension was not checked (already published), else the
    validation and test failures (empty: ready to publish). ``published`` is the manifest digest
    when ``upload_ready`` pushed it and the registry answered the manifest PUT. ``error`` is set
    when the destination could not be asked (unreachable, credentials refused): the extension's
    state there is unknown, so it is neither checked nor uploaded.
    """

    source_digest: str
    existing: Existing
    problems: list[str] | None = None
    published: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preflight:
        existing = tuple(d["existing"]) if d.get("existing") else None
        return cls(d["source_digest"], existing, d.get("problems"), d.get("published"), d.get("error"))  # type: ignore[arg-type]


def _load(ext: Path | Extension) -> Extension:
    return ext if isinstance(ext, Extension) else load_extension(ext)


def preflight(
    ext_dirs: list[Path | Extension],
    storage: Storage,
    namespace: str,
    *,
    known: list[str],
    force: bool = False,
    run_tests: bool = True,
    sweep: Sweep | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[Path, Preflight]:
    """Look up every extension at the destination concurrently, then check the ones to publish in batches.

    This is what makes a CI run over a hundred extensions cheap: one request each when nothing
    changed; when some did, KCL compiles the base schemas once, nu parses all scripts in one or
    two processes, and tests run two at a time.
    """
    exts = []
    for ext_dir in ext_dirs:
        try:
            exts.append(_load(ext_dir))
        except ProvisioningError:
            continue  # publishing it reports the error

    sweep = sweep or Sweep(storage)
    pairs = {ext.path: (repository_of(namespace, ext.name), tag_for_version(ext.version)) for ext in exts}
    sweep.look(list(pairs.values()))
    found: dict[Path, Preflight] = {}
    for ext in exts:
        pair = pairs[ext.path]
        found[ext.path] = Preflight(source_digest(ext.path), sweep.answers.get(pair), error=sweep.errors.get(pair))

    def to_check(pre: Preflight) -> bool:
        if pre.error is not None:
            return False
        return pre.existing is None or (force and pre.existing[1] != pre.source_digest)

    todo = [ext for ext in exts if to_check(found[ext.path])]
    for path, problems in validate_extensions(todo, known).items():
        found[path].problems = problems
    if progress is not None:
        progress("validated")
    if run_tests:
        ready = [ext.path for ext in todo if not found[ext.path].problems]
        for path, problems in test_problems(ready).items():
            found[path].problems = problems
    if progress is not None:
        progress("tested")
    return found


def upload_ready(
    exts: list[Extension],
    found: dict[Path, Preflight],
    storage: Storage,
    namespace: str,
    *,
    workers: int = 8,
) -> None:
    """Package and push every checked, ready extension with uploads overlapping.

    One artifact at a time per doit worker leaves the registry idle between round trips; here
    ``workers`` artifacts are in flight. What fails is left unpublished: its own subtask tries
    again and reports.
    """
    ready = [ext for ext in exts if ext.path in found and found[ext.path].problems == []]
    down: list[str] = []

    def upload(ext: Extension) -> None:
        if down:  # the destination stopped answering: the rest is reported, not retried 200 times
            found[ext.path].error = down[0]
            return
        try:
            artifact = build_artifact(ext)
            push_artifact(artifact, storage.repository(f"{namespace}/{ext.name}"))
        except ProvisioningError as exc:
            if destination_down(exc):
                down.append(error_text(exc))
                found[ext.path].error = down[-1]
            return  # one artifact's failure: its subtask tries again and reports
        found[ext.path].published = artifact.manifest_desc.digest

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(upload, ready))


def publish_extension(
    ext_dir: Path | Extension,
    storage: Storage,
    namespace: str,
    *,
    force: bool = False,
    known: list[str] | None = None,
    run_tests: bool = False,
    checked: Preflight | None = None,
) -> PublishResult:
    """Validate, package and push one extension folder, doing only the work needed.

    Order matters for CI cost: first ask the destination what it has (one request, or none when
    a preflight already asked); only an extension that is new or changed is validated (KCL, nu),
    tested and packaged.
    """
    started = time.monotonic()
    ext = _load(ext_dir)
    target = storage.repository(f"{namespace}/{ext.name}")
    result = _result(ext.key, ext.name, ext.version, target)
    try:
        # a preflight of this run already hashed the sources and asked the destination
        digest = checked.source_digest if checked is not None else source_digest(ext.path)
        existing = checked.existing if checked else _published_source(target, tag_for_version(ext.version))
        if checked is not None and checked.error is not None:
            raise ProvisioningError(checked.error)  # this run could not ask the destination
        if checked is not None and checked.published:
            result.status, result.digest = PUBLISHED, checked.published  # uploaded by this run's preflight
        elif not _settled(result, existing, digest, force):
            if checked is not None and checked.problems is not None:
                problems = checked.problems
            else:
                if known is None:  # the extension's siblings in its tree, as validate_extension does
                    known = [p.name for p in discover(ext.path.parent.parent)]
                problems = validate_extensions([ext], known)[ext.path]
                if not problems and run_tests:
                    problems = test_problems([ext.path])[ext.path]
            if problems:
                raise invalid(ext.path, problems)
            _push(result, build_artifact(ext), target, None, force)
    except ProvisioningError as exc:
        result.status, result.message = FAILED, f"{display(ext.path)}: {error_text(exc)}"
    result.seconds = time.monotonic() - started
    return result
