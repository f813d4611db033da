"""``oci pull``, ``oci push`` and ``oci publish``: an extension folder to an artifact and back."""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

from ...archive import safe_extract
from ...errors import ProvisioningError, RefusedOverwrite, UsageError
from ...oci.descriptor import Descriptor, content_layer
from ...oci.reference import (
    Reference,
    tag_for_version,
)
from ..output import print_json
from .context import Context, _with_output, display_ref, resolve_manifest
from .progress import CountingStorage, human_size, progress

_MEMORY_LIMIT = 16 << 20  # layers up to this size are extracted from memory


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


def cmd_push(args: argparse.Namespace) -> int:
    from ...extension import validate_extension
    from ...package import build_artifact
    from ...publish import REFUSED, publish

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


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands of this module to ``provisioning oci``."""
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
