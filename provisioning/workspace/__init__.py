"""Workspaces: resolve the extensions a workspace's config asks for, lock them, install them.

The functions here are what the CLI (``dep``, ``module``, ``workspace``) and the doit tasks
call; each takes a workspace folder and returns plain data, so tests call them directly.
A run with an up-to-date lock and an installed workspace opens no registry at all.
"""

from __future__ import annotations

import difflib
import os
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DigestMismatch, NotFound, ProvisioningError, ResolutionError, ValidationError
from ..oci.reference import is_path_registry, tag_for_version
from ..yamlfile import safe_load
from .catalogs import Catalogs, catalog_policy
from .config import (
    EXTENSION_NAME,
    PLURALS,
    TYPES,
    RegistrySettings,
    WorkspaceConfig,
    config_path,
    display_path,
    load_config,
    load_yaml,
    set_module_entry,
)
from .core import check_core
from .install import BlobCache, InstallReport, Stores, is_installed, tree_digest
from .install import install as install_lock  # keeps `workspace.install` the module
from .lock import Lock, read_lock
from .resolver import Resolution, pin_platform_images, resolve

__all__ = [
    "BlobCache",
    "Lock",
    "ResolveOutcome",
    "Stores",
    "WorkspaceConfig",
    "check_updates",
    "dependency_tree",
    "load_config",
    "load_local_module",
    "load_oci_module",
    "migrate_to_oci",
    "read_lock",
    "resolve_workspace",
    "validate_workspace",
]


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


def _disagreement(config: WorkspaceConfig, lock: Lock) -> str:
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


def _preferred(lock: Lock | None, unlock: set[str]) -> dict[str, str]:
    if lock is None:
        return {}
    return {n: e.version for n, e in lock.extensions.items() if n not in unlock and e.source != "local"}


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
    cache = cache or BlobCache()
    lock = read_lock(config.lock_path)
    fresh = lock_is_fresh(config, lock)
    update = set(update or ())
    resolution = None
    if locked:
        if lock is None:
            raise ValidationError(
                f"--locked: {display_path(config.lock_path)} does not exist; run `provisioning dep resolve` and "
                "commit the lock file"
            )
        if not fresh:
            raise ValidationError(
                f"--locked: {display_path(config.path)} and {display_path(config.lock_path)} disagree "
                f"({_disagreement(config, lock)}); run `provisioning dep resolve` and commit the updated lock"
            )
    if fresh and not update:
        assert lock is not None
        new_lock = lock
    else:
        core_warning = check_core(config, stores)  # the seed's step 2: the core exists and fits
        if config.verify is not None:
            from .trust import verify_core

            core_warning = verify_core(config, stores) or core_warning
        resolution = resolve(config, stores=stores, cache=cache, preferred=_preferred(lock, update))
        if core_warning:
            resolution.warnings.append(core_warning)
        new_lock = resolution.to_lock(config, pin_platform_images(config, stores))
    trust_warnings: list[str] = []

    def trusted(candidate: Lock) -> Lock:
        """The signature policy, before anything is installed; --locked never rewrites the lock."""
        if config.verify is None:
            return candidate
        from .trust import verify_lock

        checked, warnings, _ = verify_lock(config, candidate, stores=stores, cache=cache, record=not locked)
        trust_warnings[:] = warnings
        return checked if checked.extensions != candidate.extensions else candidate

    new_lock = trusted(new_lock)
    try:
        report = install_lock(config.root, new_lock, stores=stores, cache=cache, config=config) if install_ else None
    except (NotFound, DigestMismatch, ValidationError) as exc:
        if resolution is None or not resolution.from_catalog:
            raise
        # the catalog named a version the registry no longer holds (or one that is not what it said):
        # nothing was installed; resolve again from tag lists, which only name what is there
        catalogs = Catalogs(stores, cache, policy=catalog_policy(config))
        catalogs.distrust(f"the catalog disagrees with the registry ({exc})")
        resolution = resolve(config, stores=stores, cache=cache, preferred=_preferred(lock, update), catalogs=catalogs)
        resolution.warnings.insert(0, f"the catalog is stale ({exc}); resolved again from tag lists")
        new_lock = trusted(resolution.to_lock(config, pin_platform_images(config, stores)))
        report = install_lock(config.root, new_lock, stores=stores, cache=cache, config=config)
    written = new_lock.write(config.lock_path) if new_lock is not lock else False
    return ResolveOutcome(
        config=config,
        lock=new_lock,
        reused_lock=new_lock is lock,
        lock_written=written,
        resolution=resolution,
        report=report,
        warnings=(list(resolution.warnings) if resolution else []) + trust_warnings,
    )


