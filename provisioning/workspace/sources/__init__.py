"""Where extensions come from: one finder per source (oci, local, git), chosen per name from the config.

``Sources`` is what one resolve asks: the finder for a name (a module's own source, else the
workspace's ``source_type``), made once per registry namespace, repository or folder.
``finder_for_entry`` is what an install asks: the finder that can fetch a locked entry again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...extension import TYPES
from .base import Candidate, Finder, Memo, candidate_from_manifest
from .git import GitFinder, GitSource
from .local import LocalFinder
from .oci import OciFinder

if TYPE_CHECKING:
    from ...archive import ExtractLimits
    from ...settings import RegistrySettings
    from ..cache import BlobCache
    from ..catalogs import Catalogs
    from ..config import WorkspaceConfig
    from ..lock import LockedExtension
    from ..stores import Stores

__all__ = [
    "Candidate",
    "Finder",
    "GitFinder",
    "GitSource",
    "LocalFinder",
    "Memo",
    "OciFinder",
    "Sources",
    "candidate_from_manifest",
    "finder_for_entry",
]


class Sources:
    """The finders of one resolve, keyed by where they look, so each source is read once."""

    def __init__(
        self,
        config: WorkspaceConfig,
        *,
        stores: Stores,
        cache: BlobCache,
        catalogs: Catalogs | None,
        git: GitSource | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.stores = stores
        self.cache = cache
        self.catalogs = catalogs
        self.git = git or GitSource()
        self.warn = warn
        self._finders: dict[Any, Finder] = {}
        self._by_name: dict[str, Finder] = {}  # the resolver and the pool ask for a name's finder many times
        self._mutex = threading.Lock()

    def of(self, name: str) -> Finder:
        """The finder that answers for ``name``."""
        finder = self._by_name.get(name)
        if finder is not None:
            return finder
        key, make = self._choose(name)
        with self._mutex:
            if key not in self._finders:
                self._finders[key] = make()
            finder = self._by_name[name] = self._finders[key]
        return finder

    def _choose(self, name: str) -> tuple[Any, Callable[[], Finder]]:
        config, spec = self.config, self.config.module(name)
        if spec is not None and spec.source == "local":
            return ("local", name), lambda: LocalFinder(spec.path)
        if spec is not None and spec.source == "git":
            return ("git", spec.url, spec.ref), lambda: GitFinder(spec.url or "", spec.ref, self.git)
        if spec is None and config.source_type in ("git", "gitea") and config.git_repo:
            return ("git", config.git_repo, None), lambda: GitFinder(config.git_repo or "", None, self.git)
        if spec is None and config.source_type == "local":
            return ("local", name), lambda: LocalFinder(local_folder(config, name))
        settings = (spec.registry if spec is not None else None) or config.registry
        return ("oci", settings.registry, settings.namespace), lambda: self._oci(settings)

    def _oci(self, settings: RegistrySettings) -> OciFinder:
        return OciFinder(settings, stores=self.stores, cache=self.cache, catalogs=self.catalogs, warn=self.warn)

    def oci(self, name: str) -> OciFinder | None:
        """The OCI finder of ``name``, or None when it comes from git or a folder."""
        finder = self.of(name)
        return finder if isinstance(finder, OciFinder) else None

    def oci_at(self, settings: RegistrySettings) -> OciFinder:
        """The finder of one registry namespace (shared with the names that resolve there)."""
        key = ("oci", settings.registry, settings.namespace)
        with self._mutex:
            if key not in self._finders:
                self._finders[key] = self._oci(settings)
            finder = self._finders[key]
        assert isinstance(finder, OciFinder)
        return finder


def local_folder(config: WorkspaceConfig, name: str) -> Path | None:
    """``source_type: local``: the extension's folder under the local path (any type), or None."""
    base = config.local_path or (config.root / "extensions-src")
    for t in TYPES:
        if (base / f"{t}s" / name / "manifest.yaml").is_file():
            return base / f"{t}s" / name
    return None


def finder_for_entry(
    entry: LockedExtension,
    *,
    config: WorkspaceConfig | None,
    stores: Stores | None,
    cache: BlobCache,
    limits: ExtractLimits,
    git: GitSource | None = None,
) -> Finder:
    """The finder that fetches a locked entry again (by digest, commit or tree digest)."""
    if entry.source == "git":
        return GitFinder(entry.url or "", entry.ref, git)
    if entry.source == "local":
        return LocalFinder(Path(entry.path or ""))
    return OciFinder(entry.settings(config), stores=stores, cache=cache, limits=limits)
