"""``provisioning oci …``: pull, push, list, search, tags, inspect, login, logout, delete, copy, config, package.

Every command takes ``--registry HOST[:PORT]`` and ``--namespace NS`` (defaults: flags, then
``PROVISIONING_REGISTRY``/``PROVISIONING_NAMESPACE``, then the workspace config, then
``localhost:5000`` / ``provisioning-extensions``) and accepts a full reference wherever a name
fits. A filesystem path (``./store``, ``/abs``, ``oci-layout:PATH``) names the embedded store.
Listings print tables, or JSON with ``--output json``. Store modules are imported inside the
commands so the command line loads even while a store is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import io
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from ..archive import safe_extract
from ..errors import NotFound, ProvisioningError, RefusedOverwrite, RegistryError, UsageError
from ..oci.descriptor import CONFIG_TYPE, Descriptor, InvalidContent, content_layer, parse_manifest
from ..oci.reference import (
    CORE_REPOSITORY,
    InvalidReference,
    Reference,
    is_path_registry,
    layout_path,
    parse_reference,
    tag_for_version,
    validate_repository,
    version_for_tag,
)
from ..oci.store import Cataloger, Deleter
from ..settings import RegistrySettings, registry_settings
from .output import print_json, table

TITLE = "org.opencontainers.image.title"
DESCRIPTION = "org.opencontainers.image.description"
TYPE_ANNOTATION = "io.provisioning.extension.type"
# tags that are not versions: referrers fallback (``sha256-<hex>``) and cosign's ``.sig``/``.att``
_SPECIAL_TAG = re.compile(r"^sha256-[0-9a-f]{64}(\..*)?$")
_BARE_HOST = re.compile(r"^(localhost|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|\[[0-9a-fA-F:]+\])(:\d+)?$")
_PROGRESS_MIN_BYTES = 1 << 20
_MEMORY_LIMIT = 16 << 20  # layers up to this size are extracted from memory


# ---------------------------------------------------------------------------------------------- plumbing


@dataclass
class Context:
    """Settings resolved once per command, and the stores it opened.

    The configured registry gets every setting (TLS, CA, token file); another registry named by a
    full reference gets only what the command line says, so a workspace's token never goes to it.
    """

    settings: RegistrySettings
    plain_http: bool | None = None
    ca_file: str | None = None
    insecure: bool = False
    _stores: dict[tuple[str, bool | None], Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        ca_file = getattr(args, "ca_file", None)
        insecure = bool(getattr(args, "insecure", False))
        settings = registry_settings(
            registry=getattr(args, "registry", None),
            namespace=getattr(args, "namespace", None),
            workspace=getattr(args, "workspace", None),
            ca_file=ca_file,
            insecure=True if insecure else None,
        )
        plain_http = True if getattr(args, "plain_http", False) else None
        return cls(settings, plain_http, str(Path(ca_file).expanduser()) if ca_file else None, insecure)

    def ref(self, text: str) -> Reference:
        """A full or short reference; a path names a repository in the embedded store."""
        return parse_any(text, self.settings)

    def storage(self, registry: str, *, tls_enabled: bool | None = None) -> Any:
        """The store for ``registry`` (a host or an embedded-store path), opened once."""
        key = (registry, tls_enabled)
        if key not in self._stores:
            s = self.settings
            if registry.lower() != s.registry.lower():
                s = RegistrySettings(registry=registry, ca_file=self.ca_file, insecure=self.insecure)
            if tls_enabled is not None:
                s = replace(s, tls_enabled=tls_enabled)
            if self.plain_http:
                s = replace(s, tls_enabled=False)
            self._stores[key] = s.open()
        return self._stores[key]

    def target(self, ref: Reference) -> Any:
        return self.storage(ref.registry).repository(ref.repository)


def _split_path_ref(path: str) -> tuple[str, str | None, str | None]:
    """``/store/ns/name:1.0`` -> (``/store/ns/name``, ``1.0``, None); the tag sits in the last component."""
    digest = tag = None
    if "@" in path.rsplit("/", 1)[-1]:
        path, digest = path.rsplit("@", 1)
        if not re.match(r"^sha256:[a-f0-9]{64}$", digest):
            raise InvalidReference(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
        tag = tag_for_version(tag)
        if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$", tag):
            raise InvalidReference(f"invalid tag {tag!r}")
    return path, tag, digest


def parse_any(text: str, settings: RegistrySettings) -> Reference:
    """Parse a reference; ``oci-layout:PATH[:TAG]`` (or a path) is one repository of the embedded store.

    As with skopeo's ``oci:PATH:TAG``, PATH is the repository's own layout folder
    (``<store>/<namespace>/<name>``); its parent is opened as the store.
    """
    if is_path_registry(text):
        path, tag, digest = _split_path_ref(layout_path(text))
        full = os.path.abspath(os.path.expanduser(path))
        parent, name = os.path.split(full)
        if not name:
            raise InvalidReference(f"{text!r} names no repository: use oci-layout:STORE/NAMESPACE/NAME[:TAG]")
        validate_repository(name, f" in {text!r}")
        return Reference(parent, name, tag, digest)
    return parse_reference(text, registry=settings.registry, namespace=settings.namespace)


def display_ref(ref: Reference, tag: str | None = None) -> str:
    base = f"{ref.registry}/{ref.repository}"
    if tag:
        return f"{base}:{tag}"
    return str(ref)


def _translate(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Where a command meets the registry library: nothing to catch here.

    The remote client (``oci/remote/``) turns every answer and transport failure into our own
    errors, which ``cli.main`` prints; no command knows the HTTP library. Kept as the one place to
    hang boundary handling while the commands that use it move on.
    """
    return func


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


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


