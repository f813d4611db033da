"""The catalogs a resolve reads: one per registry and namespace, loaded at most once a run.

Policy (``dependencies.extensions.catalog`` in the workspace config, or ``PROVISIONING_CATALOG``):

- ``auto`` (default): use the catalog when the namespace has one; when it is missing, not
  trusted (not JSON, wrong shape, an older generation than this machine saw, a bad signature)
  or turns out stale, say so and read tag lists instead;
- ``require``: the same, but a missing or untrusted catalog stops the run (exit 1);
- ``off``: never read it (tag lists only).

Under a signature policy (``dependencies.extensions.verify``) a catalog counts only when one of
the policy's keys signed it; one signed by another key (or not at all) is not trusted, with the
same consequences as a broken one: tag lists (``auto``) or a stop (``require``).

A catalog only ever decides *which* digest to take; the install still fetches by digest and
checks the unpacked manifest, so a lying catalog can make a resolve fail, never install the
wrong thing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..catalog import Catalog, CatalogError, ExtensionEntry, check_generation, read_catalog, remember, remembered
from ..catalog.registry import Verifier
from ..errors import ProvisioningError, ValidationError

if TYPE_CHECKING:
    from .cache import BlobCache
    from .config import RegistrySettings, WorkspaceConfig
    from .stores import Stores

log = logging.getLogger(__name__)

POLICIES = ("auto", "require", "off")


def catalogs_for(
    config: WorkspaceConfig, stores: Stores, cache: BlobCache, *, warn: Callable[[str], None] | None = None
) -> Catalogs:
    """The catalogs one run reads under the workspace's policies: ``catalog`` (auto, require, off) and
    ``verify`` (a catalog must be signed by one of the keys, or it is not trusted)."""
    from .trust import catalog_verifier

    return Catalogs(stores, cache, policy=catalog_policy(config), verify=catalog_verifier(config), warn=warn)


def catalog_policy(config: WorkspaceConfig | None) -> str:
    """The environment wins over the config (a CI can turn the catalog off without editing workspaces)."""
    value = os.environ.get("PROVISIONING_CATALOG")
    where = "PROVISIONING_CATALOG"
    if not value and config is not None:
        ext = (config.data.get("dependencies") or {}).get("extensions") or {}
        value = ext.get("catalog") if isinstance(ext, dict) else None
        where = f"{config.path}: dependencies.extensions.catalog"
    value = value or "auto"
    if value not in POLICIES:
        raise ValidationError(f"{where}: {value!r} is not one of {', '.join(POLICIES)}")
    return value


class Catalogs:
    """Loads, checks and remembers catalogs for a resolver; thread-safe, once per namespace."""

    def __init__(
        self,
        stores: Stores,
        cache: BlobCache,
        *,
        policy: str = "auto",
        verify: Verifier | None = None,
        warn: Any = None,
    ) -> None:
        self.stores = stores
        self.cache = cache
        self.policy = policy
        self.verify = verify
        self._warn = warn or (lambda message: log.warning("%s", message))
        self._loaded: dict[tuple[str, str], Catalog | None] = {}
        self._mutex = threading.Lock()
        self.used: set[tuple[str, str]] = set()
        self.requests = 0

    def get(self, settings: RegistrySettings) -> Catalog | None:
        """The catalog of the settings' namespace, or None (absent, refused by policy, or distrusted)."""
        if self.policy == "off":
            return None
        key = (settings.registry, settings.namespace)
        if key in self._loaded:
            return self._loaded[key]
        with self._mutex:
            if key not in self._loaded:
                self._loaded[key] = self._load(settings)
        return self._loaded[key]

    def _load(self, settings: RegistrySettings) -> Catalog | None:
        registry, namespace = settings.registry, settings.namespace
        seen = remembered(registry, namespace)
        try:
            storage = self.stores.storage(settings)
            loaded = read_catalog(
                storage, namespace, cache=self.cache, known_digest=seen.get("digest"), verify=self.verify, lazy=True
            )
            if loaded is not None:
                self.requests += loaded.requests
                if loaded.catalog.namespace != namespace:
                    raise CatalogError(
                        f"{loaded.where} describes namespace {loaded.catalog.namespace!r}, not {namespace!r}"
                    )
                check_generation(registry, namespace, loaded)
        except CatalogError as exc:
            if self.policy == "require":
                raise
            self._warn(f"{exc}; resolving from tag lists instead")
            return None
        except ProvisioningError as exc:
            if self.policy == "require":
                raise
            log.debug("catalog of %s/%s unavailable: %s", registry, namespace, exc)
            return None
        if loaded is None:
            if self.policy == "require":
                raise ProvisioningError(
                    f"{settings.reference('provisioning-catalog', 'latest')} does not exist and this workspace "
                    "requires a catalog (dependencies.extensions.catalog: require): publish it with "
                    "`doit publish_catalog` or `provisioning catalog rebuild`, or set the policy to auto"
                )
            return None
        remember(registry, namespace, loaded)
        return loaded.catalog

    def extension(self, settings: RegistrySettings, name: str) -> ExtensionEntry | None:
        """What the catalog says about ``name`` (None: no catalog, or it does not list it, or it is broken)."""
        catalog = self.get(settings)
        if catalog is None or name not in catalog.extensions:
            return None
        try:
            return catalog.extensions[name]
        except CatalogError as exc:  # checked on first look-up: stop trusting the whole document
            if self.policy == "require":
                raise
            self._warn(f"{exc}; resolving from tag lists instead")
            with self._mutex:
                self._loaded[(settings.registry, settings.namespace)] = None
            return None

    def note_used(self, settings: RegistrySettings) -> None:
        self.used.add((settings.registry, settings.namespace))

    def distrust(self, reason: str) -> None:
        """Stop using every catalog this run (a version it named is gone, or it disagreed with an artifact)."""
        if self.policy == "require":
            raise ProvisioningError(
                f"{reason}; the catalog is stale and this workspace requires one: republish it "
                "(`doit publish_catalog` or `provisioning catalog rebuild`)"
            )
        with self._mutex:
            for key in list(self._loaded):
                self._loaded[key] = None
        self.used.clear()
        self.policy = "off"
