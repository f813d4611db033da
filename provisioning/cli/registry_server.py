"""``provisioning oci-registry start|stop|status``: a local registry on localhost:5000."""

from __future__ import annotations

import argparse
import json
import sys

from .. import registry_server as rs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "oci-registry",
        help="start, stop or check a local OCI registry (zot or docker-registry) on localhost",
        description=(
            "A real OCI registry on loopback for solo development: zot when it is on PATH, else Debian's "
            "docker-registry. No authentication, no TLS. Storage, pid and log live under "
            "~/.provisioning/oci-registry (or $PROVISIONING_HOME/oci-registry)."
        ),
    )
    parser.set_defaults(func=lambda args: (parser.print_help(sys.stderr), 2)[1])
    sub = parser.add_subparsers(dest="registry_command", metavar="ACTION")

    start = sub.add_parser("start", help="start the registry and wait until it serves /v2/")
    start.add_argument("--port", type=int, default=rs.DEFAULT_PORT, help="TCP port on 127.0.0.1 (default 5000)")
    start.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops the registry")
    start.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the health check")
    start.set_defaults(func=cmd_start)

    stop = sub.add_parser("stop", help="stop the registry and remove its pid file")
    stop.set_defaults(func=cmd_stop)

    status = sub.add_parser("status", help="running or stopped, with pid, endpoint and storage")
    status.add_argument("--output", choices=("table", "json"), default="table", help="output format")
    status.set_defaults(func=cmd_status)


def _describe(st: rs.RegistryStatus) -> str:
    return f"pid {st.pid}, endpoint {st.endpoint}, backend {st.backend}, storage {st.storage}, log {st.log}"


def cmd_start(args: argparse.Namespace) -> int:
    if args.foreground:

        def ready(st: rs.RegistryStatus) -> None:
            print(f"registry running in the foreground ({_describe(st)}); Ctrl-C stops it", flush=True)

        code = rs.run_foreground(args.port, timeout=args.timeout, on_ready=ready)
        print("registry stopped")
        return 0 if code in (0, -15) else 1
    before = rs.status()
    st = rs.start(args.port, timeout=args.timeout)
    if before.running:
        print(f"registry already running ({_describe(st)})")
        if st.endpoint != f"localhost:{args.port}":
            print(f"note: it listens on {st.endpoint}, not port {args.port}; stop it first to change the port")
    else:
        print(f"registry started ({_describe(st)})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    st = rs.stop()
    if st.running:
        print(f"registry stopped (was pid {st.pid}, {st.endpoint})")
    elif st.stale_pid_removed:
        print("registry was not running (removed a stale pid file)")
    else:
        print("registry was not running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    st = rs.status()
    if args.output == "json":
        print(json.dumps(st.to_dict(), indent=2, sort_keys=True))
        return 0
    if st.running:
        print(f"running: {_describe(st)}")
    else:
        note = " (removed a stale pid file)" if st.stale_pid_removed else ""
        print(f"stopped{note}: endpoint {st.endpoint}, storage {st.storage}")
    return 0
