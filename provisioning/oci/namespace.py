"""Copy every repository of a namespace (every tag, signature and referrer) from one store to another.

Built on the one graph copy: each tag is ``copy_graph`` of its manifest, which skips what the
destination already has, so a rerun after an interruption moves only what is missing and costs
one or two requests per tag that is already there. Version tags go first and attachments
(cosign's ``sha256-<hex>.sig`` tags, referrers) after their subjects, so a destination never lists
a signature of a manifest it lacks. Repositories are copied several at a time; a failing one
does not stop the others, and the result says which failed so the caller can say "run it again".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProvisioningError
from .attached import _index_referrer, attached
from .copy import _EXPECTED, CopyError, CopyResult, OnBlob, copy_graph
from .descriptor import Descriptor
from .store import Cataloger, ReadOnlyTarget, ReferrerLister, ReferrersApiAware, Storage, Target


@dataclass
class RepositoryCopy:
    """What happened to one repository."""

    source: str
    destination: str
    tags: int = 0
    referrers: int = 0
    up_to_date: int = 0
    copied: int = 0
    skipped: int = 0
    bytes_copied: int = 0
    error: str | None = None


@dataclass
class NamespaceCopyResult:
    """The summary of a namespace copy."""

    repositories: list[RepositoryCopy] = field(default_factory=list)

    @property
    def failed(self) -> list[RepositoryCopy]:
        return [r for r in self.repositories if r.error is not None]

    def totals(self) -> dict[str, int]:
        keys = ("tags", "referrers", "up_to_date", "copied", "skipped", "bytes_copied")
        out = {k: sum(getattr(r, k) for r in self.repositories) for k in keys}
        out["repositories"] = len(self.repositories)
        out["failed"] = len(self.failed)
        return out


def in_namespace(name: str, prefix: str) -> bool:
    """``name`` is the repository ``prefix`` or lies under it (``ns`` holds ``ns/a`` and ``ns/a/b``)."""
    return not prefix or name == prefix or name.startswith(prefix.rstrip("/") + "/")


def rename(name: str, prefix: str, dst_prefix: str | None) -> str:
    """The destination name of ``name``: ``prefix`` replaced by ``dst_prefix`` (kept when that is None)."""
    if dst_prefix is None:
        return name
    rest = name[len(prefix) :].lstrip("/") if prefix else name
    return "/".join(p for p in (dst_prefix.strip("/"), rest) if p)


def list_repositories(storage: Storage, prefix: str = "") -> list[str]:
    """Repositories of ``storage`` at or under ``prefix`` (the store's catalog; a clear error where it has none)."""
    if not isinstance(storage, Cataloger):
        raise ProvisioningError(f"{storage!r} cannot list its repositories; name the repositories to copy")
    return [n for n in storage.catalog() if in_namespace(n, prefix)]


def copy_namespace(
    src: Storage,
    dst: Storage,
    prefix: str = "",
    *,
    dst_prefix: str | None = None,
    repositories: list[str] | None = None,
    parallel: int = 4,
    concurrency: int = 4,
    on_blob: OnBlob | None = None,
    on_repository: Callable[[RepositoryCopy], None] | None = None,
) -> NamespaceCopyResult:
    """Copy every repository at or under ``prefix`` (or the ``repositories`` given) from ``src`` to ``dst``."""
    names = repositories if repositories is not None else list_repositories(src, prefix)
    result = NamespaceCopyResult()
    lock = threading.Lock()

    def one(name: str) -> RepositoryCopy:
        rc = copy_repository(
            src.repository(name),
            dst.repository(rename(name, prefix, dst_prefix)),
            concurrency=concurrency,
            on_blob=on_blob,
        )
        if on_repository is not None:
            with lock:
                on_repository(rc)
        return rc

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="oci-copy-ns") as pool:
        result.repositories = list(pool.map(one, names))
    return result


def copy_repository(
    src: ReadOnlyTarget,
    dst: Target,
    *,
    tags: list[str] | None = None,
    concurrency: int = 4,
    on_blob: OnBlob | None = None,
) -> RepositoryCopy:
    """Copy every tag of one repository (version tags first, then attachments) and its untagged referrers."""
    rc = RepositoryCopy(src.name, dst.name)
    try:
        all_tags = src.tags() if tags is None else tags
        ordered = sorted(all_tags, key=lambda t: (is_attachment_tag(t), t))
        roots: list[Descriptor] = []
        for tag in ordered:
            try:
                desc = src.resolve(tag)
            except _EXPECTED as e:
                raise CopyError("source", src, None, e) from e
            _add(rc, copy_graph(src, dst, desc, tag=tag, concurrency=concurrency, on_blob=on_blob))
            rc.tags += 1
            if not is_attachment_tag(tag):
                roots.append(desc)
        done: set[str] = set()
        for root in roots:
            for extra in _untagged_referrers(src, root, all_tags):
                if extra.digest in done:
                    continue
                done.add(extra.digest)
                r = copy_graph(src, dst, extra, concurrency=concurrency, on_blob=on_blob)
                if not r.up_to_date and not isinstance(dst, ReferrerLister):
                    _index_referrer(dst, root, extra)  # a store with no API finds it through the tag schema
                _add(rc, r, tagged=False)
                rc.referrers += 1
    except _EXPECTED as e:
        rc.error = str(e)
    return rc


def is_attachment_tag(tag: str) -> bool:
    """Tags that name what is attached to a manifest (``sha256-<hex>`` and cosign's ``.sig``/``.att``/``.sbom``)."""
    return tag.startswith("sha256-") and len(tag) >= 71


def _untagged_referrers(src: ReadOnlyTarget, root: Descriptor, tags: list[str]) -> list[Descriptor]:
    """Referrers of ``root`` that no tag reaches (the tags were all copied already). A registry known to have no
    referrers API keeps them behind the ``sha256-<hex>`` tag, so asking again would only cost a request."""
    if isinstance(src, ReferrersApiAware) and src.referrers_api is False:
        return []
    return [a.descriptor for a in attached(src, root, tags=tags) if a.tag is None]


def _add(rc: RepositoryCopy, r: CopyResult, *, tagged: bool = True) -> None:
    rc.copied += r.copied
    rc.skipped += r.skipped
    rc.bytes_copied += r.bytes_copied
    rc.up_to_date += int(r.up_to_date and tagged)


def summary_line(result: NamespaceCopyResult, human_size: Callable[[int], Any] = str) -> str:
    t = result.totals()
    text = (
        f"{t['repositories']} repositories, {t['tags']} tags ({t['up_to_date']} already up to date), "
        f"{t['referrers']} untagged referrers; {t['copied']} copied, {t['skipped']} already there, "
        f"{human_size(t['bytes_copied'])}"
    )
    if t["failed"]:
        text += f"; {t['failed']} failed"
    return text
