"""Resolve a workspace's extensions with resolvelib: recursive, backtracking, newest compatible first.

The provider reads only tag lists and each considered candidate's manifest and config blob
(the config is the extension's manifest.yaml as JSON, so dependencies are known without
downloading a layer). Candidates are produced lazily, best first, so a run touches only the
versions it actually considers; manifests and configs are cached by digest and shared with
the installer. Failures are turned into messages that say who wants what, which versions
exist, and what to do.

resolvelib re-checks every pin on every round (quadratic: 20 s for 1,000 extensions), so a
greedy pass with the same provider answers runs first and resolvelib only takes over when a
conflict needs backtracking; tests check both give the same answer. Against a remote registry
the next tag lists and candidates are prefetched on a few threads: the same requests, overlapped.
"""

from __future__ import annotations

import difflib
import graphlib
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from resolvelib import AbstractProvider, BaseReporter, ResolutionImpossible, ResolutionTooDeep, Resolver

from ..errors import NotFound, ProvisioningError, ResolutionError, ValidationError, VersionError
from ..extension import manifest_problems
from ..oci.descriptor import ARTIFACT_TYPE, CONFIG_TYPE, MANIFEST, MANIFEST_TYPES, Descriptor
from ..oci.reference import InvalidReference, parse_reference, tag_for_version, version_for_tag
from ..oci.store import Cataloger, ReferenceFetcher, fetch_manifest
from ..versions import Version, is_valid_version, satisfies, sort_versions
from ..yamlfile import safe_load
from .catalogs import Catalogs, catalog_policy
from .config import TYPES, ModuleSpec, RegistrySettings, WorkspaceConfig, display_path
from .install import BlobCache, GitSource, Stores, extension_in_checkout, tree_digest
from .lock import Lock, LockedExtension

log = logging.getLogger(__name__)

MAX_ROUNDS = 20_000


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
        exts = {}
        for name, c in self.candidates.items():
            exts[name] = LockedExtension(
                name=name,
                type=c.type,
                version=c.version,
                digest=c.digest,
                source=c.source,
                registry=c.settings.registry if c.settings and c.source == "oci" else None,
                registry_text=c.settings.portable(config.root) if c.settings and c.source == "oci" else None,
                namespace=c.settings.namespace if c.settings and c.source == "oci" else None,
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
                requested=name in self.requested,
            )
        return Lock(
            inputs=config.inputs_hash(),
            core_version=config.core_version,
            extensions=exts,
            order=list(self.order),
            platform_images=platform_images,
        )


def _media_type(manifest: bytes) -> str:
    try:
        mt = json.loads(manifest).get("mediaType")
    except (ValueError, AttributeError):
        return MANIFEST
    return mt if isinstance(mt, str) and mt else MANIFEST


def _rel(path: Path | None, root: Path) -> str:
    import os

    return os.path.relpath(path or root, root)


def core_satisfies(core_version: str, minimum: str) -> bool:
    """``core >= minimum`` by semver precedence (prerelease cores count, unlike in a range)."""
    try:
        return Version.parse(core_version.lstrip("vV")).compare(Version.parse(minimum.lstrip("vV"))) >= 0
    except VersionError:
        return False


class _Reporter(BaseReporter):
    """Logs the resolver's decisions (``--verbose``) instead of printing from the algorithm."""

    def pinning(self, candidate: Candidate) -> None:
        log.debug("pinning %s", candidate.label)

    def rejecting_candidate(self, criterion: Any, candidate: Candidate) -> None:
        log.debug("rejecting %s: %s", candidate.label, criterion)


