"""The ``provisioning`` command line: argparse subcommands mapped to functions.

Each module of this package adds its subcommands with ``register(subparsers)`` and sets
``func`` (args -> exit code). Expected errors (``ProvisioningError``) print one paragraph
and exit 1; usage errors exit 2; only bugs show a traceback (``--debug`` always does).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import ProvisioningError

# Modules that contribute subcommands, in help order.
COMMAND_MODULES = (
    "oci",
    "signing",  # keygen, sign, verify: added to `oci` (after it)
    "catalog",
    "dep",
    "bundle",
    "generate",
    "module",
    "workspace",
    "test",
    "registry_server",
    "changelog",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provisioning",
        description="Validate, package, publish, resolve and install provisioning extensions as OCI artifacts.",
    )
    parser.add_argument("--version", action="version", version=f"provisioning {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for every error")
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests and decisions (never secrets)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a command group not built yet
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except ProvisioningError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    sys.exit(main())
