"""``provisioning test extension NAME``: run an extension's KCL and Nushell tests.

NAME is an extension name, looked up under ``--extensions DIR`` (default
``$PROVISIONING_EXTENSIONS``, else ``./extensions``) in providers/, taskservs/ and clusters/,
or a path to the extension folder. Exits 1 when a test fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UsageError, ValidationError
from ..extension import TYPE_FOLDERS


def find_extension(name_or_path: str, root: Path) -> Path:
    """The extension folder NAME names: a path to it, or its name under ``root/<type>s/``."""
    as_path = Path(name_or_path)
    if "/" in name_or_path or name_or_path in (".", "..") or (as_path / "manifest.yaml").is_file():
        if not as_path.is_dir():
            raise ValidationError(f"{name_or_path}: no such extension folder")
        return as_path
    found = [root / t / name_or_path for t in TYPE_FOLDERS if (root / t / name_or_path).is_dir()]
    if not found:
        raise ValidationError(
            f"no extension {name_or_path!r} under {root} (looked in {', '.join(TYPE_FOLDERS)}); "
            "pass --extensions DIR or the extension's path"
        )
    if len(found) > 1:
        raise ValidationError(
            f"{name_or_path!r} is ambiguous: {', '.join(str(f) for f in found)}; pass the extension's path"
        )
    return found[0]


def cmd_extension(args: argparse.Namespace) -> int:
    from ..generate import default_extensions_dir
    from ..testing import run_extension_tests

    root = Path(args.extensions) if args.extensions else default_extensions_dir()
    ext_dir = find_extension(args.name, root)
    report = run_extension_tests(ext_dir)
    if args.output == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return 0 if report.ok else 1
    print(f"{ext_dir}")
    if not report.cases:
        print("  no tests (add tests/test_*.nu or tests/*_test.k)")
        return 0
    width = max(len(c.name) for c in report.cases)
    for case in report.cases:
        status = "PASS" if case.passed else "FAIL"
        print(f"  {status}  {case.kind:<3}  {case.name:<{width}}  {case.duration_ms:6.0f} ms")
        if not case.passed and case.output:
            for line in case.output.splitlines():
                print(f"        {line}")
    print(f"{len(report.passed)} passed, {len(report.failed)} failed")
    return 0 if report.ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    test = subparsers.add_parser("test", help="run extension tests")

    def usage(args: argparse.Namespace) -> int:
        test.print_help(sys.stderr)
        raise UsageError("test needs a command: extension")

    test.set_defaults(func=usage)
    sub = test.add_subparsers(dest="test_command", metavar="COMMAND")
    p = sub.add_parser(
        "extension",
        help="run an extension's tests (KCL with the KCL test API, Nushell with nu)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("name", metavar="NAME", help="extension name, or the path to its folder")
    p.add_argument(
        "--extensions", metavar="DIR", help="extensions folder (default: $PROVISIONING_EXTENSIONS or ./extensions)"
    )
    p.add_argument("--output", "-o", choices=("table", "json"), default="table", help="table (default) or json")
    p.set_defaults(func=cmd_extension)
