"""Resolve a workspace's extensions with resolvelib: recursive, backtracking, newest compatible first.

The provider answers resolvelib's five questions and nothing else; what exists comes from one
finder per source (``sources/``: oci, local, git), which read tag lists (or the namespace's
catalog) and each considered candidate's manifest, through the shared blob cache. Candidates
are produced lazily, best first, so a run touches only the versions it actually considers.

resolvelib re-checks every pin on every round, so a greedy pass with the same provider answers
runs first (``greedy.py``) and resolvelib only takes over when a conflict needs backtracking.
Against a remote registry a bounded pool reads ahead (``prefetch.py``). Failures become
messages that say who wants what (``explain.py``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from resolvelib import AbstractProvider, BaseReporter, ResolutionImpossible, ResolutionTooDeep, Resolver

from ..errors import ResolutionError, ValidationError
from ..oci.reference import tag_for_version
from ..versions import satisfies
from .cache import BlobCache
from .catalogs import Catalogs, catalogs_for
from .config import WorkspaceConfig
from .explain import explain_impossible
from .greedy import greedy
from .images import pin_platform_images
from .prefetch import Prefetcher
from .resolution import Candidate, Requirement, Resolution, core_satisfies, install_order, root_requirements
from .sources import Finder, GitFinder, GitSource, LocalFinder, OciFinder, Sources
from .stores import Stores

__all__ = [
    "Candidate",
    "ExtensionProvider",
    "Requirement",
    "Resolution",
    "pin_platform_images",
    "resolve",
    "resolve_workers",
    "root_requirements",
]

log = logging.getLogger(__name__)

MAX_ROUNDS = 20_000


class _Reporter(BaseReporter):
    """Logs the resolver's decisions (``--verbose``) instead of printing from the algorithm."""

    def pinning(self, candidate: Candidate) -> None:
        log.debug("pinning %s", candidate.label)

    def rejecting_candidate(self, criterion: Any, candidate: Candidate) -> None:
        log.debug("rejecting %s: %s", candidate.label, criterion)


