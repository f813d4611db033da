"""``provisioning bundle create|verify|push``: carry a workspace's locked closure into an air-gapped site.

``create`` reads the lock (``--workspace``) or the references named, and copies every artifact
and what is attached to it into a bundle folder (or, with ``--tar`` / an OUT ending in
``.tar``, one deterministic tar). ``verify`` checks a bundle offline; ``push`` loads it into a
registry. A bundle folder also works as ``--registry ./bundle`` or as a mirror entry.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .oci import Context, _common, _with_output, human_size
from .output import print_json


@contextlib.contextmanager
def _progress(total: int, what: str) -> Iterator[Callable[[str], None]]:
    """A bar counting artifacts on a terminal; nothing otherwise."""
    if not sys.stdout.isatty() or total < 2:
        yield lambda name: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[name]}"),
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task(what, total=total, name="")
        yield lambda name: bar.update(task, advance=1, name=name)


@contextlib.contextmanager
def opened(path: str) -> Iterator[Path]:
    """A bundle folder, or a bundle tar unpacked safely into a temporary folder (removed afterwards)."""
    from ..bundle.tarball import extract_tar, is_tar

    p = Path(path).expanduser()
    if not p.exists():
        raise UsageError(f"{path}: no such bundle (a folder or a .tar made by `provisioning bundle create`)")
    if p.is_dir():
        yield p
        return
    if not is_tar(p):
        from ..bundle import BundleError

        raise BundleError(f"{path} is neither a bundle folder nor a tar file")
    root = extract_tar(p)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def cmd_create(args: argparse.Namespace) -> int:
    from ..bundle.closure import file_digest, lock_digests, refs_closure, resumed_closure, workspace_closure
    from ..bundle.create import bundle_root, create_bundle
    from ..bundle.journal import Job, Journal, lock_job
    from ..workspace.lock import read_lock
    from ..workspace.stores import Stores

    out = Path(args.out).expanduser()
    tar = bool(args.tar) or out.suffix == ".tar"
    since = since_digest = None
    if args.since:
        old = read_lock(Path(args.since))
        if old is None:
            raise UsageError(f"--since {args.since}: no such lock file")
        since, since_digest = lock_digests(old), file_digest(Path(args.since))
    stores = Stores()
    try:
        if args.refs:
            ctx, refs = _named(args)
            stores = Stores(factory=lambda settings: ctx.storage(settings.registry))  # the command line's TLS flags
            # the origin is where the first reference lives (its dependencies were looked up there)
            namespace = refs[0].repository.rpartition("/")[0] or ctx.settings.namespace
            origin = {"registry": refs[0].registry, "namespace": namespace}
            registries = tuple(sorted({r.registry for r in refs}))
            job = Job(origin, refs=tuple(str(r) for r in refs), registries=registries, since=since_digest)
            journal = _journal(Journal.read(bundle_root(out, tar), job), out)
            if journal.resolved is not None:  # finish the interrupted job as it was begun
                wanted, notes = resumed_closure(journal.resolved, stores, ctx.settings), list(journal.notes)
            else:
                wanted, notes = refs_closure(refs, stores, ctx.settings)
            lock_doc = None
        else:
            origin, wanted, lock_doc, notes, _ = workspace_closure(Path(args.workspace or "."), stores)
            journal = _journal(Journal.read(bundle_root(out, tar), lock_job(origin, lock_doc, since_digest)), out)
        resumed = journal.begun
        with _progress(len(wanted), "bundle") as advance:
            report = create_bundle(
                out,
                wanted,
                origin=origin,
                lock=lock_doc,
                since=since,
                since_digest=since_digest,
                tar=tar,
                parallel=args.concurrency,
                on_artifact=advance,
                journal=journal,
                notes=notes,
            )
    finally:
        stores.close()
    notes += report.notes
    if args.output == "json":
        print_json(
            {
                "bundle": str(out),
                "artifacts": report.artifacts,
                "copied": report.copied,
                "reused": report.reused,
                "bytes_copied": report.bytes_copied,
                "left_out": report.left_out,
                "resumed": resumed,
                "notes": notes,
            }
        )
    else:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        since_text = f", {report.left_out} left out (in {args.since})" if args.since else ""
        print(
            f"bundle {out}: {report.artifacts} artifacts with signatures and referrers; {report.copied} blobs and "
            f"manifests copied ({human_size(report.bytes_copied)}), {report.reused} reused{since_text}"
        )
    return 0


def _named(args: argparse.Namespace) -> tuple[Context, list[Any]]:
    """The command line's context and the references it names, each with a version or a digest."""
    if args.workspace:
        raise UsageError("bundle create takes --workspace W or references, not both")
    ctx = Context.from_args(args)
    refs = []
    for text in args.refs:
        ref = ctx.ref(text)
        if not ref.tag and not ref.digest:
            raise UsageError(f"{text}: name a version (NAME:VERSION) or a digest")
        refs.append(ref)
    return ctx, refs


