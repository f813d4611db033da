"""The seed's resolution step 2: ``dependencies.core.source`` must name a published core that fits this tool."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning import __version__
from provisioning.cli import main
from provisioning.extension import load_extension
from provisioning.oci.open import open_storage
from provisioning.package import build_artifact, build_core_artifact
from provisioning.publish import publish

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "home"))
    for var in ("PROVISIONING_REGISTRY", "PROVISIONING_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "ws"


def write_config(ws: Path, host: str, core_tag: str) -> None:
    (ws / "config").mkdir(parents=True, exist_ok=True)
    (ws / "config" / "provisioning.yaml").write_text(
        "dependencies:\n"
        f'  core:\n    source: "oci://{host}/provisioning-core:{core_tag}"\n'
        f'  extensions:\n    oci:\n      registry: "{host}"\n      tls_enabled: false\n'
        '    modules:\n      taskservs: ["redis"]\n'
    )


def test_core_source_must_exist_and_fit(fresh_registry, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = fresh_registry.host
    storage = open_storage(host, tls_enabled=False)
    publish(
        build_artifact(load_extension(PROJECT / "extensions" / "taskservs" / "redis")),
        storage,
        "provisioning-extensions",
    )
    ws = workspace

    write_config(ws, host, "v9.0.0")
    assert main(["dep", "resolve", "-w", str(ws)]) == 1
    err = capsys.readouterr().err
    assert "dependencies.core.source" in err and "no such core" in err and "provisioning-core has no v9.0.0" in err
    assert "nothing was locked" in err and not (ws / "config" / "provisioning.lock").exists()
    assert not (ws / "extensions").exists()

    publish(build_core_artifact(PROJECT, __version__), storage, "", tag=f"v{__version__}")
    write_config(ws, host, f"v{__version__}")
    assert main(["dep", "resolve", "-w", str(ws)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert (ws / "config" / "provisioning.lock").is_file()

    major = int(__version__.split(".")[0]) + 1
    publish(build_core_artifact(PROJECT, f"{major}.0.0"), storage, "", tag=f"v{major}.0.0")
    write_config(ws, host, f"v{major}.0.0")
    before = (ws / "config" / "provisioning.lock").read_bytes()
    assert main(["dep", "validate", "-w", str(ws)]) == 1
    err = capsys.readouterr().err
    assert f"core {major}.0.0 does not fit this tool (provisioning {__version__}" in err
    assert main(["dep", "resolve", "-w", str(ws)]) == 1
    capsys.readouterr()
    assert (ws / "config" / "provisioning.lock").read_bytes() == before  # the old lock stays


def test_a_non_core_artifact_under_the_core_name_is_refused(
    fresh_registry, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = fresh_registry.host
    storage = open_storage(host, tls_enabled=False)
    artifact = build_artifact(load_extension(PROJECT / "extensions" / "taskservs" / "redis"))
    target = storage.repository("provisioning-core")
    for desc, data in artifact.parts():
        target.push(desc, [data])
    target.tag(artifact.manifest_desc, f"v{__version__}")
    write_config(workspace, host, f"v{__version__}")
    assert main(["dep", "resolve", "-w", str(workspace)]) == 1
    assert "is not a provisioning core" in capsys.readouterr().err
