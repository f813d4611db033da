"""``oci login`` and ``oci logout``: credentials for a registry host, checked against it before they are stored."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from ...errors import ProvisioningError, UsageError
from ...oci.reference import (
    is_path_registry,
)
from .context import Context


def _host(text: str) -> tuple[str, bool | None]:
    """``https://host:5000`` -> (``host:5000``, True): the scheme, when given, decides TLS."""
    from ...oci.endpoint import strip_scheme

    host, tls = strip_scheme(text)
    if not host or "/" in host:
        raise UsageError(f"{text!r} is not a registry host: give HOST[:PORT], e.g. localhost:5000")
    return host, tls


def cmd_login(args: argparse.Namespace) -> int:
    if is_path_registry(args.host):
        print(f"{args.host} is an embedded store on disk: no login needed (nothing stored)")
        return 0
    host, tls = _host(args.host)
    username = args.username
    if not username and not args.password_stdin and args.password is None:
        if _asks_no_credentials(Context.from_args(args).storage(host, tls_enabled=tls)):
            print(f"{host} asks for no credentials: no login needed (nothing stored)")
            return 0
    if not username:
        if not sys.stdin.isatty():
            raise UsageError("login needs --username USER when not run on a terminal")
        username = input("Username: ").strip()
    if args.password_stdin:
        if args.password is not None:
            raise UsageError("--password and --password-stdin cannot be used together")
        password = sys.stdin.read().rstrip("\r\n")
    elif args.password is not None:
        print(
            "WARNING: --password leaves the password in your shell history and the process list; use --password-stdin",
            file=sys.stderr,
        )
        password = args.password
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        raise UsageError("login needs the password on standard input: pass --password-stdin")
    if not password:
        raise UsageError("the password is empty")
    from ...oci.remote import login

    ctx = Context.from_args(args)
    verify = None if args.no_verify else ctx.storage(host, tls_enabled=tls)
    path = login(host, username, password, verify_with=verify)
    where = f" (stored in {path})" if isinstance(path, (str, os.PathLike)) else ""
    print(f"Login succeeded for {username} at {host}{where}")
    return 0


def _asks_no_credentials(storage: Any) -> bool:
    """Whether the registry asks for no credentials at all (a local registry as started)."""
    asks = getattr(storage, "asks_for_credentials", None)
    if asks is None:
        return False
    try:
        return not asks()
    except ProvisioningError:
        return False


def cmd_logout(args: argparse.Namespace) -> int:
    from ...oci import credentials

    host, _ = _host(args.host)
    removed = credentials.logout(host)
    if removed is False:
        print(f"not logged in to {host}")
    else:
        print(f"Removed the stored credentials for {host}")
    return 0


def register(sub: argparse._SubParsersAction, common: list[argparse.ArgumentParser]) -> None:
    """Add the commands of this module to ``provisioning oci``."""
    p = sub.add_parser("login", parents=common, help="store credentials for a registry (file mode 0600)")
    p.add_argument("host", metavar="HOST[:PORT]")
    p.add_argument("--username", "-u", metavar="USER")
    p.add_argument("--password-stdin", action="store_true", help="read the password (or token) from standard input")
    p.add_argument(
        "--password", "-p", help="the password as an argument (discouraged: shell history and process list show it)"
    )
    p.add_argument("--no-verify", action="store_true", help="store without checking them against the registry")
    p.set_defaults(func=cmd_login)

    p = sub.add_parser("logout", parents=common, help="forget the stored credentials for a registry")
    p.add_argument("host", metavar="HOST[:PORT]")
    p.set_defaults(func=cmd_logout)
