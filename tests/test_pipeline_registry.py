"""`doit publish` against real registries, as CI runs it: plain HTTP and token auth, counted requests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from extension_factory import make_extension
from registry_server import RegistryServer
from test_pipeline import doit, executed, git
from test_pipeline import doit as run_doit

COUNT = 10


class CountingRegistry(RegistryServer):
    """A registry with its access log on, so a test can count the HTTP requests it served."""

    def config(self) -> dict:
        cfg = super().config()
        cfg["log"] = {"level": "error", "accesslog": {"disabled": False}}
        return cfg

    def request_lines(self) -> list[str]:
        return re.findall(r'"(?:GET|HEAD|PUT|POST|PATCH|DELETE) /v2/[^"]*"', (self.root / "registry.log").read_text())

    def requests(self) -> int:
        return len(self.request_lines())


@pytest.fixture
def counting_registry(tmp_path: Path):
    with CountingRegistry(tmp_path / "registry") as server:
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    tree = root / "extensions"
    make_extension(tree, "base", version="1.0.0")
    for i in range(1, COUNT):
        make_extension(tree, f"svc{i}", version=f"1.{i}.0", dependencies={"base": "^1.0.0"})
    git(root.parent, "init", "-q", str(root))
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "extensions")
    return root


def fresh_clone(project: Path, dest: Path) -> Path:
    git(project.parent, "clone", "-q", str(project), str(dest))
    return dest


def test_ci_publish_against_a_plain_registry(project: Path, tmp_path: Path, counting_registry: CountingRegistry):
    reg = f"registry={counting_registry.host}"

    def doit(where, *args, **kw):  # requests of publishing alone: the catalog step is counted on its own
        return run_doit(where, *args, "catalog=false", **kw)

    first = doit(project, "publish", reg)
    assert len(executed(first.stdout, "publish")) == COUNT
    assert f"{COUNT} published" in first.stdout
    uploaded = counting_registry.requests()
    # per new extension: one look-up, POST + PUT for config and layer (no HEAD first), and the manifest PUT
    # between two HEADs of its tag (a concurrent publish of the version with other content is caught)
    lines = counting_registry.request_lines()
    heads = [line for line in lines if line.startswith('"HEAD')]
    assert len(heads) == 2 * COUNT and all("/manifests/" in line for line in heads), lines
    assert uploaded <= COUNT * 8 + 2, lines

    # A fresh clone (no doit database, new mtimes): about one request per extension, nothing uploaded.
    clone = fresh_clone(project, tmp_path / "clone")
    again = doit(clone, "publish", reg)
    assert f"0 published, {COUNT} unchanged" in again.stdout
    spent = counting_registry.request_lines()[uploaded:]
    assert len(spent) <= COUNT * 1.1, f"{len(spent)} requests for {COUNT} unchanged extensions: {spent}"
    assert not [line for line in spent if line.startswith(('"PUT', '"POST', '"PATCH'))]

    # With the doit database warm: nothing runs, yet the destination is still asked, once per extension.
    before = counting_registry.requests()
    warm = doit(clone, "publish", reg)
    assert executed(warm.stdout, "publish") == set()
    assert f"0 published, {COUNT} unchanged" in warm.stdout
    spent = counting_registry.request_lines()[before:]
    manifest_gets = [line for line in spent if "/manifests/" in line]
    assert len(manifest_gets) == COUNT and len(spent) <= COUNT + 1, spent
    assert not [line for line in spent if line.startswith(('"PUT', '"POST', '"PATCH', '"DELETE'))]

    # One extension bumped: only it is validated, packaged and uploaded.
    ext = clone / "extensions" / "taskservs" / "svc3"
    for f in ("manifest.yaml", "kcl/kcl.mod"):
        (ext / f).write_text((ext / f).read_text().replace("1.3.0", "1.3.1"))
    bumped = doit(clone, "publish", reg)
    assert executed(bumped.stdout, "publish") == {"taskservs/svc3"}
    assert "1 published" in bumped.stdout

    # Same version, different content: refused, with the fix in the message; others still fine.
    (ext / "docs" / "README.md").write_text("# svc3\nchanged\n")
    refused = doit(clone, "publish", reg, check=False)
    assert refused.returncode == 1
    assert "refused" in refused.stdout and "Bump 'version'" in refused.stdout


def test_ci_publish_with_token_auth(project: Path, tmp_path: Path, token_registry, tokens, no_credentials):
    from conftest import TOKEN_USERS

    env = {k: os.environ[k] for k in ("PROVISIONING_HOME", "DOCKER_CONFIG", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME")}

    def login(user: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "provisioning", "oci", "login", token_registry.host, "--username", user]
            + ["--password-stdin"],
            input=TOKEN_USERS[user],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
        )

    login("reader")
    denied = doit(project, "publish", f"registry={token_registry.host}", env=env, check=False)
    assert denied.returncode == 1
    assert "permission" in (denied.stdout + denied.stderr).lower()
    assert TOKEN_USERS["reader"] not in denied.stdout + denied.stderr

    login("alice")
    published = doit(project, "publish", f"registry={token_registry.host}", env=env)
    assert f"{COUNT} published" in published.stdout
    assert TOKEN_USERS["alice"] not in published.stdout + published.stderr
    clone = fresh_clone(project, tmp_path / "clone")
    again = doit(clone, "publish", f"registry={token_registry.host}", env=env)
    assert f"0 published, {COUNT} unchanged" in again.stdout
