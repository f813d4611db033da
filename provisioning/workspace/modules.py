"""Editing a workspace's module list: ``module load`` (local or OCI) and ``workspace migrate-to-oci``.

Every edit is checked by resolving right after it; when the resolve fails the config is put
back as it was, so a failed ``module load`` leaves the workspace unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..errors import NotFound, ProvisioningError, ResolutionError, ValidationError
from ..oci.reference import is_path_registry, tag_for_version
from ..versions import is_valid_version
from ..yamlfile import safe_load
from .cache import BlobCache
from .catalogs import catalogs_for
from .config import (
    PLURALS,
    TYPES,
    RegistrySettings,
    config_path,
    display_path,
    load_config,
    load_yaml,
    set_module_entry,
)
from .dep import ResolveOutcome, resolve_workspace
from .entries import EXTENSION_NAME
from .sources import LocalFinder, OciFinder
from .stores import Stores


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


def _target(workspace: Path, type_: str) -> tuple[str, Path]:
    """The extension type (``taskservs`` or ``taskserv``) and the workspace root, both checked."""
    type_ = PLURALS.get(type_, type_)
    if type_ not in TYPES:
        raise ValidationError(f"unknown extension type {type_!r}: expected one of {', '.join(TYPES)}")
    root = Path(workspace).expanduser().resolve()
    file = config_path(root)
    if not file.is_file():
        raise NotFound(f"{display_path(root)} is not a workspace: {display_path(file)} does not exist")
    return type_, root


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
    type_, root = _target(workspace, type_)
    folder = find_local_extension(type_, name, path, root)
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
    type_, root = _target(workspace, type_)
    config = load_config(root, require_modules=False)
    entry: str = name
    if version:
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
    config = load_config(workspace, registry=registry, namespace=namespace)
    stores = stores or Stores()
    cache = cache or BlobCache()
    settings: RegistrySettings = config.registry
    published_at = OciFinder(settings, stores=stores, cache=cache, catalogs=catalogs_for(config, stores, cache))
    plan, missing = [], []
    for spec in config.modules:
        if spec.source != "local":
            continue
        assert spec.path is not None
        local = LocalFinder(spec.path).candidate(spec.name)
        try:
            published = published_at.by_tag(spec.name, tag_for_version(local.version))
        except NotFound:
            published = None
        if published is None or published.type != local.type:
            missing.append(f"{spec.name} {local.version} ({spec.location})")
            continue
        entry = _oci_entry(settings, spec.name, local.version, named_on_command_line=bool(registry))
        full = f"{settings.registry}/{settings.namespace}/{spec.name}:{local.version}"
        ref = entry if isinstance(entry, str) else full
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


def _oci_entry(settings: RegistrySettings, name: str, version: str, *, named_on_command_line: bool) -> Any:
    """The config entry that names the published version: a reference, or for an embedded store a name."""
    if not is_path_registry(settings.registry):
        return settings.reference(name, tag_for_version(version))
    if named_on_command_line:  # an embedded store named on the command line: say so in the entry
        return {"name": name, "version": version, "registry": settings.registry}
    return f"{name}:{tag_for_version(version)}"  # the config's own embedded store


def _set_source_type_oci(file: Path) -> None:
    text = file.read_text(encoding="utf-8")
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    for key in ("dependencies", "extensions", "source_type"):
        node = next((v for k, v in node.value if k.value == key), None) if isinstance(node, yaml.MappingNode) else None
        if node is None:
            return
    text = text[: node.start_mark.index] + '"oci"' + text[node.end_mark.index :]
    file.write_text(text, encoding="utf-8")
    load_yaml(file)
