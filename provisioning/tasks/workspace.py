"""doit task creators for a workspace: ``resolve`` (config -> lock) and ``install`` (lock -> extensions/).

The workspace is ``$PROVISIONING_WORKSPACE`` (default ``./workspace``). ``resolve`` re-runs only
when the config changed (and is a no-op without registry requests when the lock still answers
it); ``install`` re-runs when the lock changed or an installed extension is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed

from ..advice import message as error_text
from ..errors import ProvisioningError

DEFAULT_WORKSPACE = "workspace"


def workspace_dir() -> Path:
    return Path(os.environ.get("PROVISIONING_WORKSPACE") or DEFAULT_WORKSPACE)


def _resolve(workspace: Path) -> bool | TaskFailed:
    from ..workspace import resolve_workspace

    try:
        outcome = resolve_workspace(workspace, install_=False)
    except ProvisioningError as exc:
        return TaskFailed(error_text(exc))
    state = "up to date" if outcome.reused_lock else ("written" if outcome.lock_written else "unchanged")
    print(f"{outcome.config.lock_path}: {state} ({len(outcome.lock.extensions)} extensions)")
    return True


def _install(workspace: Path) -> bool | TaskFailed:
    from ..workspace import resolve_workspace

    try:
        outcome = resolve_workspace(workspace, locked=True)
    except ProvisioningError as exc:
        return TaskFailed(error_text(exc))
    report = outcome.report
    if report:
        print(
            f"installed {len(report.installed)}, unchanged {len(report.unchanged)}, removed {len(report.removed)}"
            f" into {workspace / 'extensions'}"
        )
    return True


def _installed(workspace: Path) -> bool:
    """doit ``uptodate``: every locked extension is installed (a deleted folder re-runs install)."""
    from ..workspace import read_lock
    from ..workspace.install import is_installed

    try:
        lock = read_lock(workspace / "config" / "provisioning.lock")
    except ProvisioningError:
        return False
    return lock is not None and all(is_installed(workspace.resolve(), e) for e in lock.extensions.values())


def task_resolve() -> dict[str, Any]:
    """Resolve the workspace's extension dependencies into config/provisioning.lock."""
    ws = workspace_dir()
    return {
        "actions": [(_resolve, [ws])],
        "file_dep": [str(ws / "config" / "provisioning.yaml")],
        "targets": [str(ws / "config" / "provisioning.lock")],
        "verbosity": 2,
    }


def task_install() -> dict[str, Any]:
    """Install the locked extensions into the workspace (digest-verified, atomic)."""
    ws = workspace_dir()
    return {
        "actions": [(_install, [ws])],
        "file_dep": [str(ws / "config" / "provisioning.lock")],
        "uptodate": [lambda: _installed(ws)],
        "verbosity": 2,
    }