class ExtensionProvider(AbstractProvider):
    """resolvelib's five questions, answered from registries (and local folders for overrides)."""

    def __init__(
        self,
        config: WorkspaceConfig,
        *,
        stores: Stores,
        cache: BlobCache,
        preferred: Mapping[str, str] | None = None,
        prefetch_workers: int = 16,
        git: GitSource | None = None,
        catalogs: Catalogs | None = None,
    ) -> None:
        self.config = config
        self.git = git or GitSource()
        self.prefetch_workers = prefetch_workers
        self.stores = stores
        self.cache = cache
        self.preferred = dict(preferred or {})
        self._tags: dict[tuple[str, str, str], list[str]] = {}
        self._candidates: dict[tuple[str, str, str, str], Candidate] = {}
        self._local: dict[str, Candidate] = {}
        self.too_new: dict[str, list[Candidate]] = {}  # skipped for min_provisioning_version
        self._satisfied: dict[tuple[Any, ...], bool] = {}
        self._mutex = threading.Lock()
        self._inflight: dict[Any, Future[Any]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._submitted: set[tuple[str, tuple[str, ...]]] = set()
        self._spread: set[str] = set()  # names whose prefetch a fetched candidate started
        self._known_reqs: Mapping[str, list[Requirement]] = {}  # the greedy pass's requirements so far
        self._deps: dict[int, list[Requirement]] = {}
        self.warnings: list[str] = []
        self.catalogs = catalogs or Catalogs(stores, cache, policy=catalog_policy(config), warn=self._warn)

    # --- where each name comes from

    def source_of(self, name: str) -> tuple[str, RegistrySettings | None, Path | None]:
        spec = self.config.module(name)
        if spec is not None:
            if spec.source == "local":
                return "local", None, spec.path
            if spec.source == "git":
                return "git", None, None
            return "oci", spec.registry or self.config.registry, None
        if self.config.source_type in ("git", "gitea") and self.config.git_repo:
            return "git", None, None
        if self.config.source_type == "local":
            base = self.config.local_path or (self.config.root / "extensions-src")
            for t in TYPES:
                if (base / f"{t}s" / name / "manifest.yaml").is_file():
                    return "local", None, base / f"{t}s" / name
            return "local", None, None
        return "oci", self.config.registry, None

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
        return lambda: self._matches(identifier, reqs, bad)

    def is_satisfied_by(self, requirement: Requirement, candidate: Candidate) -> bool:
        # resolvelib re-checks every pin each round; the answer only depends on the range and the candidate
        key = (requirement.constraint, requirement.tag, requirement.digest, id(candidate))
        hit = self._satisfied.get(key)
        if hit is None:
            hit = self._satisfied[key] = self._check(requirement, candidate)
        return hit

    @staticmethod
    def _check(requirement: Requirement, candidate: Candidate) -> bool:
        if candidate.source == "local":
            return True  # a local override wins; mismatches become warnings
        if requirement.digest:
            return candidate.digest == requirement.digest
        if requirement.tag:
            return candidate.tag == requirement.tag
        if requirement.constraint:
            return satisfies(candidate.version, requirement.constraint)
        return True

    def get_dependencies(self, candidate: Candidate) -> list[Requirement]:
        deps = self._deps.get(id(candidate))
        if deps is None:
            deps = self._deps[id(candidate)] = [
                Requirement(dep, constraint=constraint, parent=candidate.label)
                for dep, constraint in sorted(candidate.dependencies.items())
            ]
        return deps

    # --- a fast path for graphs that need no backtracking

    def prefetch(self, name: str, reqs: list[Requirement]) -> None:
        """Read ``name``'s tags and likely best candidate in the background (remote registries only).

        It asks what the resolver will ask next, so it adds (almost) no requests, only overlap: a
        loopback round trip costs milliseconds, and a thousand of them in a row add up. A fetched
        candidate's dependencies are prefetched in turn, so the pool works down the graph ahead of
        the resolver instead of one level behind it (a best candidate that a later requirement
        rules out costs its dependencies' reads once, which the resolver would mostly read anyway).
        """
        if self.prefetch_workers <= 1:
            return
        kind, settings, _ = self.source_of(name)
        if kind != "oci" or settings is None or settings.is_path:
            return
        if self.catalogs.extension(settings, name) is not None:
            return  # answered from memory: nothing to overlap
        snapshot = list(reqs)
        key = (name, tuple(sorted(r.text for r in snapshot)))
        with self._mutex:
            if key in self._submitted:
                return
            self._submitted.add(key)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.prefetch_workers, thread_name_prefix="prefetch")
            pool = self._pool

        def job() -> None:
            try:
                cand = next(self._matches(name, snapshot, set()), None)
            except Exception as exc:  # the resolver meets the same error itself if it matters
                log.debug("prefetch of %s failed: %s", name, exc)
                return
            for dep in self.get_dependencies(cand) if cand is not None else ():
                with self._mutex:
                    if dep.name in self._spread:
                        continue
                    self._spread.add(dep.name)
                    known = list(self._known_reqs.get(dep.name, ()))  # what the config and pins already ask
                self.prefetch(dep.name, [*known, dep])

        try:
            pool.submit(job)
        except RuntimeError:  # the resolver finished and closed the pool meanwhile
            pass

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def greedy(self, roots: list[Requirement]) -> tuple[dict[str, Candidate], dict[str, list[Requirement]]] | None:
        """Pin the best candidate of each name in breadth-first order, as resolvelib would pin it.

        resolvelib re-checks every pin on every round, which is quadratic in the number of
        extensions; most workspaces need no backtracking at all. This pass uses the same
        provider answers (best candidate first, a candidate whose dependency has no match at
        all is skipped) and gives up (None) at the first conflict that would need backtracking;
        the caller then runs resolvelib, which reuses everything fetched here.
        """
        reqs: dict[str, list[Requirement]] = {}
        for r in roots:
            reqs.setdefault(r.name, []).append(r)
        self._known_reqs = reqs
        pins: dict[str, Candidate] = {}
        queue = deque(dict.fromkeys(r.name for r in roots))
        for name in queue:
            self.prefetch(name, reqs[name])
        while queue:
            name = queue.popleft()
            pin = pins.get(name)
            if pin is not None:
                if all(self.is_satisfied_by(r, pin) for r in reqs[name]):
                    continue
                return None
            for cand in self._matches(name, reqs[name], set()):
                deps = self.get_dependencies(cand)
                for d in deps:  # the checks below read each dependency: read them side by side
                    if d.name not in pins:
                        self.prefetch(d.name, [*reqs.get(d.name, ()), d])
                ok = True
                for d in deps:
                    pinned = pins.get(d.name)
                    if pinned is not None and self.is_satisfied_by(d, pinned):
                        continue
                    if next(self._matches(d.name, [*reqs.get(d.name, ()), d], set()), None) is None:
                        ok = False  # no version of d fits at all: resolvelib rejects cand and tries the next
                        break
                    if pinned is not None:
                        return None  # d would have to move: that is backtracking
                if ok:
                    pins[name] = cand
                    for d in deps:
                        reqs.setdefault(d.name, []).append(d)
                        queue.append(d.name)
                        if d.name not in pins:
                            self.prefetch(d.name, reqs[d.name])
                    break
            else:
                return None  # nothing fits: let resolvelib search (and explain)
        return pins, reqs

    # --- candidates

    def _matches(self, name: str, reqs: list[Requirement], bad: set[int]) -> Iterator[Candidate]:
        kind, settings, path = self.source_of(name)
        if kind == "local":
            if path is None:
                return
            cand = self.local_candidate(name, path)
            mpv = cand.min_provisioning_version
            if mpv and not core_satisfies(self.config.core_version, mpv):
                self._warn(
                    f"local {name} {cand.version} needs provisioning >= {mpv}; the core is {self.config.core_version}"
                )
            for r in reqs:
                if r.constraint and not satisfies(cand.version, r.constraint):
                    self._warn(
                        f"local {name} {cand.version} ({path}) does not satisfy {r.requirer}'s {r.text}; "
                        "using it anyway (local override)"
                    )
            if id(cand) not in bad:
                yield cand
            return
        if kind == "git":
            yield from self._git_matches(name, reqs, bad)
            return
        assert settings is not None
        digests = {r.digest for r in reqs if r.digest}
        if digests:
            if len(digests) > 1:
                return
            cand = self.candidate(name, settings, digest=digests.pop())
            if id(cand) not in bad and all(self.is_satisfied_by(r, cand) for r in reqs):
                yield cand
            return
        tags = [r.tag for r in reqs if r.tag]
        if len(set(tags)) > 1:
            return
        versions = self.versions(name, settings)
        if tags:
            versions = [v for v in versions if tag_for_version(v) == tags[0]]
        constraints = [r.constraint for r in reqs if r.constraint]
        versions = [v for v in versions if all(satisfies(v, c) for c in constraints)]
        if not tags and not constraints:
            versions = [v for v in versions if satisfies(v, "*")]
        pref = self.preferred.get(name)
        if pref in versions:
            versions.remove(pref)
            versions.insert(0, pref)
        for v in versions:
            cand = self.candidate(name, settings, tag=tag_for_version(v))
            if id(cand) in bad:
                continue
            mpv = cand.min_provisioning_version
            if mpv and not core_satisfies(self.config.core_version, mpv):
                with self._mutex:
                    if cand not in self.too_new.setdefault(name, []):
                        self.too_new[name].append(cand)
                continue
            yield cand

    # --- git sources

    def git_origin(self, name: str) -> tuple[str, str | None]:
        """(repository, fixed ref or None) for a name that comes from git."""
        spec = self.config.module(name)
        if spec is not None and spec.source == "git":
            return spec.url or "", spec.ref
        return self.config.git_repo or "", None

    def _git_matches(self, name: str, reqs: list[Requirement], bad: set[int]) -> Iterator[Candidate]:
        url, ref = self.git_origin(name)
        if ref:
            tags = [(None, ref)]
        else:
            found = self.git.versions(url, name)
            versions = sort_versions([v for v in found if is_valid_version(v)], reverse=True)
            constraints = [r.constraint for r in reqs if r.constraint]
            versions = [v for v in versions if all(satisfies(v, c) for c in constraints)]
            if not constraints:
                versions = [v for v in versions if satisfies(v, "*")]
            pref = self.preferred.get(name)
            if pref in versions:
                versions.remove(pref)
                versions.insert(0, pref)
            tags = [(v, found[v]) for v in versions]
        for _, tag in tags:
            key = ("git", url, name, tag)
            cand = self._once(self._candidates, key, lambda t=tag: self._git_candidate(name, url, t))
            if id(cand) in bad or not all(self._check(r, cand) for r in reqs if r.constraint):
                continue
            mpv = cand.min_provisioning_version
            if mpv and not core_satisfies(self.config.core_version, mpv):
                with self._mutex:
                    self.too_new.setdefault(name, []).append(cand)
                continue
            yield cand

    def _git_candidate(self, name: str, url: str, ref: str) -> Candidate:
        checkout, commit = self.git.checkout(url, ref)
        folder = extension_in_checkout(checkout, name)
        if folder is None:
            raise NotFound(f"{url} at {ref} has no extension {name} (looked for <type>s/{name}/manifest.yaml)")
        cand = self.local_candidate(name, folder, memo=False)
        cand.source = "git"
        cand.url, cand.ref, cand.commit = url, ref, commit
        cand.subdir = folder.relative_to(checkout).as_posix() or "."
        return cand

    def versions(self, name: str, settings: RegistrySettings) -> list[str]:
        """The semver versions among ``name``'s tags, newest first (other tags are ignored).

        The namespace's catalog answers when it lists ``name``; a name it does not list costs a
        tag list (published after the catalog was written, or never published).
        """
        listed = self.catalogs.extension(settings, name)
        if listed is not None:
            return listed.newest_first()

        def read() -> list[str]:
            target = self.stores.target(settings, name)  # a store that cannot be opened is an error
            try:
                tags = target.tags()
            except NotFound:
                tags = []
            versions = [version_for_tag(t) for t in tags if t[:1].isdigit()]  # extension tags are bare versions
            return sort_versions([v for v in versions if is_valid_version(v)], reverse=True)

        return self._once(self._tags, (settings.registry, settings.namespace, name), read)

    def _once(self, results: dict[Any, Any], key: Any, compute: Callable[[], Any]) -> Any:
        """Compute a memoized value once, even when a prefetch thread asks for it at the same time."""
        if key in results:
            return results[key]
        with self._mutex:
            if key in results:
                return results[key]
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
                self._inflight.pop(key, None)  # a later caller tries again and sees its own error
            raise
        results[key] = value
        future.set_result(value)
        with self._mutex:
            self._inflight.pop(key, None)
        return value

    def candidate(
        self, name: str, settings: RegistrySettings, *, tag: str | None = None, digest: str | None = None
    ) -> Candidate:
        """Read one version's manifest and config (through the cache); refuse what is not ours."""
        key = (settings.registry, settings.namespace, name, digest or tag or "")
        return self._once(
            self._candidates,
            key,
            lambda: (
                self._catalog_candidate(name, settings, tag, digest)
                or self._read_candidate(name, settings, tag, digest)
            ),
        )

    def _catalog_candidate(
        self, name: str, settings: RegistrySettings, tag: str | None, digest: str | None
    ) -> Candidate | None:
        """The candidate as the namespace's catalog describes it (no request), or None when it does not."""
        ext = self.catalogs.extension(settings, name)
        if ext is None:
            return None
        if digest:
            entry = next((e for e in ext.versions.values() if e.digest == digest), None)
        else:
            entry = ext.versions.get(version_for_tag(tag or ""))
        if entry is None:
            return None
        self.catalogs.note_used(settings)
        if entry.deprecated:
            self._warn(f"{name} {entry.version} is marked deprecated in the catalog of {settings.reference(name)}")
        return Candidate(
            name=name,
            version=entry.version,
            type=ext.type,
            digest=entry.digest,
            dependencies=dict(entry.dependencies),
            settings=settings,
            tag=tag or tag_for_version(entry.version),
            size=entry.size,
            media_type=entry.media_type,
            min_provisioning_version=entry.min_provisioning_version,
            from_catalog=True,
        )

    def _read_candidate(self, name: str, settings: RegistrySettings, tag: str | None, digest: str | None) -> Candidate:
        ref = digest or tag or ""
        target = self.stores.target(settings, name)
        where = settings.reference(name, tag, digest)
        if digest:
            manifest = self._manifest_by_digest(target, digest)
            desc = Descriptor.of(_media_type(manifest), manifest)
        else:
            if isinstance(target, ReferenceFetcher):  # one request (GET by tag) whether or not the cache has it
                desc, manifest = target.fetch_reference(ref)
                self.cache.store_bytes(desc, manifest)
            else:  # resolve the tag, then the manifest from the cache when it is there
                desc = target.resolve(ref)
                manifest = self.cache.ensure_bytes(desc, lambda: target.fetch(desc), f"the manifest of {where}")
        if desc.media_type not in MANIFEST_TYPES:
            raise ValidationError(f"{where} is not an OCI manifest (media type {desc.media_type!r})")
        try:
            doc = json.loads(manifest)
        except ValueError as exc:
            raise ValidationError(f"{where}: the manifest is not valid JSON ({exc})") from None
        cfg = doc.get("config") if isinstance(doc, dict) else None
        artifact_type = doc.get("artifactType") if isinstance(doc, dict) else None
        cfg_type = cfg.get("mediaType") if isinstance(cfg, dict) else None
        if cfg_type != CONFIG_TYPE or artifact_type not in (None, ARTIFACT_TYPE):
            raise ValidationError(
                f"{where} is not a provisioning extension: its artifactType is {artifact_type!r} and its config "
                f"media type is {cfg_type!r} (expected {ARTIFACT_TYPE!r} with config {CONFIG_TYPE!r}). "
                "Something else was pushed under this tag; remove the tag or republish the extension"
            )
        cdesc = Descriptor.from_dict(cfg)
        raw = self.cache.ensure_bytes(cdesc, lambda: target.fetch(cdesc), f"the config of {where}")
        try:
            meta = json.loads(raw)
        except ValueError as exc:
            raise ValidationError(f"{where}: the config blob is not valid JSON ({exc})") from None
        cand = self._from_manifest(meta, where, name)
        if tag and version_for_tag(tag) != cand.version:
            raise ValidationError(
                f"{where}: the tag says {version_for_tag(tag)} but the extension's manifest says {cand.version}; "
                "republish it under the right tag"
            )
        cand.settings = settings
        cand.tag = tag or tag_for_version(cand.version)
        cand.digest = desc.digest
        cand.size = desc.size
        cand.media_type = desc.media_type
        return cand

    def _manifest_by_digest(self, target: Any, digest: str) -> bytes:
        """A digest-pinned manifest: from the cache when intact, else one fetch (verified by the store)."""
        data = self.cache.read_digest(digest)
        if data is None:
            desc, data = fetch_manifest(target, digest)
            if desc.digest != digest:
                raise ValidationError(f"{target.name}@{digest}: the store answered with {desc.digest}")
            self.cache.store_bytes(desc, data)
        return data

    def local_candidate(self, name: str, folder: Path, *, memo: bool = True) -> Candidate:
        if memo and name in self._local:
            return self._local[name]
        mf = folder / "manifest.yaml"
        if not mf.is_file():
            raise NotFound(
                f"local extension {name}: {folder} has no manifest.yaml; fix the path (module load TYPE WORKSPACE "
                f"{name} --source local --path DIR)"
            )
        try:
            meta = safe_load(mf.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValidationError(f"{display_path(mf)}: malformed YAML: {exc}") from None
        cand = self._from_manifest(meta, display_path(mf), name)
        cand.source = "local"
        cand.path = folder
        cand.digest = tree_digest(folder)
        if memo:
            self._local[name] = cand
        return cand

    def _from_manifest(self, meta: Any, where: str, name: str) -> Candidate:
        problems = manifest_problems(meta, where)
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

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("%s", message)

    # --- names we know, for did-you-mean

    def known_names(self, settings: RegistrySettings) -> tuple[list[str], bool]:
        """Extension names in the namespace (its catalog, else ``_catalog`` when the store has one) plus every
        name seen."""
        names = {m.name for m in self.config.modules} | {k[2] for k, v in self._tags.items() if v}
        has_catalog = False
        try:
            catalog = self.catalogs.get(settings)  # read already by the resolve, or one read now
            if catalog is not None:
                return sorted(names | set(catalog.extensions)), True
        except ProvisioningError as exc:
            log.debug("namespace catalog unavailable: %s", exc)
        storage = self.stores.storage(settings)
        if isinstance(storage, Cataloger):
            try:
                repos = storage.catalog()
                has_catalog = True
                prefix = settings.namespace + "/"
                names |= {r[len(prefix) :] for r in repos if r.startswith(prefix) and "/" not in r[len(prefix) :]}
            except ProvisioningError as exc:
                log.debug("catalog unavailable: %s", exc)
        return sorted(names), has_catalog


def root_requirements(config: WorkspaceConfig) -> list[Requirement]:
    return [_requirement(m) for m in config.modules]


def _requirement(m: ModuleSpec) -> Requirement:
    return Requirement(m.name, constraint=m.constraint, tag=m.tag, digest=m.digest, location=m.location)


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
    stores = stores or Stores()
    cache = cache or BlobCache()
    provider = ExtensionProvider(
        config,
        stores=stores,
        cache=cache,
        preferred=preferred,
        catalogs=catalogs,
        prefetch_workers=workers if workers is not None else resolve_workers(),
    )
    reqs = root_requirements(config)
    try:
        fast = provider.greedy(reqs)
    finally:
        provider.close()
    if fast is not None:
        mapping, requirers = fast
    else:
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
        mapping = dict(result.mapping)
        requirers = {name: [i.requirement for i in crit.information] for name, crit in result.criteria.items()}
    for spec in config.modules:
        cand = mapping[spec.name]
        if cand.type != spec.type:
            raise ValidationError(
                f"{spec.location}: {spec.name} is listed under {spec.type}s but its manifest says type {cand.type}; "
                f"move it to modules.{cand.type}s"
            )
    order = install_order({n: list(c.dependencies) for n, c in mapping.items()})
    return Resolution(
        candidates={n: mapping[n] for n in sorted(mapping)},
        order=order,
        requested={m.name for m in config.modules},
        requirers=requirers,
        warnings=list(provider.warnings),
    )


def explain_impossible(provider: ExtensionProvider, causes: Sequence[Any]) -> ResolutionError:
    """Who requires what, which versions exist, and a did-you-mean for names nobody published."""
    by_name: dict[str, list[Any]] = {}
    for cause in causes:
        by_name.setdefault(cause.requirement.name, []).append(cause)
    paragraphs = []
    for name, infos in sorted(by_name.items()):
        kind, settings, path = provider.source_of(name)
        looked_in = None
        lines = [f"- {i.requirement.requirer} requires {i.requirement.text}" for i in infos]
        lines = list(dict.fromkeys(lines))
        if kind == "local":
            paragraphs.append(f"{name} cannot be found in the local extensions folder ({path}):\n" + "\n".join(lines))
            continue
        if kind == "git":
            url, _ = provider.git_origin(name)
            available = sort_versions([v for v in provider.git.versions(url, name) if is_valid_version(v)], True)
            where = f"{url} (tags {{type}}s/{name}/v{{version}})"
        else:
            assert settings is not None
            available = provider.versions(name, settings)
            where = settings.reference(name)
            looked_in = getattr(provider.stores.storage(settings), "looked_in", None)
            if looked_in:
                where += f" (looked in {looked_in})"
        if not available:
            try:
                if kind == "git":
                    tags = provider.git.tags(provider.git_origin(name)[0])
                    known = sorted({t.split("/")[1] for t in tags if t.count("/") == 2})
                    has_catalog = True
                else:
                    assert settings is not None
                    known, has_catalog = provider.known_names(settings)
            except ProvisioningError:
                known, has_catalog = [], False
            close = difflib.get_close_matches(name, [k for k in known if k != name], n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            if not close and not has_catalog:
                hint = " (this registry does not list its repositories, so no similar names can be suggested)"
            paragraphs.append(
                f"no extension named {name!r} is published at {where}:\n" + "\n".join(lines) + f"\n{hint.strip()}"
            )
            continue
        too_new = provider.too_new.get(name, [])
        shown = ", ".join(available[:12][::-1]) + (" …" if len(available) > 12 else "")
        text = f"no version of {name} satisfies every requirement:\n" + "\n".join(lines)
        text += f"\navailable versions of {name}: {shown}"
        if kind != "git" and looked_in:
            text += f" (looked in {looked_in})"
        if too_new:
            needs = "; ".join(f"{c.version} needs provisioning >= {c.min_provisioning_version}" for c in too_new[:5])
            text += (
                f"\nskipped because this workspace's core is {provider.config.core_version} (dependencies.core): "
                f"{needs}. Upgrade the core or pin an older {name}"
            )
        elif all(not satisfies(v, "*") for v in available):
            text += f"\nonly prereleases exist; allow them explicitly, e.g. {name}@>=0.0.0-0"
        paragraphs.append(text)
    return ResolutionError("cannot resolve the workspace's extensions.\n" + "\n\n".join(paragraphs))


# --------------------------------------------------------------------------- platform images


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
