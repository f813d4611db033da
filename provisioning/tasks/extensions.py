"""doit tasks over the extensions tree, one subtask per extension (``publish:taskservs/kubernetes``).

Every subtask has ``file_dep`` on all files of its extension, so with doit's database only
changed extensions run again; settings that are not files (registry, namespace) are tracked
with ``config_changed``. Publishing itself asks the destination first, so even without the
database an unchanged extension costs one request.
"""

from __future__ import annotations

import json
import os
import time
from functools import cache
from pathlib import Path

from doit.dependency import UptodateCalculator
from doit.exceptions import TaskFailed
from doit.tools import config_changed

from ..advice import message as error_text
from ..errors import ProvisioningError
from ..extension import validate_extension
from ..package import build_artifact, package_paths, write_artifact
from ..publish import (
    FAILED,
    UNCHANGED,
    Preflight,
    PublishResult,
    Sweep,
    preflight,
    publish_extension,
    upload_ready,
)
from ..settings import RegistrySettings
from .context import PipelineContext, extension_dirs, extension_files, identity, task_key, try_load, usage_exit
from .release import release_filter
from .shards import in_shard


@cache
def storage_for(settings: RegistrySettings):
    """One store (one HTTP session) per process and destination, reused by every subtask."""
    return settings.open()


def _known(ctx: PipelineContext) -> list[str]:
    return [p.name for p in extension_dirs(ctx.extensions_dir)]


def _validate(ext_dir: Path, ctx: PipelineContext, known: list[str]) -> TaskFailed | None:
    from .batch import answer, problems_message

    found = answer("validate", ctx, ext_dir, known)
    if found is None:  # no manifest to batch with: the single check says what is wrong
        try:
            validate_extension(ext_dir, known=known)
        except ProvisioningError as exc:
            return TaskFailed(error_text(exc))
        return None
    return TaskFailed(problems_message(ext_dir, found)) if found else None


def validate_tasks(ctx: PipelineContext):
    known = _known(ctx)
    for ext_dir in extension_dirs(ctx.extensions_dir):
        yield {
            "name": task_key(ext_dir),
            "actions": [(_validate, [ext_dir, ctx, known])],
            "file_dep": extension_files(ext_dir),
            "uptodate": [config_changed({"known": known})],
            "setup": ["validate_batch"],
            "verbosity": 1,
        }


def batch_task(kind: str, ctx: PipelineContext) -> dict:
    """The setup of ``validate``/``test`` subtasks: runs only when one of them will, checks in one batch."""
    from .batch import run_batch

    return {"actions": [(run_batch, [kind, ctx, _known(ctx)])], "uptodate": [False], "verbosity": 1}


def _package(ext_dir: Path, out_dir: Path) -> TaskFailed | None:
    try:
        write_artifact(build_artifact(ext_dir), out_dir)
    except ProvisioningError as exc:
        return TaskFailed(error_text(exc))
    return None


def package_tasks(ctx: PipelineContext):
    for ext_dir in extension_dirs(ctx.extensions_dir):
        key = task_key(ext_dir)
        named = identity(ext_dir)
        out_dir = ctx.packages_dir / key
        yield {
            "name": key,
            "actions": [(_package, [ext_dir, out_dir])],
            "file_dep": extension_files(ext_dir),
            "task_dep": [f"validate:{key}"],
            "targets": [str(p) for p in package_paths(out_dir, *named)] if named else [],
            "uptodate": [config_changed({"epoch": os.environ.get("SOURCE_DATE_EPOCH", "")})],
            "clean": True,
        }


def _test(ext_dir: Path, ctx: PipelineContext, known: list[str]) -> TaskFailed | None:
    from .batch import answer

    found = answer("test", ctx, ext_dir, known)
    if found is None:
        from ..testing import run_extension_tests

        report = run_extension_tests(ext_dir)
        found = {"ok": report.ok, "summary": report.summary()}
    if not found["ok"]:
        return TaskFailed(found["summary"])
    print(found["summary"])
    return None


def test_tasks(ctx: PipelineContext):
    known = _known(ctx)
    for ext_dir in extension_dirs(ctx.extensions_dir):
        yield {
            "name": task_key(ext_dir),
            "actions": [(_test, [ext_dir, ctx, known])],
            "file_dep": extension_files(ext_dir),
            "setup": ["test_batch"],
            "verbosity": 2,
        }


