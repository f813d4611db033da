"""``oci list``, ``oci search``, ``oci tags`` and ``oci inspect``: what a registry or store holds.

A namespace's provisioning catalog answers ``list`` and ``search`` in one request; without one, the
registry's ``_catalog`` and tag lists do."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ...errors import NotFound, ProvisioningError
from ...oci.descriptor import CONFIG_TYPE, Descriptor
from ...oci.reference import (
    Reference,
    tag_for_version,
    version_for_tag,
)
from ...oci.store import Cataloger
from ..output import print_json, table
from .context import Context, _with_output, display_ref, fetch_json, resolve_manifest
from .progress import human_size

TITLE = "org.opencontainers.image.title"
DESCRIPTION = "org.opencontainers.image.description"
TYPE_ANNOTATION = "io.provisioning.extension.type"
# tags that are not versions: referrers fallback (``sha256-<hex>``) and cosign's ``.sig``/``.att``
_SPECIAL_TAG = re.compile(r"^sha256-[0-9a-f]{64}(\..*)?$")


def version_key(tag: str) -> tuple[Any, ...]:
    """Order tags as versions (``v`` prefix and ``_`` build metadata understood); other tags sort last by name."""
    m = re.match(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:[+_].*)?$", tag)
    if not m:
        return (1, (), tag)
    nums = tuple(int(g or 0) for g in m.groups()[:3])
    pre = m.group(4)
    pre_key: tuple[Any, ...] = (1,)  # a release sorts after its prereleases
    if pre is not None:
        pre_key = (0, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (0, nums, pre_key, tag)


def version_tags(tags: Iterable[str]) -> list[str]:
    """Tags that name versions, oldest first (referrer and signature tags left out)."""
    return sorted((t for t in tags if not _SPECIAL_TAG.match(t)), key=version_key)


def _catalog(ctx: Context, registry: str, namespace: str = "") -> list[str]:
    """Repository names; the store explains a registry that forbids or lacks ``_catalog``.

    Reached only when the namespace has no provisioning catalog, so the message says both.
    """
    from ...catalog import catalog_repository, is_catalog_repository

    storage = ctx.storage(registry)
    where = f"{registry}/{catalog_repository(namespace)}:latest" if namespace else ""
    missing = f"there is no provisioning catalog ({where} does not exist), and " if where else ""
    if not isinstance(storage, Cataloger):
        raise ProvisioningError(
            f"{missing}{registry} cannot list its repositories: name the artifact, e.g. `oci tags NAME`"
        )
    try:
        repos = storage.catalog()
    except ProvisioningError as exc:
        if not missing:
            raise
        raise type(exc)(
            f"{registry} cannot list this namespace: {missing}{exc}. A catalog makes `oci list` and `oci search` "
            "work here: `doit publish` writes one, or `provisioning catalog rebuild --name NAME ...` builds it "
            "from what is published"
        ) from None
    return sorted(r for r in repos if not is_catalog_repository(r))


def _namespace_catalog(ctx: Context, registry: str, namespace: str) -> Any:
    """The namespace's provisioning catalog, or None (absent, or untrusted: then said on stderr)."""
    from ...catalog import CatalogError, read_catalog

    if not namespace:
        return None
    try:
        loaded = read_catalog(ctx.storage(registry), namespace)
    except CatalogError as exc:
        print(f"warning: {exc}; asking the registry instead", file=sys.stderr)
        return None
    except ProvisioningError:  # not there, or not readable by us (GHCR answers 401/403): ask the registry
        return None
    return loaded.catalog if loaded is not None else None


def _catalog_rows(catalog: Any, registry: str, namespace: str) -> list[dict[str, Any]]:
    """One row per extension of a catalog: what `list` and `search` print, without a request each."""
    from ...versions import sort_versions

    rows = []
    for name in sorted(catalog.extensions):
        ext = catalog.extensions[name]
        versions = sort_versions(list(ext.versions))
        if not versions:
            continue
        latest = ext.newest_first()[0]
        stable = [v for v in ext.newest_first() if "-" not in v]
        latest = stable[0] if stable else latest
        repo = f"{namespace}/{name}"
        rows.append(
            {
                "artifact": name,
                "repository": repo,
                "versions": versions,
                "latest": latest,
                "version": latest,
                "type": ext.type,
                "description": ext.description,
                "tags": list(ext.keywords),
                "reference": f"{registry}/{repo}:{tag_for_version(latest)}",
                "source": "catalog",
            }
        )
    return rows


