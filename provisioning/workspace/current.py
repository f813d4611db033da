"""Whether a workspace's lock still answers its config, and the graph in force (the lock, or a dry resolve).

A lock is fresh when the config's inputs hash matches and every local override is unchanged:
then nothing needs a registry. ``_disagreement`` words what changed, for ``--locked``.
"""

from __future__ import annotations

from pathlib import Path

from .cache import BlobCache
from .config import WorkspaceConfig
from .lock import Lock, read_lock
from .resolver import Resolution, resolve
from .sources.local import tree_digest
from .stores import Stores


def lock_is_fresh(config: WorkspaceConfig, lock: Lock | None) -> bool:
    """The lock answers this config: same inputs and every local override unchanged."""
    if lock is None or lock.inputs != config.inputs_hash():
        return False
    for entry in lock.extensions.values():
        if entry.source == "local":
            folder = Path(entry.path or "")
            if not (folder / "manifest.yaml").is_file() or tree_digest(folder) != entry.digest:
                return False
    return True


def disagreement(config: WorkspaceConfig, lock: Lock) -> str:
    """Say how the config and the lock differ, as precisely as the lock allows."""
    wanted = {m.name for m in config.modules}
    locked = {n for n, e in lock.extensions.items() if e.requested}
    parts = []
    if wanted - locked:
        parts.append("the config adds " + ", ".join(sorted(wanted - locked)))
    if locked - wanted:
        parts.append("the config no longer lists " + ", ".join(sorted(locked - wanted)))
    changed_local = [
        n
        for n, e in lock.extensions.items()
        if e.source == "local" and (not Path(e.path or "").is_dir() or tree_digest(Path(e.path or "")) != e.digest)
    ]
    if changed_local:
        parts.append("local extensions changed: " + ", ".join(sorted(changed_local)))
    if config.core_version != lock.core_version:
        parts.append(f"the core version is {config.core_version}, the lock was made for {lock.core_version}")
    if not parts:
        parts.append("constraints, sources or the registry changed")
    return "; ".join(parts)


def preferred_versions(lock: Lock | None, unlock: set[str]) -> dict[str, str]:
    if lock is None:
        return {}
    return {n: e.version for n, e in lock.extensions.items() if n not in unlock and e.source != "local"}


def current_graph(
    config: WorkspaceConfig, *, stores: Stores | None = None, cache: BlobCache | None = None
) -> tuple[Lock, Resolution | None]:
    """The lock when it is up to date, else a fresh in-memory resolution (nothing written)."""
    lock = read_lock(config.lock_path)
    if lock_is_fresh(config, lock):
        assert lock is not None
        return lock, None
    stores = stores or Stores()
    resolution = resolve(config, stores=stores, cache=cache or BlobCache(), preferred=preferred_versions(lock, set()))
    return resolution.to_lock(config, {}), resolution
