"""The Go interop peers (cosign, crane, oras) that `.ci/go-tools` builds: where they are, and a hard
requirement (a missing peer fails the test, it does not skip it: CI installs them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def tools_bin() -> Path:
    """The folder `.ci/go-tools` installs into (same rule as the script)."""
    root = os.environ.get("PROVISIONING_TOOLS") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "provisioning", "tools"
    )
    return Path(root) / "bin"


def put_tools_on_path() -> None:
    folder = str(tools_bin())
    if folder not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")


def require(name: str) -> str:
    """The path of a Go peer; fails the test (never skips) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `bash .ci/go-tools` (it builds cosign, crane and oras)")
    return path
