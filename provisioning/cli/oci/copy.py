"""``oci copy``: one artifact (with its signatures and referrers), or a whole namespace, between stores."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from ...errors import UsageError
from ...oci.descriptor import Descriptor
from ...oci.reference import (
    CORE_REPOSITORY,
    Reference,
    is_path_registry,
    layout_path,
    parse_reference,
    validate_repository,
)
from ...settings import RegistrySettings
from ..output import print_json
from .context import Context, _split_path_ref, _with_output, display_ref, parse_any, resolve_manifest
from .progress import CountingTarget, human_size, progress

_BARE_HOST = re.compile(r"^(localhost|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|\[[0-9a-fA-F:]+\])(:\d+)?$")


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
    from ...oci.namespace import copy_namespace, summary_line

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


def cmd_copy(args: argparse.Namespace) -> int:
    from ...oci.copy import copy_graph

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
    from ...oci.attached import copy_attached
    from ...signing.merge import merge_signatures

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


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands of this module to ``provisioning oci``."""
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
