"""A real local OCI registry for solo development: ``provisioning oci-registry start|stop|status``.

zot when ``zot`` is on PATH, else Debian's ``docker-registry`` (CNCF distribution). It listens
on loopback only, without auth or TLS, and keeps everything under ``paths.registry_dir()``:
``data/`` (the storage), ``registry.pid``, ``registry.log``, the generated config and
``registry.json`` (backend, port, endpoint of the running instance).

Config templates live in the repository's ``registry/`` folder (read through ``resources``, so
an installed wheel finds its own copy); this module fills in the port and the storage path.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from . import paths
from .errors import ProvisioningError

DEFAULT_PORT = 5000
BIND_HOST = "127.0.0.1"
PID_FILE = "registry.pid"
LOG_FILE = "registry.log"
STATE_FILE = "registry.json"
DATA_DIR = "data"
BACKENDS = ("zot", "docker-registry")
TEMPLATES = {"zot": "zot-config.json", "docker-registry": "docker-registry.yml"}
INSTALL_HINT = (
    "no local OCI registry program found: install Debian's CNCF distribution registry with "
    "`apt-get install docker-registry`, or put zot (the OCI-native registry) on PATH, then run "
    "`provisioning oci-registry start` again"
)


class RegistryServerError(ProvisioningError):
    """The local registry cannot be started, stopped or found."""


@dataclass(frozen=True)
class RegistryStatus:
    """What ``oci-registry status`` reports."""

    running: bool
    pid: int | None
    endpoint: str
    storage: str
    backend: str | None
    log: str
    config: str | None = None
    stale_pid_removed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dir() -> Path:
    return paths.registry_dir()


def template_path(backend: str) -> Path:
    """The config template from ``registry/`` (through ``resources``: the checkout's, or the wheel's)."""
    from .resources import resource

    try:
        return resource("registry", TEMPLATES[backend])
    except ProvisioningError as exc:
        raise RegistryServerError(str(exc)) from None


def _is_zot(path: str) -> bool:
    """Another program may be called ``zot`` (a Zotero client): check that this one serves registries."""
    try:
        out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    text = (out.stdout + out.stderr).lower()
    return "serve" in text and ("registry" in text or "oci" in text or "zot" in text)


def find_backend() -> tuple[str, str]:
    """``(backend, executable)``: zot when on PATH, else docker-registry; a clear error when neither is."""
    zot = shutil.which("zot")
    if zot and _is_zot(zot):
        return "zot", zot
    registry = shutil.which("docker-registry")
    if registry:
        return "docker-registry", registry
    raise RegistryServerError(INSTALL_HINT)


def render_config(backend: str, port: int, storage: Path, log: Path | None = None) -> str:
    """The template with the port and storage filled in, as the backend's config text."""
    text = template_path(backend).read_text(encoding="utf-8")
    if backend == "zot":
        cfg: dict[str, Any] = copy.deepcopy(json.loads(text))
        cfg.setdefault("storage", {})["rootDirectory"] = str(storage)
        cfg.setdefault("http", {}).update(address=BIND_HOST, port=str(port))
        if log is not None:
            cfg.setdefault("log", {})["output"] = str(log)
        return json.dumps(cfg, indent=2, sort_keys=True) + "\n"
    cfg = yaml.safe_load(text)
    cfg.setdefault("storage", {}).setdefault("filesystem", {})["rootdirectory"] = str(storage)
    cfg.setdefault("http", {})["addr"] = f"{BIND_HOST}:{port}"
    return yaml.safe_dump(cfg, sort_keys=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _pid_is_registry(pid: int) -> bool:
    """True when ``pid`` runs one of our backends (a recycled pid must not be killed)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _pid_alive(pid)  # no /proc: trust the pid file
    return any(Path(arg.decode(errors="replace")).name in BACKENDS for arg in cmdline[:2])


def _read_state() -> dict[str, Any]:
    try:
        return json.loads((_dir() / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _read_pid() -> int | None:
    try:
        return int((_dir() / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _clear_files() -> None:
    for name in (PID_FILE, STATE_FILE):
        (_dir() / name).unlink(missing_ok=True)


def _endpoint(port: int) -> str:
    return f"localhost:{port}"


def status() -> RegistryStatus:
    """Running or stopped; a pid file whose process is gone (or is not a registry) is removed."""
    root = _dir()
    state = _read_state()
    pid = _read_pid()
    port = int(state.get("port") or DEFAULT_PORT)
    stale = False
    running = pid is not None and _pid_alive(pid) and _pid_is_registry(pid)
    if pid is not None and not running:
        _clear_files()
        stale = True
    return RegistryStatus(
        running=running,
        pid=pid if running else None,
        endpoint=_endpoint(port),
        storage=str(root / DATA_DIR),
        backend=state.get("backend") if running else None,
        log=str(root / LOG_FILE),
        config=state.get("config") if running else None,
        stale_pid_removed=stale,
    )


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((BIND_HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def wait_ready(port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    """Poll ``GET /v2/`` until the registry answers 200 or 401 (auth on), or fail with the log's tail.

    A plain loopback probe with the standard library: only the registry client (``oci/``) speaks requests.
    """
    import urllib.error
    import urllib.request

    url = f"http://{BIND_HOST}:{port}/v2/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RegistryServerError(
                f"the registry exited with code {process.returncode} while starting; its log says:\n{_log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - a fixed loopback URL
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RegistryServerError(
        f"the registry did not answer {url} within {timeout:.0f}s; see {_dir() / LOG_FILE}:\n{_log_tail()}"
    )


def _log_tail(lines: int = 15) -> str:
    try:
        return "\n".join((_dir() / LOG_FILE).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _prepare(port: int) -> tuple[str, list[str], Path]:
    if not 0 < port < 65536:
        raise RegistryServerError(f"--port {port} is not a TCP port (1-65535)")
    backend, exe = find_backend()
    root = _dir()
    (root / DATA_DIR).mkdir(parents=True, exist_ok=True)
    if not _port_free(port):
        raise RegistryServerError(
            f"port {port} on {BIND_HOST} is already in use by another program: stop it, or pick another port "
            f"with `provisioning oci-registry start --port N`"
        )
    config = root / TEMPLATES[backend]
    config.write_text(render_config(backend, port, root / DATA_DIR, root / LOG_FILE if backend == "zot" else None))
    return backend, [exe, "serve", str(config)], config


def _write_state(pid: int, backend: str, port: int, config: Path) -> None:
    root = _dir()
    (root / PID_FILE).write_text(f"{pid}\n")
    state = {"backend": backend, "port": port, "endpoint": _endpoint(port), "config": str(config), "pid": pid}
    (root / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")


def _server_env() -> dict[str, str]:
    """docker-registry reads every REGISTRY_* variable as configuration; podman's REGISTRY_AUTH_FILE would break it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}


def start(port: int = DEFAULT_PORT, *, timeout: float = 30.0) -> RegistryStatus:
    """Start the registry in the background and wait until it serves ``/v2/``; no-op when running."""
    current = status()
    if current.running:
        return current
    backend, argv, config = _prepare(port)
    root = _dir()
    with open(root / LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=_server_env(),
            start_new_session=True,  # survives the command that started it, and Ctrl-C in that shell
        )
    _write_state(process.pid, backend, port, config)
    try:
        wait_ready(port, process, timeout)
    except BaseException:
        _terminate(process.pid)
        process.wait()
        _clear_files()
        raise
    return status()


def run_foreground(port: int = DEFAULT_PORT, *, timeout: float = 30.0, on_ready: Any = None) -> int:
    """Run the registry attached to this terminal until it exits or Ctrl-C; returns its exit code."""
    current = status()
    if current.running:
        raise RegistryServerError(
            f"the registry is already running (pid {current.pid}, {current.endpoint}): "
            "stop it first with `provisioning oci-registry stop`"
        )
    backend, argv, config = _prepare(port)
    process = subprocess.Popen(argv, cwd=_dir(), env=_server_env())
    _write_state(process.pid, backend, port, config)
    try:
        wait_ready(port, process, timeout)
        if on_ready:
            on_ready(status())
        return process.wait()
    except KeyboardInterrupt:
        _terminate(process.pid)
        process.wait()
        return 0
    finally:
        if process.poll() is None:
            _terminate(process.pid)
            process.wait()
        _clear_files()


def _terminate(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        try:  # reap it when it is our child (foreground, or started by this process)
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(*, timeout: float = 10.0) -> RegistryStatus:
    """Terminate the running registry (SIGTERM, then SIGKILL) and remove its pid file."""
    current = status()
    if current.running and current.pid is not None:
        _terminate(current.pid, timeout)
        _clear_files()
    return current
