"""The end-of-run summary of ``doit publish``: published / unchanged / refused / failed, and a JSON report.

A doit reporter, so it also sees runs with ``-n N`` (results come from files each subtask writes).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

from doit.reporter import ConsoleReporter

from .context import pipeline_context

ORDER = ("published", "unchanged", "refused", "failed")


def summarise(results_dir: Path) -> dict:
    results = []
    for f in sorted((results_dir / "results").glob("*.json")):
        try:
            results.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            continue
    counts = Counter(r["status"] for r in results)
    return {"counts": {k: counts.get(k, 0) for k in ORDER}, "extensions": results}


class PublishReporter(ConsoleReporter):
    """Console output as usual, then the publish summary when publish subtasks ran."""

    def initialize(self, tasks, selected_tasks):
        super().initialize(tasks, selected_tasks)
        self._results_dir = pipeline_context().results_dir
        shutil.rmtree(self._results_dir / "results", ignore_errors=True)

    def complete_run(self):
        super().complete_run()
        report = summarise(self._results_dir)
        if not report["extensions"]:
            return
        self._results_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._results_dir / f".report.{os.getpid()}.json"
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self._results_dir / "report.json")
        c = report["counts"]
        self.outstream.write(
            f"\npublish summary: {c['published']} published, {c['unchanged']} unchanged, "
            f"{c['refused']} refused, {c['failed']} failed (report: {self._results_dir / 'report.json'})\n"
        )
        for r in report["extensions"]:
            if r["status"] in ("refused", "failed"):
                self.outstream.write(f"  {r['status']}: {r['key']}: {r['message']}\n")