@contextlib.contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal for transfers worth watching; a no-op callback otherwise."""
    if not sys.stdout.isatty() or total < _PROGRESS_MIN_BYTES:
        yield lambda n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


class CountingTarget:
    """Wraps a destination so every pushed chunk advances a progress callback; other powers pass through."""

    def __init__(self, inner: Any, advance: Callable[[int], None]) -> None:
        self._inner = inner
        self._advance = advance

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        def counted() -> Iterator[bytes]:
            for chunk in content:
                self._advance(len(chunk))
                yield chunk

        self._inner.push(desc, counted())


class CountingStorage:
    """A storage whose repositories report pushed bytes to a progress callback."""

    def __init__(self, inner: Any, advance: Callable[[int], None]) -> None:
        self._inner = inner
        self._advance = advance

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def repository(self, name: str) -> CountingTarget:
        return CountingTarget(self._inner.repository(name), self._advance)


def fetch_json(target: Any, desc: Descriptor, limit: int = 4 << 20) -> dict[str, Any] | None:
    """A small JSON blob (manifest, config), or None when it is too large or not JSON."""
    from ..oci.store import fetch_bytes

    if desc.size > limit:
        return None
    try:
        doc = json.loads(fetch_bytes(target, desc))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def resolve_manifest(ctx: Context, ref: Reference) -> tuple[Any, Descriptor, dict[str, Any]]:
    """(target, manifest descriptor, manifest document) for a reference, with a helpful NotFound."""
    from ..oci.store import fetch_manifest

    if not ref.tag and not ref.digest:
        raise InvalidReference(
            f"{ref} names no version: add one as {ref.name}:VERSION (`provisioning oci tags {ref.name}` lists them)"
        )
    target = ctx.target(ref)
    try:
        desc, raw = fetch_manifest(target, ref.reference)
    except NotFound as exc:
        what = f"digest {ref.digest}" if ref.digest else f"version {ref.tag}"
        raise NotFound(
            f"{ref} not found: {ref.registry} has no {what} of {ref.repository}. "
            f"`provisioning oci tags {ref.name}` lists the published versions"
        ) from exc
    try:
        doc = parse_manifest(raw)
    except InvalidContent as exc:
        raise RegistryError(f"{ref}: the registry returned a malformed manifest: {exc}") from None
    return target, desc, doc


def _catalog(ctx: Context, registry: str, namespace: str = "") -> list[str]:
    """Repository names; the store explains a registry that forbids or lacks ``_catalog``.

    Reached only when the namespace has no provisioning catalog, so the message says both.
    """
    from ..catalog import catalog_repository, is_catalog_repository

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
    from ..catalog import CatalogError, read_catalog

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
    from ..versions import sort_versions

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


# ---------------------------------------------------------------------------------------------- commands


@_translate
def cmd_pull(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    ref = ctx.ref(args.ref)
    target, desc, doc = resolve_manifest(ctx, ref)
    layer = _content_layer(ref, doc)
    dest = Path(args.dest) if args.dest else Path.cwd() / ref.name
    files = pull_into(target, layer, dest, force=args.force, label=ref.name)
    if args.output == "json":
        print_json({"reference": str(ref), "digest": desc.digest, "dest": str(dest), "files": files})
    else:
        print(f"pulled {ref} ({desc.digest}) into {dest} ({files} files, {human_size(layer.size)})")
    return 0


def _content_layer(ref: Reference, doc: dict[str, Any]) -> Descriptor:
    try:
        return content_layer(doc)
    except ValueError as exc:
        raise ProvisioningError(f"{ref} is not an extension artifact: {exc}") from None


def pull_into(target: Any, layer: Descriptor, dest: Path, *, force: bool = False, label: str = "") -> int:
    """Fetch the layer (verified while streaming), extract it safely beside ``dest``, then rename into place.

    Nothing lands in ``dest`` unless the whole layer matched its digest and extracted cleanly; a
    replaced ``dest`` is swapped out only at the end.
    """
    dest = dest.absolute()
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())) and not force:
        raise ProvisioningError(f"{dest} already exists: choose another --dest, or pass --force to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # small layers (extensions are) stay in memory; large ones spool to an anonymous temp file
    spool: IO[bytes] = io.BytesIO() if layer.size <= _MEMORY_LIMIT else tempfile.TemporaryFile(dir=dest.parent)
    tree = Path(tempfile.mkdtemp(prefix=f".{dest.name}.pull-", dir=dest.parent))
    try:
        with spool, progress(layer.size, f"pull {label}") as advance:
            for chunk in target.fetch(layer):  # the store raises DigestMismatch before the last chunk
                spool.write(chunk)
                advance(len(chunk))
            spool.seek(0)
            files = safe_extract(spool, tree, what=f"layer of {label}")
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.replace(dest, old / "tree")
            os.replace(tree, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tree, dest)
        return files
    finally:
        if tree.exists():
            shutil.rmtree(tree, ignore_errors=True)


@_translate
def cmd_push(args: argparse.Namespace) -> int:
    from ..extension import validate_extension
    from ..package import build_artifact
    from ..publish import REFUSED, publish

    ctx = Context.from_args(args)
    ext = validate_extension(Path(args.path))
    name = args.name or ext.name
    version = args.version or ext.version
    ref = ctx.ref(name)
    if ref.tag or ref.digest:
        raise UsageError(f"push takes the version separately: `oci push PATH {ref.name} VERSION`")
    if ref.name != ext.name:
        raise ProvisioningError(
            f"{args.path} holds extension {ext.name!r}, not {ref.name!r}: the repository name must be the "
            f"manifest's name (push it as {ext.name}, or fix 'name' in manifest.yaml)"
        )
    if version.lstrip("v") != ext.version and tag_for_version(version) != tag_for_version(ext.version):
        raise ProvisioningError(
            f"{args.path} is version {ext.version} (manifest.yaml), not {version}: set 'version' in "
            "manifest.yaml and kcl/kcl.mod, or push the version the manifest names"
        )
    if "/" not in ref.repository:
        raise UsageError(f"{name}: give a namespace, as HOST/NAMESPACE/{ref.name} or with --namespace NS")
    namespace = ref.repository.rsplit("/", 1)[0]
    artifact = build_artifact(ext)
    storage = ctx.storage(ref.registry)
    shown = display_ref(ref, artifact.tag)
    total = sum(desc.size for desc, _ in artifact.parts())
    with progress(total, f"push {ref.name}") as advance:
        result = publish(artifact, CountingStorage(storage, advance), namespace, force=args.force)
    if result.status == REFUSED:
        raise RefusedOverwrite(result.message or f"{shown} is already published with different content")
    if args.output == "json":
        data = result.to_dict()
        data["reference"] = shown
        print_json(data)
    elif result.status == "unchanged":
        print(f"unchanged: {shown} is already published with the same content ({result.digest})")
    else:
        print(f"published {shown} ({result.digest})")
    return 0


@_translate
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


@_translate
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


@_translate
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


@_translate
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


def _host(text: str) -> tuple[str, bool | None]:
    """``https://host:5000`` -> (``host:5000``, True): the scheme, when given, decides TLS."""
    from ..oci.endpoint import strip_scheme

    host, tls = strip_scheme(text)
    if not host or "/" in host:
        raise UsageError(f"{text!r} is not a registry host: give HOST[:PORT], e.g. localhost:5000")
    return host, tls


