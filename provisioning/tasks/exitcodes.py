"""doit's exit codes as the project's contract says: 0 ok, 1 anything refused or failed, 2 bad usage.

doit itself exits 2 ("error") when a task did not run because one it depends on failed, which is
what the ``publish`` group task reports whenever one extension is refused. The subtask's own
failure already set the run's result, so the group's unmet dependency must not raise it to 2.
Usage errors (unknown variable, bad ``tag=``) exit 2 from ``context.usage_exit``.
"""

from __future__ import annotations

from doit import runner
from doit.exceptions import UnmetDependency


def unmet_dependency_keeps_the_result() -> None:
    """Patch doit's runner once per process (dodo.py calls this when doit loads it)."""
    original = runner.Runner._handle_task_error
    if getattr(original, "keeps_result", False):
        return

    def handle(self, node, base_fail):
        before = self.final_result
        original(self, node, base_fail)
        if isinstance(base_fail, UnmetDependency):
            self.final_result = before if before != runner.SUCCESS else runner.FAILURE

    handle.keeps_result = True  # type: ignore[attr-defined]
    runner.Runner._handle_task_error = handle  # type: ignore[method-assign]


def reporter_can_fail_the_run() -> None:
    """A failure the reporter meets at the end of a run (the catalog step) makes the run exit 1."""
    original = runner.Runner.finish
    if getattr(original, "reporter_fails", False):
        return

    def finish(self):
        result = original(self)
        if getattr(self.reporter, "run_failed", False) and result == runner.SUCCESS:
            self.final_result = runner.FAILURE
            return runner.FAILURE
        return result

    finish.reporter_fails = True  # type: ignore[attr-defined]
    runner.Runner.finish = finish  # type: ignore[method-assign]
