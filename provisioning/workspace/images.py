"""The platform images a workspace names (``dependencies.platform.images``), pinned by digest in the lock.

A registry that does not answer leaves the image unpinned with a warning: platform images are
pinned where reachable, never a reason to stop a resolve.
"""

from __future__ import annotations

import logging

from ..errors import ProvisioningError
from ..oci.reference import InvalidReference, parse_reference
from ..settings import RegistrySettings
from .config import WorkspaceConfig
from .stores import Stores

log = logging.getLogger(__name__)


def pin_platform_images(config: WorkspaceConfig, stores: Stores) -> dict[str, dict[str, str | None]]:
    """Each platform image's digest when its registry answers; None (and a warning) when it does not."""
    out: dict[str, dict[str, str | None]] = {}
    base = config.platform_registry
    for service, image in sorted(config.platform_images.items()):
        entry: dict[str, str | None] = {"reference": image, "digest": None}
        out[service] = entry
        try:
            if base is not None and "/" not in image.replace("oci://", "", 1).split(":", 1)[0]:
                ref = parse_reference(image, registry="localhost", namespace=base.namespace)
                settings = base.with_registry(None, ref.repository.rsplit("/", 1)[0])
            else:
                ref = parse_reference(image)
                same = base is not None and base.registry == ref.registry
                settings = (base if same else RegistrySettings(registry=ref.registry)).with_registry(
                    ref.registry, ref.repository.rsplit("/", 1)[0]
                )
            if ref.digest:
                entry["digest"] = ref.digest
                continue
            target = stores.storage(settings).repository(ref.repository)
            entry["digest"] = target.resolve(ref.reference).digest
        except (ProvisioningError, InvalidReference, OSError) as exc:
            log.warning("platform image %s (%s) not pinned: %s", service, image, exc)
    return out