@_translate
def cmd_login(args: argparse.Namespace) -> int:
    from ..oci import credentials

    if is_path_registry(args.host):
        print(f"{args.host} is an embedded store on disk: no login needed (nothing stored)")
        return 0
    host, tls = _host(args.host)
    username = args.username
    if not username and not args.password_stdin and args.password is None:
        if _asks_no_credentials(Context.from_args(args).storage(host, tls_enabled=tls)):
            print(f"{host} asks for no credentials: no login needed (nothing stored)")
            return 0
    if not username:
        if not sys.stdin.isatty():
            raise UsageError("login needs --username USER when not run on a terminal")
        username = input("Username: ").strip()
    if args.password_stdin:
        if args.password is not None:
            raise UsageError("--password and --password-stdin cannot be used together")
        password = sys.stdin.read().rstrip("\r\n")
    elif args.password is not None:
        print(
            "WARNING: --password leaves the password in your shell history and the process list; use --password-stdin",
            file=sys.stderr,
        )
        password = args.password
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        raise UsageError("login needs the password on standard input: pass --password-stdin")
    if not password:
        raise UsageError("the password is empty")
    ctx = Context.from_args(args)
    verify = None if args.no_verify else ctx.storage(host, tls_enabled=tls)
    path = credentials.login(host, username, password, verify_with=verify)
    where = f" (stored in {path})" if isinstance(path, (str, os.PathLike)) else ""
    print(f"Login succeeded for {username} at {host}{where}")
    return 0


