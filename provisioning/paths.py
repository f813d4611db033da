"""Where things live on disk. ``PROVISIONING_HOME`` moves everything (tests use it)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """``~/.provisioning`` unless ``PROVISIONING_HOME`` says otherwise."""
    env = os.environ.get("PROVISIONING_HOME")
    return Path(env).expanduser() if env else Path.home() / ".provisioning"


def cache_dir() -> Path:
    """The content-addressed blob cache shared by all workspaces."""
    return home() / "oci-cache"


def auth_file() -> Path:
    """Credentials written by ``provisioning oci login`` (mode 0600)."""
    return home() / "auth.json"


def registry_dir() -> Path:
    """Storage, pid and log of ``provisioning oci-registry``."""
    return home() / "oci-registry"
