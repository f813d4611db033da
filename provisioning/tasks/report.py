"""The end of every ``doit publish`` run: the summary (published / unchanged / refused / failed) and
``build/publish/report.json``, rewritten atomically, with a ``run`` section (when, destination, commit).

A doit reporter, so it sees every run, also one where doit has nothing to do and runs with ``-n N``:
subtasks that ran write one result file each under this run's own folder; subtasks doit skipped were
confirmed at the destination by their up-to-date check (``DestinationCheck``) and count as unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from doit.reporter import ConsoleReporter

from ..publish import FAILED, PublishResult
from .context import PipelineContext, pipeline_context

ORDER = ("published", "unchanged", "refused", "failed")
STALE_RUN_SECONDS = 24 * 3600  # result folders of killed runs are removed after this long


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _commit(root: Path) -> str | None:
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def read_results(run_dir: Path) -> list[dict[str, Any]]:
    results = []
    for f in sorted(run_dir.glob("*.json")):
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # half-written by a killed worker: its subtask failed and is reported as such
        if isinstance(data, dict) and data.get("status") in ORDER:
            results.append(data)
    return results


SIGNATURE_ORDER = ("signed", "already-signed", "signed-earlier")


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    counts = Counter(r["status"] for r in results)
    report = {"counts": {k: counts.get(k, 0) for k in ORDER}, "extensions": sorted(results, key=lambda r: r["key"])}
    signatures = [r["signature"] for r in results if r.get("signature")]
    if signatures:
        signed = Counter(s["status"] for s in signatures)
        report["signing"] = {
            "key": signatures[0].get("key"),
            "fingerprint": signatures[0].get("fingerprint"),
            "counts": {k: signed.get(k, 0) for k in SIGNATURE_ORDER},
        }
    return report


def run_section(ctx: PipelineContext, started: str) -> dict[str, Any]:
    s = ctx.settings
    return {
        "id": ctx.run,
        "started": started,
        "finished": _now(),
        "destination": {"registry": s.registry, "namespace": s.namespace},
        "commit": _commit(ctx.root),
        "force": ctx.force,
        "tag": ctx.release_tag,
    }


def write_report(ctx: PipelineContext, report: dict[str, Any]) -> Path:
    out = ctx.results_dir / "report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".report.{os.getpid()}.json")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out)
    return out


def summary_lines(report: dict[str, Any], path: Path) -> list[str]:
    c = report["counts"]
    lines = [
        f"publish summary: {c['published']} published, {c['unchanged']} unchanged, "
        f"{c['refused']} refused, {c['failed']} failed (report: {path})"
    ]
    lines += [f"  {r['status']}: {r['key']}: {r['message']}" for r in report["extensions"] if r["status"] in ORDER[2:]]
    if "signing" in report:
        s = report["signing"]["counts"]
        lines.append(
            f"signatures: {s['signed']} signed now, {s['already-signed']} already signed, "
            f"{s['signed-earlier']} signed in an earlier run (key {report['signing']['key']})"
        )
    if "shard" in report:
        sh = report["shard"]
        lines.append(f"shard {sh['index']}/{sh['count']}: the catalog is written by the merge (doit publish_catalog)")
    if "catalog" in report:
        lines.append(report["catalog"].get("line") or report["catalog"].get("message", ""))
    return lines


def finish_run(
    ctx: PipelineContext, results: list[dict[str, Any]], started: str, *, merging: bool = False
) -> tuple[dict[str, Any], Path]:
    """The one place a publish run ends: the report and its summary, and the catalog once.

    A shard leaves the catalog to the merge job (``doit publish_catalog``, ``merging``), which
    refreshes it for every extension of the tree.
    """
    report = summarise(results)
    report["run"] = run_section(ctx, started)
    if ctx.shard is not None:
        report["shard"] = {"index": ctx.shard[0], "count": ctx.shard[1]}
    elif ctx.catalog and (merging or any(r.get("status") in ("published", "unchanged", "refused") for r in results)):
        from .catalog import update_catalog

        report["catalog"] = update_catalog(ctx, results, whole_tree=merging)
    return report, write_report(ctx, report)


def _is_publish(name: str) -> bool:
    return name == "publish" or name.startswith(("publish:", "publish_"))


class PublishReporter(ConsoleReporter):
    """Console output as usual, then, when the run includes publishing, the summary and the report."""

    def initialize(self, tasks, selected_tasks):
        super().initialize(tasks, selected_tasks)
        self._ctx = pipeline_context()
        self._started = _now()
        self._publishing = any(_is_publish(n) for n in (selected_tasks or []))
        self._merging = "publish_catalog" in (selected_tasks or [])
        self.run_failed = False  # set when the end of the run failed (the catalog): the run exits 1
        self._skipped: list[dict[str, Any]] = []
        self._failed: dict[str, str] = {}
        self._clean_stale(self._ctx.results_dir / "results")

    @staticmethod
    def _clean_stale(results: Path) -> None:
        """Result folders of runs that were killed (other runs' live folders are left alone)."""
        if not results.is_dir():
            return
        cutoff = time.time() - STALE_RUN_SECONDS
        for entry in results.iterdir():
            try:
                if entry.is_file() or entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            except OSError:
                continue

    def skip_uptodate(self, task):
        super().skip_uptodate(task)
        from .extensions import UNCHANGED_BY_TASK

        if task.name in UNCHANGED_BY_TASK:
            self._skipped.append(UNCHANGED_BY_TASK[task.name].to_dict())

    def add_failure(self, task, fail):
        super().add_failure(task, fail)
        if task.name.startswith("publish:"):
            lines = fail.get_msg().strip().splitlines() if fail else []
            self._failed[task.name.split(":", 1)[1]] = lines[-1] if lines else "failed"

    def complete_run(self):
        super().complete_run()
        if not self._publishing:
            return
        from .extensions import run_results_dir

        run_dir = run_results_dir(self._ctx)
        results = read_results(run_dir) + self._skipped
        seen = {r["key"] for r in results}
        for key, message in self._failed.items():  # failed before writing a result (doit refused to run it)
            if key not in seen and key != "release-tag":
                results.append(PublishResult(key, key.rsplit("/", 1)[-1], "", "", FAILED, message=message).to_dict())
        report, path = finish_run(self._ctx, results, self._started, merging=self._merging)
        self.run_failed = report.get("catalog", {}).get("status") == "failed"
        shutil.rmtree(run_dir, ignore_errors=True)
        self.outstream.write("\n" + "\n".join(summary_lines(report, path)) + "\n")