def current_graph(
    config: WorkspaceConfig, *, stores: Stores | None = None, cache: BlobCache | None = None
) -> tuple[Lock, Resolution | None]:
    """The lock when it is up to date, else a fresh in-memory resolution (nothing written)."""
    lock = read_lock(config.lock_path)
    if lock_is_fresh(config, lock):
        assert lock is not None
        return lock, None
    stores = stores or Stores()
    resolution = resolve(config, stores=stores, cache=cache or BlobCache(), preferred=_preferred(lock, set()))
    return resolution.to_lock(config, {}), resolution


def validate_workspace(
    workspace: Path, *, stores: Stores | None = None, cache: BlobCache | None = None, **kw: Any
) -> dict[str, Any]:
    """``dep validate``: config, names, versions, core compatibility, cycles, types; writes nothing."""
    config = load_config(workspace, require_modules=False, **kw)
    lock = read_lock(config.lock_path)
    stores = stores or Stores()
    core_warning = check_core(config, stores)
    resolution = resolve(config, stores=stores, cache=cache or BlobCache(), preferred=_preferred(lock, set()))
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


def check_updates(
    workspace: Path, *, stores: Stores | None = None, cache: BlobCache | None = None, **kw: Any
) -> list[dict[str, Any]]:
    """``dep check-updates``: for each extension, the current, wanted (within constraints) and latest version."""
    from ..versions import is_valid_version, satisfies, sort_versions
    from .resolver import ExtensionProvider

    config = load_config(workspace, **kw)
    stores = stores or Stores()
    cache = cache or BlobCache()
    lock, _ = current_graph(config, stores=stores, cache=cache)
    provider = ExtensionProvider(config, stores=stores, cache=cache)
    oci = [e for e in lock.extensions.values() if e.source == "oci"]
    if len(oci) > 1 and provider.catalogs.get(oci[0].settings(config)) is None:
        # no catalog: read the tag lists a bounded pool at a time, not one after another
        from concurrent.futures import ThreadPoolExecutor

        from .resolver import resolve_workers

        with ThreadPoolExecutor(max_workers=resolve_workers()) as pool:
            list(pool.map(lambda e: provider.versions(e.name, e.settings(config)), oci))
    rows = []
    for name in sorted(lock.extensions):
        e = lock.extensions[name]
        row: dict[str, Any] = {"name": name, "type": e.type, "current": e.version, "source": e.source}
        if e.source == "local":
            row.update(wanted=e.version, latest=e.version, update=False)
            rows.append(row)
            continue
        constraints: list[str] = []
        spec = config.module(name)
        if spec is not None:
            if spec.tag:
                constraints.append(f"={spec.requirement_text.lstrip('=')}")
            elif spec.constraint:
                constraints.append(spec.constraint)
        constraints += [p.dependencies[name] for p in lock.extensions.values() if name in p.dependencies]
        if e.source == "git":
            found = provider.git.versions(e.url or "", name)
            versions = sort_versions([v for v in found if is_valid_version(v)], reverse=True)
        else:
            versions = provider.versions(name, e.settings(config))
        stable = [v for v in versions if satisfies(v, "*")] or versions
        wanted = next((v for v in versions if all(satisfies(v, c) for c in constraints)), e.version)
        if spec is not None and spec.digest:
            wanted = e.version
        latest = stable[0] if stable else e.version
        row.update(
            wanted=wanted,
            latest=latest,
            constraints=constraints,
            update=wanted != e.version or latest != e.version,
        )
        rows.append(row)
    return rows


