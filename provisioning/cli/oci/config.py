"""``oci config``: the effective registry settings, as the other commands resolve them."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from ..output import print_json, table
from .context import Context


def cmd_config(args: argparse.Namespace) -> int:
    from ... import paths
    from ...settings import find_workspace, load_document, platform_namespace

    ctx = Context.from_args(args)
    s = ctx.settings
    if ctx.plain_http:
        s = replace(s, tls_enabled=False)
    workspace = find_workspace(getattr(args, "workspace", None))
    data = {
        "tool": "provisioning",
        "registry": s.registry,
        "embedded": s.is_path,
        "namespace": {
            "extensions": s.namespace,
            "platform": platform_namespace(load_document(workspace) if workspace else {}),
        },
        "cache_dir": str(paths.cache_dir()),
        "tls_enabled": None if s.is_path else s.endpoint().tls_enabled,
        "insecure": s.insecure,
        "ca_file": s.ca_file,
        "auth_token_path": s.auth_token_path,
        "workspace": str(workspace) if workspace else None,
    }
    if args.output == "table":
        table(
            None, ("setting", "value"), ((k, json.dumps(v) if not isinstance(v, str) else v) for k, v in data.items())
        )
    else:
        print_json(data)
    return 0


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands of this module to ``provisioning oci``."""
    p = sub.add_parser("config", parents=common, help="the effective OCI configuration (JSON)")
    p.add_argument("--output", "-o", choices=("json", "table"), default="json")
    p.set_defaults(func=cmd_config)
