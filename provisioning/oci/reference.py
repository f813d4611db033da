"""References: ``[oci://]HOST[:PORT]/NAMESPACE.../NAME[:TAG|@sha256:…]``, and short forms.

Wherever a registry is named, a filesystem path (absolute, ``./…``, ``~/…`` or
``oci-layout:PATH``) names an embedded store (OCI image layouts on disk) instead of a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

DEFAULT_REGISTRY = "localhost:5000"
DEFAULT_NAMESPACE = "provisioning-extensions"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
"""A tag as OCI allows it (at most 128 characters, no leading ``.`` or ``-``)."""
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
"""A sha256 digest as OCI writes it (lowercase hex); the one pattern every parser of digests uses."""


class InvalidReference(UsageError):
    """A reference, repository name or tag is malformed."""

    exit_code = 1


def is_path_registry(registry: str) -> bool:
    """True when ``registry`` names an embedded store on disk rather than a server."""
    return registry.startswith(("/", "./", "../", "~", "oci-layout:")) or registry in (".", "..")


CORE_REPOSITORY = "provisioning-core"  # the core artifact's repository, at the top level of every store


def layout_path(registry: str) -> str:
    return registry[len("oci-layout:") :] if registry.startswith("oci-layout:") else registry


def _looks_like_host(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost"


def tag_for_version(version: str) -> str:
    """Registries refuse ``+`` in tags; write build metadata with ``_`` as Helm does."""
    return version.replace("+", "_")


def version_for_tag(tag: str) -> str:
    """Inverse of ``tag_for_version`` (a leading ``v`` is kept; callers strip it when they mean to)."""
    return tag.replace("_", "+", 1) if "_" in tag else tag


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What to resolve in the repository: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """The last path component (the extension name)."""
        return self.repository.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        s = f"{self.registry}/{self.repository}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def validate_repository(repository: str, where: str = "") -> str:
    for comp in repository.split("/"):
        if not _COMPONENT.match(comp):
            hint = " (repository names must be lowercase)" if comp.lower() != comp else ""
            raise InvalidReference(
                f"invalid repository name {repository!r}{where}: component {comp!r} must be lowercase letters, "
                f"digits and single separators (. _ -){hint}"
            )
    return repository


def parse_reference(
    text: str,
    *,
    registry: str | None = None,
    namespace: str | None = None,
) -> Reference:
    """Parse a full or short reference.

    ``kubernetes:1.28.0`` uses the given (or default) registry and namespace;
    ``ns/kubernetes:1.28.0`` keeps its namespace; ``host:5000/ns/name:tag`` is absolute.
    """
    original = text
    text = text.strip()
    if text.startswith("oci://"):
        text = text[len("oci://") :]
    if not text:
        raise InvalidReference("empty reference: expected NAME[:TAG] or HOST/NAMESPACE/NAME:TAG")
    digest = None
    if "@" in text:
        text, digest = text.rsplit("@", 1)
        if not DIGEST.match(digest):
            raise InvalidReference(f"invalid digest in reference {original!r}: expected sha256:<64 hex digits>")
    tag = None
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
        tag = tag_for_version(tag)
        if not TAG.match(tag):
            raise InvalidReference(f"invalid tag {tag!r} in reference {original!r}")
    parts = text.split("/")
    if len(parts) > 1 and _looks_like_host(parts[0]):
        reg, repo = parts[0], "/".join(parts[1:])
    else:
        reg = registry or DEFAULT_REGISTRY
        # the core lives at the registry's top level (provisioning-core:v3.5.0), never under the namespace
        repo = text if len(parts) > 1 or text == CORE_REPOSITORY else f"{namespace or DEFAULT_NAMESPACE}/{text}"
    if not repo:
        raise InvalidReference(f"reference {original!r} names a registry but no repository")
    validate_repository(repo, f" in reference {original!r}")
    return Reference(reg, repo, tag, digest)
