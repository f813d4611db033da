"""``provisioning dep …``: resolve, check-updates, update, validate, tree.

Each acts on the workspace in the current folder (its ``config/provisioning.yaml``) or the
one named by ``--workspace PATH``. The registry comes from ``PROVISIONING_REGISTRY``/
``PROVISIONING_NAMESPACE``, then the workspace config, then ``localhost:5000`` /
``provisioning-extensions``; ``--registry``/``--namespace`` override all of them, and a
filesystem path names the embedded store. Listings print tables, or JSON with ``--output json``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .output import print_json, table


def warn(messages: Iterable[str]) -> None:
    for m in messages:
        print(f"warning: {m}", file=sys.stderr)


def workspace_path(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "workspace", None) or ".")


def registry_kw(args: argparse.Namespace) -> dict[str, Any]:
    return {"registry": getattr(args, "registry", None), "namespace": getattr(args, "namespace", None)}


def short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def print_outcome(outcome: Any, output: str) -> None:
    """The lock as a table (or JSON), plus what the run changed."""
    lock = outcome.lock
    report = outcome.report
    if output == "json":
        data = lock.to_json(outcome.config.root)
        data["result"] = {
            "reused_lock": outcome.reused_lock,
            "lock_written": outcome.lock_written,
            "installed": report.installed if report else [],
            "unchanged": report.unchanged if report else [],
            "removed": report.removed if report else [],
            "refetched": report.refetched if report else [],
        }
        print_json(data)
        return
    from .. import workspace as ws

    if not lock.order:
        print(
            f"{ws.display_path(outcome.config.path)} lists no extensions yet: add references under "
            "dependencies.extensions.modules (providers, taskservs, clusters) and run `provisioning dep resolve` again"
        )
    installed = set(report.installed) if report else set()
    rows = []
    for name in lock.order:
        e = lock.extensions[name]
        state = "installed" if name in installed else ("up to date" if report else "locked")
        rows.append((name, e.type, e.version, short(e.digest), "config" if e.requested else "dependency", state))
    if rows:
        table(None, ("extension", "type", "version", "digest", "wanted by", "state"), rows)
    lock_name = ws.display_path(outcome.config.lock_path)
    if outcome.reused_lock:
        note = f"{lock_name} is up to date"
    elif outcome.lock_written:
        note = f"wrote {lock_name}"
    else:
        note = f"{lock_name} unchanged"
    if report and report.removed:
        note += f"; removed {', '.join(report.removed)}"
    if report and report.refetched:
        note += f"; fetched again (corrupt in the cache): {', '.join(report.refetched)}"
    print(note)


def cmd_resolve(args: argparse.Namespace) -> int:
    from .. import workspace as ws

    outcome = ws.resolve_workspace(
        workspace_path(args), locked=args.locked, install_=not args.no_install, **registry_kw(args)
    )
    warn(outcome.warnings)
    print_outcome(outcome, args.output)
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    import difflib

    from .. import workspace as ws
    from ..errors import NotFound

    config = ws.load_config(workspace_path(args), **registry_kw(args))
    lock = ws.read_lock(config.lock_path)
    known = {m.name for m in config.modules} | set(lock.extensions if lock else ())
    unknown = [n for n in args.names if n not in known]
    if unknown:
        hints = []
        for n in unknown:
            close = difflib.get_close_matches(n, sorted(known), n=3)
            hints.append(f"{n}" + (f" (did you mean {' or '.join(close)}?)" if close else ""))
        raise NotFound("not part of this workspace: " + ", ".join(hints) + "; add it to the config's modules first")
    before = {n: e.version for n, e in lock.extensions.items()} if lock else {}
    outcome = ws.resolve_workspace(
        workspace_path(args), update=set(args.names), install_=not args.no_install, **registry_kw(args)
    )
    warn(outcome.warnings)
    if args.output == "json":
        print_outcome(outcome, "json")
        return 0
    for n in args.names:
        old, new = before.get(n), outcome.lock.extensions[n].version if n in outcome.lock.extensions else None
        print(f"{n}: {old or '-'} -> {new or '-'}" if old != new else f"{n}: {new} is already the newest allowed")
    print_outcome(outcome, "table")
    return 0


def cmd_check_updates(args: argparse.Namespace) -> int:
    from .. import workspace as ws

    rows = ws.check_updates(workspace_path(args), **registry_kw(args))
    if args.output == "json":
        print_json(rows)
        return 0
    table(
        None,
        ("extension", "type", "current", "wanted", "latest", "status"),
        (
            (
                r["name"],
                r["type"],
                r["current"],
                r["wanted"],
                r["latest"],
                "local" if r["source"] == "local" else ("update available" if r["update"] else ""),
            )
            for r in rows
        ),
    )
    outdated = [r["name"] for r in rows if r.get("update")]
    print(
        f"{len(outdated)} of {len(rows)} can be updated: `provisioning dep update NAME` (wanted), or raise the "
        "constraint in the config (latest)"
        if outdated
        else "everything is up to date"
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .. import workspace as ws

    result = ws.validate_workspace(workspace_path(args), **registry_kw(args))
    warn(result["warnings"])
    if args.output == "json":
        print_json(result)
        return 0
    n = len(result["extensions"])
    noun = "1 extension resolves" if n == 1 else f"{n} extensions resolve"
    print(f"ok: {noun} with no conflicts or cycles")
    print("install order: " + " → ".join(f"{x} {result['extensions'][x]}" for x in result["order"]))
    print(f"lock: {result['lock']}")
    return 0


def _render_tree(nodes: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []

    def walk(node: dict[str, Any], prefix: str, last: bool, top: bool) -> None:
        label = f"{node['name']} {node['version']}"
        if node.get("constraint"):
            label += f" ({node['constraint']})"
        if node.get("cycle"):
            label += " [cycle]"
        if top:
            lines.append(label)
            child_prefix = ""
        else:
            lines.append(prefix + ("└── " if last else "├── ") + label)
            child_prefix = prefix + ("    " if last else "│   ")
        deps = node.get("dependencies") or []
        for i, d in enumerate(deps):
            walk(d, child_prefix, i == len(deps) - 1, False)

    for n in nodes:
        walk(n, "", True, True)
    return lines


def cmd_tree(args: argparse.Namespace) -> int:
    from .. import workspace as ws

    nodes = ws.dependency_tree(workspace_path(args), args.name, **registry_kw(args))
    if args.output == "json":
        print_json(nodes)
        return 0
    print("\n".join(_render_tree(nodes)))
    return 0


def common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("workspace")
    g.add_argument("--workspace", "-w", metavar="PATH", help="the workspace folder (default: the current folder)")
    g.add_argument(
        "--registry", metavar="HOST[:PORT]|PATH", help="override the config's registry (a path: embedded store)"
    )
    g.add_argument("--namespace", metavar="NS", help="override the config's extensions namespace")
    common.add_argument("--output", "-o", choices=("table", "json"), default="table", help="table (default) or json")
    return common


def register(subparsers: argparse._SubParsersAction) -> None:
    dep = subparsers.add_parser(
        "dep",
        help="resolve, lock and install a workspace's extensions",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )

    def usage(args: argparse.Namespace) -> int:
        dep.print_help(sys.stderr)
        raise UsageError("dep needs a command: resolve, check-updates, update, validate or tree")

    dep.set_defaults(func=usage)
    sub = dep.add_subparsers(dest="dep_command", metavar="COMMAND")
    common = [common_parser()]

    p = sub.add_parser(
        "resolve",
        parents=common,
        help="resolve dependencies, write config/provisioning.lock and install (no-op when up to date)",
    )
    p.add_argument("--locked", action="store_true", help="use the lock as is; fail when it disagrees with the config")
    p.add_argument("--no-install", action="store_true", help="write the lock only")
    p.set_defaults(func=cmd_resolve)

    p = sub.add_parser("check-updates", parents=common, help="current, wanted and latest version of each extension")
    p.set_defaults(func=cmd_check_updates)

    p = sub.add_parser("update", parents=common, help="move NAME to the newest version the constraints allow")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--no-install", action="store_true", help="write the lock only")
    p.set_defaults(func=cmd_update)

    p = sub.add_parser("validate", parents=common, help="check the dependency graph (no install, nothing written)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("tree", parents=common, help="show the dependency tree of NAME (default: of every module)")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.set_defaults(func=cmd_tree)
