"""What every source of extensions hands the resolver: candidates, read once, behind one small interface.

A ``Finder`` answers three questions about one source (one registry namespace, one git
repository, one local folder): which versions of a name exist (newest first), what one version
is (its manifest: type, dependencies, minimum core), and how to put a locked version into a
folder. The resolver asks these and nothing else, so a new source is a new finder.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ...errors import ValidationError
from ...extension import manifest_problems
from ...oci.descriptor import MANIFEST

if TYPE_CHECKING:
    from ...settings import RegistrySettings
    from ..lock import LockedExtension

T = TypeVar("T")


@dataclass(eq=False)
class Candidate:
    """One version of one extension, as read from its manifest and config blob (or a local folder)."""

    name: str
    version: str
    type: str
    digest: str
    dependencies: dict[str, str]
    settings: RegistrySettings | None = None
    tag: str | None = None
    size: int = 0
    media_type: str = MANIFEST
    source: str = "oci"
    path: Path | None = None
    min_provisioning_version: str | None = None
    url: str | None = None  # git
    ref: str | None = None
    commit: str | None = None
    subdir: str | None = None
    from_catalog: bool = False  # read from the namespace's catalog, not from its manifest and config

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def reference(self) -> str:
        if self.source == "local":
            return f"local:{self.path}"
        if self.source == "git":
            return f"git+{self.url}@{self.ref}"
        assert self.settings is not None
        return self.settings.reference(self.name, self.tag)

    def __repr__(self) -> str:
        return f"Candidate({self.label})"


class Finder(Protocol):
    """One source of extensions, as the resolver and the installer see it."""

    kind: str  # "oci", "local" or "git": what the lock records as the source

    def versions(self, name: str) -> list[str]:
        """The versions of ``name`` this source holds, newest first (empty: none)."""

    def candidate(self, name: str, version: str) -> Candidate:
        """One version, read from its manifest (refused when it is not a valid extension manifest)."""

    def fetch(self, entry: LockedExtension, dest: Path) -> bool:
        """Put the locked version's files into ``dest``, checked against the lock; True if a blob was refetched."""

    def where(self, name: str) -> str:
        """Where ``name`` was looked for, for messages."""

    def known_names(self) -> tuple[list[str], bool]:
        """Names this source lists (for did-you-mean), and whether it can list them at all."""


def candidate_from_manifest(meta: Any, where: str, name: str, *, schema_checked: bool = False) -> Candidate:
    """A candidate from an extension manifest (published config or manifest.yaml), valid by the one schema.

    ``schema_checked``: these very bytes (a config of the same digest) passed the schema already in this run.
    """
    problems = [] if schema_checked else manifest_problems(meta, where)
    if problems:
        raise ValidationError(
            f"{where} is not a valid extension manifest: " + "; ".join(problems[:5]) + ". Republish it fixed"
        )
    if meta.get("name") != name:
        raise ValidationError(f"{where}: the extension manifest names {meta.get('name')!r}, expected {name!r}")
    deps = meta.get("dependencies") or {}
    mpv = meta.get("min_provisioning_version")
    return Candidate(
        name=name,
        version=str(meta["version"]),
        type=meta["type"],
        digest="",
        dependencies={str(k): str(v) for k, v in deps.items()},
        min_provisioning_version=str(mpv) if mpv else None,
    )


class Memo:
    """Values computed once per key, even when several threads (the prefetch pool) ask at the same time.

    A failure is not remembered: the next caller computes again and meets its own error.
    """

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}
        self._mutex = threading.Lock()
        self._inflight: dict[Any, Future[Any]] = {}

    def get(self, key: Any, compute: Callable[[], T]) -> T:
        if key in self.values:
            return self.values[key]
        with self._mutex:
            if key in self.values:
                return self.values[key]
            future = self._inflight.get(key)
            owner = future is None
            if owner:
                future = self._inflight[key] = Future()
        assert future is not None
        if not owner:
            return future.result()
        try:
            value = compute()
        except BaseException as exc:
            future.set_exception(exc)
            with self._mutex:
                self._inflight.pop(key, None)
            raise
        self.values[key] = value
        future.set_result(value)
        with self._mutex:
            self._inflight.pop(key, None)
        return value