def _journal(journal: Any, out: Path) -> Any:
    """Say on the terminal what becomes of an unfinished create's journal: resumed as begun, or ignored."""
    if journal.ignored:
        print(
            f"note: ignoring {journal.path}: {journal.ignored}; this create starts over (what is in {out} already "
            "and re-hashes is still reused)",
            file=sys.stderr,
        )
    elif journal.begun and journal.resolved is not None:
        print(
            f"resuming the create begun at {journal.begun}; references as resolved then (remove {journal.path} "
            "to resolve them anew)",
            file=sys.stderr,
        )
    elif journal.begun:
        print(f"resuming the create begun at {journal.begun} (the same lock)", file=sys.stderr)
    return journal


def cmd_verify(args: argparse.Namespace) -> int:
    from ..bundle.verify import verify_bundle

    with opened(args.bundle) as root:
        report = verify_bundle(root, keys=[Path(k) for k in args.key or []])
    data = {
        "bundle": args.bundle,
        "verified": True,
        "origin": report.bundle.origin,
        "artifacts": len(report.bundle.artifacts),
        "repositories": report.repositories,
        "manifests": report.manifests,
        "blobs": report.blobs,
        "bytes": report.bytes,
        "signatures": report.signatures,
    }
    if args.output == "json":
        print_json(data)
    else:
        signed = f"; {len(report.signatures)} signatures verified" if args.key else ""
        print(
            f"verified {args.bundle}: {data['artifacts']} artifacts in {report.repositories} repositories, "
            f"{report.manifests} manifests and {report.blobs} blobs ({human_size(report.bytes)}) intact{signed}"
        )
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from ..bundle.push import push_bundle
    from ..oci.namespace import summary_line

    ctx = Context.from_args(args)
    with opened(args.bundle) as root:
        result = push_bundle(root, ctx.storage(args.registry_dst), parallel=args.concurrency)
    failed = result.failed
    if args.output == "json":
        print_json({"bundle": args.bundle, "registry": args.registry_dst, **result.totals()})
    else:
        for rc in failed:
            print(f"failed {rc.source}: {rc.error}", file=sys.stderr)
        print(f"pushed {args.bundle} -> {args.registry_dst}: {summary_line(result, human_size)}")
    if failed:
        print(
            f"{len(failed)} repositories were not loaded completely; run the same command again to finish "
            "(what the registry has already is skipped)",
            file=sys.stderr,
        )
        return 1
    return 0


def register(subparsers: Any) -> None:
    bundle = subparsers.add_parser(
        "bundle",
        help="bundles for air-gapped sites: create, verify, push",
        description=(
            "A bundle is an embedded store tree (one OCI image layout per repository) plus bundle.json: the "
            "origin, the lock it was made from and every artifact with its digest. Install from it with "
            "--registry ./bundle or a mirror entry, or load a registry with `bundle push`."
        ),
    )
    bundle.set_defaults(func=lambda args: (bundle.print_help(sys.stderr), 2)[1])
    sub = bundle.add_subparsers(dest="bundle_command", metavar="COMMAND")
    common = [_common()]

    p = sub.add_parser("create", parents=common, help="copy the workspace's locked closure into a bundle")
    p.add_argument("out", metavar="OUT", help="the bundle folder (or a .tar file)")
    p.add_argument("refs", metavar="REF", nargs="*", help="artifacts to bundle instead of a workspace's lock")
    p.add_argument("--tar", action="store_true", help="write one deterministic tar (also when OUT ends in .tar)")
    p.add_argument("--since", metavar="OLD.lock", help="leave out what this older lock (an older bundle) pins")
    p.add_argument("--concurrency", type=int, default=8, help="artifacts copied in parallel (default 8)")
    _with_output(p)
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("verify", help="check a bundle offline: every blob, manifest and (with --key) signature")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--key", metavar="PUB", action="append", help="public key the extensions must be signed with")
    _with_output(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("push", parents=common, help="load a registry from a bundle (skips what is there)")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("registry_dst", metavar="REGISTRY", help="HOST[:PORT] (or a store folder)")
    p.add_argument("--concurrency", type=int, default=8, help="repositories loaded in parallel (default 8)")
    _with_output(p)
    p.set_defaults(func=cmd_push)
