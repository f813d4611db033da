"""A store in memory: for tests and as the reference behaviour of the interface."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..errors import NotFound
from .descriptor import Descriptor
from .store import Verifier, verified


class MemoryTarget:
    def __init__(self, name: str, blobs: dict[str, bytes]) -> None:
        self.name = name
        self._blobs = blobs  # shared by all repositories of one MemoryStorage
        self._manifests: dict[str, Descriptor] = {}
        self._tags: dict[str, Descriptor] = {}

    def exists(self, desc: Descriptor) -> bool:
        return desc.digest in self._blobs and (not desc.is_manifest or desc.digest in self._manifests)

    def fetch(self, desc: Descriptor) -> Iterator[bytes]:
        if not self.exists(desc):
            raise NotFound(f"{self.name}@{desc.digest} not found")
        return verified(desc, [self._blobs[desc.digest]])

    def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        v = Verifier(desc)
        parts = []
        for chunk in content:
            v.update(chunk)
            parts.append(chunk)
        v.check()
        self._blobs[desc.digest] = b"".join(parts)
        if desc.is_manifest:
            self._manifests[desc.digest] = desc

    def resolve(self, reference: str) -> Descriptor:
        if reference.startswith("sha256:"):
            if reference in self._manifests:
                return self._manifests[reference]
        elif reference in self._tags:
            return self._tags[reference]
        raise NotFound(f"{self.name}:{reference} not found")

    def tag(self, desc: Descriptor, tag: str) -> None:
        if desc.digest not in self._manifests:
            raise NotFound(f"cannot tag {self.name}:{tag}: manifest {desc.digest} not found")
        self._tags[tag] = desc

    def tags(self) -> list[str]:
        return sorted(self._tags)

    def delete(self, desc: Descriptor) -> None:
        self._manifests.pop(desc.digest, None)
        for t in [t for t, d in self._tags.items() if d.digest == desc.digest]:
            del self._tags[t]


class MemoryStorage:
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._repos: dict[str, MemoryTarget] = {}

    def repository(self, name: str) -> MemoryTarget:
        if name not in self._repos:
            self._repos[name] = MemoryTarget(name, self._blobs)
        return self._repos[name]

    def catalog(self) -> list[str]:
        return sorted(n for n, r in self._repos.items() if r.tags())
