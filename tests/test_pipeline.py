"""`doit publish` end to end on a small tree: incremental, idempotent, deterministic across clones."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from extension_factory import make_extension

PROJECT = Path(__file__).resolve().parent.parent
DODO = PROJECT / "dodo.py"
NS = "provisioning-extensions"


def doit(cwd: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PROVISIONING_REGISTRY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "doit", "-f", str(DODO), "-d", str(cwd), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"doit {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def executed(output: str, task: str) -> set[str]:
    """Subtasks doit ran ('.  publish:x'), not the ones it found up to date ('-- publish:x')."""
    return set(re.findall(rf"^\.  {task}:(\S+)", output, re.M))


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    tree = root / "extensions"
    make_extension(tree, "containerd", version="1.7.0")
    make_extension(tree, "etcd", version="3.5.0")
    make_extension(tree, "kubernetes", version="1.28.0", dependencies={"containerd": ">=1.7.0", "etcd": ">=3.5.0"})
    make_extension(tree, "aws", type_="provider", version="2.0.0")
    git(root.parent, "init", "-q", str(root))
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "extensions")
    return root


def store_tags(store: Path) -> dict[str, list[str]]:
    out = {}
    for index in sorted(store.glob(f"{NS}/*/index.json")):
        if index.parent.name == "provisioning-catalog":
            continue  # the namespace's catalog (checked where it matters)
        doc = json.loads(index.read_text())
        out[index.parent.name] = sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in doc["manifests"])
    return out


def test_publish_twice_then_change_one_file(project: Path):
    first = doit(project, "publish")
    assert executed(first.stdout, "publish") == {
        "providers/aws",
        "taskservs/containerd",
        "taskservs/etcd",
        "taskservs/kubernetes",
    }
    store = project / "build" / "store"
    assert store_tags(store) == {"aws": ["2.0.0"], "containerd": ["1.7.0"], "etcd": ["3.5.0"], "kubernetes": ["1.28.0"]}
    report = json.loads((project / "build" / "publish" / "report.json").read_text())
    assert report["counts"] == {"published": 4, "unchanged": 0, "refused": 0, "failed": 0}
    assert "4 published" in first.stdout
    # the run ends with the namespace's catalog, which says what a rebuild from the store says
    from provisioning.catalog import read_catalog, rebuild_catalog
    from provisioning.oci.layout import LayoutStorage

    loaded = read_catalog(LayoutStorage(store), NS)
    assert loaded is not None and sorted(loaded.catalog.extensions) == ["aws", "containerd", "etcd", "kubernetes"]
    assert loaded.catalog.same_content(rebuild_catalog(LayoutStorage(store), NS))
    assert report["catalog"]["status"] == "written" and "catalog:" in first.stdout

    second = doit(project, "publish")
    assert executed(second.stdout, "publish") == set()

    # one file of one extension changes (with a version bump): only that extension runs again
    ext = project / "extensions" / "taskservs" / "etcd"
    for f in ("manifest.yaml", "kcl/kcl.mod"):
        (ext / f).write_text((ext / f).read_text().replace("3.5.0", "3.5.1"))
    third = doit(project, "publish")
    assert executed(third.stdout, "publish") == {"taskservs/etcd"}
    assert store_tags(store)["etcd"] == ["3.5.0", "3.5.1"]
    later = read_catalog(LayoutStorage(store), NS)
    assert later is not None and later.catalog.generation == loaded.catalog.generation + 1  # the second run wrote none
    assert sorted(later.catalog.extensions["etcd"].versions) == ["3.5.0", "3.5.1"]
    assert later.catalog.same_content(rebuild_catalog(LayoutStorage(store), NS))


def test_fresh_clone_without_doit_database_uploads_nothing(project: Path):
    doit(project, "publish")
    store = project / "build" / "store"
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*")}
    (project / ".doit.db").unlink(missing_ok=True)
    for p in project.glob(".doit.db*"):
        p.unlink()
    for path in (project / "extensions").rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    again = doit(project, "publish")
    assert len(executed(again.stdout, "publish")) == 4
    assert "0 published, 4 unchanged" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*")} == before


def test_changed_content_without_version_bump_is_refused(project: Path):
    doit(project, "publish")
    readme = project / "extensions" / "providers" / "aws" / "docs" / "README.md"
    readme.write_text("# aws\nedited\n")
    proc = doit(project, "publish", check=False)
    assert proc.returncode == 1
    assert "refused" in proc.stdout and "Bump 'version'" in proc.stdout
    report = json.loads((project / "build" / "publish" / "report.json").read_text())
    assert report["counts"] == {"published": 0, "unchanged": 3, "refused": 1, "failed": 0}
    # force=true: every subtask runs (the doit database hides nothing); only the changed one is re-published
    forced = doit(project, "publish", "force=true")
    assert len(executed(forced.stdout, "publish")) == 4
    assert "1 published, 3 unchanged" in forced.stdout


def test_release_tag_publishes_exactly_that_extension(project: Path):
    proc = doit(project, "publish", "tag=taskservs/kubernetes/v1.28.0")
    assert executed(proc.stdout, "publish") == {"taskservs/kubernetes"}
    assert list(store_tags(project / "build" / "store")) == ["kubernetes"]
    wrong = doit(project, "publish", "tag=taskservs/etcd/v9.9.9", check=False)
    assert wrong.returncode == 2
    assert "says version 9.9.9 but taskservs/etcd/manifest.yaml says 3.5.0" in wrong.stdout + wrong.stderr


def test_core_tag_publishes_core_artifact(project: Path, tmp_path: Path):
    from provisioning import __version__

    store = tmp_path / "core-store"
    proc = doit(project, "publish", f"tag=v{__version__}", f"registry={store}")
    assert executed(proc.stdout, "publish") == {"core"}
    index = json.loads((store / "provisioning-core" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == f"v{__version__}"
    bad = doit(project, "publish", "tag=v0.0.1", f"registry={store}", check=False)
    assert bad.returncode == 2 and "bump the version" in bad.stdout + bad.stderr


def test_two_clones_of_one_commit_give_the_same_digests(project: Path, tmp_path: Path):
    clones = []
    for name in ("clone-a", "clone-b"):
        dest = tmp_path / name
        git(tmp_path, "clone", "-q", str(project), str(dest))
        old = os.umask(0o002 if name == "clone-a" else 0o077)
        try:
            doit(dest, "package")
        finally:
            os.umask(old)
        clones.append(dest)
    a = {p.relative_to(clones[0]): p.read_bytes() for p in (clones[0] / "build" / "packages").rglob("*.*")}
    b = {p.relative_to(clones[1]): p.read_bytes() for p in (clones[1] / "build" / "packages").rglob("*.*")}
    assert a.keys() == b.keys() and len(a) == 12
    assert a == b
    manifest = json.loads(a[Path("build/packages/taskservs/kubernetes/kubernetes-1.28.0.manifest.json")])
    assert manifest["annotations"]["org.opencontainers.image.revision"] == git(project, "rev-parse", "HEAD").strip()


def test_validate_reruns_only_the_changed_extension(project: Path):
    doit(project, "validate")
    (project / "extensions" / "providers" / "aws" / "templates" / "extra.j2").write_text("x: 1\n")
    proc = doit(project, "validate")
    assert executed(proc.stdout, "validate") == {"providers/aws"}
    shutil.rmtree(project / "extensions" / "providers" / "aws" / "docs")
    bad = doit(project, "validate", check=False)
    assert bad.returncode != 0 and "docs/README.md: missing" in bad.stdout + bad.stderr


def test_failing_extension_tests_block_only_that_extension(project: Path):
    test = project / "extensions" / "taskservs" / "etcd" / "tests" / "test_etcd.nu"
    test.write_text("use std/assert\nassert equal (1 + 1) 3\n")
    proc = doit(project, "publish", check=False)
    assert proc.returncode == 1
    assert "tests failed, not publishing" in proc.stdout and "test_etcd.nu" in proc.stdout
    assert "3 published" in proc.stdout and "1 failed" in proc.stdout
    assert "etcd" not in store_tags(project / "build" / "store")


def test_validate_and_test_check_in_one_batch_and_only_what_changed(project: Path):
    answers = project / "build" / "checks"
    first = doit(project, "validate")
    assert len(re.findall(r"^\.  validate_batch$", first.stdout, re.M)) == 1
    assert len(executed(first.stdout, "validate")) == 4
    assert len(json.loads((answers / "validate.json").read_text())) == 4  # all four, from the one batch

    kcl = project / "extensions" / "taskservs" / "etcd" / "kcl" / "etcd.k"
    kcl.write_text(kcl.read_text() + "\nbroken: int = \n")
    bad = doit(project, "validate", check=False)
    assert executed(bad.stdout, "validate") == {"taskservs/etcd"}
    assert bad.returncode == 1 and "etcd.k" in bad.stdout + bad.stderr
    assert len(json.loads((answers / "validate.json").read_text())) == 5  # only etcd was checked again

    tested = doit(project, "test")
    assert len(re.findall(r"^\.  test_batch$", tested.stdout, re.M)) == 1
    assert len(executed(tested.stdout, "test")) == 4 and "1 passed, 0 failed" in tested.stdout
    test = project / "extensions" / "providers" / "aws" / "tests" / "test_aws.nu"
    test.write_text("use std/assert\nassert equal (1 + 1) 3\n")
    failing = doit(project, "test", check=False)
    assert executed(failing.stdout, "test") == {"providers/aws"}
    assert failing.returncode == 1 and "test_aws.nu" in failing.stdout + failing.stderr
