"""doit tasks over the extensions tree, one subtask per extension (``publish:taskservs/kubernetes``).

Every subtask has ``file_dep`` on all files of its extension, so with doit's database only
changed extensions run again; settings that are not files (registry, namespace) are tracked
with ``config_changed``. Publishing itself asks the destination first, so even without the
database an unchanged extension costs one request.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from ..errors import ProvisioningError
from ..extension import validate_extension
from ..package import build_artifact, package_paths, write_artifact
from ..publish import FAILED, Preflight, PublishResult, preflight, publish_extension, upload_ready
from ..settings import RegistrySettings
from .context import PipelineContext, extension_dirs, extension_files, task_key, try_load
from .release import release_filter


@cache
def storage_for(settings: RegistrySettings):
    """One store (one HTTP session) per process and destination, reused by every subtask."""
    return settings.open()


def _known(ctx: PipelineContext) -> list[str]:
    return [p.name for p in extension_dirs(ctx.extensions_dir)]


def _validate(ext_dir: Path, known: list[str]) -> TaskFailed | None:
    try:
        validate_extension(ext_dir, known=known)
    except ProvisioningError as exc:
        return TaskFailed(str(exc))
    return None


def validate_tasks(ctx: PipelineContext):
    known = _known(ctx)
    for ext_dir in extension_dirs(ctx.extensions_dir):
        yield {
            "name": task_key(ext_dir),
            "actions": [(_validate, [ext_dir, known])],
            "file_dep": extension_files(ext_dir),
            "uptodate": [config_changed({"known": known})],
            "verbosity": 1,
        }


def _package(ext_dir: Path, out_dir: Path) -> TaskFailed | None:
    try:
        write_artifact(build_artifact(ext_dir), out_dir)
    except ProvisioningError as exc:
        return TaskFailed(str(exc))
    return None


def package_tasks(ctx: PipelineContext):
    for ext_dir in extension_dirs(ctx.extensions_dir):
        key = task_key(ext_dir)
        ext = try_load(ext_dir)
        out_dir = ctx.packages_dir / key
        yield {
            "name": key,
            "actions": [(_package, [ext_dir, out_dir])],
            "file_dep": extension_files(ext_dir),
            "task_dep": [f"validate:{key}"],
            "targets": [str(p) for p in package_paths(out_dir, ext.name, ext.version)] if ext else [],
            "uptodate": [config_changed({"epoch": os.environ.get("SOURCE_DATE_EPOCH", "")})],
            "clean": True,
        }


def _test(ext_dir: Path) -> TaskFailed | None:
    from ..testing import run_extension_tests

    report = run_extension_tests(ext_dir)
    if not report.ok:
        return TaskFailed(report.summary())
    print(report.summary())
    return None


def test_tasks(ctx: PipelineContext):
    for ext_dir in extension_dirs(ctx.extensions_dir):
        yield {
            "name": task_key(ext_dir),
            "actions": [(_test, [ext_dir])],
            "file_dep": extension_files(ext_dir),
            "verbosity": 2,
        }


def _storage(ctx: PipelineContext):
    return storage_for(ctx.settings)


def _preflight_file(ctx: PipelineContext) -> Path:
    return ctx.results_dir / "preflight.json"


def _run_preflight(ctx: PipelineContext, known: list[str]) -> TaskFailed | None:
    try:
        selected = release_filter(ctx, extension_dirs(ctx.extensions_dir))
        loaded = [e for e in (try_load(d) for d in selected) if e is not None]
        storage, namespace = _storage(ctx), ctx.settings.namespace
        found = preflight(loaded, storage, namespace, known=known, force=ctx.force)
        _write_json(ctx.results_dir / "validated.json", {"checked": len(found)})  # what follows is uploading
        upload_ready(loaded, found, storage, namespace)
    except ProvisioningError as exc:
        return TaskFailed(str(exc))
    _write_json(_preflight_file(ctx), {str(p): pre.to_dict() for p, pre in found.items()})
    return None


def _write_json(out: Path, data: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, out)


def _checked(ctx: PipelineContext, ext_dir: Path) -> Preflight | None:
    """This run's preflight answer for one extension (publish_extension re-checks it is current)."""
    try:
        data = _load_preflight(str(_preflight_file(ctx)), _preflight_file(ctx).stat().st_mtime_ns)
    except OSError:
        return None
    entry = data.get(str(ext_dir))
    return Preflight.from_dict(entry) if entry else None


@cache
def _load_preflight(path: str, mtime_ns: int) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _publish(ext_dir: Path, ctx: PipelineContext, known: list[str]) -> TaskFailed | None:
    s = ctx.settings
    try:
        result = publish_extension(
            try_load(ext_dir) or ext_dir,
            _storage(ctx),
            s.namespace,
            force=ctx.force,
            known=known,
            run_tests=True,
            checked=_checked(ctx, ext_dir),
        )
    except ProvisioningError as exc:
        result = PublishResult(task_key(ext_dir), ext_dir.name, "", "", FAILED, message=str(exc))
    record_result(ctx, result)
    line = f"{result.status:>9}  {result.reference}  {result.digest or ''}".rstrip()
    print(line)
    return None if result.ok else TaskFailed(result.message or result.status)


def record_result(ctx: PipelineContext, result: PublishResult) -> None:
    """One JSON file per extension; the reporter sums them up (works across ``doit -n`` processes)."""
    _write_json(ctx.results_dir / "results" / f"{result.key.replace('/', '__')}.json", result.to_dict())


def publish_tasks(ctx: PipelineContext):
    known = _known(ctx)
    s = ctx.settings
    destination = {"registry": s.registry, "namespace": s.namespace}
    try:
        selected = release_filter(ctx, extension_dirs(ctx.extensions_dir))
    except ProvisioningError as exc:
        yield {"name": "release-tag", "actions": [lambda message=str(exc): TaskFailed(message)], "uptodate": [False]}
        return
    yield from core_tasks(ctx)
    for ext_dir in selected:
        yield {
            "name": task_key(ext_dir),
            "actions": [(_publish, [ext_dir, ctx, known])],
            "file_dep": extension_files(ext_dir),
            "uptodate": [config_changed(destination)],
            "setup": ["publish_preflight"],
            "verbosity": 2,
        }


def preflight_task(ctx: PipelineContext) -> dict:
    """Runs only when some publish subtask will (doit ``setup``): one concurrent sweep and batched checks."""
    return {
        "actions": [(_run_preflight, [ctx, _known(ctx)])],
        "uptodate": [False],
        "verbosity": 1,
    }


def _publish_core(ctx: PipelineContext) -> TaskFailed | None:
    from ..package import build_core_artifact
    from ..publish import publish
    from .release import core_version_error, parse_release_tag

    if error := core_version_error(ctx):
        return TaskFailed(error)
    _, _, version = parse_release_tag(ctx.release_tag or "")
    try:
        artifact = build_core_artifact(ctx.root, version)
        result = publish(artifact, _storage(ctx), "", force=ctx.force, tag=f"v{version}")
    except ProvisioningError as exc:
        return TaskFailed(str(exc))
    record_result(ctx, result)
    print(f"{result.status:>9}  {result.reference}  {result.digest or ''}")
    return None if result.ok else TaskFailed(result.message)


def core_tasks(ctx: PipelineContext):
    """On a core release tag (``v3.5.0``), publish ``provisioning-core:v3.5.0``."""
    from .release import parse_release_tag

    if ctx.release_tag and parse_release_tag(ctx.release_tag)[0] == "core":
        yield {"name": "core", "actions": [(_publish_core, [ctx])], "uptodate": [False], "verbosity": 2}
