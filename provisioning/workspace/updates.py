"""``dep check-updates``: for each locked extension, the current, wanted (within constraints) and latest version.

It reads what a resolve would read and nothing more: with a catalog, the catalog alone (one HEAD
when it is unchanged); without one, each extension's tag list, a bounded pool at a time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..versions import satisfies
from .cache import BlobCache
from .catalogs import catalogs_for
from .config import WorkspaceConfig, load_config
from .current import current_graph
from .lock import Lock, LockedExtension
from .resolver import resolve_workers
from .sources import GitFinder, GitSource, Sources
from .stores import Stores


def check_updates(
    workspace: Path, *, stores: Stores | None = None, cache: BlobCache | None = None, **kw: Any
) -> list[dict[str, Any]]:
    """One row per locked extension: current, wanted, latest, the constraints on it, and whether to update."""
    config = load_config(workspace, **kw)
    stores = stores or Stores()
    cache = cache or BlobCache()
    lock, _ = current_graph(config, stores=stores, cache=cache)
    catalogs = catalogs_for(config, stores, cache)
    sources = Sources(config, stores=stores, cache=cache, catalogs=catalogs)
    git = GitSource()
    oci = [e for e in lock.extensions.values() if e.source == "oci"]
    if len(oci) > 1 and catalogs.get(oci[0].settings(config)) is None:
        # no catalog: read the tag lists a bounded pool at a time, not one after another
        with ThreadPoolExecutor(max_workers=resolve_workers()) as pool:
            list(pool.map(lambda e: sources.oci_at(e.settings(config)).versions(e.name), oci))
    rows = []
    for name in sorted(lock.extensions):
        e = lock.extensions[name]
        if e.source == "local":
            rows.append(_row(e, wanted=e.version, latest=e.version, update=False))
            continue
        if e.source == "git":
            versions = GitFinder(e.url or "", None, git).versions(name)
        else:
            versions = sources.oci_at(e.settings(config)).versions(name)
        rows.append(_compare(config, lock, e, versions))
    return rows


def _row(e: LockedExtension, **fields: Any) -> dict[str, Any]:
    return {"name": e.name, "type": e.type, "current": e.version, "source": e.source, **fields}


def _compare(config: WorkspaceConfig, lock: Lock, e: LockedExtension, versions: list[str]) -> dict[str, Any]:
    constraints: list[str] = []
    spec = config.module(e.name)
    if spec is not None:
        if spec.tag:
            constraints.append(f"={spec.requirement_text.lstrip('=')}")
        elif spec.constraint:
            constraints.append(spec.constraint)
    constraints += [p.dependencies[e.name] for p in lock.extensions.values() if e.name in p.dependencies]
    stable = [v for v in versions if satisfies(v, "*")] or versions
    wanted = next((v for v in versions if all(satisfies(v, c) for c in constraints)), e.version)
    if spec is not None and spec.digest:
        wanted = e.version
    latest = stable[0] if stable else e.version
    return _row(
        e, wanted=wanted, latest=latest, constraints=constraints, update=wanted != e.version or latest != e.version
    )
