"""``provisioning workspace migrate-to-oci WORKSPACE``.

Rewrites a workspace's local module entries as OCI references, after checking that each
extension is published (same name, type and version) in the workspace's registry. If any is
missing, nothing is changed and the message lists what to publish first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UsageError
from .output import print_json, table


def cmd_migrate(args: argparse.Namespace) -> int:
    from .. import workspace as ws

    plan = ws.migrate_to_oci(
        Path(args.workspace), registry=args.registry, namespace=args.namespace, dry_run=args.dry_run
    )
    if args.output == "json":
        print_json(plan)
        return 0
    table(
        None,
        ("extension", "type", "version", "now from"),
        ((p["name"], p["type"], p["version"], p["reference"]) for p in plan),
    )
    if args.dry_run:
        print("dry run: the config was not changed")
    else:
        print("config updated; run `provisioning dep resolve` to lock and install from the registry")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    wsp = subparsers.add_parser("workspace", help="workspace maintenance")

    def usage(args: argparse.Namespace) -> int:
        wsp.print_help(sys.stderr)
        raise UsageError("workspace needs a command: migrate-to-oci")

    wsp.set_defaults(func=usage)
    sub = wsp.add_subparsers(dest="workspace_command", metavar="COMMAND")
    p = sub.add_parser(
        "migrate-to-oci",
        help="rewrite local module entries as OCI references once each is published",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("workspace", metavar="WORKSPACE", help="the workspace folder")
    p.add_argument(
        "--registry", metavar="HOST[:PORT]|PATH", help="registry to check and reference (default: the config's)"
    )
    p.add_argument("--namespace", metavar="NS")
    p.add_argument("--dry-run", action="store_true", help="show the new entries without changing the config")
    p.add_argument("--output", "-o", choices=("table", "json"), default="table", help="table (default) or json")
    p.set_defaults(func=cmd_migrate)
