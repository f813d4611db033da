"""Step 2 of the seed's resolution order: the core a workspace names exists and fits this tool.

``dependencies.core.source: oci://HOST/provisioning-core:v3.5.0`` must name a published core
artifact (``doit publish tag=v3.5.0`` writes it) whose version is the one the tag says and whose
major version is this tool's: a lock is never written for a core nobody can fetch.
"""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from ..errors import NotFound, ResolutionError, ValidationError
from ..oci.descriptor import CORE_ARTIFACT_TYPE, CORE_CONFIG_TYPE, Descriptor
from ..oci.reference import InvalidReference, parse_reference, version_for_tag
from ..oci.store import fetch_bytes, fetch_manifest
from .config import RegistrySettings, WorkspaceConfig, display_path

CORE_NAME = "provisioning-core"
_CONFIG_LIMIT = 1 << 20


def core_settings(config: WorkspaceConfig, registry: str) -> RegistrySettings:
    """The workspace's transport settings when the core lives on its registry, none otherwise."""
    if registry == config.registry.registry:
        return config.registry
    return RegistrySettings(registry=registry, namespace="")


def check_core(config: WorkspaceConfig, stores: Any) -> str | None:
    """Raise when ``dependencies.core.source`` names a core that is absent or incompatible.

    Returns a warning for sources that cannot be checked from here (``gitea://``), else None.
    """
    source = config.core_source
    if not source:
        return None
    where = f"{display_path(config.path)}: dependencies.core.source {source!r}"
    if not source.startswith("oci://"):
        return f"{where} is not an OCI reference, so the core was not checked"
    try:
        ref = parse_reference(source, registry=config.registry.registry, namespace="")
    except InvalidReference as exc:
        raise ValidationError(f"{where}: {exc}") from None
    if ref.name != CORE_NAME or not (ref.tag or ref.digest):
        raise ValidationError(
            f"{where}: expected oci://HOST/{CORE_NAME}:vX.Y.Z (the core's repository and a version tag)"
        )
    settings = core_settings(config, ref.registry)
    target = stores.storage(settings).repository(ref.repository)
    try:
        _, body = fetch_manifest(target, ref.digest or ref.tag or "")
    except NotFound:
        raise ResolutionError(
            f"{where}: no such core in {ref.registry} ({ref.repository} has no {ref.digest or ref.tag}). Check the "
            f"version (`provisioning oci tags {ref.registry}/{ref.repository}`), or publish that core "
            f"(`doit publish tag={ref.tag or 'vX.Y.Z'}`); nothing was locked"
        ) from None
    version = _core_version(target, body, where)
    wanted = version_for_tag(ref.tag).lstrip("vV") if ref.tag else version
    if version != wanted:
        raise ResolutionError(f"{where}: the artifact tagged {ref.tag} is core {version}, not {wanted}")
    if version.split(".")[0] != __version__.split(".")[0]:
        raise ResolutionError(
            f"{where}: core {version} does not fit this tool (provisioning {__version__} works with cores "
            f"{__version__.split('.')[0]}.x); name a {__version__.split('.')[0]}.x core or upgrade provisioning"
        )
    if config.core_version != version:
        raise ResolutionError(
            f"{where} is core {version} but dependencies.core.version says {config.core_version}; make them agree"
        )
    return None


def _core_version(target: Any, body: bytes, where: str) -> str:
    """The version in the core artifact's config; anything else there is not a core."""
    try:
        doc = json.loads(body)
        config = Descriptor.from_dict(doc["config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ResolutionError(f"{where}: the artifact is not an OCI image manifest ({exc})") from None
    if doc.get("artifactType") != CORE_ARTIFACT_TYPE and config.media_type != CORE_CONFIG_TYPE:
        raise ResolutionError(
            f"{where}: the artifact is not a provisioning core (artifactType {doc.get('artifactType')!r})"
        )
    if config.size > _CONFIG_LIMIT:
        raise ResolutionError(f"{where}: the core's config is {config.size} bytes, more than a core config can be")
    try:
        data = json.loads(fetch_bytes(target, config))
        return str(data["version"]).lstrip("vV")
    except (ValueError, KeyError, TypeError) as exc:
        raise ResolutionError(f"{where}: the core's config has no version ({exc})") from None
