"""``bundle push``: load a registry from a bundle, signatures and referrers included.

The bundle is verified first (offline, cheap next to the upload), then each repository is
copied with the namespace copy, which skips what the registry already has; so a rerun after a
failure (the registry went away, a quota) uploads only what is missing and then reports done.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..oci.descriptor import Descriptor
from ..oci.layout import LayoutStorage
from ..oci.namespace import NamespaceCopyResult, RepositoryCopy, copy_namespace
from ..oci.store import BlindPusher, Storage
from .verify import verify_bundle

SMALL_BLOB = 1 << 20


class _UploadSmall:
    """A destination repository that uploads small blobs of a manifest it lacks without asking first: a PUT of a
    blob the registry has is a no-op there, and the question costs as much as the upload. Large blobs (images)
    are still checked, so a rerun never sends them twice."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def exists(self, desc: Descriptor) -> bool:
        if desc.is_manifest or desc.size > SMALL_BLOB or not isinstance(self._inner, BlindPusher):
            return bool(self._inner.exists(desc))
        self._inner.expect_absent(desc)
        return False


class _Destination:
    def __init__(self, inner: Storage) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def repository(self, name: str) -> Any:
        return _UploadSmall(self._inner.repository(name))


def push_bundle(
    root: Path,
    dst: Storage,
    *,
    parallel: int = 8,
    concurrency: int = 4,
    verify: bool = True,
    on_repository: Callable[[RepositoryCopy], None] | None = None,
) -> NamespaceCopyResult:
    """Copy every repository the bundle lists into ``dst`` (same paths, same tags)."""
    from .manifest import read_bundle

    bundle = verify_bundle(root).bundle if verify else read_bundle(root)
    return copy_namespace(
        LayoutStorage(root),
        _Destination(dst),
        repositories=bundle.repositories(),
        parallel=parallel,
        concurrency=concurrency,
        on_repository=on_repository,
    )