def _storage(ctx: PipelineContext):
    return storage_for(ctx.settings)


@cache
def _sweep_for(storage) -> Sweep:
    return Sweep(storage)


def sweep(ctx: PipelineContext) -> Sweep:
    """This process's answers from the destination (shared by the up-to-date check and the preflight)."""
    return _sweep_for(_storage(ctx))


def _preflight_file(ctx: PipelineContext) -> Path:
    return ctx.results_dir / "preflight.json"


def _run_preflight(ctx: PipelineContext, known: list[str]) -> None:
    """Never fails the run: what it could not establish, each subtask checks for itself or reports."""
    path = _preflight_file(ctx)
    path.unlink(missing_ok=True)  # an earlier run's answers must never be read as this run's
    try:
        selected = in_shard(release_filter(ctx, extension_dirs(ctx.extensions_dir)), ctx.shard)
        loaded = [e for e in (try_load(d) for d in selected) if e is not None]
        storage, namespace = _storage(ctx), ctx.settings.namespace
        marks: dict[str, float] = {"started": time.time()}

        def progress(step: str) -> None:  # when each stage ended (benchmarks split a run with it)
            marks[step] = time.time()
            _write_json(ctx.results_dir / "progress.json", marks)

        found = preflight(loaded, storage, namespace, known=known, force=ctx.force, sweep=sweep(ctx), progress=progress)
        from .signing import signing_key

        signing_key(ctx)  # nothing is uploaded when the run must sign and cannot
        upload_ready(loaded, found, storage, namespace)
    except ProvisioningError as exc:
        print(f"preflight: {error_text(exc)}\n(each extension is checked on its own)")
        return
    answers = {str(p): pre.to_dict() for p, pre in found.items()}
    _PREFLIGHT[ctx.run] = answers
    _write_json(path, {"run": ctx.run, "extensions": answers})


# this process's preflight answers by run id (doit -n N workers read the file, checked for the same run)
_PREFLIGHT: dict[str, dict] = {}


def _write_json(out: Path, data: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, out)


def _checked(ctx: PipelineContext, ext_dir: Path) -> Preflight | None:
    """This run's preflight answer for one extension; None (check for yourself) when this run has none."""
    answers = _PREFLIGHT.get(ctx.run)
    if answers is None:
        try:
            data = _load_preflight(str(_preflight_file(ctx)), _preflight_file(ctx).stat().st_mtime_ns)
        except OSError:
            return None
        if data.get("run") != ctx.run:
            return None
        answers = data.get("extensions") or {}
    entry = answers.get(str(ext_dir))
    try:
        return Preflight.from_dict(entry) if entry else None
    except (KeyError, TypeError, ValueError):
        return None


@cache
def _load_preflight(path: str, mtime_ns: int) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _publish(ext_dir: Path, ctx: PipelineContext, known: list[str]) -> TaskFailed | dict:
    from .signing import sign_result, signing_key

    s = ctx.settings
    try:
        signing_key(ctx)  # a key that cannot be used stops the run before anything is published unsigned
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
        result = PublishResult(task_key(ext_dir), ext_dir.name, "", "", FAILED, message=error_text(exc))
    sign_result(ctx, _storage(ctx), result)
    record_result(ctx, result)
    line = f"{result.status:>9}  {result.reference}  {result.digest or ''}".rstrip()
    print(line)
    if not result.ok:
        return TaskFailed(result.message or result.status)
    # doit keeps these: the next run's up-to-date check asks the destination for exactly this
    return {"repository": result.repository, "tag": result.tag, "digest": result.digest, "result": result.to_dict()}


def record_result(ctx: PipelineContext, result: PublishResult) -> None:
    """One JSON file per extension and run; the reporter sums them up (works across ``doit -n`` processes)."""
    _write_json(run_results_dir(ctx) / f"{result.key.replace('/', '__')}.json", result.to_dict())


