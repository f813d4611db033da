"""The ``dep`` operations on a workspace: resolve (and lock, and install), validate, and show the tree.

Each takes a workspace folder and returns plain data, so the CLI, the doit tasks and the tests
call the same functions. A run with an up-to-date lock and an installed workspace opens no
registry at all.
"""

from __future__ import annotations

import difflib
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DigestMismatch, NotFound, ValidationError
from .cache import BlobCache
from .catalogs import Catalogs, catalogs_for
from .config import WorkspaceConfig, display_path, load_config
from .core import check_core
from .current import current_graph, disagreement, lock_is_fresh, preferred_versions
from .images import pin_platform_images
from .install import InstallReport, is_installed
from .install import install as install_lock
from .lock import Lock, read_lock
from .resolver import Resolution, resolve
from .stores import Stores


@dataclass
class ResolveOutcome:
    """What ``dep resolve`` did: the lock in force, whether it was reused or written, what got installed."""

    config: WorkspaceConfig
    lock: Lock
    reused_lock: bool
    lock_written: bool
    resolution: Resolution | None = None
    report: InstallReport | None = None
    warnings: list[str] = field(default_factory=list)


def resolve_workspace(
    workspace: Path,
    *,
    locked: bool = False,
    install_: bool = True,
    update: set[str] | None = None,
    stores: Stores | None = None,
    cache: BlobCache | None = None,
    registry: str | None = None,
    namespace: str | None = None,
) -> ResolveOutcome:
    """``dep resolve``: reuse an up-to-date lock (no registry needed) or resolve and write a new one; install."""
    if stores is None:
        with closing(Stores()) as own:
            return resolve_workspace(
                workspace,
                locked=locked,
                install_=install_,
                update=update,
                stores=own,
                cache=cache,
                registry=registry,
                namespace=namespace,
            )
    # a new workspace lists nothing yet: resolving it writes an empty lock (and says so), not an error
    config = load_config(workspace, registry=registry, namespace=namespace, require_modules=False)
    stores.use_mirrors(config.mirrors, config.mirror_only)
    run = _Run(config, stores, cache or BlobCache(), read_lock(config.lock_path), set(update or ()), locked)
    fresh = lock_is_fresh(config, run.lock)
    if locked:
        _check_locked(config, run.lock, fresh)
    if fresh and not run.update:
        assert run.lock is not None
        new_lock: Lock = run.lock
    else:
        new_lock = run.resolve()
    new_lock = run.trusted(new_lock)
    report = run.install(new_lock) if install_ else None
    new_lock = run.final or new_lock
    written = new_lock.write(config.lock_path) if new_lock is not run.lock else False
    return ResolveOutcome(
        config=config,
        lock=new_lock,
        reused_lock=new_lock is run.lock,
        lock_written=written,
        resolution=run.resolution,
        report=report,
        warnings=(list(run.resolution.warnings) if run.resolution else []) + run.trust_warnings,
    )


def _check_locked(config: WorkspaceConfig, lock: Lock | None, fresh: bool) -> None:
    if lock is None:
        raise ValidationError(
            f"--locked: {display_path(config.lock_path)} does not exist; run `provisioning dep resolve` and "
            "commit the lock file"
        )
    if not fresh:
        raise ValidationError(
            f"--locked: {display_path(config.path)} and {display_path(config.lock_path)} disagree "
            f"({disagreement(config, lock)}); run `provisioning dep resolve` and commit the updated lock"
        )


