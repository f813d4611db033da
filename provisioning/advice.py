"""Advice worded once: any of our errors as the message a user reads and the exit code.

The library raises errors that carry data (a ``RegistryError`` or a registry's ``NotFound`` names
its host and the ``kind`` of failure); this is the one place that knows which command, flag or setting fixes each kind.
The command line (``cli.main``) and the doit tasks both print what ``explain`` returns, so a
failure reads the same from either. An error wrapped in another (``raise … from exc``, or raised
while handling it) still gets the advice of the error inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .errors import ProvisioningError, environment_failure


def _login(e: Any) -> str:
    return f"run `provisioning oci login {e.host}`"


# kind -> the words that follow the error's own message (what to do about it); the errors that carry
# a kind are RegistryError (AuthError) and NotFound
_ADVICE: dict[str, Callable[[Any], str]] = {
    "login_required": lambda e: f"; {_login(e)} (docker and podman logins are honoured too)",
    "token_refused": lambda e: f"; {_login(e)}",
    "auth_required": lambda e: f"; {_login(e)}",
    "no_permission": lambda e: f"; ask the registry's administrator for access or {_login(e)} as a user who has it",
    "bad_credentials": lambda e: f"; {_login(e)} with the right username and password",
    "token_rejected": lambda e: f"; {_login(e)} to get new credentials",
    "plain_http_to_tls": lambda e: ": set tls_enabled: true in the workspace config or drop --plain-http",
    "tls_to_plain_http": lambda e: "; use --plain-http (tls_enabled: false in the workspace config)",
    "tls_untrusted": lambda e: (
        ": pass the registry's CA certificate with --ca-file (ca_file), or --insecure to skip verification "
        "(not --plain-http: the server does speak TLS)"
    ),
    "tls_untrusted_elsewhere": lambda e: f". --insecure and --ca-file apply to {e.host} only",
    "connection_refused": lambda e: ": is the registry running? (`provisioning oci-registry status` for the local one)",
    "no_catalog": lambda e: (
        ". Name the repository instead (for example `provisioning oci tags NAME`)"
        + (f"; if it lists repositories to logged-in users, {_login(e)}" if e.anonymous else "")
    ),
    "login_incomplete": lambda e: " (use --password-stdin in scripts)",
    "manifest_not_found": lambda e: f" (`provisioning oci tags {e.repository}` lists the versions)",
}


def advice(error: BaseException) -> str:
    """How to fix ``error``, as the words that follow its message ("" when its message says it all)."""
    word = _ADVICE.get(getattr(error, "kind", ""))
    return word(error) if word and getattr(error, "host", "") else ""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors it was raised from or while handling, innermost last (each once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def explain(exc: BaseException) -> tuple[str, int] | None:
    """(message, exit code) for one of our errors (or a full disk, a read-only folder); None for a bug."""
    if isinstance(exc, OSError):
        failure = environment_failure(exc)
        return None if failure is None else (str(failure), failure.exit_code)
    if not isinstance(exc, ProvisioningError):
        return None
    text = str(exc)
    for inner in _chain(exc):
        words = advice(inner)
        if not words or words.lstrip(":;. ") in text:
            continue
        if inner is exc:
            text += words
        else:  # the advice of an error this one wraps: a clause of its own at the end
            clause = words.lstrip(":;. ")
            text = f"{text.rstrip('. ')}; {clause[:1].lower()}{clause[1:]}"
    return text, exc.exit_code


def message(exc: BaseException) -> str:
    """``explain``'s message alone (doit tasks report it in a ``TaskFailed``); ``str(exc)`` for anything else."""
    found = explain(exc)
    return found[0] if found else str(exc)
