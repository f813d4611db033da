"""``provisioning catalog …``: show the namespace's catalog, or rebuild it from what is published.

``rebuild`` reads every extension version the registry holds (names from ``_catalog`` when the
registry answers it, else from the current catalog, ``--name`` and ``--extensions DIR``) and
writes a catalog with the next generation, unless the content is already the same. ``--check``
only compares and exits 1 when the published catalog disagrees with the registry. ``--key`` signs
the catalog (cosign's format, as ``doit publish sign=KEY`` does), also one that was already current,
so a workspace whose ``verify.keys`` name the key trusts it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..catalog import Catalog, CatalogError, catalog_repository, read_catalog, rebuild_catalog
from ..catalog.refresh import tagged_generation, write_over
from ..catalog.registry import Signer, extension_names
from ..errors import ProvisioningError
from .oci import Context, _common, _with_output
from .output import print_json, table


def _names_from_tree(folder: str) -> list[str]:
    from ..extension import discover

    root = Path(folder)
    if not root.is_dir():
        raise ProvisioningError(f"--extensions {folder}: not a folder (give the tree with providers/, taskservs/ ...)")
    return [p.name for p in discover(root)]


def differences(old: Catalog | None, new: Catalog) -> list[str]:
    """What a rebuild would change, one line per extension version."""
    lines = []
    before = {(n, v): e for n, x in (old.extensions.items() if old else []) for v, e in x.versions.items()}
    after = {(n, v): e for n, x in new.extensions.items() for v, e in x.versions.items()}
    for key in sorted(before.keys() | after.keys()):
        name, version = key
        if key not in after:
            lines.append(f"- {name} {version}: in the catalog, not in the registry")
        elif key not in before:
            lines.append(f"+ {name} {version}: in the registry, not in the catalog")
        elif before[key] != after[key]:
            lines.append(f"~ {name} {version}: the catalog says {before[key].digest}, the registry {after[key].digest}")
    if old is not None and not lines and not old.same_content(new):
        lines.append("~ descriptions or keywords differ")
    return lines


def _signer(key_file: str | None, registry: str) -> tuple[Signer | None, list[str]]:
    """A signer for the catalog with ``--key`` (the key read first: a bad key or password costs nothing),
    and the list it records each signature's status in."""
    if key_file is None:
        return None, []
    from ..signing.keys import load_private_key
    from ..signing.sign import registry_signer

    signer = registry_signer(load_private_key(key_file), registry)
    statuses: list[str] = []

    def sign(target: Any, desc: Any) -> None:
        statuses.append(signer(target, desc).status)

    return sign, statuses


def cmd_rebuild(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    registry, namespace = ctx.settings.registry, ctx.settings.namespace
    sign, signatures = _signer(None if args.check else args.key, registry)
    storage = ctx.storage(registry)
    previous = None
    loaded = None
    try:
        loaded = read_catalog(storage, namespace)
        previous = loaded.catalog if loaded else None
    except CatalogError as exc:
        print(f"warning: {exc}; rebuilding it from scratch", file=sys.stderr)
    extra = list(args.name or [])
    if args.extensions:
        extra += _names_from_tree(args.extensions)
    names = extension_names(storage, namespace, previous, extra)
    catalog = rebuild_catalog(storage, namespace, names=names, previous=previous)
    if previous is None:  # none, or one not trusted: the new one must still pass the generation it claimed
        catalog.generation = tagged_generation(storage, namespace) + 1
    changes = differences(previous, catalog)
    where = f"{registry}/{catalog_repository(namespace)}:latest"
    same = previous is not None and previous.same_content(catalog)
    result: dict[str, Any] = {
        "catalog": where,
        "extensions": len(catalog.extensions),
        "versions": sum(len(e.versions) for e in catalog.extensions.values()),
        "changes": changes,
        "generation": previous.generation if same and previous else catalog.generation,
        "status": "unchanged" if same else ("differs" if args.check else "written"),
    }
    if not same and not args.check:
        result["digest"] = write_over(storage, namespace, catalog, sign=sign).digest  # never over a newer one
    elif same and sign is not None and loaded is not None:  # current already: sign the one that is there
        target = storage.repository(catalog_repository(namespace))
        sign(target, target.resolve(loaded.digest))
    if signatures:
        result["signature"] = signatures[-1]  # "signed" or "already-signed"
    if args.output == "json":
        print_json(result)
    else:
        for line in changes:
            print(line)
        verb = {"unchanged": "is up to date", "differs": "disagrees with the registry", "written": "written"}
        print(
            f"{where} {verb[result['status']]}: {result['extensions']} extensions, {result['versions']} versions, "
            f"generation {result['generation']}"
        )
        if signatures:
            print(f"{where}: {'signed' if signatures[-1] == 'signed' else 'already signed'} with {args.key}")
    return 1 if args.check and not same else 0


def cmd_show(args: argparse.Namespace) -> int:
    ctx = Context.from_args(args)
    registry, namespace = ctx.settings.registry, ctx.settings.namespace
    loaded = read_catalog(ctx.storage(registry), namespace)
    where = f"{registry}/{catalog_repository(namespace)}:latest"
    if loaded is None:
        raise ProvisioningError(
            f"{where} does not exist: `doit publish` writes it, or `provisioning catalog rebuild` builds it"
        )
    cat = loaded.catalog
    if args.output == "json":
        print_json({"catalog": where, "digest": loaded.digest, **cat.content(), "generation": cat.generation})
        return 0
    print(f"{where} ({loaded.digest}), generation {cat.generation}")
    table(
        None,
        ("extension", "type", "versions", "newest", "description"),
        (
            (n, e.type, len(e.versions), e.newest_first()[0] if e.versions else "", e.description)
            for n, e in sorted(cat.extensions.items())
        ),
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    cat = subparsers.add_parser(
        "catalog",
        help="the namespace's catalog (NAMESPACE/provisioning-catalog:latest): show or rebuild it",
        description=(
            "The catalog lists every extension version of a namespace with its digest and dependency ranges, so "
            "`oci list`/`oci search` work where the registry refuses _catalog and a resolve needs one request. "
            "`doit publish` keeps it current; `rebuild` makes it again from what the registry holds."
        ),
    )
    cat.set_defaults(func=lambda args: (cat.print_help(sys.stderr), 2)[1])
    sub = cat.add_subparsers(dest="catalog_command", metavar="COMMAND")
    common = [_common()]
    p = sub.add_parser("rebuild", parents=common, help="rebuild the catalog from the registry's contents")
    p.add_argument("--name", action="append", metavar="NAME", help="an extension to include (repeatable)")
    p.add_argument("--extensions", metavar="DIR", help="include every extension of this tree (where no _catalog)")
    p.add_argument("--check", action="store_true", help="compare only; exit 1 when the catalog is not current")
    p.add_argument("--key", metavar="KEY", help="sign the catalog with this cosign private key (PREFIX.key)")
    _with_output(p)
    p.set_defaults(func=cmd_rebuild)
    p = sub.add_parser("show", parents=common, help="print the catalog")
    _with_output(p)
    p.set_defaults(func=cmd_show)
