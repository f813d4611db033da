"""``oci delete``: remove a published version, after a confirmation."""

from __future__ import annotations

import argparse
import sys

from ...errors import ProvisioningError, RegistryError
from ...oci.store import Deleter
from ..output import print_json
from .context import Context, _with_output, resolve_manifest


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


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands of this module to ``provisioning oci``."""
    p = sub.add_parser("delete", parents=common, help="delete a published version (asks first; --yes in scripts)")
    p.add_argument("ref", metavar="REF", help="NAME:VERSION or a full reference")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask (required when not on a terminal)")
    _with_output(p)
    p.set_defaults(func=cmd_delete)
