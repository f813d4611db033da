"""``provisioning module load TYPE WORKSPACE NAME --source local|oci``.

--source local points a workspace's config at a local extension folder (it overrides the
registry, for development); --source oci adds the published extension (a full reference with
--version V, else its name: the newest compatible version). Either way the workspace is then
resolved and installed; if that fails the config is left as it was.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UsageError
from .dep import print_outcome, warn


def cmd_load(args: argparse.Namespace) -> int:
    from .. import workspace as ws

    if args.source == "oci":
        if args.path:
            raise UsageError("--path is for --source local; --source oci takes --version V")
        outcome = ws.load_oci_module(
            Path(args.workspace), args.type, args.name, version=args.version, install_=not args.no_install
        )
        warn(outcome.warnings)
        locked = outcome.lock.extensions[args.name]
        print(f"{args.name}: now loaded from {locked.reference} (source oci)")
        print_outcome(outcome, args.output)
        return 0
    if args.version:
        raise UsageError("--version is for --source oci; a local folder has the version its manifest says")
    outcome = ws.load_local_module(
        Path(args.workspace), args.type, args.name, path=args.path, install_=not args.no_install
    )
    warn(outcome.warnings)
    print(f"{args.name}: now loaded from {outcome.lock.extensions[args.name].path} (source local)")
    print_outcome(outcome, args.output)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    module = subparsers.add_parser("module", help="load extension modules into a workspace")

    def usage(args: argparse.Namespace) -> int:
        module.print_help(sys.stderr)
        raise UsageError("module needs a command: load")

    module.set_defaults(func=usage)
    sub = module.add_subparsers(dest="module_command", metavar="COMMAND")
    p = sub.add_parser(
        "load",
        help="use a local extension folder in a workspace instead of the registry (for development)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    from ..extension import TYPE_FOLDERS, TYPES

    p.add_argument("type", metavar="TYPE", choices=(*TYPES, *TYPE_FOLDERS))
    p.add_argument("workspace", metavar="WORKSPACE", help="the workspace folder")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--source", choices=("local", "oci"), default="local", help="where the module comes from")
    p.add_argument(
        "--path",
        metavar="DIR",
        help="the extension folder (default: ./extensions/TYPEs/NAME, then $PROVISIONING_EXTENSIONS/TYPEs/NAME)",
    )
    p.add_argument("--version", metavar="V", help="with --source oci: that version (default: the newest compatible)")
    p.add_argument("--no-install", action="store_true", help="update the config and lock only")
    p.add_argument("--output", "-o", choices=("table", "json"), default="table", help="table (default) or json")
    p.set_defaults(func=cmd_load)
