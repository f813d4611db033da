"""``provisioning oci-registry start|stop|status`` against the real docker-registry binary."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from registry_server import free_port

from provisioning import registry_server as rs
from provisioning.cli import main

PROJECT = Path(__file__).resolve().parent.parent
needs_registry = pytest.mark.skipif(
    not any(os.access(Path(d) / "docker-registry", os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)),
    reason="docker-registry is not installed",
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """PROVISIONING_HOME in tmp_path; whatever a test started is stopped afterwards."""
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    rs.stop()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["oci-registry", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@needs_registry
def test_start_status_stop_serves_v2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code, out, _ = run(capsys, "status")
    assert code == 0 and out.startswith("stopped")

    code, out, _ = run(capsys, "start", "--port", str(port))
    assert code == 0, out
    assert "registry started" in out and f"localhost:{port}" in out
    r = requests.get(f"http://127.0.0.1:{port}/v2/", timeout=5)
    assert r.status_code == 200
    assert r.headers.get("Docker-Distribution-Api-Version") == "registry/2.0"

    registry_dir = home / "oci-registry"
    pid = int((registry_dir / "registry.pid").read_text())
    assert (registry_dir / "registry.log").is_file()
    assert (registry_dir / "data").is_dir()
    config = yaml.safe_load((registry_dir / "docker-registry.yml").read_text())
    assert config["http"]["addr"] == f"127.0.0.1:{port}"
    assert config["storage"]["filesystem"]["rootdirectory"] == str(registry_dir / "data")

    code, out, _ = run(capsys, "status")
    assert out.startswith("running:") and f"pid {pid}" in out and f"localhost:{port}" in out
    assert str(registry_dir / "data") in out
    code, out, _ = run(capsys, "status", "--output", "json")
    status = json.loads(out)
    assert status["running"] is True and status["pid"] == pid and status["backend"] == "docker-registry"
    assert status["endpoint"] == f"localhost:{port}"

    # a blob pushed through the API lands under our storage folder
    up = requests.post(f"http://127.0.0.1:{port}/v2/smoke/blobs/uploads/", timeout=5)
    assert up.status_code == 202

    code, out, _ = run(capsys, "start", "--port", str(port))
    assert code == 0 and "already running" in out

    code, out, _ = run(capsys, "stop")
    assert code == 0 and f"was pid {pid}" in out
    assert not (registry_dir / "registry.pid").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2)
    code, out, _ = run(capsys, "status")
    assert out.startswith("stopped")
    code, out, _ = run(capsys, "stop")
    assert code == 0 and "not running" in out


@needs_registry
def test_stale_pid_file_is_removed(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    registry_dir = home / "oci-registry"
    registry_dir.mkdir(parents=True)
    (registry_dir / "registry.pid").write_text(f"{dead.pid}\n")
    code, out, _ = run(capsys, "status")
    assert code == 0 and "stopped" in out and "stale" in out
    assert not (registry_dir / "registry.pid").exists()

    # a pid file naming a live process that is not a registry is stale too (never killed)
    (registry_dir / "registry.pid").write_text(f"{os.getpid()}\n")
    code, out, _ = run(capsys, "stop")
    assert code == 0 and "stale" in out
    assert not (registry_dir / "registry.pid").exists()

    # and start works after a stale file
    (registry_dir / "registry.pid").write_text(f"{dead.pid}\n")
    port = free_port()
    code, out, _ = run(capsys, "start", "--port", str(port))
    assert code == 0 and "registry started" in out
    assert requests.get(f"http://127.0.0.1:{port}/v2/", timeout=5).status_code == 200


def test_no_registry_program_says_how_to_install(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, out, err = run(capsys, "start", "--port", str(free_port()))
    assert code == 1
    assert "apt-get install docker-registry" in err and "zot" in err
    assert "Traceback" not in err


@needs_registry
def test_port_in_use_is_a_clear_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "start", "--port", str(port))
    assert code == 1
    assert f"port {port}" in err and "--port" in err
    assert not (home / "oci-registry" / "registry.pid").exists()


@needs_registry
def test_foreground_runs_until_interrupted(home: Path, tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, PROVISIONING_HOME=str(home), PYTHONPATH=str(PROJECT))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from provisioning.cli import main; sys.exit(main(sys.argv[1:]))"]
        + ["oci-registry", "start", "--foreground", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen = []
    try:
        deadline = time.monotonic() + 30
        while not any("foreground" in line for line in seen):
            assert time.monotonic() < deadline, f"foreground registry did not come up: {seen}"
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.5))
        assert requests.get(f"http://127.0.0.1:{port}/v2/", timeout=5).status_code == 200
        assert (home / "oci-registry" / "registry.pid").is_file()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(0.2)
    while not lines.empty():
        seen.append(lines.get())
    out = "".join(seen)
    assert proc.returncode == 0, out
    assert "foreground" in out and "registry stopped" in out
    assert not (home / "oci-registry" / "registry.pid").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2)


def test_config_templates_are_filled_in(tmp_path: Path) -> None:
    storage = tmp_path / "data"
    zot = json.loads(rs.render_config("zot", 5123, storage, tmp_path / "zot.log"))
    assert zot["http"] == {"address": "127.0.0.1", "port": "5123"}
    assert zot["storage"]["rootDirectory"] == str(storage)
    assert zot["log"]["output"] == str(tmp_path / "zot.log")
    dist = yaml.safe_load(rs.render_config("docker-registry", 5124, storage))
    assert dist["http"]["addr"] == "127.0.0.1:5124"
    assert dist["storage"]["filesystem"]["rootdirectory"] == str(storage)
    assert dist["storage"]["delete"]["enabled"] is True
    assert "auth" not in dist and "tls" not in dist["http"]


def test_config_templates_come_from_the_one_copy_in_registry() -> None:
    for backend, name in rs.TEMPLATES.items():
        assert rs.template_path(backend) == PROJECT / "registry" / name


def test_a_program_called_zot_that_is_not_the_registry_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "zot").write_text("#!/bin/sh\necho 'usage: zot [query] search your Zotero library'\n")
    (fake / "zot").chmod(0o755)
    (fake / "docker-registry").write_text("#!/bin/sh\nexit 0\n")
    (fake / "docker-registry").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    assert rs.find_backend()[0] == "docker-registry"
    (fake / "zot").write_text("#!/bin/sh\necho 'zot: OCI-native container image registry'; echo '  serve  run'\n")
    assert rs.find_backend()[0] == "zot"
