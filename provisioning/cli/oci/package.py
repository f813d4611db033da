"""``oci package``: an extension folder as a ``<name>-<version>.tar.gz`` package, or validated."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ...errors import ProvisioningError, UsageError
from ..output import print_json


def cmd_package(args: argparse.Namespace) -> int:
    from ...extension import validate_extension

    words = list(args.words)
    if words and words[0] == "validate" and len(words) == 2:
        if args.output == "json":
            return _validate_json(Path(words[1]))
        ext = validate_extension(Path(words[1]))
        print(f"valid: {ext.type} {ext.name} {ext.version} ({words[1]})")
        return 0
    if len(words) != 1:
        raise UsageError("usage: provisioning oci package PATH [--output DIR] | provisioning oci package validate PATH")
    from ...package import build_artifact, package_paths, write_artifact

    if args.output in ("json", "table"):
        raise UsageError("oci package --output takes a folder (the JSON form is for `oci package validate`)")
    ext = validate_extension(Path(words[0]))
    artifact = build_artifact(ext)
    out_dir = Path(args.output or ".")
    write_artifact(artifact, out_dir)
    for path in package_paths(out_dir, ext.name, ext.version):
        print(f"wrote {path}")
    print(f"manifest digest: {artifact.manifest_desc.digest}")
    return 0


def _validate_json(path: Path) -> int:
    """``oci package validate --output json``: JSON whether valid or not; exit 1 when not."""
    from ...extension import discover, load_extension, validate_extensions

    answer: dict[str, Any] = {"valid": False, "path": str(path)}
    try:
        ext = load_extension(path)
        answer.update(name=ext.name, type=ext.type, version=ext.version)
        problems = validate_extensions([ext], [p.name for p in discover(ext.path.parent.parent)])[ext.path]
    except ProvisioningError as exc:
        problems = [str(exc)]
    answer["valid"], answer["problems"] = not problems, problems
    print_json(answer)
    return 0 if not problems else 1


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands of this module to ``provisioning oci``."""
    p = sub.add_parser(
        "package",
        parents=common,
        help="package an extension as <name>-<version>.tar.gz (or: package validate PATH)",
        usage=(
            "provisioning oci package PATH [--output DIR]\n"
            "       provisioning oci package validate PATH [--output json]"
        ),
    )
    p.add_argument("words", metavar="PATH", nargs="+", help="the extension folder, or `validate PATH`")
    p.add_argument("--output", "-o", metavar="DIR", help="folder for the package (default: the current folder)")
    p.set_defaults(func=cmd_package)
