"""Workspaces: resolve the extensions a workspace's config asks for, lock them, install them.

The functions the CLI (``dep``, ``module``, ``workspace``) and the doit tasks call, gathered
here; each takes a workspace folder and returns plain data, so tests call them directly.

- ``dep.py``: ``dep resolve`` (lock and install), ``dep validate``, ``dep tree``;
- ``updates.py``: ``dep check-updates``;
- ``modules.py``: ``module load`` and ``workspace migrate-to-oci``;
- underneath: ``config`` (the config file), ``resolver`` (resolvelib, with one finder per source
  in ``sources/``), ``lock``, ``install``, ``cache`` and ``stores``.
"""

from __future__ import annotations

from .cache import BlobCache
from .config import WorkspaceConfig, display_path, load_config
from .current import current_graph, lock_is_fresh
from .dep import ResolveOutcome, dependency_tree, installed_state, resolve_workspace, validate_workspace
from .lock import Lock, read_lock
from .modules import find_local_extension, load_local_module, load_oci_module, migrate_to_oci
from .stores import Stores
from .updates import check_updates

__all__ = [
    "BlobCache",
    "Lock",
    "ResolveOutcome",
    "Stores",
    "WorkspaceConfig",
    "check_updates",
    "current_graph",
    "dependency_tree",
    "display_path",
    "find_local_extension",
    "installed_state",
    "load_config",
    "load_local_module",
    "load_oci_module",
    "lock_is_fresh",
    "migrate_to_oci",
    "read_lock",
    "resolve_workspace",
    "validate_workspace",
]
