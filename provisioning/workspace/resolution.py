"""What a resolve produces: requirements (who wants what), the chosen candidates, and the install order.

Plain data and pure functions: the resolver fills them, the lock is written from them, and the
messages that explain a failure read them.
"""

from __future__ import annotations

import graphlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import ResolutionError, VersionError
from ..oci.reference import version_for_tag
from ..versions import Version
from .config import WorkspaceConfig
from .entries import ModuleSpec
from .lock import Lock, LockedExtension
from .sources.base import Candidate

if TYPE_CHECKING:
    from .sources import Sources

__all__ = [
    "Answers",
    "Candidate",
    "Requirement",
    "Resolution",
    "core_satisfies",
    "install_order",
    "root_requirements",
]


@dataclass(frozen=True)
class Requirement:
    """``name`` wanted within ``constraint`` (or at an exact tag/digest), by ``parent`` (None: the config)."""

    name: str
    constraint: str | None = None
    tag: str | None = None
    digest: str | None = None
    parent: str | None = None  # "kubernetes 1.28.0"
    location: str = ""  # config file:line for requirements the config makes

    @property
    def text(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        if self.tag:
            return f"{self.name} ={version_for_tag(self.tag)}"
        return f"{self.name} {self.constraint or '*'}"

    @property
    def requirer(self) -> str:
        return self.parent or (f"the workspace config ({self.location})" if self.location else "the workspace config")


class Answers(Protocol):
    """What the greedy pass, the prefetch pool and the messages ask of the provider (``resolver.py``)."""

    config: WorkspaceConfig
    sources: Sources
    too_new: dict[str, list[Candidate]]

    def matches(self, name: str, reqs: list[Requirement], bad: set[int]) -> Iterator[Candidate]: ...

    def is_satisfied_by(self, requirement: Requirement, candidate: Candidate) -> bool: ...

    def get_dependencies(self, candidate: Candidate) -> list[Requirement]: ...


def root_requirements(config: WorkspaceConfig) -> list[Requirement]:
    return [_requirement(m) for m in config.modules]


def _requirement(m: ModuleSpec) -> Requirement:
    return Requirement(m.name, constraint=m.constraint, tag=m.tag, digest=m.digest, location=m.location)


def core_satisfies(core_version: str, minimum: str) -> bool:
    """``core >= minimum`` by semver precedence (prerelease cores count, unlike in a range)."""
    try:
        return Version.parse(core_version.lstrip("vV")).compare(Version.parse(minimum.lstrip("vV"))) >= 0
    except VersionError:
        return False


def install_order(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Dependencies before dependents; ties broken by name so the order is deterministic."""
    ts = graphlib.TopologicalSorter({n: sorted(d) for n, d in graph.items()})
    try:
        ts.prepare()
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))  # graphlib lists dependency -> dependent; show who requires whom
        raise ResolutionError(
            "dependency cycle: " + " → ".join(cycle) + ". Extensions cannot be installed in any order while they "
            "require each other; remove one of these dependencies from its manifest.yaml and republish"
        ) from None
    order: list[str] = []
    while ts.is_active():
        ready = sorted(ts.get_ready())
        order.extend(ready)
        ts.done(*ready)
    return order


@dataclass
class Resolution:
    """What resolved: one candidate per name, the install order, and who asked for what."""

    candidates: dict[str, Candidate]
    order: list[str]
    requested: set[str]
    requirers: dict[str, list[Requirement]]
    warnings: list[str] = field(default_factory=list)

    @property
    def from_catalog(self) -> bool:
        return any(c.from_catalog for c in self.candidates.values())

    def to_lock(self, config: WorkspaceConfig, platform_images: dict[str, dict[str, str | None]]) -> Lock:
        return Lock(
            inputs=config.inputs_hash(),
            core_version=config.core_version,
            extensions={name: self._locked(c, config) for name, c in self.candidates.items()},
            order=list(self.order),
            platform_images=platform_images,
        )

    def _locked(self, c: Candidate, config: WorkspaceConfig) -> LockedExtension:
        oci = c.settings if c.settings and c.source == "oci" else None
        return LockedExtension(
            name=c.name,
            type=c.type,
            version=c.version,
            digest=c.digest,
            source=c.source,
            registry=oci.registry if oci else None,
            registry_text=oci.portable(config.root) if oci else None,
            namespace=oci.namespace if oci else None,
            tag=c.tag,
            size=c.size,
            media_type=c.media_type,
            path=str(c.path) if c.path and c.source == "local" else None,
            reference=c.reference if c.source != "local" else f"local:{_rel(c.path, config.root)}",
            url=c.url,
            ref=c.ref,
            commit=c.commit,
            subdir=c.subdir,
            dependencies=dict(c.dependencies),
            requested=c.name in self.requested,
        )


def _rel(path: Path | None, root: Path) -> str:
    return os.path.relpath(path or root, root)