def find_local_extension(type_: str, name: str, path: str | None, workspace: Path) -> Path:
    """The folder of a local extension: --path, else ./extensions/<type>s/<name>, else $PROVISIONING_EXTENSIONS."""
    if not EXTENSION_NAME.match(name):
        raise ValidationError(f"{name!r} is not an extension name (lowercase letters, digits, '.', '_', '-')")
    candidates = []
    if path:
        candidates.append(Path(path).expanduser())
    else:
        candidates.append(Path.cwd() / "extensions" / f"{type_}s" / name)
        env = os.environ.get("PROVISIONING_EXTENSIONS")
        if env:
            candidates.append(Path(env).expanduser() / f"{type_}s" / name)
        candidates.append(workspace / "extensions-src" / f"{type_}s" / name)
    for c in candidates:
        if (c / "manifest.yaml").is_file():
            return c.resolve()
    raise NotFound(
        f"no local extension {name} found (looked in {', '.join(display_path(c) for c in candidates)}); "
        "pass --path DIR pointing at the extension folder (the one with manifest.yaml)"
    )


def load_local_module(
    workspace: Path,
    type_: str,
    name: str,
    *,
    path: str | None = None,
    install_: bool = True,
    stores: Stores | None = None,
    cache: BlobCache | None = None,
) -> ResolveOutcome:
    """``module load TYPE WORKSPACE NAME --source local``: point the config at a local folder, then resolve."""
    type_ = PLURALS.get(type_, type_)
    if type_ not in TYPES:
        raise ValidationError(f"unknown extension type {type_!r}: expected one of {', '.join(TYPES)}")
    root = Path(workspace).expanduser().resolve()
    file = config_path(root)
    if not file.is_file():
        raise NotFound(f"{display_path(root)} is not a workspace: {display_path(file)} does not exist")
    folder = find_local_extension(type_, name, path, root)
    import yaml

    try:
        meta = safe_load((folder / "manifest.yaml").read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValidationError(f"{display_path(folder / 'manifest.yaml')}: malformed YAML: {exc}") from None
    if not isinstance(meta, dict) or meta.get("name") != name:
        raise ValidationError(
            f"{display_path(folder / 'manifest.yaml')} names {meta.get('name') if isinstance(meta, dict) else None!r}, "
            f"not {name!r}"
        )
    if meta.get("type") != type_:
        raise ValidationError(f"{display_path(folder / 'manifest.yaml')} says type {meta.get('type')!r}, not {type_!r}")
    entry = {"name": name, "source": "local", "path": os.path.relpath(folder, root)}
    return _load_module(root, type_, name, entry, install_=install_, stores=stores, cache=cache)


def _load_module(
    root: Path,
    type_: str,
    name: str,
    entry: Any,
    *,
    install_: bool,
    stores: Stores | None,
    cache: BlobCache | None,
) -> ResolveOutcome:
    """Write ``entry`` for ``name`` into the config and resolve; on any failure the config is restored."""
    file = config_path(root)
    load_config(root, require_modules=False)  # refuse to edit a config that is already broken
    original = file.read_text(encoding="utf-8")
    set_module_entry(file, type_, name, entry)
    try:
        outcome = resolve_workspace(root, install_=install_, stores=stores, cache=cache)
    except ProvisioningError:
        file.write_text(original, encoding="utf-8")  # leave the workspace as it was
        raise
    locked = outcome.lock.extensions.get(name)
    if locked is not None and locked.type != type_:
        file.write_text(original, encoding="utf-8")
        raise ValidationError(f"{name} is a {locked.type}, not a {type_}; the config was not changed")
    return outcome


def load_oci_module(
    workspace: Path,
    type_: str,
    name: str,
    *,
    version: str | None = None,
    install_: bool = True,
    stores: Stores | None = None,
    cache: BlobCache | None = None,
) -> ResolveOutcome:
    """``module load TYPE WORKSPACE NAME --source oci [--version V]``: add the reference, then resolve.

    With a version the entry is the seed's full reference (``oci://HOST/NS/NAME:V``; for an
    embedded store ``NAME@=V``), without one the plain name (the newest compatible version).
    """
    type_ = PLURALS.get(type_, type_)
    if type_ not in TYPES:
        raise ValidationError(f"unknown extension type {type_!r}: expected one of {', '.join(TYPES)}")
    root = Path(workspace).expanduser().resolve()
    file = config_path(root)
    if not file.is_file():
        raise NotFound(f"{display_path(root)} is not a workspace: {display_path(file)} does not exist")
    config = load_config(root, require_modules=False)
    entry: str = name
    if version:
        from ..versions import is_valid_version

        bare = version.lstrip("vV")
        if not is_valid_version(bare):
            raise ValidationError(f"--version {version!r} is not a semantic version (write MAJOR.MINOR.PATCH)")
        settings = config.registry
        entry = f"{name}@={bare}" if settings.is_path else settings.reference(name, tag_for_version(bare))
    return _load_module(root, type_, name, entry, install_=install_, stores=stores, cache=cache)


def migrate_to_oci(
    workspace: Path,
    *,
    stores: Stores | None = None,
    cache: BlobCache | None = None,
    registry: str | None = None,
    namespace: str | None = None,
    dry_run: bool = False,
) -> list[dict[str, str]]:
    """``workspace migrate-to-oci``: rewrite local entries as OCI references once each is published."""
    from .resolver import ExtensionProvider

    config = load_config(workspace, registry=registry, namespace=namespace)
    stores = stores or Stores()
    provider = ExtensionProvider(config, stores=stores, cache=cache or BlobCache())
    settings: RegistrySettings = config.registry
    plan, missing = [], []
    for spec in config.modules:
        if spec.source != "local":
            continue
        assert spec.path is not None
        local = provider.local_candidate(spec.name, spec.path)
        try:
            published = provider.candidate(spec.name, settings, tag=tag_for_version(local.version))
        except NotFound:
            published = None
        if published is None or published.type != local.type:
            missing.append(f"{spec.name} {local.version} ({spec.location})")
            continue
        entry: Any
        if not is_path_registry(settings.registry):
            entry = settings.reference(spec.name, tag_for_version(local.version))
        elif registry:  # an embedded store named on the command line: say so in the entry
            entry = {"name": spec.name, "version": local.version, "registry": settings.registry}
        else:  # the config's own embedded store
            entry = f"{spec.name}:{tag_for_version(local.version)}"
        ref = (
            entry if isinstance(entry, str) else f"{settings.registry}/{settings.namespace}/{spec.name}:{local.version}"
        )
        plan.append({"name": spec.name, "type": spec.type, "version": local.version, "reference": ref, "entry": entry})
    if missing:
        raise ResolutionError(
            f"cannot migrate {display_path(config.root)} to OCI: not published at "
            f"{settings.reference('')[:-1]}: " + ", ".join(missing) + ". Publish them first (`provisioning oci push "
            "PATH NAME VERSION` or `doit publish`), then run migrate-to-oci again; the config was not changed"
        )
    if not plan:
        raise ValidationError(f"{display_path(config.path)} has no local module entries; nothing to migrate")
    if dry_run:
        return plan
    file = config.path
    original = file.read_text(encoding="utf-8")
    try:
        for item in plan:
            set_module_entry(file, item["type"], item["name"], item["entry"])
        if config.source_type == "local":
            _set_source_type_oci(file)
        load_config(config.root, registry=registry, namespace=namespace)
    except ProvisioningError:
        file.write_text(original, encoding="utf-8")
        raise
    return plan


def _set_source_type_oci(file: Path) -> None:
    import yaml

    text = file.read_text(encoding="utf-8")
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    for key in ("dependencies", "extensions", "source_type"):
        node = next((v for k, v in node.value if k.value == key), None) if isinstance(node, yaml.MappingNode) else None
        if node is None:
            return
    text = text[: node.start_mark.index] + '"oci"' + text[node.end_mark.index :]
    file.write_text(text, encoding="utf-8")
    load_yaml(file)


def installed_state(config: WorkspaceConfig, lock: Lock) -> dict[str, bool]:
    return {n: is_installed(config.root, e) for n, e in lock.extensions.items()}
