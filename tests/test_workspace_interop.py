"""The workspace side reads what our own packager publishes: the real extensions of this repository."""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_workspace_helpers import PROJECT_ROOT, home, lock_json, make_workspace, seed_config  # noqa: F401

from provisioning.cli import main

EXTENSIONS = PROJECT_ROOT / "extensions"


@pytest.fixture
def real_store(tmp_path: Path) -> Path:
    from provisioning.oci.layout import LayoutStorage
    from provisioning.package import build_artifact
    from provisioning.publish import push_artifact

    store = LayoutStorage(tmp_path / "store")
    for manifest in sorted(EXTENSIONS.glob("*/*/manifest.yaml")):
        artifact = build_artifact(manifest.parent, use_git=False)
        push_artifact(artifact, store.repository(f"provisioning-extensions/{artifact.name}"))
    return store.root


def test_seed_workspace_from_packaged_extensions(tmp_path: Path, real_store: Path, home: Path, capsys) -> None:
    modules = {
        "providers": ["aws:2.0.0", "upcloud:1.5.0"],
        "taskservs": ["kubernetes:1.28.0", "containerd:1.7.0", "cilium:1.14.0"],
        "clusters": ["buildkit:0.12.0"],
    }
    ws = make_workspace(tmp_path / "ws", seed_config(str(real_store), modules=modules, full_refs=False))
    assert main(["dep", "resolve", "-w", str(ws)]) == 0
    lock = lock_json(ws)
    assert lock["order"].index("etcd") < lock["order"].index("kubernetes")  # etcd came in through kubernetes
    for name, e in lock["extensions"].items():
        folder = ws / "extensions" / f"{e['type']}s" / name
        source = EXTENSIONS / f"{e['type']}s" / name
        assert yaml.safe_load((folder / "manifest.yaml").read_text())["version"] == e["version"]
        assert (folder / "kcl").is_dir() and not (folder / "tests").exists()
        for script in (source / "scripts").glob("*.nu"):
            assert (folder / "scripts" / script.name).read_bytes() == script.read_bytes()


def test_module_load_a_real_extension_folder(tmp_path: Path, real_store: Path, home: Path, monkeypatch) -> None:
    ws = make_workspace(tmp_path / "ws", seed_config(str(real_store), modules={"clusters": ["web"]}, full_refs=False))
    monkeypatch.chdir(PROJECT_ROOT)  # ./extensions/taskservs/redis is found without --path
    assert main(["module", "load", "taskserv", str(ws), "redis"]) == 0
    lock = lock_json(ws)
    assert lock["extensions"]["redis"]["source"] == "local"
    assert lock["extensions"]["postgres"]["source"] == "oci"
