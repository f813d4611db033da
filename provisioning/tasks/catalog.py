"""The catalog at the end of a publish run, and ``doit publish_catalog``: the merge job of a sharded run.

A sharded run (``shard=I/N``) leaves the catalog alone and writes its report with a ``shard``
section; the CI collects the N reports into ``build/publish/shards/`` and the merge job runs
``doit publish_catalog``, which checks that every shard reported exactly once for the same
destination, turns their results into this run's results (so the reporter prints one summary and
writes one report from all shards) and refreshes the catalog once. Without shard reports it
refreshes the catalog for every extension of the tree.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed

from ..advice import message as error_text
from ..errors import ProvisioningError
from ..publish import PUBLISHED, REFUSED, UNCHANGED
from .context import PipelineContext, _setting, extension_dirs, try_load

CATALOG_STATUSES = (PUBLISHED, UNCHANGED, REFUSED)  # each names a version the registry holds


def _signer(ctx: PipelineContext):  # type: ignore[no-untyped-def]
    """Signs the catalog with the run's key (None when the run does not sign)."""
    if ctx.signing_key is None:
        return None
    from ..signing.sign import registry_signer
    from .signing import signing_key

    return registry_signer(signing_key(ctx), ctx.settings.registry)  # type: ignore[arg-type]


def tree_versions(ctx: PipelineContext) -> list[tuple[str, str, str | None]]:
    """(name, version, None) of every loadable extension of the tree."""
    return [(e.name, e.version, None) for e in (try_load(d) for d in extension_dirs(ctx.extensions_dir)) if e]


def update_catalog(ctx: PipelineContext, results: list[dict[str, Any]], *, whole_tree: bool = False) -> dict[str, Any]:
    """Refresh the destination's catalog for what this run published or found; never raises.

    A merge of shard reports costs what one unsharded run with the same results would; a merge
    without any (``doit publish_catalog`` alone, after deleting versions) checks every repository.
    """
    from ..catalog.refresh import refresh_catalog
    from ..workspace.cache import BlobCache
    from .extensions import storage_for

    versions = [
        (r["name"], r["version"], r.get("digest"))
        for r in results
        if r.get("status") in CATALOG_STATUSES and r.get("key") != "core" and r.get("version")
    ]
    reported = {(name, version) for name, version, _ in versions}
    if whole_tree:  # the merge job: the tree's versions no shard reported are checked too
        versions += [v for v in tree_versions(ctx) if (v[0], v[1]) not in reported]
    s = ctx.settings
    try:
        update = refresh_catalog(
            storage_for(s),
            s.namespace,
            versions,
            names=[d.name for d in extension_dirs(ctx.extensions_dir)],
            registry=s.registry,
            cache=BlobCache(),
            sign=_signer(ctx),
            full=whole_tree and not reported,  # without shard reports: every repository's tag list
        )
    except ProvisioningError as exc:
        return {"status": "failed", "message": f"the catalog was not updated: {error_text(exc)}"}
    return update.to_dict() | {"line": update.line()}


# --------------------------------------------------------------------------- merging the shards' reports


def shard_reports(ctx: PipelineContext) -> list[Path]:
    pattern = _setting("reports", "PROVISIONING_SHARD_REPORTS") or str(ctx.results_dir / "shards" / "*" / "report.json")
    return sorted(Path(p) for p in glob.glob(pattern, recursive=True))


def merge_reports(ctx: PipelineContext, paths: list[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every shard's results, and what is wrong with the set (missing, repeated or foreign shards)."""
    problems: list[str] = []
    results: list[dict[str, Any]] = []
    counts: set[int] = set()
    seen: dict[int, Path] = {}
    owner: dict[str, Path] = {}
    want = {"registry": ctx.settings.registry, "namespace": ctx.settings.namespace}
    for path in paths:
        try:
            doc = json.loads(path.read_text())
            shard = doc["shard"]
            index, count = int(shard["index"]), int(shard["count"])
            destination = doc["run"]["destination"]
            extensions = list(doc["extensions"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}: not a shard's publish report ({exc.__class__.__name__}: {exc})")
            continue
        if destination != want:
            problems.append(f"{path}: shard {index}/{count} published to {destination}, this merge is for {want}")
            continue
        if index in seen:
            problems.append(f"{path}: shard {index}/{count} reported twice (also {seen[index]})")
            continue
        seen[index] = path
        counts.add(count)
        for r in extensions:
            if not isinstance(r, dict) or not isinstance(r.get("key"), str):
                problems.append(f"{path}: a result without a key")
                continue
            if r["key"] in owner:
                problems.append(f"{r['key']} was published by two shards ({owner[r['key']]} and {path})")
                continue
            owner[r["key"]] = path
            results.append(r)
    if len(counts) > 1:
        problems.append(f"the reports disagree on the number of shards ({sorted(counts)})")
    elif counts:
        missing = sorted(set(range(1, counts.pop() + 1)) - set(seen))
        if missing:
            problems.append(
                f"no report from shard(s) {', '.join(map(str, missing))}: their extensions are not in this summary; "
                "rerun the missing shard jobs, then the merge"
            )
    return results, problems


def _merge(ctx: PipelineContext) -> TaskFailed | None:
    from .extensions import _write_json, run_results_dir

    paths = shard_reports(ctx)
    results, problems = merge_reports(ctx, paths)
    for r in results:  # this run's results: the reporter sums them up with the catalog
        _write_json(run_results_dir(ctx) / f"{r['key'].replace('/', '__')}.json", r)
    print(f"merged {len(results)} results from {len(paths)} shard report(s)" if paths else "no shard reports")
    if problems:
        return TaskFailed("\n".join(problems))
    return None


def publish_catalog_task(ctx: PipelineContext) -> dict:
    return {"actions": [(_merge, [ctx])], "uptodate": [False], "verbosity": 2}
