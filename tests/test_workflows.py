"""The CI workflows are checked with the real actionlint, and do what the release process says."""

import shutil
import subprocess
from pathlib import Path

import yaml

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"


def test_workflows_pass_actionlint():
    actionlint = shutil.which("actionlint")  # the upstream one .ci/go-tools builds at its pin (on PATH first)
    assert actionlint, "actionlint is not installed: run `bash .ci/go-tools` (it builds it at a pinned version)"
    version = subprocess.run([actionlint, "--version"], capture_output=True, text=True).stdout.split()
    assert version and version[0].startswith("v1."), f"{actionlint} is not rhysd/actionlint: {version}"
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


def test_sharded_publish_is_a_matrix_over_every_shard_and_one_merge():
    doc = yaml.safe_load((WORKFLOWS / "publish-sharded.yml").read_text())
    shards = int(doc["env"]["SHARDS"])
    job = doc["jobs"]["publish"]
    assert job["strategy"]["matrix"]["shard"] == list(range(1, shards + 1))  # every part, each once
    assert job["strategy"]["fail-fast"] is False  # one failing shard does not cancel the others
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert 'publish shard="${{ matrix.shard }}/$SHARDS"' in runs
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "build/publish/report.json"
    merge = doc["jobs"]["merge"]
    assert merge["needs"] == "publish" and "cancelled()" in merge["if"]
    download = next(s for s in merge["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["path"] == "build/publish/shards"  # where doit publish_catalog looks
    assert any("doit publish_catalog" in s.get("run", "") for s in merge["steps"])
