"""``workspace init``: a new workspace with every seed section that ``dep resolve`` accepts as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from provisioning.cli import main
from provisioning.workspace.config import load_config

SEED_SECTIONS = [
    "# Core system dependency",
    'source: "oci://harbor.company.com/provisioning-core:v',
    'source: "gitea://provisioning-core"',
    "# Extensions repository configuration",
    "source_type:",
    "# OCI registry configuration",
    "auth_token_path:",
    "# Loaded extension modules",
    "providers:",
    "taskservs:",
    "clusters:",
    "# Platform services",
    "orchestrator:",
    "control_center:",
    "endpoint:",
    'kcl: "provisioning-kcl"',
    'test: "provisioning-test"',
]


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_init_writes_every_seed_section_and_resolves_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVISIONING_REGISTRY", raising=False)
    assert main(["workspace", "init", "ws", "--registry", "./store"]) == 0
    out = capsys.readouterr().out
    assert "created workspace ws" in out and "config/provisioning.yaml" in out
    ws = tmp_path / "ws"
    text = (ws / "config" / "provisioning.yaml").read_text()
    for section in SEED_SECTIONS:
        assert section in text, section
    assert (ws / "infra" / "test-env" / "settings.yaml").is_file() and (ws / "extensions").is_dir()
    doc = yaml.safe_load(text)
    assert doc["dependencies"]["extensions"]["oci"]["registry"] == "../store"  # relative to the workspace
    cfg = load_config(ws, require_modules=False)
    assert cfg.registry.registry == str(tmp_path / "store") and cfg.modules == ()
    monkeypatch.chdir(ws)
    assert main(["dep", "resolve"]) == 0
    out = capsys.readouterr().out
    assert "lists no extensions yet" in out and "wrote config/provisioning.lock" in out
    assert json.loads((ws / "config" / "provisioning.lock").read_text())["extensions"] == {}
    assert main(["dep", "validate"]) == 0


def test_init_default_registry_is_the_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVISIONING_REGISTRY", raising=False)
    assert main(["workspace", "init", "ws", "-o", "json"]) == 0
    doc = yaml.safe_load((tmp_path / "ws" / "config" / "provisioning.yaml").read_text())
    oci = doc["dependencies"]["extensions"]["oci"]
    assert oci == {"registry": "localhost:5000", "namespace": "provisioning-extensions", "tls_enabled": False}


def test_init_refuses_a_folder_that_is_not_a_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    assert main(["workspace", "init", "busy"]) == 1
    err = capsys.readouterr().err
    assert "busy exists and is not a workspace" in err and "notes.txt" in err and "nothing was written" in err
    assert main(["workspace", "init", "ws"]) == 0
    capsys.readouterr()
    after_first = snapshot(tmp_path)
    assert main(["workspace", "init", "ws"]) == 1
    assert "already a workspace" in capsys.readouterr().err
    assert snapshot(tmp_path) == after_first
    assert {k: v for k, v in after_first.items() if not k.startswith("ws/")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "ws"]  # no temporary folder left


def test_module_load_keeps_the_commented_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first module goes under `taskservs:` as a list item; comments and other sections survive."""
    from provisioning.generate import generate_extension

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROVISIONING_REGISTRY", raising=False)
    assert main(["workspace", "init", "ws"]) == 0
    generate_extension("taskserv", "demo", tmp_path / "extensions")
    assert main(["module", "load", "taskserv", "ws", "demo", "--source", "local"]) == 0
    text = (tmp_path / "ws" / "config" / "provisioning.yaml").read_text()
    assert "# Platform services" in text and '# - "containerd@>=1.7.0"' in text
    doc = yaml.safe_load(text)
    assert doc["dependencies"]["extensions"]["modules"]["taskservs"] == [
        {"name": "demo", "source": "local", "path": "../extensions/taskservs/demo"}
    ]
    assert (tmp_path / "ws" / "extensions" / "taskservs" / "demo" / "manifest.yaml").is_file()


def test_init_in_the_current_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`workspace init .` keeps the folder itself (the shell is in it) and fills it."""
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.delenv("PROVISIONING_REGISTRY", raising=False)
    inode = (tmp_path / "here").stat().st_ino
    assert main(["workspace", "init", "."]) == 0
    assert (tmp_path / "here").stat().st_ino == inode
    assert sorted(p.name for p in (tmp_path / "here").iterdir()) == [".gitignore", "config", "extensions", "infra"]
    assert load_config(Path.cwd(), require_modules=False).modules == ()
