"""``bundle push``: load a registry from a bundle, signatures and referrers included.

The bundle is verified first (offline, cheap next to the upload), then each repository is
copied with the namespace copy, which skips what the registry already has; so a rerun after a
failure (the registry went away, a quota) uploads only what is missing and then reports done.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..oci.layout import LayoutStorage
from ..oci.namespace import NamespaceCopyResult, RepositoryCopy, copy_namespace
from ..oci.store import Storage
from .verify import verify_bundle


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
        dst,
        repositories=bundle.repositories(),
        parallel=parallel,
        concurrency=concurrency,
        on_repository=on_repository,
    )
