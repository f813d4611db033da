"""``provisioning generate extension TYPE NAME``: a new extension from the templates.

Writes ``DIR/<TYPE>s/NAME/`` (DIR: ``--path``, else ``$PROVISIONING_EXTENSIONS``, else
``./extensions``) with manifest.yaml, kcl/, scripts/, templates/, docs/ and tests/, ready to
validate, test and publish. An existing folder is never overwritten.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UsageError


def cmd_extension(args: argparse.Namespace) -> int:
    from ..extension import TYPE_FOLDERS
    from ..generate import default_extensions_dir, generate_extension, parse_dependencies

    ext_type = TYPE_FOLDERS.get(args.type, args.type)  # "taskservs" as well as "taskserv"
    root = Path(args.path) if args.path else default_extensions_dir()
    fields = {
        "version": args.version,
        "description": args.description,
        "author": args.author,
        "license": args.license,
        "homepage": args.homepage,
        "repository": args.repository,
        "dependencies": parse_dependencies(args.dependency or []),
        "tags": args.tag,
        "platforms": args.platform,
        "min_provisioning_version": args.min_provisioning_version,
    }
    target = generate_extension(ext_type, args.name, root, **fields)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    if args.output == "json":
        sys.stdout.write(json.dumps({"path": str(target), "files": files}, indent=2) + "\n")
        return 0
    print(f"created {ext_type} {args.name} in {target}")
    for f in files:
        print(f"  {f}")
    print(f"next: edit kcl/ and scripts/, then `provisioning test extension {target}`")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    gen = subparsers.add_parser("generate", help="create new extensions from templates")

    def usage(args: argparse.Namespace) -> int:
        gen.print_help(sys.stderr)
        raise UsageError("generate needs a command: extension")

    gen.set_defaults(func=usage)
    sub = gen.add_subparsers(dest="generate_command", metavar="COMMAND")
    p = sub.add_parser(
        "extension",
        help="create extensions/TYPEs/NAME with manifest, KCL, scripts, templates, docs and tests",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("type", metavar="TYPE", help="provider, taskserv or cluster")
    p.add_argument("name", metavar="NAME", help="lowercase letters, digits and dashes, e.g. nginx-ingress")
    p.add_argument(
        "--path", metavar="DIR", help="extensions folder (default: $PROVISIONING_EXTENSIONS or ./extensions)"
    )
    p.add_argument(
        "--version", metavar="V", help="semver version (default: 1.0.0, what the seed walkthrough publishes)"
    )
    p.add_argument("--description", metavar="TEXT", help="one line saying what it provides")
    p.add_argument("--author", metavar="NAME", help="default: Provisioning Team")
    p.add_argument("--license", metavar="SPDX", help="default: MIT")
    p.add_argument("--homepage", metavar="URL")
    p.add_argument("--repository", metavar="URL")
    p.add_argument(
        "--dependency",
        "-d",
        action="append",
        metavar="NAME=CONSTRAINT",
        help="a dependency, e.g. -d 'containerd=>=1.7.0' (repeatable; NAME alone means any version)",
    )
    p.add_argument("--tag", action="append", metavar="TAG", help="a search tag (repeatable)")
    p.add_argument(
        "--platform",
        action="append",
        metavar="OS/ARCH[/VARIANT]",
        help="an OCI platform (default: linux/amd64 and linux/arm64)",
    )
    p.add_argument("--min-provisioning-version", metavar="V", help="oldest core it works with (default: 3.0.0)")
    p.add_argument("--output", "-o", choices=("table", "json"), default="table", help="table (default) or json")
    p.set_defaults(func=cmd_extension)
