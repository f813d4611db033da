"""Extensions from git (the seed's gitea/git source types): monorepo tags ``{type}s/{name}/v{version}``."""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_workspace_helpers import extension_files, extension_manifest, home, lock_json, make_workspace, snapshot  # noqa: F401

from provisioning.cli import main

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def release(repo: Path, name: str, version: str, type_: str = "taskserv", deps: dict | None = None) -> None:
    """Commit the extension's folder in the monorepo and tag it as the seed's CI does."""
    folder = repo / f"{type_}s" / name
    shutil.rmtree(folder, ignore_errors=True)
    for rel, data in extension_files(extension_manifest(name, version, type_, deps)).items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data[0] if isinstance(data, tuple) else data)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"{name} {version}")
    git(repo, "tag", f"{type_}s/{name}/v{version}")


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    repo = tmp_path / "provisioning-extensions"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    release(repo, "containerd", "1.7.0")
    release(repo, "etcd", "3.5.0")
    release(repo, "etcd", "3.5.9")
    release(repo, "kubernetes", "1.28.0", deps={"containerd": ">=1.7.0", "etcd": ">=3.5.0"})
    release(repo, "aws", "2.0.0", "provider")
    release(repo, "etcd", "3.6.0-rc.1")
    return repo


def config(source_type: str, section: dict, modules: dict) -> str:
    import yaml

    doc = {"dependencies": {"extensions": {"source_type": source_type, source_type: section, "modules": modules}}}
    return yaml.safe_dump(doc, sort_keys=False)


def test_git_monorepo_resolves_at_tags_and_installs(
    tmp_path: Path, monorepo: Path, home: Path, capsys, monkeypatch
) -> None:
    text = config("git", {"url": str(monorepo)}, {"taskservs": ["kubernetes@^1.28"], "providers": ["aws"]})
    ws = make_workspace(tmp_path / "ws", text)
    assert main(["dep", "resolve", "-w", str(ws)]) == 0
    lock = lock_json(ws)
    assert lock["order"] == ["aws", "containerd", "etcd", "kubernetes"]
    etcd = lock["extensions"]["etcd"]
    assert (etcd["source"], etcd["version"], etcd["ref"], etcd["subdir"]) == (
        "git",
        "3.5.9",
        "taskservs/etcd/v3.5.9",
        "taskservs/etcd",
    )
    assert etcd["commit"] == git(monorepo, "rev-list", "-n1", "taskservs/etcd/v3.5.9").strip()
    assert (ws / "extensions" / "taskservs" / "etcd" / "manifest.yaml").is_file()
    assert not (ws / "extensions" / "taskservs" / "etcd" / "kcl" / ".git").exists()
    # later commits on main do not matter: the lock pins tags and commits
    release(monorepo, "etcd", "3.5.10")
    before = snapshot(ws)
    assert main(["dep", "resolve", "-w", str(ws)]) == 0
    assert snapshot(ws) == before
    # another machine: the lock reproduces the install from a cold cache
    other = make_workspace(tmp_path / "ws2", text)
    shutil.copy(ws / "config" / "provisioning.lock", other / "config")
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "home2"))
    assert main(["dep", "resolve", "--locked", "-w", str(other)]) == 0
    assert snapshot(other / "extensions") == snapshot(ws / "extensions")
    capsys.readouterr()
    assert main(["dep", "check-updates", "-w", str(ws), "-o", "json"]) == 0
    import json

    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["etcd"]["current"], rows["etcd"]["latest"]) == ("3.5.9", "3.5.10")


def test_moved_tag_is_refused_with_locked(tmp_path: Path, monorepo: Path, home: Path, capsys, monkeypatch) -> None:
    text = config("git", {"url": str(monorepo)}, {"taskservs": ["etcd@3.5.0"]})
    ws = make_workspace(tmp_path / "ws", text)
    assert main(["dep", "resolve", "-w", str(ws), "--no-install"]) == 0
    (monorepo / "taskservs" / "etcd" / "docs" / "README.md").write_text("changed\n")
    git(monorepo, "commit", "-qam", "rewrite history")
    git(monorepo, "tag", "-f", "taskservs/etcd/v3.5.0")
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "home2"))
    assert main(["dep", "resolve", "--locked", "-w", str(ws)]) == 1
    assert "the tag was moved" in capsys.readouterr().err
    assert not (ws / "extensions").exists()


def test_gitea_section_and_unknown_names(tmp_path: Path, monorepo: Path, home: Path, capsys) -> None:
    server = tmp_path / "gitea"
    (server / "platform").mkdir(parents=True)
    shutil.copytree(monorepo, server / "platform" / "provisioning-extensions.git")
    text = config("gitea", {"url": str(server), "organization": "platform"}, {"taskservs": ["kubernets"]})
    ws = make_workspace(tmp_path / "ws", text)
    assert main(["dep", "resolve", "-w", str(ws)]) == 1
    err = capsys.readouterr().err
    assert "no extension named 'kubernets'" in err and "Did you mean 'kubernetes'?" in err
    (ws / "config" / "provisioning.yaml").write_text(text.replace("kubernets", "kubernetes"))
    assert main(["dep", "resolve", "-w", str(ws)]) == 0
    assert lock_json(ws)["extensions"]["kubernetes"]["url"].endswith("/platform/provisioning-extensions.git")


def test_git_module_needs_a_repository(tmp_path: Path, home: Path, capsys) -> None:
    ws = make_workspace(tmp_path / "ws", config("git", {}, {"taskservs": ["kubernetes"]}))
    assert main(["dep", "resolve", "-w", str(ws)]) == 1
    assert "set dependencies.extensions.git.url" in capsys.readouterr().err
