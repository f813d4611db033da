"""Per-extension changelogs from git history, written at release."""

import subprocess
from pathlib import Path

from extension_factory import make_extension

from provisioning.cli import main


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_changelog_lists_commits_since_the_previous_release(tmp_path: Path, capsys, monkeypatch):
    repo = tmp_path / "repo"
    ext = make_extension(repo / "extensions", "redis", version="1.0.0")
    make_extension(repo / "extensions", "etcd", version="3.5.0")
    git(repo.parent, "init", "-q", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Add redis and etcd")
    git(repo, "tag", "taskservs/redis/v1.0.0")
    (ext / "docs" / "README.md").write_text("# redis\nPersistence options.\n")
    git(repo, "commit", "-qam", "redis: document persistence")
    (repo / "extensions" / "taskservs" / "etcd" / "docs" / "README.md").write_text("# etcd\nmore\n")
    git(repo, "commit", "-qam", "etcd: unrelated change")
    for f in ("manifest.yaml", "kcl/kcl.mod"):
        (ext / f).write_text((ext / f).read_text().replace("1.0.0", "1.1.0"))
    git(repo, "commit", "-qam", "redis: release 1.1.0")
    git(repo, "tag", "taskservs/redis/v1.1.0")

    monkeypatch.chdir(repo)
    assert main(["changelog", "taskservs/redis/v1.1.0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# redis 1.1.0")
    assert "Changes since taskservs/redis/v1.0.0" in out
    assert "redis: document persistence" in out and "redis: release 1.1.0" in out
    assert "etcd" not in out and "Add redis and etcd" not in out

    git(repo, "checkout", "-q", "taskservs/redis/v1.0.0")  # the release job runs at its tag
    assert main(["changelog", "taskservs/redis/v1.0.0", "--output", "build/CHANGELOG.md"]) == 0
    first = (repo / "build" / "CHANGELOG.md").read_text()
    assert "First release." in first and "Add redis and etcd" in first and "persistence" not in first

    assert main(["changelog", "taskservs/redis/v9.0.0"]) == 1
    assert "says version 9.0.0" in capsys.readouterr().err
