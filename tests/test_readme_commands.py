"""The README's command-line section runs as written, line by line, in an empty folder.

The one liberty taken: the registry `oci-registry start` runs listens on a free port (also in
PROVISIONING_REGISTRY), where the README says localhost:5000.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from registry_server import free_port

from provisioning import registry_server as rs
from provisioning.checks import nu_available
from provisioning.cli import main

PROJECT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (PROJECT / "README.md").read_text()
    section = text.split("## The command line", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README.md: no bash block under 'The command line'"
    return [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_command_line_section_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not nu_available():
        pytest.fail("Nushell ('nu') is not on PATH; install it (npm install -g nushell)")
    port = free_port()
    for var in ("PROVISIONING_NAMESPACE", "PROVISIONING_WORKSPACE", "PROVISIONING_EXTENSIONS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("PROVISIONING_REGISTRY", f"localhost:{port}")
    commands = readme_commands()
    assert commands[0] == 'cd "$(mktemp -d)"'
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    try:
        for line in commands[1:]:
            words = shlex.split(line.replace("localhost:5000", f"localhost:{port}"))
            assert words[0] == "provisioning", line
            if words[1:3] == ["oci-registry", "start"]:
                words += ["--port", str(port)]
            code = main(words[1:])
            out, err = capsys.readouterr()
            assert code == 0, f"{line}\n{out}\n{err}"
    finally:
        rs.stop()
    assert (scratch / "redis-1.0.0.tar.gz").is_file()
    assert (scratch / "mirror" / "provisioning-extensions" / "redis" / "index.json").is_file()
    assert (scratch / "workspace_dev" / "extensions" / "taskservs" / "redis" / "manifest.yaml").is_file()
    assert os.listdir(scratch / "workspace_dev" / "infra" / "test-env" / ".check") == ["redis"]