class ExtensionProvider(AbstractProvider):
    """resolvelib's five questions, answered from the finders of the workspace's sources."""

    def __init__(
        self,
        config: WorkspaceConfig,
        *,
        stores: Stores,
        cache: BlobCache,
        preferred: Mapping[str, str] | None = None,
        git: GitSource | None = None,
        catalogs: Catalogs | None = None,
    ) -> None:
        self.config = config
        self.preferred = dict(preferred or {})
        self.too_new: dict[str, list[Candidate]] = {}  # skipped for min_provisioning_version
        self.warnings: list[str] = []
        self.catalogs = catalogs or catalogs_for(config, stores, cache, warn=self._warn)
        self.sources = Sources(config, stores=stores, cache=cache, catalogs=self.catalogs, git=git, warn=self._warn)
        self._satisfied: dict[tuple[Any, ...], bool] = {}
        self._deps: dict[int, list[Requirement]] = {}
        self._wanted: dict[tuple[Any, ...], list[str]] = {}  # the greedy pass, its checks and the pool ask alike
        self._mutex = threading.Lock()
        self.reading_ahead: Prefetcher | None = None  # while resolvelib backtracks: each pin's dependencies

    # --- resolvelib interface

    def identify(self, requirement_or_candidate: Requirement | Candidate) -> str:
        return requirement_or_candidate.name

    def get_preference(
        self,
        identifier: str,
        resolutions: Mapping[str, Candidate],
        candidates: Mapping[str, Iterator[Candidate]],
        information: Mapping[str, Iterator[Any]],
        backtrack_causes: Sequence[Any],
    ) -> Any:
        reqs = [i.requirement for i in information[identifier]]
        pinned = any(r.tag or r.digest for r in reqs)
        causes = {c.requirement.name for c in backtrack_causes} | {
            c.parent.name for c in backtrack_causes if c.parent is not None
        }
        return (not pinned, identifier not in causes, identifier)

    def find_matches(
        self,
        identifier: str,
        requirements: Mapping[str, Iterator[Requirement]],
        incompatibilities: Mapping[str, Iterator[Candidate]],
    ) -> Callable[[], Iterator[Candidate]]:
        reqs = list(requirements[identifier])
        bad = {id(c) for c in incompatibilities[identifier]}
        return lambda: self.matches(identifier, reqs, bad)

    def is_satisfied_by(self, requirement: Requirement, candidate: Candidate) -> bool:
        # resolvelib re-checks every pin each round; the answer only depends on the range and the candidate
        key = (requirement.constraint, requirement.tag, requirement.digest, id(candidate))
        hit = self._satisfied.get(key)
        if hit is None:
            hit = self._satisfied[key] = _satisfied(requirement, candidate)
        return hit

    def get_dependencies(self, candidate: Candidate) -> list[Requirement]:
        deps = self._deps.get(id(candidate))
        if deps is None:
            deps = self._deps[id(candidate)] = [
                Requirement(dep, constraint=constraint, parent=candidate.label)
                for dep, constraint in sorted(candidate.dependencies.items())
            ]
        if self.reading_ahead is not None:  # resolvelib asks for each dependency's matches right after this
            self.reading_ahead.spread(deps)
        return deps

    # --- candidates, best first

    def matches(self, name: str, reqs: list[Requirement], bad: set[int]) -> Iterator[Candidate]:
        """The candidates for ``name`` that every requirement allows, best first (lazily read)."""
        finder = self.sources.of(name)
        if isinstance(finder, LocalFinder):
            yield from self._local(name, finder, reqs, bad)
            return
        digests = {r.digest for r in reqs if r.digest}
        if digests:
            if len(digests) == 1 and isinstance(finder, OciFinder):
                cand = finder.by_digest(name, digests.pop())
                if id(cand) not in bad and all(self.is_satisfied_by(r, cand) for r in reqs):
                    yield cand
            return
        for version in self._wanted_versions(name, finder, reqs):
            cand = finder.candidate(name, version)
            if id(cand) in bad:
                continue
            mpv = cand.min_provisioning_version
            if mpv and not core_satisfies(self.config.core_version, mpv):
                with self._mutex:
                    if cand not in self.too_new.setdefault(name, []):
                        self.too_new[name].append(cand)
                continue
            yield cand

    def _wanted_versions(self, name: str, finder: Finder, reqs: list[Requirement]) -> list[str]:
        """The versions every requirement allows, best first (the same answer for the same ranges)."""
        key = (name, frozenset((r.constraint, r.tag) for r in reqs))
        wanted = self._wanted.get(key)
        if wanted is None:
            wanted = self._wanted[key] = self._versions_allowed(name, finder, reqs)
        return wanted

    def _versions_allowed(self, name: str, finder: Finder, reqs: list[Requirement]) -> list[str]:
        tags = {r.tag for r in reqs if r.tag}
        if len(tags) > 1:
            return []
        versions = finder.versions(name)
        if tags:
            versions = [v for v in versions if tag_for_version(v) in tags]
        constraints = [r.constraint for r in reqs if r.constraint]
        versions = [v for v in versions if all(satisfies(v, c) for c in constraints)]
        fixed = isinstance(finder, GitFinder) and finder.ref  # a fixed git ref is taken as it is
        if not tags and not constraints and not fixed:
            versions = [v for v in versions if satisfies(v, "*")]
        pref = self.preferred.get(name)
        if pref in versions:
            versions.remove(pref)
            versions.insert(0, pref)
        return versions

    def _local(self, name: str, finder: LocalFinder, reqs: list[Requirement], bad: set[int]) -> Iterator[Candidate]:
        """A local override: the folder as it is, whatever the ranges say (mismatches are warnings)."""
        if finder.folder is None:
            return
        cand = finder.candidate(name)
        mpv = cand.min_provisioning_version
        if mpv and not core_satisfies(self.config.core_version, mpv):
            self._warn(
                f"local {name} {cand.version} needs provisioning >= {mpv}; the core is {self.config.core_version}"
            )
        for r in reqs:
            if r.constraint and not satisfies(cand.version, r.constraint):
                self._warn(
                    f"local {name} {cand.version} ({finder.folder}) does not satisfy {r.requirer}'s {r.text}; "
                    "using it anyway (local override)"
                )
        if id(cand) not in bad:
            yield cand

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("%s", message)


