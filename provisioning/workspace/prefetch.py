"""Reading ahead of the resolver: the tag lists and best candidates it will ask for next, on a bounded pool.

It asks what the resolver will ask next, so it adds (almost) no requests, only overlap: a
loopback round trip costs milliseconds, and a thousand of them in a row add up. A fetched
candidate's dependencies are prefetched in turn, so the pool works down the graph ahead of the
resolver instead of one level behind it (a best candidate that a later requirement rules out
costs its dependencies' reads once, which the resolver would mostly read anyway).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .resolution import Answers, Requirement

log = logging.getLogger(__name__)


class Prefetcher:
    """A pool of ``workers`` threads reading for ``provider`` (remote registries only; 1: no pool)."""

    def __init__(self, provider: Answers, workers: int) -> None:
        self.provider = provider
        self.workers = workers
        self.known: Mapping[str, list[Requirement]] = {}  # the requirements the resolver has met so far
        self._mutex = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._submitted: set[tuple[str, tuple[str, ...]]] = set()
        self._spread: set[str] = set()  # names whose prefetch a fetched candidate started

    def ask(self, name: str, reqs: list[Requirement]) -> None:
        """Read ``name``'s versions and likely best candidate in the background."""
        if self.workers <= 1:
            return
        finder = self.provider.sources.oci(name)
        if finder is None or finder.answers_from_memory(name):
            return  # nothing to overlap
        snapshot = list(reqs)
        key = (name, tuple(sorted(r.text for r in snapshot)))
        with self._mutex:
            if key in self._submitted:
                return
            self._submitted.add(key)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="prefetch")
            pool = self._pool
        try:
            pool.submit(self._job, name, snapshot)
        except RuntimeError:  # the resolver finished and closed the pool meanwhile
            pass

    def _job(self, name: str, reqs: list[Requirement]) -> None:
        try:
            cand = next(self.provider.matches(name, reqs, set()), None)
        except Exception as exc:  # the resolver meets the same error itself if it matters
            log.debug("prefetch of %s failed: %s", name, exc)
            return
        if cand is not None:
            self.spread(self.provider.get_dependencies(cand))

    def spread(self, deps: list[Requirement]) -> None:
        """Read ahead for the dependencies of a candidate, each name once: the graph's next level."""
        for dep in deps:
            with self._mutex:
                if dep.name in self._spread:
                    continue
                self._spread.add(dep.name)
                known = list(self.known.get(dep.name, ()))  # what the config and pins already ask
            self.ask(dep.name, [*known, dep])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