class DestinationCheck(UptodateCalculator):
    """doit ``uptodate`` of a publish subtask: what the last successful run published is still there.

    The first subtask asked triggers one concurrent sweep over every publish subtask doit remembers
    (one manifest request each; a file read for an embedded store), so a warm run still notices a
    deleted or re-tagged artifact, and republishes it. A subtask found up to date is recorded as
    ``unchanged`` for this run's summary, with the digest the destination just confirmed.
    """

    def __init__(self, ctx: PipelineContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.dep_manager = None

    def setup(self, dep_manager, tasks_dict) -> None:
        super().setup(dep_manager, tasks_dict)
        self.dep_manager = dep_manager

    def _remembered(self) -> dict[str, dict]:
        if self.ctx.run not in _REMEMBERED:
            found = {}
            for name in self.tasks_dict:
                if name.startswith("publish:"):
                    values = self.dep_manager.get_values(name)
                    if values.get("repository") and values.get("tag") and values.get("digest"):
                        found[name] = values
            sweep(self.ctx).look([(v["repository"], v["tag"]) for v in found.values()])
            _REMEMBERED[self.ctx.run] = found
        return _REMEMBERED[self.ctx.run]

    def __call__(self, task, values) -> bool:
        if self.ctx.force:
            return False
        remembered = self._remembered().get(task.name)
        if remembered is None:
            return False
        pair = (remembered["repository"], remembered["tag"])
        answer = sweep(self.ctx).answers.get(pair)
        if answer is None or answer[0] != remembered["digest"]:
            return False  # gone, moved, or the destination could not say: the subtask runs and finds out
        data = dict(remembered.get("result") or {})
        if self.ctx.signing_key is not None:
            signature = data.get("signature")
            if not signature or signature.get("key") != str(self.ctx.signing_key):
                return False  # not signed by this run's key yet: the subtask signs it
            data["signature"] = {**signature, "status": "signed-earlier"}  # not re-checked by this run
        data.update(status=UNCHANGED, digest=answer[0], message="", seconds=0.0)
        try:
            UNCHANGED_BY_TASK[task.name] = PublishResult(**data)
        except TypeError:
            return False
        return True


_REMEMBERED: dict[str, dict[str, dict]] = {}
# publish subtasks doit skipped, confirmed at the destination by this run (the reporter adds them)
UNCHANGED_BY_TASK: dict[str, PublishResult] = {}


def run_results_dir(ctx: PipelineContext) -> Path:
    return ctx.results_dir / "results" / ctx.run


def publish_tasks(ctx: PipelineContext):
    known = _known(ctx)
    s = ctx.settings
    from .signing import key_identity

    destination = {"registry": s.registry, "namespace": s.namespace, "signing": key_identity(ctx)}
    try:
        selected = in_shard(release_filter(ctx, extension_dirs(ctx.extensions_dir)), ctx.shard)
    except ProvisioningError as exc:
        usage_exit(str(exc))
    yield from core_tasks(ctx)
    check = DestinationCheck(ctx)
    for ext_dir in selected:
        yield {
            "name": task_key(ext_dir),
            "actions": [(_publish, [ext_dir, ctx, known])],
            "file_dep": extension_files(ext_dir),
            "uptodate": [config_changed(destination), check],
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
    from .release import parse_release_tag
    from .signing import sign_result, signing_key

    _, _, version = parse_release_tag(ctx.release_tag or "")
    try:
        signing_key(ctx)
        artifact = build_core_artifact(ctx.root, version)
        result = publish(artifact, _storage(ctx), "", force=ctx.force, tag=f"v{version}")
    except ProvisioningError as exc:
        result = PublishResult("core", "provisioning-core", version, f"provisioning-core:v{version}", FAILED)
        result.message = error_text(exc)
    sign_result(ctx, _storage(ctx), result)
    record_result(ctx, result)
    print(f"{result.status:>9}  {result.reference}  {result.digest or ''}".rstrip())
    return None if result.ok else TaskFailed(result.message)


def core_tasks(ctx: PipelineContext):
    """On a core release tag (``v3.5.0``), publish ``provisioning-core:v3.5.0``."""
    from .release import core_version_error, parse_release_tag

    if ctx.shard is not None and ctx.shard[0] != 1:
        return  # one shard publishes the core
    if ctx.release_tag and parse_release_tag(ctx.release_tag)[0] == "core":
        if error := core_version_error(ctx):
            usage_exit(error)
        yield {"name": "core", "actions": [(_publish_core, [ctx])], "uptodate": [False], "verbosity": 2}
