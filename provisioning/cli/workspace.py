"""``provisioning workspace init PATH`` and ``provisioning workspace migrate-to-oci WORKSPACE``.

``init`` writes a new workspace: config/provisioning.yaml with every section of the layout
(examples commented out), infra/test-env/settings.yaml and extensions/, in a new or empty folder.

``migrate-to-oci`` rewrites a workspace's local module entries as OCI references, after checking
that each extension is published (same name, type and version) in the workspace's registry. If
any is missing, nothing is changed and the message lists what to publish first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UsageError
from .output import print_json, table

_PARTS = (__doc__ or "").split("\n\n")


def cmd_migrate(args: argparse.Namespace) -> int:
    from .. import workspace as ws

    if args.workspace and args.workspace_opt and args.workspace != args.workspace_opt:
        raise UsageError(f"two workspaces given ({args.workspace} and --workspace {args.workspace_opt}); name one")
    plan = ws.migrate_to_oci(
        Path(args.workspace or args.workspace_opt or "."),
        registry=args.registry,
        namespace=args.namespace,
        dry_run=args.dry_run,
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


def cmd_init(args: argparse.Namespace) -> int:
    from ..workspace.init import init_workspace

    files = init_workspace(Path(args.path), registry=args.registry, namespace=args.namespace, infra=args.infra)
    if args.output == "json":
        print_json({"workspace": str(Path(args.path)), "files": [f.as_posix() for f in files]})
        return 0
    print(f"created workspace {args.path}")
    for f in files:
        print(f"  {f.as_posix()}")
    print(
        "next: list extensions under dependencies.extensions.modules in config/provisioning.yaml (or "
        f"`provisioning module load TYPE {args.path} NAME --source local`), then `provisioning dep resolve`"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    wsp = subparsers.add_parser("workspace", help="create and maintain workspaces")

    def usage(args: argparse.Namespace) -> int:
        wsp.print_help(sys.stderr)
        raise UsageError("workspace needs a command: init or migrate-to-oci")

    wsp.set_defaults(func=usage)
    sub = wsp.add_subparsers(dest="workspace_command", metavar="COMMAND")
    p = sub.add_parser(
        "init",
        help="create a workspace: config/provisioning.yaml (every section, commented), infra/, extensions/",
        description=_PARTS[1] if len(_PARTS) > 1 else None,
    )
    p.add_argument("path", metavar="PATH", help="a new or empty folder")
    p.add_argument(
        "--registry",
        metavar="HOST[:PORT]|PATH",
        help="the registry the config names (default: $PROVISIONING_REGISTRY, else localhost:5000); "
        "a path names an embedded store",
    )
    p.add_argument("--namespace", metavar="NS", help="extensions namespace (default: provisioning-extensions)")
    p.add_argument("--infra", metavar="ENV", default="test-env", help="name of the example infra (default: test-env)")
    p.add_argument("--output", "-o", choices=("table", "json"), default="table", help="table (default) or json")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser(
        "migrate-to-oci",
        help="rewrite local module entries as OCI references once each is published",
        description=_PARTS[2] if len(_PARTS) > 2 else None,
    )
    p.add_argument("workspace", metavar="WORKSPACE", nargs="?", help="the workspace folder (default: .)")
    p.add_argument("--workspace", "-w", dest="workspace_opt", metavar="PATH", help="the workspace folder, as a flag")
    p.add_argument(
        "--registry", metavar="HOST[:PORT]|PATH", help="registry to check and reference (default: the config's)"
    )
    p.add_argument("--namespace", metavar="NS")
    p.add_argument("--dry-run", action="store_true", help="show the new entries without changing the config")
    p.add_argument("--output", "-o", choices=("table", "json"), default="table", help="table (default) or json")
    p.set_defaults(func=cmd_migrate)