def _in_namespace(repos: Iterable[str], namespace: str) -> list[str]:
    prefix = namespace.strip("/") + "/"
    return [r for r in repos if r.startswith(prefix)] if namespace else list(repos)


def _parallel(func: Callable[[Any], Any], items: list[Any], workers: int = 4) -> list[Any]:
    if len(items) <= 1:
        return [func(i) for i in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(func, items))


def cmd_list(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    registry, namespace = ctx.settings.registry, ctx.settings.namespace
    catalog = _namespace_catalog(ctx, registry, namespace)
    rows = _catalog_rows(catalog, registry, namespace) if catalog is not None else []
    repos = [] if catalog is not None else _in_namespace(_catalog(ctx, registry, namespace), namespace)
    storage = ctx.storage(registry)
    tag_lists = _parallel(lambda r: version_tags(storage.repository(r).tags()), repos)
    for repo, tags in zip(repos, tag_lists, strict=True):
        if not tags:
            continue
        artifact = repo[len(namespace) + 1 :] if namespace else repo
        latest = tags[-1]
        rows.append(
            {
                "artifact": artifact,
                "repository": repo,
                "versions": [version_for_tag(t) for t in tags],
                "latest": version_for_tag(latest),
                "reference": f"{registry}/{repo}:{latest}",
            }
        )
    if args.output == "json":
        print_json(rows)
        return 0
    if not rows:
        print(f"no artifacts under {namespace or '(all namespaces)'} in {registry}", file=sys.stderr)
        return 0
    table(
        None,
        ("artifact", "versions", "latest", "reference"),
        ((r["artifact"], len(r["versions"]), r["latest"], r["reference"]) for r in rows),
    )
    return 0


def _summary(ctx: Context, registry: str, repo: str) -> dict[str, Any] | None:
    """Latest version of one repository with its type and description (manifest annotations, then config)."""
    target = ctx.storage(registry).repository(repo)
    tags = version_tags(target.tags())
    if not tags:
        return None
    ref = Reference(registry, repo, tags[-1])
    info: dict[str, Any] = {
        "artifact": ref.name,
        "repository": repo,
        "version": version_for_tag(tags[-1]),
        "versions": [version_for_tag(t) for t in tags],
        "type": "",
        "description": "",
        "reference": str(ref),
    }
    try:
        _, _, doc = resolve_manifest(ctx, ref)
    except NotFound:
        return info
    ann = doc.get("annotations") or {}
    config: dict[str, Any] = {}
    if "config" in doc:
        cdesc = Descriptor.from_dict(doc["config"])
        if cdesc.media_type == CONFIG_TYPE or (not ann.get(DESCRIPTION) and cdesc.media_type.endswith("json")):
            config = fetch_json(target, cdesc) or {}
    info["type"] = ann.get(TYPE_ANNOTATION) or str(config.get("type") or "")
    info["description"] = ann.get(DESCRIPTION) or str(config.get("description") or "")
    return info


def cmd_search(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    registry = ctx.settings.registry
    namespace = "" if args.all_namespaces else ctx.settings.namespace
    term = args.term.lower()
    catalog = _namespace_catalog(ctx, registry, namespace)
    if catalog is not None:  # name, description and keywords, all from one document
        found = [
            r
            for r in _catalog_rows(catalog, registry, namespace)
            if term in r["artifact"].lower()
            or term in r["description"].lower()
            or any(term in t.lower() for t in r["tags"])
        ]
    else:
        names = _in_namespace(_catalog(ctx, registry, namespace), namespace)
        repos = [r for r in names if term in r.rsplit("/", 1)[-1].lower()]
        found = [s for s in _parallel(lambda r: _summary(ctx, registry, r), repos) if s]
    if args.output == "json":
        print_json(found)
        return 0
    if not found:
        where = f"{registry}/{namespace}" if namespace else registry
        print(f"no artifact matching {args.term!r} in {where}", file=sys.stderr)
        return 0
    table(
        None,
        ("artifact", "version", "type", "description", "reference"),
        ((s["artifact"], s["version"], s["type"], s["description"], s["reference"]) for s in found),
    )
    return 0


def cmd_tags(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    ref = ctx.ref(args.name)
    tags = version_tags(ctx.target(ref).tags())
    if not tags:
        raise NotFound(
            f"no versions of {ref.name} in {ref.registry}/{ref.repository}: check the name "
            "(`provisioning oci list`), --registry and --namespace"
        )
    rows = [
        {"artifact": ref.name, "version": version_for_tag(t), "tag": t, "reference": display_ref(ref, t)} for t in tags
    ]
    if args.output == "json":
        print_json(rows)
    else:
        table(None, ("artifact", "version", "reference"), ((r["artifact"], r["version"], r["reference"]) for r in rows))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    ref = ctx.ref(args.ref)
    target, desc, doc = resolve_manifest(ctx, ref)
    config = None
    children = []
    if "config" in doc:
        cdesc = Descriptor.from_dict(doc["config"])
        children.append(cdesc)
        config = fetch_json(target, cdesc)
    layers = [Descriptor.from_dict(d) for d in doc.get("layers") or doc.get("manifests") or []]
    children += layers
    annotations = dict(doc.get("annotations") or {})
    info = {
        "reference": str(ref),
        "digest": desc.digest,
        "mediaType": doc.get("mediaType") or desc.media_type,
        "artifactType": doc.get("artifactType") or (doc.get("config") or {}).get("mediaType"),
        "size": desc.size + sum(c.size for c in children),
        "manifestSize": desc.size,
        "annotations": annotations,
        "config": config,
        "layers": [d.to_dict() for d in layers],
        "manifest": doc,
    }
    if args.output == "json":
        print_json(info)
        return 0
    rows: list[tuple[str, str]] = [
        ("reference", info["reference"]),
        ("digest", desc.digest),
        ("media type", str(info["mediaType"])),
        ("artifact type", str(info["artifactType"] or "")),
        ("size", f"{human_size(info['size'])} ({info['size']} bytes: manifest, config and layers)"),
    ]
    if isinstance(config, dict):
        for key in ("name", "type", "version", "description", "license", "author"):
            if config.get(key):
                rows.append((f"config.{key}", str(config[key])))
        deps = config.get("dependencies") or {}
        if isinstance(deps, dict) and deps:
            rows.append(("config.dependencies", ", ".join(f"{k} {v}" for k, v in sorted(deps.items()))))
    for key, value in sorted(annotations.items()):
        rows.append((f"annotation {key}", value))
    for i, d in enumerate(layers, 1):
        title = d.annotations.get(TITLE, "")
        rows.append((f"layer {i}", f"{title} ({human_size(d.size)})" if title else human_size(d.size)))
        rows.append((f"layer {i} media type", d.media_type))
        rows.append((f"layer {i} digest", d.digest))
    table(None, ("field", "value"), rows)
    return 0


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands of this module to ``provisioning oci``."""
    p = sub.add_parser("list", parents=common, help="artifacts in a namespace, with their versions")
    _with_output(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("search", parents=common, help="artifacts whose name contains TERM, with descriptions")
    p.add_argument("term", metavar="TERM")
    p.add_argument("--all-namespaces", action="store_true", help="search every namespace, not just --namespace")
    _with_output(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("tags", parents=common, help="published versions of an artifact")
    p.add_argument("name", metavar="NAME", help="NAME or HOST/NAMESPACE/NAME")
    _with_output(p)
    p.set_defaults(func=cmd_tags)

    p = sub.add_parser("inspect", parents=common, help="manifest, config, annotations, size and digest")
    p.add_argument("ref", metavar="REF")
    _with_output(p)
    p.set_defaults(func=cmd_inspect)
