"""The ``provisioning`` command line: argparse subcommands mapped to functions.

Each module of this package adds its subcommands with ``register(subparsers)`` and sets
``func`` (args -> exit code). Expected errors (``ProvisioningError``) print one paragraph
(``advice.explain``: the error and how to fix it) and exit 1; usage errors exit 2; only bugs
show a traceback (``--debug`` always does).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Sequence

from .. import __version__
from ..advice import explain
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
    "infra",
    "test",
    "registry_server",
    "changelog",
)


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser`` (command groups and their commands)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found.append(sub)
                found += _leaf_parsers(sub)
    return found


def _add_global_flags(parser: argparse.ArgumentParser) -> None:
    """``--debug`` and ``-v`` after the subcommand too (``provisioning dep resolve -v``).

    The copies default to SUPPRESS, so a flag given before the subcommand is not reset by it.
    """
    for sub in _leaf_parsers(parser):
        taken = sub._option_string_actions  # a command's own -v (if one ever has it) wins
        g = sub.add_argument_group("global")
        if "--debug" not in taken:
            g.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        flags = [f for f in ("-v", "--verbose") if f not in taken]
        if flags:
            g.add_argument(*flags, dest="verbose", action="store_true", default=argparse.SUPPRESS, help="log requests")


_RST_LITERAL = re.compile(r"``([^`]+)``")


def _plain_help(parser: argparse.ArgumentParser) -> None:
    """Help from module docstrings reads as plain text: ``literal`` marks (reStructuredText) dropped."""
    for p in [parser, *_leaf_parsers(parser)]:
        for attr in ("description", "epilog", "usage"):
            text = getattr(p, attr, None)
            if text:
                setattr(p, attr, _RST_LITERAL.sub(r"\1", text))
        for action in p._actions:
            if action.help and action.help is not argparse.SUPPRESS:
                action.help = _RST_LITERAL.sub(r"\1", action.help)
            for choice in getattr(action, "_choices_actions", ()):
                if choice.help:
                    choice.help = _RST_LITERAL.sub(r"\1", choice.help)


def _move_global_output(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``provisioning --output json dep tree``: an ``--output`` before the command goes to the command."""
    commands = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands = set(action.choices)
    for i, word in enumerate(argv):
        if word in commands or word == "--":
            head, tail = argv[:i], argv[i:]
            moved: list[str] = []
            kept: list[str] = []
            j = 0
            while j < len(head):
                w = head[j]
                if w in ("--output", "-o") and j + 1 < len(head):
                    moved += head[j : j + 2]
                    j += 2
                    continue
                if w.startswith("--output="):
                    moved.append(w)
                else:
                    kept.append(w)
                j += 1
            return kept + tail + moved if moved else argv
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provisioning",
        description="Validate, package, publish, resolve and install provisioning extensions as OCI artifacts.",
        epilog="--debug, -v and --output work before or after the command.",
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
    _add_global_flags(parser)
    _plain_help(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(_move_global_output(argv, parser))
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
    except (ProvisioningError, OSError) as exc:
        explained = explain(exc)  # the one wording of errors and their advice (doit tasks use it too)
        if explained is None or args.debug:
            raise
        from .output import terminal_text

        text, code = explained
        print(f"error: {terminal_text(text)}", file=sys.stderr)  # messages quote registries and files
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run() -> None:
    sys.exit(main())
