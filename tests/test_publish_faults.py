"""`doit publish` when things go wrong: registry gone before, during and after the preflight, credentials
revoked, an artifact deleted, two runs at once, files left half-written by a killed run.

In each case the printed status, the exit code and report.json agree with what the registry holds, and
a plain rerun converges (no `doit forget`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from extension_factory import make_extension
from fault_proxy import FaultProxy
from test_pipeline import doit, executed, git

from provisioning.errors import NotFound
from provisioning.oci.layout import LayoutStorage
from provisioning.oci.open import open_storage

NS = "provisioning-extensions"
NAMES = ("base", "svc1", "svc2")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    tree = root / "extensions"
    make_extension(tree, "base", version="1.0.0")
    for i in (1, 2):
        make_extension(tree, f"svc{i}", version=f"1.{i}.0", dependencies={"base": "^1.0.0"})
    git(root.parent, "init", "-q", str(root))
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "extensions")
    return root


def report(project: Path) -> dict:
    return json.loads((project / "build" / "publish" / "report.json").read_text())


def held(storage, name: str, tag: str) -> str | None:
    """The manifest digest the store holds for NAME:TAG, or None."""
    try:
        return storage.repository(f"{NS}/{name}").resolve(tag).digest
    except NotFound:
        return None


def assert_report_agrees(project: Path, storage, proc: subprocess.CompletedProcess) -> dict:
    """Every extension the report calls published or unchanged is there with that digest; the exit code
    says whether anything failed; each extension's printed status is the report's."""
    rep = report(project)
    assert set(rep["counts"]) == {"published", "unchanged", "refused", "failed"}
    for r in rep["extensions"]:
        if r["status"] in ("published", "unchanged"):
            assert held(storage, r["name"], r["tag"]) == r["digest"], r
    bad = rep["counts"]["failed"] + rep["counts"]["refused"]
    assert proc.returncode == (1 if bad else 0), proc.stdout + proc.stderr
    c = rep["counts"]
    assert (
        f"publish summary: {c['published']} published, {c['unchanged']} unchanged, "
        f"{c['refused']} refused, {c['failed']} failed"
    ) in proc.stdout
    assert rep["run"]["destination"]["namespace"] == NS and rep["run"]["commit"]
    return rep


def bump(project: Path, name: str, old: str, new: str) -> None:
    ext = project / "extensions" / "taskservs" / name
    for f in ("manifest.yaml", "kcl/kcl.mod"):
        (ext / f).write_text((ext / f).read_text().replace(old, new))


def test_registry_gone_before_the_run_then_back(project: Path, fresh_registry):
    storage = open_storage(fresh_registry.host)
    reg = f"registry={fresh_registry.host}"
    doit(project, "publish", reg)
    bump(project, "svc1", "1.1.0", "1.1.1")
    fresh_registry.stop()
    try:
        down = doit(project, "publish", reg, check=False)
    finally:
        fresh_registry.start()
    assert down.returncode == 1
    rep = report(project)
    statuses = {r["key"]: r["status"] for r in rep["extensions"]}
    assert statuses["taskservs/svc1"] == "failed"  # never "published" with the old version's digest
    assert "published" not in statuses.values()
    assert not [line for line in down.stdout.splitlines() if line.strip().startswith("published")]
    assert "cannot connect" in down.stdout or "connection" in down.stdout
    assert held(storage, "svc1", "1.1.1") is None

    back = doit(project, "publish", reg)  # no `doit forget`
    rep = assert_report_agrees(project, storage, back)
    assert {r["key"]: r["status"] for r in rep["extensions"]}["taskservs/svc1"] == "published"
    assert held(storage, "svc1", "1.1.1")
    again = doit(project, "publish", reg)
    assert "0 published, 3 unchanged" in again.stdout


@pytest.mark.parametrize("budget", [4, 8, 200], ids=["after-lookups", "mid-upload", "after-all"])
def test_registry_stops_during_a_first_publish(project: Path, fresh_registry, budget: int):
    """The registry answers ``budget`` requests of the run, then nothing; the rerun converges."""
    storage = open_storage(fresh_registry.host)
    with FaultProxy(fresh_registry.host, budget=budget) as proxy:
        reg = f"registry={proxy.host}"
        first = doit(project, "publish", reg, check=False)
        rep = assert_report_agrees(project, storage, first)
        assert len(rep["extensions"]) == 3
        for line in first.stdout.splitlines():
            if line.strip().startswith("published"):
                digest = line.split()[-1]
                assert digest in {r["digest"] for r in rep["extensions"] if r["status"] == "published"}
        proxy.stop_after(None)
        second = doit(project, "publish", reg)
        rep = assert_report_agrees(project, storage, second)
        assert rep["counts"]["failed"] == 0
        assert all(held(storage, n, v) for n, v in zip(NAMES, ("1.0.0", "1.1.0", "1.2.0"), strict=True))


def test_credentials_revoked_between_runs(project: Path, token_registry, tokens, no_credentials):
    from conftest import TOKEN_USERS

    env = {k: os.environ[k] for k in ("PROVISIONING_HOME", "DOCKER_CONFIG", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME")}
    reg = f"registry={token_registry.host}"

    def cli(*args: str, stdin: str | None = None) -> None:
        subprocess.run(
            [sys.executable, "-m", "provisioning", *args],
            input=stdin,
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
        )

    cli("oci", "login", token_registry.host, "--username", "alice", "--password-stdin", stdin=TOKEN_USERS["alice"])
    doit(project, "publish", reg, env=env)
    cli("oci", "logout", token_registry.host)
    bump(project, "svc2", "1.2.0", "1.2.1")
    revoked = doit(project, "publish", reg, env=env, check=False)
    assert revoked.returncode == 1
    rep = report(project)
    assert rep["counts"]["published"] == 0 and rep["counts"]["failed"] >= 1
    assert "login" in revoked.stdout

    cli("oci", "login", token_registry.host, "--username", "alice", "--password-stdin", stdin=TOKEN_USERS["alice"])
    back = doit(project, "publish", reg, env=env)
    assert "1 published, 2 unchanged" in back.stdout
    assert TOKEN_USERS["alice"] not in back.stdout + revoked.stdout


def test_deleted_artifact_is_republished_by_a_warm_run(project: Path, fresh_registry):
    storage = open_storage(fresh_registry.host)
    reg = f"registry={fresh_registry.host}"
    doit(project, "publish", reg)
    digest = held(storage, "svc2", "1.2.0")
    subprocess.run(
        [sys.executable, "-m", "provisioning", "oci", "delete", f"{fresh_registry.host}/{NS}/svc2:1.2.0", "--yes"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert held(storage, "svc2", "1.2.0") is None
    warm = doit(project, "publish", reg)
    assert executed(warm.stdout, "publish") == {"taskservs/svc2"}
    rep = assert_report_agrees(project, storage, warm)
    assert rep["counts"] == {"published": 1, "unchanged": 2, "refused": 0, "failed": 0}
    assert held(storage, "svc2", "1.2.0") == digest  # deterministic: the same artifact again


def test_nothing_to_do_still_reports(project: Path):
    doit(project, "publish")
    (project / "build" / "publish" / "report.json").write_text('{"counts": {"published": 3')  # a killed run's
    warm = doit(project, "publish")
    assert executed(warm.stdout, "publish") == set()
    rep = assert_report_agrees(project, LayoutStorage(project / "build" / "store"), warm)
    assert rep["counts"] == {"published": 0, "unchanged": 3, "refused": 0, "failed": 0}
    assert rep["run"]["destination"]["registry"].endswith("store")


def test_half_written_preflight_from_a_killed_run_is_not_read(project: Path):
    store = LayoutStorage(project / "build" / "store")
    doit(project, "publish")
    bump(project, "svc1", "1.1.0", "1.1.1")
    preflight = project / "build" / "publish" / "preflight.json"
    # what a killed run could leave: a claim that svc1 was published, and a truncated file
    ext = str(project / "extensions" / "taskservs" / "svc1")
    stale = {
        "run": "an-earlier-run",
        "extensions": {
            ext: {"source_digest": "x", "existing": None, "problems": [], "published": "sha256:" + "0" * 64}
        },
    }
    preflight.write_text(json.dumps(stale))
    proc = doit(project, "publish")
    rep = assert_report_agrees(project, store, proc)
    assert rep["counts"] == {"published": 1, "unchanged": 2, "refused": 0, "failed": 0}
    bump(project, "svc1", "1.1.1", "1.1.2")
    preflight.write_text('{"run": "x", "extens')
    proc = doit(project, "publish")
    assert_report_agrees(project, store, proc)
    assert held(store, "svc1", "1.1.2")


def test_two_runs_at_once_into_one_embedded_store(project: Path, tmp_path: Path):
    store_root = tmp_path / "shared-store"
    clones = []
    for name in ("a", "b"):
        dest = tmp_path / f"clone-{name}"
        git(tmp_path, "clone", "-q", str(project), str(dest))
        clones.append(dest)
    procs: dict[Path, subprocess.CompletedProcess] = {}

    def run(clone: Path) -> None:
        procs[clone] = doit(clone, "publish", f"registry={store_root}", check=False)

    threads = [threading.Thread(target=run, args=(c,)) for c in clones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = LayoutStorage(store_root)
    for clone in clones:
        rep = assert_report_agrees(clone, store, procs[clone])
        assert rep["counts"]["failed"] == 0 and rep["counts"]["refused"] == 0
    for name in NAMES:
        assert store.repository(f"{NS}/{name}").tags() == [{"base": "1.0.0", "svc1": "1.1.0", "svc2": "1.2.0"}[name]]
    again = doit(clones[0], "publish", f"registry={store_root}")
    assert "0 published, 3 unchanged" in again.stdout
