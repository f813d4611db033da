"""The built wheel, installed in a fresh venv, works from any folder: data ships inside it.

The wheel is built from a copy of the sources (so the checkout gets no build folders), installed
without dependencies into a venv that sees the machine's packages (doit, kcl, … are there; the
checkout's editable install is not used: the test checks where ``provisioning`` is imported
from). Then, in a folder far from the checkout: generate an extension, validate it (KCL against
the shipped base schemas), push it to an embedded store, resolve and install it in a workspace,
and render the shipped registry config.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
SOURCES = ("provisioning", "schemas", "registry", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = PROJECT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        cwd=src,
    )
    (found,) = out.glob("provisioning-*.whl")
    return found


def test_the_wheel_carries_schemas_base_kcl_registry_configs_and_templates(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for rel in (
        "schemas/manifest.schema.json",
        "schemas/workspace.schema.json",
        "schemas/kcl/kcl.mod",
        "registry/docker-registry.yml",
        "registry/zot-config.json",
    ):
        assert f"provisioning/_data/{rel}" in names, rel
    assert any(n.startswith("provisioning/templates/extension/") for n in names)
    assert not any(n.startswith("provisioning/schemas/") for n in names)  # one copy, no link


def test_installed_wheel_publishes_and_resolves_from_another_folder(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PROVISIONING_"))}
    env["PROVISIONING_HOME"] = str(tmp_path / "home")

    def run(*args: str, cwd: Path = work) -> str:
        proc = subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    where = run("-c", "import provisioning; print(provisioning.__file__)")
    assert Path(where.strip()).is_relative_to(env_dir), where

    run(
        "-m",
        "provisioning",
        "generate",
        "extension",
        "taskserv",
        "wheelcheck",
        "--version",
        "0.1.0",
        "--path",
        str(work / "src"),
    )
    ext = work / "src" / "taskservs" / "wheelcheck"
    assert "valid" in run("-m", "provisioning", "oci", "package", "validate", str(ext))
    run("-m", "provisioning", "oci", "push", str(ext), "--registry", str(work / "store"))

    ws = work / "ws"
    (ws / "config").mkdir(parents=True)
    (ws / "config" / "provisioning.yaml").write_text(
        "dependencies:\n"
        "  extensions:\n"
        "    source_type: oci\n"
        "    oci: {registry: ../store}\n"
        "    modules:\n"
        "      taskservs: [wheelcheck]\n"
    )
    run("-m", "provisioning", "dep", "resolve", cwd=ws)
    lock = json.loads((ws / "config" / "provisioning.lock").read_text())
    assert lock["extensions"]["wheelcheck"]["version"] == "0.1.0"
    assert (ws / "extensions" / "taskservs" / "wheelcheck" / "manifest.yaml").is_file()

    config = run("-c", "from provisioning import registry_server as r; print(r.template_path('docker-registry'))")
    assert Path(config.strip()).is_relative_to(env_dir)