@dataclass
class _Run:
    """One ``dep resolve``: what it read, resolved and was warned about."""

    config: WorkspaceConfig
    stores: Stores
    cache: BlobCache
    lock: Lock | None
    update: set[str]
    locked: bool
    resolution: Resolution | None = None
    final: Lock | None = None  # the lock after a resolve again from tag lists
    trust_warnings: list[str] = field(default_factory=list)

    def resolve(self, catalogs: Catalogs | None = None) -> Lock:
        """A new lock from the registries (the core checked first, and verified under a signature policy)."""
        config, stores = self.config, self.stores
        core_warning = None
        if catalogs is None:  # (a resolve again after a stale catalog checked the core already)
            core_warning = check_core(config, stores)  # the seed's step 2: the core exists and fits
            if config.verify is not None:
                from .trust import verify_core

                core_warning = verify_core(config, stores) or core_warning
        preferred = preferred_versions(self.lock, self.update)
        self.resolution = resolve(config, stores=stores, cache=self.cache, preferred=preferred, catalogs=catalogs)
        if core_warning:
            self.resolution.warnings.append(core_warning)
        return self.resolution.to_lock(config, pin_platform_images(config, stores))

    def trusted(self, candidate: Lock) -> Lock:
        """The signature policy, before anything is installed; --locked never rewrites the lock."""
        if self.config.verify is None:
            return candidate
        from .trust import verify_lock

        checked, warnings, _ = verify_lock(
            self.config, candidate, stores=self.stores, cache=self.cache, record=not self.locked
        )
        self.trust_warnings[:] = warnings
        return checked if checked.extensions != candidate.extensions else candidate

    def install(self, new_lock: Lock) -> InstallReport:
        """Install; when a catalog named what the registry does not hold, resolve again from tag lists."""
        config = self.config
        try:
            return install_lock(config.root, new_lock, stores=self.stores, cache=self.cache, config=config)
        except (NotFound, DigestMismatch, ValidationError) as exc:
            if self.resolution is None or not self.resolution.from_catalog:
                raise
            # the catalog named a version the registry no longer holds (or one that is not what it said):
            # nothing was installed; resolve again from tag lists, which only name what is there
            catalogs = catalogs_for(config, self.stores, self.cache)
            catalogs.distrust(f"the catalog disagrees with the registry ({exc})")
            self.final = self.trusted(self.resolve(catalogs))
            assert self.resolution is not None
            self.resolution.warnings.insert(0, f"the catalog is stale ({exc}); resolved again from tag lists")
            return install_lock(config.root, self.final, stores=self.stores, cache=self.cache, config=config)


def validate_workspace(
    workspace: Path, *, stores: Stores | None = None, cache: BlobCache | None = None, **kw: Any
) -> dict[str, Any]:
    """``dep validate``: config, names, versions, core compatibility, cycles, types; writes nothing."""
    config = load_config(workspace, require_modules=False, **kw)
    lock = read_lock(config.lock_path)
    stores = stores or Stores()
    core_warning = check_core(config, stores)
    resolution = resolve(config, stores=stores, cache=cache or BlobCache(), preferred=preferred_versions(lock, set()))
    if core_warning:
        resolution.warnings.append(core_warning)
    return {
        "workspace": str(config.root),
        "extensions": {n: c.version for n, c in resolution.candidates.items()},
        "order": resolution.order,
        "lock": "missing" if lock is None else ("up to date" if lock_is_fresh(config, lock) else "out of date"),
        "warnings": resolution.warnings,
    }


def dependency_tree(
    workspace: Path, name: str | None = None, *, stores: Stores | None = None, **kw: Any
) -> list[dict[str, Any]]:
    """``dep tree``: nested {name, version, constraint, dependencies} from the lock (or a dry resolution)."""
    config = load_config(workspace, **kw)
    lock, _ = current_graph(config, stores=stores)
    exts = lock.extensions
    if name is not None and name not in exts:
        close = difflib.get_close_matches(name, list(exts), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise NotFound(f"{name} is not part of this workspace's dependency graph{hint}")

    def node(n: str, constraint: str | None, path: tuple[str, ...]) -> dict[str, Any]:
        e = exts[n]
        d: dict[str, Any] = {"name": n, "version": e.version, "type": e.type}
        if constraint:
            d["constraint"] = constraint
        if n in path:
            d["cycle"] = True
            return d
        d["dependencies"] = [node(k, v, (*path, n)) for k, v in sorted(e.dependencies.items())]
        return d

    roots = [name] if name else [n for n in lock.order if exts[n].requested]
    return [node(r, None, ()) for r in roots]


def installed_state(config: WorkspaceConfig, lock: Lock) -> dict[str, bool]:
    return {n: is_installed(config.root, e) for n, e in lock.extensions.items()}