def _asks_no_credentials(storage: Any) -> bool:
    """Whether the registry asks for no credentials at all (a local registry as started)."""
    asks = getattr(storage, "asks_for_credentials", None)
    if asks is None:
        return False
    try:
        return not asks()
    except ProvisioningError:
        return False


@_translate
def cmd_logout(args: argparse.Namespace) -> int:
    from ..oci import credentials

    host, _ = _host(args.host)
    removed = credentials.logout(host)
    if removed is False:
        print(f"not logged in to {host}")
    else:
        print(f"Removed the stored credentials for {host}")
    return 0


@_translate
def cmd_delete(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    ref = ctx.ref(args.ref)
    target, desc, _ = resolve_manifest(ctx, ref)
    if not isinstance(target, Deleter):
        raise ProvisioningError(f"{ref.registry} does not support deleting artifacts")
    if not args.yes:
        if not sys.stdin.isatty():
            raise ProvisioningError(
                f"refusing to delete {ref} without confirmation: standard input is not a terminal; "
                "pass --yes to delete from a script"
            )
        answer = input(
            f"Delete {ref} ({desc.digest})? This removes the manifest and every tag that points to it. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 1
    try:
        target.delete(desc)
    except RegistryError as exc:
        if exc.status == 405 or "UNSUPPORTED" in exc.codes:
            raise ProvisioningError(
                f"{ref.registry} does not allow deleting manifests (405): enable it on the registry "
                "(CNCF distribution: storage.delete.enabled: true) or ask its administrator"
            ) from exc
        raise
    if args.output == "json":
        print_json({"reference": str(ref), "digest": desc.digest, "deleted": True})
    else:
        print(f"deleted {ref} ({desc.digest})")
    return 0


def parse_destination(text: str, src: Reference, settings: RegistrySettings) -> Reference:
    """Where ``copy`` writes: a full reference, a bare registry host or store path (keeps the source's name)."""

    def keep(registry: str) -> Reference:
        if "/" in src.repository or not settings.namespace or src.name == CORE_REPOSITORY:
            repo = src.repository  # the core keeps its top-level repository
        else:
            repo = f"{settings.namespace}/{src.name}"
        return Reference(registry, repo, src.tag, None if src.tag else src.digest)

    if is_path_registry(text):
        path, tag, digest = _split_path_ref(layout_path(text))
        if tag or digest:  # oci-layout:STORE/NS/NAME:TAG — one repository's layout folder
            return parse_any(text, settings)
        return keep(os.path.abspath(os.path.expanduser(path)))
    bare = text[len("oci://") :] if text.startswith("oci://") else text
    if _BARE_HOST.match(bare.rstrip("/")):
        return keep(bare.rstrip("/"))
    dst = parse_reference(text, registry=settings.registry, namespace=settings.namespace)
    if not dst.tag and not dst.digest:
        dst = Reference(dst.registry, dst.repository, src.tag)
    return dst


def namespace_source(text: str) -> tuple[str, str] | None:
    """``(registry_or_store, prefix)`` when a copy source names no single artifact: a bare host, ``HOST/NAMESPACE``
    without a tag, or a store path that is not one repository's layout. None for an artifact reference."""
    if is_path_registry(text):
        path, tag, digest = _split_path_ref(layout_path(text))
        full = os.path.abspath(os.path.expanduser(path))
        if tag or digest or os.path.exists(os.path.join(full, "oci-layout")):
            return None
        return full, ""
    bare = (text[len("oci://") :] if text.startswith("oci://") else text).rstrip("/")
    if _BARE_HOST.match(bare):
        return bare, ""
    host, _, rest = bare.partition("/")
    if not _BARE_HOST.match(host) or not rest or "@" in rest or ":" in rest.rsplit("/", 1)[-1]:
        return None
    validate_repository(rest, f" in {text!r}")
    return host, rest


def namespace_destination(text: str) -> tuple[str, str | None]:
    """``(registry_or_store, prefix or None)`` for a namespace copy's destination."""
    if is_path_registry(text):
        path, tag, digest = _split_path_ref(layout_path(text))
        if tag or digest:
            raise UsageError(f"{text}: a namespace copy writes into a store folder, not into a tagged layout")
        return os.path.abspath(os.path.expanduser(path)), None
    bare = (text[len("oci://") :] if text.startswith("oci://") else text).rstrip("/")
    host, _, rest = bare.partition("/")
    if not _BARE_HOST.match(host) or "@" in rest or ":" in rest.rsplit("/", 1)[-1]:
        raise UsageError(f"{text}: a namespace copy goes to HOST[:PORT][/NAMESPACE] or a store folder")
    if rest:
        validate_repository(rest, f" in {text!r}")
    return host, rest or None


def cmd_copy_namespace(args: argparse.Namespace, ctx: Context, registry: str, prefix: str) -> int:
    from ..oci.namespace import copy_namespace, summary_line

    dst_registry, dst_prefix = namespace_destination(args.dst)
    src_storage, dst_storage = ctx.storage(registry), ctx.storage(dst_registry)
    where = f"{registry}/{prefix}" if prefix else registry
    lines: list[str] = []

    def report(rc: Any) -> None:
        if args.output == "json":
            return
        if rc.error:
            lines.append(f"failed {rc.source}: {rc.error}")
        elif sys.stdout.isatty():
            print(f"{rc.source} -> {rc.destination}: {rc.tags} tags, {rc.copied} copied", flush=True)

    result = copy_namespace(
        src_storage,
        dst_storage,
        prefix,
        dst_prefix=dst_prefix,
        parallel=args.concurrency,
        concurrency=args.concurrency,
        on_repository=report,
    )
    if args.output == "json":
        print_json(
            {
                "source": where,
                "destination": args.dst,
                **result.totals(),
                "results": [vars(r) for r in result.repositories],
            }
        )
    else:
        for line in lines:
            print(line, file=sys.stderr)
        print(f"copied {where} -> {args.dst}: {summary_line(result, human_size)}")
    if result.failed:
        if args.output != "json":
            print(
                f"{len(result.failed)} repositories were not copied completely; run the same command again to "
                "finish (what is there already is skipped)",
                file=sys.stderr,
            )
        return 1
    if not result.repositories and args.output != "json":
        print(f"note: {where} holds no repositories", file=sys.stderr)
    return 0


@_translate
def cmd_copy(args: argparse.Namespace) -> int:
    from ..oci.copy import copy_graph

    ctx = Context.from_args(args)
    whole = namespace_source(args.src)
    if whole is not None:
        return cmd_copy_namespace(args, ctx, *whole)
    src = ctx.ref(args.src)
    dst = parse_destination(args.dst, src, ctx.settings)
    if dst.digest:
        raise UsageError(f"{args.dst}: a copy destination takes a tag, not a digest")
    src_target, desc, doc = resolve_manifest(ctx, src)
    dst_target = ctx.target(dst)
    total = desc.size + sum(c.size for c in _children(doc))
    with progress(total, f"copy {src.name}") as advance:
        # the root is already resolved: copy its graph (only what the destination lacks) and tag it
        result = copy_graph(
            src_target, CountingTarget(dst_target, advance), desc, tag=dst.tag, concurrency=args.concurrency
        )
    carried = _copy_attached(src_target, dst_target, desc, args.concurrency)
    shown_dst = display_ref(dst, dst.tag) if dst.tag else f"{dst}@{desc.digest}"
    if args.output == "json":
        print_json(
            {
                "source": str(src),
                "destination": shown_dst,
                "digest": desc.digest,
                "size": total,
                "copied": result.copied,
                "mounted": result.mounted,
                "skipped": result.skipped,
                "bytes_copied": result.bytes_copied,
                "up_to_date": result.up_to_date,
                "attached": carried,
            }
        )
    elif result.up_to_date:
        print(f"up to date: {shown_dst} already has {desc.digest}" + _attached_note(carried))
    else:
        mounted = f", {result.mounted} mounted" if result.mounted else ""
        print(
            f"copied {src} -> {shown_dst} ({desc.digest}; {result.copied} copied{mounted}, "
            f"{result.skipped} already there, {human_size(result.bytes_copied)})" + _attached_note(carried)
        )
    return 0


def _copy_attached(src: Any, dst: Any, desc: Descriptor, concurrency: int) -> list[dict[str, Any]]:
    """Carry the signatures, attestations and referrers of the copied manifest along (what they are)."""
    from ..oci.attached import copy_attached
    from ..signing.merge import merge_signatures

    items = copy_attached(src, dst, desc, concurrency=concurrency, merge=merge_signatures)
    return [{"kind": a.kind, "digest": a.descriptor.digest, "tag": a.tag} for a in items]


def _attached_note(carried: list[dict[str, Any]]) -> str:
    if not carried:
        return ""
    kinds = sorted({a["kind"] for a in carried})
    return f"; with {len(carried)} attached ({', '.join(kinds)})"


def _children(doc: dict[str, Any]) -> list[Descriptor]:
    out = [Descriptor.from_dict(doc["config"])] if "config" in doc else []
    return out + [Descriptor.from_dict(d) for d in doc.get("layers") or doc.get("manifests") or []]


def cmd_config(args: argparse.Namespace) -> int:
    from .. import paths
    from ..settings import find_workspace, load_document, platform_namespace

    ctx = Context.from_args(args)
    s = ctx.settings
    if ctx.plain_http:
        s = replace(s, tls_enabled=False)
    workspace = find_workspace(getattr(args, "workspace", None))
    data = {
        "tool": "provisioning",
        "registry": s.registry,
        "embedded": s.is_path,
        "namespace": {
            "extensions": s.namespace,
            "platform": platform_namespace(load_document(workspace) if workspace else {}),
        },
        "cache_dir": str(paths.cache_dir()),
        "tls_enabled": None if s.is_path else s.endpoint().tls_enabled,
        "insecure": s.insecure,
        "ca_file": s.ca_file,
        "auth_token_path": s.auth_token_path,
        "workspace": str(workspace) if workspace else None,
    }
    if args.output == "table":
        table(
            None, ("setting", "value"), ((k, json.dumps(v) if not isinstance(v, str) else v) for k, v in data.items())
        )
    else:
        print_json(data)
    return 0


def cmd_package(args: argparse.Namespace) -> int:
    from ..extension import validate_extension

    words = list(args.words)
    if words and words[0] == "validate" and len(words) == 2:
        if args.output == "json":
            return _validate_json(Path(words[1]))
        ext = validate_extension(Path(words[1]))
        print(f"valid: {ext.type} {ext.name} {ext.version} ({words[1]})")
        return 0
    if len(words) != 1:
        raise UsageError("usage: provisioning oci package PATH [--output DIR] | provisioning oci package validate PATH")
    from ..package import build_artifact, package_paths, write_artifact

    if args.output in ("json", "table"):
        raise UsageError("oci package --output takes a folder (the JSON form is for `oci package validate`)")
    ext = validate_extension(Path(words[0]))
    artifact = build_artifact(ext)
    out_dir = Path(args.output or ".")
    write_artifact(artifact, out_dir)
    for path in package_paths(out_dir, ext.name, ext.version):
        print(f"wrote {path}")
    print(f"manifest digest: {artifact.manifest_desc.digest}")
    return 0


def _validate_json(path: Path) -> int:
    """``oci package validate --output json``: JSON whether valid or not; exit 1 when not."""
    from ..errors import ProvisioningError
    from ..extension import discover, load_extension, validate_extensions

    answer: dict[str, Any] = {"valid": False, "path": str(path)}
    try:
        ext = load_extension(path)
        answer.update(name=ext.name, type=ext.type, version=ext.version)
        problems = validate_extensions([ext], [p.name for p in discover(ext.path.parent.parent)])[ext.path]
    except ProvisioningError as exc:
        problems = [str(exc)]
    answer["valid"], answer["problems"] = not problems, problems
    print_json(answer)
    return 0 if not problems else 1


# ---------------------------------------------------------------------------------------------- parser


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("registry")
    g.add_argument(
        "--registry",
        metavar="HOST[:PORT]",
        help="registry host, or a path / oci-layout:PATH for the embedded store "
        "(default: $PROVISIONING_REGISTRY, the workspace config, localhost:5000)",
    )
    g.add_argument(
        "--namespace",
        metavar="NS",
        help="namespace of short names (default: $PROVISIONING_NAMESPACE, the workspace config, "
        "provisioning-extensions)",
    )
    g.add_argument("--workspace", metavar="PATH", help="workspace whose config/provisioning.yaml gives the defaults")
    g.add_argument("--plain-http", action="store_true", help="talk HTTP without TLS (loopback registries do already)")
    g.add_argument(
        "--insecure", action="store_true", help="use TLS but skip certificate verification (not the same as plain HTTP)"
    )
    g.add_argument("--ca-file", metavar="PEM", help="trust this CA certificate bundle for the registry")
    return common


def _with_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", choices=("table", "json"), default="table", help="table (default) or json")


def register(subparsers: argparse._SubParsersAction) -> None:
    oci = subparsers.add_parser(
        "oci",
        help="pull, push, list, search, inspect, copy and delete extensions in OCI registries",
        description=(
            "Work with extensions in OCI registries. Every command takes --registry HOST[:PORT] and --namespace NS "
            "(defaults: the flags, then $PROVISIONING_REGISTRY / $PROVISIONING_NAMESPACE, then the workspace's "
            "config/provisioning.yaml, then localhost:5000 / provisioning-extensions) and accepts a full reference "
            "(HOST/NAMESPACE/NAME:VERSION) wherever a name fits. A path (./store, /abs/store, oci-layout:PATH) "
            "names the embedded store on disk. Listings print tables, or JSON with --output json."
        ),
    )
    oci.set_defaults(func=lambda args: (oci.print_help(sys.stderr), 2)[1])
    sub = oci.add_subparsers(dest="oci_command", metavar="COMMAND")
    common = [_common()]

    p = sub.add_parser("pull", parents=common, help="download an extension and extract it (default: ./NAME)")
    p.add_argument("ref", metavar="REF", help="NAME:VERSION or HOST/NAMESPACE/NAME:VERSION (or @sha256:…)")
    p.add_argument("--dest", metavar="DIR", help="folder to extract into (default ./NAME)")
    p.add_argument("--force", action="store_true", help="replace DIR when it exists")
    _with_output(p)
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("push", parents=common, help="validate, package and push an extension folder")
    p.add_argument("path", metavar="PATH", help="the extension folder (holds manifest.yaml)")
    p.add_argument("name", metavar="NAME", nargs="?", help="NAME or HOST/NAMESPACE/NAME (default: the manifest's)")
    p.add_argument("version", metavar="VERSION", nargs="?", help="must equal the manifest's version")
    p.add_argument("--force", action="store_true", help="overwrite a version published with other content")
    _with_output(p)
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("publish", parents=common, help="push an extension folder under its manifest's name and version")
    p.add_argument("path", metavar="PATH", help="the extension folder (holds manifest.yaml)")
    p.add_argument("--force", action="store_true", help="overwrite a version published with other content")
    _with_output(p)
    p.set_defaults(func=cmd_push, name=None, version=None)

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

    p = sub.add_parser("login", parents=common, help="store credentials for a registry (file mode 0600)")
    p.add_argument("host", metavar="HOST[:PORT]")
    p.add_argument("--username", "-u", metavar="USER")
    p.add_argument("--password-stdin", action="store_true", help="read the password (or token) from standard input")
    p.add_argument(
        "--password", "-p", help="the password as an argument (discouraged: shell history and process list show it)"
    )
    p.add_argument("--no-verify", action="store_true", help="store without checking them against the registry")
    p.set_defaults(func=cmd_login)

    p = sub.add_parser("logout", parents=common, help="forget the stored credentials for a registry")
    p.add_argument("host", metavar="HOST[:PORT]")
    p.set_defaults(func=cmd_logout)

    p = sub.add_parser("delete", parents=common, help="delete a published version (asks first; --yes in scripts)")
    p.add_argument("ref", metavar="REF", help="NAME:VERSION or a full reference")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask (required when not on a terminal)")
    _with_output(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser(
        "copy",
        parents=common,
        help="copy an artifact, or a whole namespace, between registries and embedded stores",
        description=(
            "Copy SRC to DST, moving only what DST lacks, signatures and referrers included. Either may be a "
            "registry reference (HOST/NAMESPACE/NAME:TAG) or oci-layout:PATH[:TAG]; a DST of just HOST[:PORT] or a "
            "store path keeps the source's repository and tag. A SRC that names no artifact (HOST[:PORT], "
            "HOST/NAMESPACE without a tag, or a store folder) copies every repository under it, every tag, "
            "signature and referrer, into DST (HOST[:PORT][/NAMESPACE] or a store folder); a rerun finishes an "
            "interrupted copy."
        ),
    )
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument("--concurrency", type=int, default=4, help="blobs transferred in parallel (default 4)")
    _with_output(p)
    p.set_defaults(func=cmd_copy)

    p = sub.add_parser("config", parents=common, help="the effective OCI configuration (JSON)")
    p.add_argument("--output", "-o", choices=("json", "table"), default="json")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser(
        "package",
        parents=common,
        help="package an extension as <name>-<version>.tar.gz (or: package validate PATH)",
        usage=(
            "provisioning oci package PATH [--output DIR]\n"
            "       provisioning oci package validate PATH [--output json]"
        ),
    )
    p.add_argument("words", metavar="PATH", nargs="+", help="the extension folder, or `validate PATH`")
    p.add_argument("--output", "-o", metavar="DIR", help="folder for the package (default: the current folder)")
    p.set_defaults(func=cmd_package)
