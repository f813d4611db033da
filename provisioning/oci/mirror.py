"""A store that tries mirrors in order, then the origin: the resolver's fetch behind a mirror config.

Content is asked for by digest and verified before any of it is handed on, so a mirror can never
change what the lock pins: a mirror that serves other bytes for a digest is refused (and said
so in the log) and the next source is tried. Tags are the union of what the sources list, so a
mirror lacking a version does not hide the origin's; with ``mirror_only`` the origin is never
asked, and errors say where the store looked. Sources are opened on first use, so an origin
that is unreachable costs nothing while the mirrors have everything.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from ..errors import DigestMismatch, NotFound, ProvisioningError
from .descriptor import Descriptor
from .store import ReferrerLister, Storage, verified

log = logging.getLogger(__name__)

_SPOOL = 8 << 20
_TRIED = (ProvisioningError, OSError)  # a source that fails this way is skipped, the next one asked


class _Source:
    """One mirror (or the origin), opened on first use."""

    def __init__(self, label: str, opener: Callable[[], Storage]) -> None:
        self.label = label
        self._opener = opener
        self._storage: Storage | None = None
        self._lock = threading.Lock()

    def storage(self) -> Storage:
        with self._lock:
            if self._storage is None:
                self._storage = self._opener()
            return self._storage

    def close(self) -> None:
        close = getattr(self._storage, "close", None)
        if close is not None:
            close()


class MirrorStorage:
    """The origin registry ``origin`` as seen through ``mirrors`` (tried first, in order)."""

    def __init__(
        self,
        origin: str,
        mirrors: list[tuple[str, Callable[[], Storage]]],
        open_origin: Callable[[], Storage],
        *,
        mirror_only: bool = False,
    ) -> None:
        self.origin = origin
        self.mirror_only = mirror_only
        self.sources = [_Source(label, opener) for label, opener in mirrors]
        if not mirror_only:
            self.sources.append(_Source(origin, open_origin))
        self.registry_host = f"mirror:{origin}"

    def __repr__(self) -> str:
        return f"MirrorStorage({self.origin!r} via {', '.join(s.label for s in self.sources)})"

    @property
    def looked_in(self) -> str:
        """Where this store looks, for messages."""
        mirrors = [s.label for s in self.sources if s.label != self.origin or self.mirror_only]
        text = "mirrors " + ", ".join(mirrors) if mirrors else "no mirror"
        if self.mirror_only:
            return f"{text} (mirror_only: the origin {self.origin} is not asked)"
        return f"{text}, then the origin {self.origin}"

    def repository(self, name: str) -> MirrorTarget:
        return MirrorTarget(self, name)

    def catalog(self) -> list[str]:
        names: set[str] = set()
        for s in self.sources:
            catalog = getattr(s.storage(), "catalog", None)
            if catalog is None:
                continue
            try:
                names.update(catalog())
            except _TRIED as e:
                log.debug("catalog of %s unavailable: %s", s.label, e)
        return sorted(names)

    def close(self) -> None:
        for s in self.sources:
            s.close()


class MirrorTarget:
    """One repository through the mirrors (read-only: a mirror config never writes)."""

    def __init__(self, owner: MirrorStorage, name: str) -> None:
        self.owner = owner
        self.name = name

    def __repr__(self) -> str:
        return f"MirrorTarget({self.name!r}, {self.owner.looked_in})"

    def _targets(self) -> Iterator[tuple[str, Any]]:
        for s in self.owner.sources:
            try:
                yield s.label, s.storage().repository(self.name)
            except _TRIED as e:
                log.warning("mirror %s cannot be opened for %s: %s", s.label, self.name, e)

    def _not_found(self, what: str, problems: list[str]) -> NotFound:
        detail = f" ({'; '.join(problems)})" if problems else ""
        return NotFound(f"{self.name}{what} is not in {self.owner.looked_in}{detail}")

    def exists(self, desc: Descriptor) -> bool:
        for _, target in self._targets():
            try:
                if target.exists(desc):
                    return True
            except _TRIED:
                continue
        return False

    def fetch(self, desc: Descriptor) -> Iterator[bytes]:
        """The content of ``desc`` from the first source whose bytes match the digest (checked before any is
        yielded, so a refused mirror never leaks a chunk)."""
        problems: list[str] = []
        for label, target in self._targets():
            spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
            try:
                for chunk in verified(desc, target.fetch(desc)):
                    spool.write(chunk)
            except DigestMismatch as e:
                spool.close()
                log.warning("refused %s@%s from %s: it served other content (%s)", self.name, desc.digest, label, e)
                problems.append(f"{label} served other content for that digest and was refused")
                continue
            except NotFound:
                spool.close()
                continue
            except _TRIED as e:
                spool.close()
                problems.append(f"{label}: {e}")
                continue
            spool.seek(0)
            return _drain(spool)
        raise self._not_found(f"@{desc.digest}", problems)

    def resolve(self, reference: str) -> Descriptor:
        problems: list[str] = []
        for label, target in self._targets():
            try:
                return target.resolve(reference)
            except NotFound:
                continue
            except _TRIED as e:
                problems.append(f"{label}: {e}")
        sep = "@" if reference.startswith("sha256:") else ":"
        raise self._not_found(f"{sep}{reference}", problems)

    def referrers(self, desc: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        """Referrers of ``desc`` from every source that can list them (the union, by digest)."""
        found: dict[str, Descriptor] = {}
        for label, target in self._targets():
            if not isinstance(target, ReferrerLister):
                continue
            try:
                for d in target.referrers(desc, artifact_type):
                    found.setdefault(d.digest, d)
            except _TRIED as e:
                log.debug("referrers of %s@%s from %s unavailable: %s", self.name, desc.digest, label, e)
        return [found[d] for d in sorted(found)]

    def tags(self) -> list[str]:
        found: set[str] = set()
        errors: list[BaseException] = []
        answered = False
        for _, target in self._targets():
            try:
                found.update(target.tags())
                answered = True
            except NotFound:
                answered = True
            except _TRIED as e:
                errors.append(e)
        if not answered and errors:
            raise errors[0]
        return sorted(found)


def _drain(spool: IO[bytes]) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(1 << 20):
            yield chunk