def _satisfied(requirement: Requirement, candidate: Candidate) -> bool:
    if candidate.source == "local":
        return True  # a local override wins; mismatches become warnings
    if requirement.digest:
        return candidate.digest == requirement.digest
    if requirement.tag:
        return candidate.tag == requirement.tag
    if requirement.constraint:
        return satisfies(candidate.version, requirement.constraint)
    return True


def resolve_workers() -> int:
    """Requests in flight while reading tag lists (``PROVISIONING_RESOLVE_WORKERS``; 1: one at a time).

    A rate-limited registry (GHCR counts each tag list) may want fewer; a loopback one is
    latency-bound and gains from more.
    """
    text = os.environ.get("PROVISIONING_RESOLVE_WORKERS", "")
    if not text:
        return 16
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise ValidationError(f"PROVISIONING_RESOLVE_WORKERS={text!r}: give a number from 1 to 64")
    return int(text)


def resolve(
    config: WorkspaceConfig,
    *,
    stores: Stores | None = None,
    cache: BlobCache | None = None,
    preferred: Mapping[str, str] | None = None,
    catalogs: Catalogs | None = None,
    workers: int | None = None,
) -> Resolution:
    """Resolve every module of the config, recursively; raise a ResolutionError a person can act on.

    ``catalogs`` (default: by the workspace's policy) answers from each namespace's catalog;
    ``workers`` bounds the requests in flight when tag lists are read instead (1: one at a time).
    """
    provider = ExtensionProvider(
        config, stores=stores or Stores(), cache=cache or BlobCache(), preferred=preferred, catalogs=catalogs
    )
    reqs = root_requirements(config)
    prefetch = Prefetcher(provider, workers if workers is not None else resolve_workers())
    try:
        fast = greedy(provider, reqs, prefetch)
        if fast is None:
            provider.reading_ahead = prefetch  # the pool keeps reading ahead of resolvelib
        mapping, requirers = fast if fast is not None else _backtrack(provider, reqs)
    finally:
        provider.reading_ahead = None
        prefetch.close()
    for spec in config.modules:
        cand = mapping[spec.name]
        if cand.type != spec.type:
            raise ValidationError(
                f"{spec.location}: {spec.name} is listed under {spec.type}s but its manifest says type {cand.type}; "
                f"move it to modules.{cand.type}s"
            )
    return Resolution(
        candidates={n: mapping[n] for n in sorted(mapping)},
        order=install_order({n: list(c.dependencies) for n, c in mapping.items()}),
        requested={m.name for m in config.modules},
        requirers=requirers,
        warnings=list(provider.warnings),
    )


def _backtrack(
    provider: ExtensionProvider, reqs: list[Requirement]
) -> tuple[dict[str, Candidate], dict[str, list[Requirement]]]:
    log.debug("the greedy pass met a conflict; backtracking with resolvelib")
    try:
        result = Resolver(provider, _Reporter()).resolve(reqs, max_rounds=MAX_ROUNDS)
    except ResolutionImpossible as exc:
        raise explain_impossible(provider, exc.causes) from None
    except ResolutionTooDeep:
        raise ResolutionError(
            "dependency resolution gave up after too many attempts; pin the versions of the largest "
            "extensions in the config (name@=X.Y.Z) to narrow the search"
        ) from None
    requirers = {name: [i.requirement for i in crit.information] for name, crit in result.criteria.items()}
    return dict(result.mapping), requirers
