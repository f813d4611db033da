"""``provisioning oci …``: pull, push, list, search, tags, inspect, login, logout, delete, copy, config, package.

Every command takes ``--registry HOST[:PORT]`` and ``--namespace NS`` (defaults: flags, then
``PROVISIONING_REGISTRY``/``PROVISIONING_NAMESPACE``, then the workspace config, then
``localhost:5000`` / ``provisioning-extensions``) and accepts a full reference wherever a name
fits. A filesystem path (``./store``, ``/abs``, ``oci-layout:PATH``) names the embedded store.
Listings print tables, or JSON with ``--output json``. Store modules are imported inside the
commands so the command line loads even while a store is missing.

The commands live in one module per group (``transfer``: pull/push/publish, ``browse``:
list/search/tags/inspect, ``login``, ``delete``, ``copy``, ``config``, ``package``), each adding its
own parsers; ``context`` turns the registry flags into stores for all of them.
"""

from __future__ import annotations

import argparse
import sys

from . import browse, config, copy, delete, login, package, transfer
from .context import Context, _common, _with_output, resolve_manifest
from .progress import human_size

__all__ = ["Context", "_common", "_with_output", "human_size", "register", "resolve_manifest"]

# the groups in help order (`signing` adds keygen, sign and verify after them)
GROUPS = (transfer, browse, login, delete, copy, config, package)


def register(subparsers: argparse._SubParsersAction) -> None:
    oci = subparsers.add_parser(
        "oci",
        help="pull, push, list, search, inspect, copy and delete extensions in OCI registries",
        description=(
            "Work with extensions in OCI registries. Every command takes --registry HOST[:PORT] and --namespace NS "
            "(defaults: the flags, then $PROVISIONING_REGISTRY / $PROVISIONING_NAMESPACE, then the workspace's "
            "config/provisioning.yaml, then localhost:5000 / provisioning-extensions) and accepts a full reference "
            "(HOST/NAMESPACE/NAME:VERSION) wherever a name fits. A path (./store, /abs/store, oci-layout:PATH) "
            "names the embedded store on disk. Listings print tables, or JSON with --output json."
        ),
    )
    oci.set_defaults(func=lambda args: (oci.print_help(sys.stderr), 2)[1])
    sub = oci.add_subparsers(dest="oci_command", metavar="COMMAND")
    common = [_common()]
    for group in GROUPS:
        group.register(sub, common)
