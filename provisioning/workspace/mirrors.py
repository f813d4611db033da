"""Mirrors in a workspace config, and a bundle named as the registry.

``dependencies.registry.mirrors: {ORIGIN: [MIRROR, …]}`` lists, per origin registry, where to
look first (hosts, or bundle/store paths relative to the workspace); ``mirror_only: true``
never falls back to the origin. The lock keeps the origin's references, so the same lock
installs online, from a mirror and from a bundle. A bundle given as ``--registry ./bundle`` (or
in ``PROVISIONING_REGISTRY``) stands for its origin: it becomes that origin's only mirror, so a
lock made online is reused as it is instead of being re-resolved against a folder. A bundle tar
(``bundle create --tar``) works wherever a bundle folder does: it is unpacked safely into the cache
and verified whole once (``bundle.tarball.unpacked``), and that tree is what is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..oci.reference import is_path_registry, layout_path
from ..settings import RegistrySettings, from_document, registry_path

Mirrors = dict[str, tuple[str, ...]]


def _section(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    deps = doc.get("dependencies") if isinstance(doc.get("dependencies"), dict) else {}
    section = (deps or {}).get("registry") or doc.get("registry") or {}
    return section if isinstance(section, dict) else {}


def read_mirrors(doc: Mapping[str, Any], root: Path) -> tuple[Mirrors, bool]:
    """The config's mirrors (origin -> mirrors, paths made absolute against ``root``) and ``mirror_only``."""
    section = _section(doc)
    raw = section.get("mirrors") or {}
    if not isinstance(raw, dict):
        raise ValidationError("dependencies.registry.mirrors must map an origin registry to a list of mirrors")
    out: Mirrors = {}
    for origin, mirrors in raw.items():
        if isinstance(mirrors, str):
            mirrors = [mirrors]
        if not isinstance(mirrors, list) or not all(isinstance(m, str) and m.strip() for m in mirrors):
            raise ValidationError(f"dependencies.registry.mirrors.{origin} must be a list of registries or paths")
        out[registry_path(str(origin))] = tuple(_tree(registry_path(m, root)) for m in mirrors)
    return out, bool(section.get("mirror_only", False))


def _tree(registry: str) -> str:
    """A bundle tar named as a registry or mirror stands for its unpacked, verified tree; anything else is itself."""
    if not is_path_registry(registry):
        return registry
    path = Path(layout_path(registry))
    if not path.is_file():
        return registry
    from .. import paths
    from ..bundle.tarball import is_tar, unpacked

    if not is_tar(path):
        raise ValidationError(f"{registry} is a file but not a bundle tar; name a bundle folder, a .tar or a registry")
    return str(unpacked(path, paths.home()))


def through_bundle(
    default: RegistrySettings,
    doc: Mapping[str, Any],
    root: Path,
    *,
    namespace: str | None,
    mirrors: Mirrors,
    mirror_only: bool,
) -> tuple[RegistrySettings, Mirrors, bool]:
    """When the registry chosen is a bundle folder, use its origin, with the bundle as the only mirror."""
    if not default.is_path:
        return default, mirrors, mirror_only
    from ..bundle.manifest import is_bundle, read_bundle

    folder = Path(_tree(default.registry))
    if not is_bundle(folder):
        return default, mirrors, mirror_only
    bundle = read_bundle(folder)
    origin = bundle.origin["registry"]
    configured = from_document(doc, root, namespace=namespace)  # the config's own settings for the origin
    host = registry_path(origin, root)
    if configured.registry == host:
        settings = configured
    else:
        written = origin if host != origin else None
        ns = namespace or bundle.origin.get("namespace") or configured.namespace
        settings = RegistrySettings(registry=host, namespace=ns, written=written)
    out = dict(mirrors)
    registries = {host} | {registry_path(a.registry, root) for a in bundle.artifacts if a.registry}
    for reg in registries:
        out[reg] = (str(folder), *out.get(reg, ()))
    return settings, out, True
