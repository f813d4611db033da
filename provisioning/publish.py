"""Publishing: idempotent, immutable versions, cheap when nothing changed.

An unchanged extension costs one manifest fetch: the published manifest carries the digest
of the sources it was built from, so a fresh clone recognises it without validating or
packaging. A version already published with other content is refused (bump the version),
unless forced. Pushing is one graph copy from an in-memory store to the destination.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import NotFound, ProvisioningError
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


def refused_message(name: str, version: str, reference: str) -> str:
    return (
        f"{reference} is already published with different content; versions are immutable. "
        f"Bump 'version' in the manifest.yaml of {name} (and kcl/kcl.mod) and publish again, "
        "or re-publish on purpose with --force (doit publish force=true)"
    )


def push_artifact(artifact: Artifact, target: Target, tag: str | None = None) -> None:
    """Copy the artifact's graph into ``target``, tagged with its version.

    Callers have just looked up the tag, so the copy starts at the blobs, and uploads them without
    asking first: a new version's config and layer are new.
    """
    from .oci.copy import copy_graph

    source = MemoryStorage().repository(target.name)
    for desc, data in artifact.parts():
        source.push(desc, [data])
    copy_graph(source, target, artifact.manifest_desc, tag=tag or artifact.tag, root_missing=True, check_blobs=False)


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
        push_artifact(artifact, target, tag)
        result.status, result.digest = PUBLISHED, artifact.manifest_desc.digest
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
    reference = f"{registry}/{target.name}:{tag or tag_for_version(version)}"
    return PublishResult(key=key, name=name, version=version, reference=reference, status=FAILED)


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
    when ``upload_ready`` already pushed it.
    """

    source_digest: str
    existing: tuple[str, str | None] | None
    problems: list[str] | None = None
    published: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_digest": self.source_digest,
            "existing": self.existing,
            "problems": self.problems,
            "published": self.published,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preflight:
        existing = tuple(d["existing"]) if d.get("existing") else None
        return cls(d["source_digest"], existing, d.get("problems"), d.get("published"))  # type: ignore[arg-type]


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
    workers: int = 8,
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

    def look(ext: Extension) -> tuple[Extension, Preflight]:
        target = storage.repository(f"{namespace}/{ext.name}")
        existing = _published_source(target, tag_for_version(ext.version))
        return ext, Preflight(source_digest(ext.path), existing)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = {ext.path: pre for ext, pre in pool.map(look, exts)}
    todo = [
        ext
        for ext in exts
        if found[ext.path].existing is None or (force and found[ext.path].existing[1] != found[ext.path].source_digest)  # type: ignore[index]
    ]
    for path, problems in validate_extensions(todo, known).items():
        found[path].problems = problems
    if run_tests:
        ready = [ext.path for ext in todo if not found[ext.path].problems]
        for path, problems in test_problems(ready).items():
            found[path].problems = problems
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

    def upload(ext: Extension) -> None:
        try:
            artifact = build_artifact(ext)
            push_artifact(artifact, storage.repository(f"{namespace}/{ext.name}"))
        except ProvisioningError:
            return
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
            artifact = build_artifact(ext)
            push_artifact(artifact, target)
            result.status, result.digest = PUBLISHED, artifact.manifest_desc.digest
    except ProvisioningError as exc:
        result.status, result.message = FAILED, f"{display(ext.path)}: {exc}"
    result.seconds = time.monotonic() - started
    return result
