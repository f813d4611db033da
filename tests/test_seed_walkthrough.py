"""The seed's "Extension Development Workflow" (steps 1-5) and "Dependency Resolution Commands", as written.

In an empty folder, every command runs in the seed's order, each exits 0 and prints what the seed
shows; once against the embedded store and once against the registry `provisioning oci-registry
start` runs. The seed's `localhost:5000` is the registry of the run (the store's path, or the
free port the registry was started on, also in PROVISIONING_REGISTRY); nothing else differs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from registry_server import free_port

from provisioning import registry_server as rs
from provisioning.checks import nu_available
from provisioning.cli import main

PROJECT = Path(__file__).resolve().parent.parent
SEED_TREE = [
    "kcl/kcl.mod",
    "kcl/redis.k",
    "kcl/version.k",
    "kcl/dependencies.k",
    "scripts/install.nu",
    "scripts/check.nu",
    "scripts/uninstall.nu",
    "docs/README.md",
    "manifest.yaml",
]


def needs_registry_binary() -> bool:
    return any(os.access(Path(d) / "docker-registry", os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep))


@pytest.fixture(params=["embedded", "oci-registry"])
def registry(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The registry the seed calls localhost:5000: an embedded store, or `oci-registry start` on a free port."""
    if not nu_available():
        pytest.fail("Nushell ('nu') is not on PATH; install it (npm install -g nushell)")
    for var in ("PROVISIONING_REGISTRY", "PROVISIONING_NAMESPACE", "PROVISIONING_WORKSPACE", "PROVISIONING_EXTENSIONS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    if request.param == "embedded":
        monkeypatch.setenv("PROVISIONING_REGISTRY", str(project / "store"))
        yield str(project / "store")
        return
    if not needs_registry_binary():
        pytest.fail("docker-registry is not installed (apt-get install docker-registry)")
    port = free_port()
    monkeypatch.setenv("PROVISIONING_REGISTRY", f"localhost:{port}")  # what the seed's localhost:5000 is here
    yield f"localhost:{port}"
    rs.stop()


def run(capsys: pytest.CaptureFixture[str], command: str, *expected: str) -> str:
    """One seed command line: exit 0 and every expected text in what it printed."""
    code = main(command.split())
    out, err = capsys.readouterr()
    assert code == 0, f"`provisioning {command}` exited {code}:\n{out}\n{err}"
    for text in expected:
        assert text in out, f"`provisioning {command}` did not print {text!r}:\n{out}\n{err}"
    return out


def table_rows(out: str) -> list[list[str]]:
    """The cells of a box-drawn table, one list per row (header first)."""
    rows = []
    for line in out.splitlines():
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def test_the_seed_walkthrough_runs_as_written(registry: str, capsys: pytest.CaptureFixture[str]) -> None:
    embedded = registry.startswith("/")
    project = Path.cwd()
    if not embedded:  # Registry Deployment Options: "Start local OCI registry"
        port = registry.rsplit(":", 1)[1]
        run(capsys, f"oci-registry start --port {port}", "registry started", registry)
        run(capsys, "oci-registry status", "running")
    # the workspace the walkthrough loads into (the seed assumes one exists)
    run(capsys, f"workspace init workspace_dev --registry {registry}", "created workspace workspace_dev")

    # 1. Develop Extension
    out = run(capsys, "generate extension taskserv redis", "created taskserv redis")
    ext = project / "extensions" / "taskservs" / "redis"
    for rel in SEED_TREE:
        assert (ext / rel).is_file(), rel
        assert rel in out
    for folder in ("templates", "tests"):
        assert (ext / folder).is_dir()
    assert yaml.safe_load((ext / "manifest.yaml").read_text())["version"] == "1.0.0"

    # 2. Test Extension Locally
    run(capsys, "module load taskserv workspace_dev redis --source local", "redis: now loaded from", "(source local)")
    out = run(
        capsys,
        "taskserv create redis --infra test-env --check",
        "taskserv redis 1.0.0 on infra test-env (provider local)",
        "plan (scripts/install.nu --dry-run)",
        "check only: nothing was changed on this host",
    )
    assert "would run" not in out and "curl -fsSL" in out
    assert (project / "workspace_dev" / "infra" / "test-env" / ".check" / "redis" / "config.yaml").is_file()
    run(capsys, "test extension redis", "passed")

    # 3. Package Extension
    run(capsys, "oci package validate ./extensions/taskservs/redis", "valid: taskserv redis 1.0.0")
    run(capsys, "oci package ./extensions/taskservs/redis", "redis-1.0.0.tar.gz")  # seed: Output: redis-1.0.0.tar.gz
    assert (project / "redis-1.0.0.tar.gz").is_file()

    # 4. Publish Extension
    run(capsys, f"oci login {registry}", "no login needed")
    run(capsys, "oci push ./extensions/taskservs/redis redis 1.0.0", "published")
    out = run(capsys, "oci tags redis")
    rows = table_rows(out)
    assert rows[0] == ["artifact", "version", "reference"]
    assert rows[1] == ["redis", "1.0.0", f"{registry}/provisioning-extensions/redis:1.0.0"]

    # Phase 2 of the migration: publish what the seed's workspace uses, `oci publish PATH` per extension
    for name in ("containerd", "etcd", "kubernetes"):
        run(capsys, f"oci publish {PROJECT / 'extensions' / 'taskservs' / name}", "published", f"/{name}:")

    # 5. Use Published Extension: the config names the published redis (and the seed's kubernetes)
    workspace = project / "workspace_dev"
    config = workspace / "config" / "provisioning.yaml"
    text = config.read_text()
    local_entry = next(line for line in text.splitlines() if "source: local" in line)
    prefix = "" if embedded else "oci://"
    reference = f"{prefix}{registry}/provisioning-extensions"
    if embedded:  # a store path cannot carry a tag in a reference: name and version against the config's store
        redis_entry, kubernetes_entry = '"redis@=1.0.0"', '"kubernetes@~1.28.0"'
    else:
        redis_entry, kubernetes_entry = f'"{reference}/redis:1.0.0"', f'"{reference}/kubernetes:1.28.0"'
    indent = local_entry[: len(local_entry) - len(local_entry.lstrip())]
    text = text.replace(local_entry, f"{indent}- {redis_entry}\n{indent}- {kubernetes_entry}")
    config.write_text(text)
    os.chdir(workspace)
    out = run(capsys, "dep resolve", "wrote config/provisioning.lock")
    installed = {row[0]: row for row in table_rows(out)[1:]}
    assert set(installed) == {"redis", "kubernetes", "containerd", "etcd"}
    assert installed["redis"][2] == "1.0.0" and installed["redis"][5] == "installed"
    lock = json.loads((workspace / "config" / "provisioning.lock").read_text())
    redis = lock["extensions"]["redis"]
    assert redis["source"] == "oci" and redis["digest"].startswith("sha256:")
    assert (workspace / "extensions" / "taskservs" / "redis" / "manifest.yaml").is_file()

    # Dependency Resolution Commands, in order
    run(capsys, "dep resolve", "config/provisioning.lock is up to date")
    run(capsys, "dep check-updates", "kubernetes", "redis")
    run(capsys, "dep update kubernetes", "kubernetes: 1.28.0 is already the newest allowed")
    run(capsys, "dep validate", "ok: 4 extensions resolve with no conflicts or cycles")
    out = run(capsys, "dep tree kubernetes", "kubernetes 1.28.0")
    assert re.search(r"[├└]── containerd 1\.7\.\d+", out) and re.search(r"[├└]── etcd 3\.5\.\d+", out)

    # the installed redis is what `taskserv create` checks now (no --source local)
    os.chdir(project)
    run(capsys, "taskserv create redis --infra test-env --check", "check only: nothing was changed on this host")
    if not embedded:
        run(capsys, "oci-registry stop", "stopped")
