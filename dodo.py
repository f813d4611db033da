"""The extensions pipeline: ``doit publish`` validates, tests, packages and publishes what changed.

    doit list                       # the tasks
    doit validate                   # every extension, one subtask each
    doit package                    # deterministic artifacts under build/packages/
    doit publish                    # to the embedded store build/store/, or:
    doit publish registry=localhost:5000 namespace=provisioning-extensions
    doit -n 2 publish               # in parallel
    doit publish tag=taskservs/kubernetes/v1.28.0   # a release tag: exactly that extension
    doit publish shard=2/4          # part 2 of 4 (a CI matrix job); then: doit publish_catalog
    doit resolve install            # the workspace in $PROVISIONING_WORKSPACE (default ./workspace)

Settings also come from PROVISIONING_REGISTRY, PROVISIONING_NAMESPACE, PROVISIONING_EXTENSIONS
and config/provisioning.yaml. See provisioning/tasks/ for the task creators.
"""

from provisioning.tasks.catalog import publish_catalog_task
from provisioning.tasks.context import pipeline_context
from provisioning.tasks.exitcodes import reporter_can_fail_the_run, unmet_dependency_keeps_the_result
from provisioning.tasks.extensions import (
    batch_task,
    package_tasks,
    preflight_task,
    publish_tasks,
    test_tasks,
    validate_tasks,
)
from provisioning.tasks.report import PublishReporter
from provisioning.tasks.workspace import task_install, task_resolve  # noqa: F401 (doit finds them by name)

unmet_dependency_keeps_the_result()  # a refused extension exits 1, as the contract says, not doit's 2
reporter_can_fail_the_run()  # so does a catalog that could not be written at the end

DOIT_CONFIG = {
    "default_tasks": ["publish"],
    "reporter": PublishReporter,
    "verbosity": 1,
    # one failing extension must not stop the others from publishing; the run still exits non-zero
    "continue": True,
}


def task_validate():
    """Validate every extension: schema, structure, dependencies, KCL (compiled), Nushell (parsed)."""
    yield from validate_tasks(pipeline_context())


def task_validate_batch():
    """Before validating (only when some extension will be): every changed extension in one batch."""
    return batch_task("validate", pipeline_context())


def task_test_batch():
    """Before testing (only when some extension will be): every changed extension's tests in one batch."""
    return batch_task("test", pipeline_context())


def task_test():
    """Run each extension's own tests (Nushell with nu, KCL with the KCL test runner)."""
    yield from test_tasks(pipeline_context())


def task_package():
    """Package each extension as a deterministic OCI artifact under build/packages/."""
    yield from package_tasks(pipeline_context())


def task_publish():
    """Publish new and changed extensions (validated and tested first); unchanged ones cost one request."""
    yield from publish_tasks(pipeline_context())


def task_publish_preflight():
    """Before publishing (only when something will be): ask the destination about every extension at once,
    then validate and test the ones to publish in batches."""
    return preflight_task(pipeline_context())


def task_publish_catalog():
    """The merge job of a sharded publish (shard=I/N): the shards' reports as one summary and report, and the
    catalog written once; without shard reports, the catalog refreshed for every extension of the tree."""
    return publish_catalog_task(pipeline_context())
