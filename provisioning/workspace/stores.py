"""The stores a workspace run reads: each registry (or embedded store) opened once, when first needed.

Mirrors (``dependencies.registry.mirrors``) are applied here, so the resolver, the installer and
the signature checks all fetch through the same mirrored store without knowing about mirrors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import NotFound
from ..oci.reference import layout_path
from ..oci.store import Storage, Target

if TYPE_CHECKING:
    from ..settings import RegistrySettings


@runtime_checkable
class _PingOnDoubt(Protocol):
    """A registry client that can let its first read's answer stand in for the ``/v2/`` ping."""

    def ping_on_doubt(self) -> None: ...


@runtime_checkable
class _Closable(Protocol):
    def close(self) -> None: ...


def open_store(settings: RegistrySettings) -> Storage:
    """The store a registry setting names: an embedded layout for a path, else the registry client.

    A workspace only reads, so a registry is not pinged first: the first answer proves it (an
    unchanged resolve is one HEAD of the catalog, not a ping and a HEAD).
    """
    if settings.is_path:
        root = Path(layout_path(settings.registry)).expanduser()
        if not root.is_dir():
            raise NotFound(
                f"embedded store {root} does not exist: publish extensions there first, or point "
                "dependencies.extensions.oci.registry (or PROVISIONING_REGISTRY) at the right place"
            )
    storage = settings.open()
    if isinstance(storage, _PingOnDoubt):
        storage.ping_on_doubt()
    return storage


class Stores:
    """Opens each registry once and only when first needed, so a no-op run makes no request."""

    def __init__(self, factory: Callable[[RegistrySettings], Storage] | None = None) -> None:
        self._factory = factory or open_store
        self._open: dict[tuple[str, str], Storage] = {}
        self._mutex = threading.Lock()  # prefetch threads open stores too
        self._mirrors: dict[str, tuple[str, ...]] = {}
        self._mirror_only = False
        self._tags: dict[tuple[str, str, str], list[str]] = {}  # repository tag lists read in this run

    def use_mirrors(self, mirrors: dict[str, tuple[str, ...]], mirror_only: bool = False) -> None:
        """Fetch from these mirrors (origin -> mirrors, tried in order) before, or with ``mirror_only`` instead
        of, the origin registry."""
        self._mirrors, self._mirror_only = dict(mirrors), mirror_only

    def storage(self, settings: RegistrySettings) -> Storage:
        key = (settings.registry, settings.namespace)
        with self._mutex:
            if key not in self._open:
                self._open[key] = self._mirrored(settings) or self._factory(settings)
            return self._open[key]

    def _mirrored(self, settings: RegistrySettings) -> Storage | None:
        mirrors = self._mirrors.get(settings.registry)
        if not mirrors:
            return None
        from ..oci.mirror import MirrorStorage
        from ..settings import RegistrySettings as Settings

        def opener(where: str) -> Callable[[], Storage]:
            return lambda: open_store(Settings(registry=where, namespace=settings.namespace))

        return MirrorStorage(
            settings.registry,
            [(m, opener(m)) for m in mirrors],
            lambda: self._factory(settings),
            mirror_only=self._mirror_only,
        )

    def target(self, settings: RegistrySettings, name: str) -> Target:
        return self.storage(settings).repository(f"{settings.namespace}/{name}")

    def saw_tags(self, settings: RegistrySettings, name: str, tags: list[str]) -> None:
        """Remember a repository's tag list as read a moment ago (the resolver's, when it read tag lists)."""
        self._tags[(settings.registry, settings.namespace, name)] = list(tags)

    def tags_seen(self, settings: RegistrySettings, name: str) -> list[str] | None:
        """The tag list this run read of ``name``, or None: the signature check finds cosign's
        ``sha256-<hex>.sig`` tags and the referrers index tag in it instead of listing the tags again."""
        return self._tags.get((settings.registry, settings.namespace, name))

    @property
    def opened(self) -> int:
        return len(self._open)

    def close(self) -> None:
        """Close what was opened (remote sessions hold connections)."""
        with self._mutex:
            storages, self._open = list(self._open.values()), {}
        for storage in storages:
            if isinstance(storage, _Closable):
                storage.close()
