"""``provisioning changelog TAG``: the CHANGELOG of an extension release, from git history."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..changelog import changelog
from ..errors import ProvisioningError
from ..extension import load_extension


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("changelog", help="write the changelog of an extension release tag from git history")
    p.add_argument("tag", help="release tag, e.g. taskservs/kubernetes/v1.28.0")
    p.add_argument("--extensions", default=os.environ.get("PROVISIONING_EXTENSIONS", "extensions"))
    p.add_argument("--output", "-o", help="file to write (default: standard output)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..tasks.release import parse_release_tag  # here: it brings in doit, which no other command needs

    kind, key, version = parse_release_tag(args.tag)
    if kind != "extension" or key is None:
        raise ProvisioningError(f"{args.tag!r} is a core tag; changelogs are per extension ({{type}}/{{name}}/v…)")
    ext_dir = Path(args.extensions) / key
    ext = load_extension(ext_dir)
    if ext.version != version:
        raise ProvisioningError(f"{args.tag!r} says version {version} but {ext_dir}/manifest.yaml says {ext.version}")
    text = changelog(ext_dir, key, version)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
