"""The per-namespace catalog: discovery where ``_catalog`` is refused, and one-request resolves.

``model`` is the document (every extension, version, digest and dependency range);
``registry`` reads and writes it as the artifact ``NAMESPACE/provisioning-catalog:latest``
and rebuilds it from what a registry holds.
"""

from __future__ import annotations

from .model import Catalog, CatalogError, ExtensionEntry, VersionEntry, entry_from_manifest
from .registry import (
    CATALOG_ARTIFACT_TYPE,
    CATALOG_NAME,
    CATALOG_TAG,
    LoadedCatalog,
    catalog_repository,
    check_generation,
    is_catalog_repository,
    read_catalog,
    rebuild_catalog,
    remember,
    remembered,
    write_catalog,
)

__all__ = [
    "CATALOG_ARTIFACT_TYPE",
    "CATALOG_NAME",
    "CATALOG_TAG",
    "Catalog",
    "CatalogError",
    "ExtensionEntry",
    "LoadedCatalog",
    "VersionEntry",
    "catalog_repository",
    "check_generation",
    "entry_from_manifest",
    "is_catalog_repository",
    "read_catalog",
    "rebuild_catalog",
    "remember",
    "remembered",
    "write_catalog",
]
