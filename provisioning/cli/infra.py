"""``provisioning taskserv|cluster|provider create NAME --infra ENV [--check]``.

With --check: the infra's values (infra/ENV/settings.yaml) are checked against the extension's
KCL schema, its templates are rendered into infra/ENV/.check/NAME/, and its scripts/install.nu
runs with --dry-run; the plan (the steps it would run) is printed. Nothing on the host changes.
Without --check the install runs on this host, for an infra whose provider is local only.
The extension is the one installed in the workspace (dep resolve / module load), or with
--source local a local folder (--path, ./extensions/TYPEs/NAME, $PROVISIONING_EXTENSIONS).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import UsageError
from .output import print_json, table


def cmd_create(args: argparse.Namespace) -> int:
    from ..workspace.config import display_path
    from ..workspace.plan import create

    plan = create(
        args.ext_type,
        args.name,
        args.infra,
        workspace=args.workspace,
        check=args.check,
        source=args.source,
        path=args.path,
    )
    if args.output == "json":
        print_json(plan.to_dict())
        return 0
    print(
        f"{plan.type} {plan.name} {plan.version} on infra {plan.infra} (provider {plan.provider}), "
        f"workspace {display_path(plan.workspace)}"
    )
    print(f"values: {plan.type}s.{plan.name} checked against {plan.schema} ({display_path(plan.extension)}/kcl)")
    if plan.rendered:
        print("rendered: " + ", ".join(plan.rendered))
    if plan.steps:
        what = "plan (scripts/install.nu --dry-run)" if plan.check else "ran (scripts/install.nu)"
        table(what, ("#", "step"), ((i, s) for i, s in enumerate(plan.steps, 1)))
    for note in plan.notes:
        print(note)
    if plan.check:
        print("check only: nothing was changed on this host")
    else:
        print(f"installed {plan.type} {plan.name} {plan.version} on this host")
    return 0


def _register_type(subparsers: argparse._SubParsersAction, type_: str, what: str) -> None:
    group = subparsers.add_parser(type_, help=f"check and install {what} on an infra's servers")

    def usage(args: argparse.Namespace) -> Any:
        group.print_help(sys.stderr)
        raise UsageError(f"{type_} needs a command: create")

    group.set_defaults(func=usage)
    sub = group.add_subparsers(dest=f"{type_}_command", metavar="COMMAND")
    p = sub.add_parser(
        "create",
        help=f"check the infra's values for a {type_}, render its templates, show or run its install",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("name", metavar="NAME", help=f"the {type_} (an extension name)")
    p.add_argument("--infra", required=True, metavar="ENV", help="the infra: WORKSPACE/infra/ENV/settings.yaml")
    p.add_argument("--check", action="store_true", help="check and show the plan; change nothing on the host")
    p.add_argument(
        "--workspace", "-w", metavar="PATH", help="the workspace (default: $PROVISIONING_WORKSPACE, the current one)"
    )
    p.add_argument(
        "--source",
        choices=("installed", "local", "oci"),
        help="installed (default, else a local folder), local (a local folder) or oci (installed only)",
    )
    p.add_argument("--path", metavar="DIR", help="the local extension folder (implies --source local)")
    p.add_argument("--output", "-o", choices=("table", "json"), default="table", help="table (default) or json")
    p.set_defaults(func=cmd_create, ext_type=type_)


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_type(subparsers, "taskserv", "taskservs")
    _register_type(subparsers, "cluster", "clusters")
    _register_type(subparsers, "provider", "providers")
