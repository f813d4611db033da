"""One cold resolve in a process of its own, with whatever ``provisioning`` PYTHONPATH names first.

    PYTHONPATH=CHECKOUT python benchmarks/resolve_child.py WORKSPACE HOME [--serial] [--warm-up WORKSPACE]

``benchmarks/resolve.py --baseline REV`` runs this against a temporary checkout of REV, so the
figures of today's code sit beside the code as it was at REV, on the same registry and workspace.
This file imports nothing of provisioning at module level (``http_counter`` is shared with
resolve.py), so the checkout on PYTHONPATH is the code that runs; it prints one JSON line.

``--serial`` asks for one request at a time by every knob the revision may have: the
``PROVISIONING_RESOLVE_WORKERS=1`` of today's code, the ``prefetch_workers`` default of older
providers. ``--warm-up`` resolves another (small) workspace first, into a home of its own, so the
measured run pays no import or first-use cost (times less the process start-up, as the parent's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def http_counter() -> Iterator[Counter]:
    """Every HTTP request the process sends, by kind (requests' Session.send, as every revision uses it)."""
    import requests

    counts: Counter = Counter()
    real = requests.Session.send

    def send(self, request, **kw):  # type: ignore[no-untyped-def]
        path = request.path_url
        kind = (
            "catalog"
            if "/provisioning-catalog/" in path
            else "tag lists"
            if "/tags/list" in path
            else "manifests"
            if "/manifests/" in path
            else "blobs"
            if "/blobs/" in path
            else "other"
        )
        counts[kind] += 1
        return real(self, request, **kw)

    requests.Session.send = send  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        requests.Session.send = real  # type: ignore[method-assign]


def _serial() -> None:
    os.environ["PROVISIONING_RESOLVE_WORKERS"] = "1"
    from provisioning.workspace import resolver

    defaults = getattr(resolver.ExtensionProvider.__init__, "__kwdefaults__", None) or {}
    if "prefetch_workers" in defaults:  # before the pool had its own module and variable
        defaults["prefetch_workers"] = 1


def _resolve(ws: Path, home: Path) -> object:
    from provisioning.workspace import resolve_workspace

    shutil.rmtree(home, ignore_errors=True)
    os.environ["PROVISIONING_HOME"] = str(home)
    return resolve_workspace(ws, install_=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("home", type=Path, help="PROVISIONING_HOME for the measured run (emptied first: cold)")
    ap.add_argument("--serial", action="store_true")
    ap.add_argument("--warm-up", type=Path, metavar="WORKSPACE")
    args = ap.parse_args(argv)
    os.environ["PROVISIONING_CATALOG"] = "off"  # the tag-list path (older revisions ignore it)
    if args.serial:
        _serial()
    import provisioning

    if args.warm_up:
        _resolve(args.warm_up, args.home.with_name(args.home.name + "-warm-up"))
    with http_counter() as counts:
        t0, c0 = time.perf_counter(), time.process_time()
        outcome: Any = _resolve(args.workspace, args.home)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        json.dumps(
            {
                "code": str(Path(provisioning.__file__).resolve().parent.parent),
                "seconds": seconds,
                "cpu": cpu,
                "counts": dict(counts),
                "chosen": len(outcome.lock.extensions),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
