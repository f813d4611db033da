"""A registry answer or a transport failure as our error: data, not advice.

Every error built here carries the method, URL, status, the registry's error codes, the host
and a ``kind`` naming the condition; its message says what happened and where. How to fix it
(which command to run, which flag to pass) is worded once, at the boundary, by
``provisioning.advice.explain`` from that data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from ...errors import AuthError, DigestMismatch, NotFound, ProvisioningError, RegistryError
from ..credentials import Credentials
from .challenge import parse_challenge

API_VERSION_HEADER = "Docker-Distribution-Api-Version"
_REPO_IN_PATH = re.compile(r"/v2/(.+?)/(?:manifests|blobs|tags|referrers)/")


def _nobody() -> Credentials | None:
    return None


@dataclass(frozen=True)
class ErrorContext:
    """What a request was for, so its failure can say so: the scopes asked, the purpose, who asked.

    ``credentials`` answers the credentials already in use (never looks them up: a message must
    not run a credential helper).
    """

    scopes: Sequence[str] = ()
    purpose: str = "registry"  # registry | ping | token
    credentials: Callable[[], Credentials | None] = field(default=_nobody)


def error_details(resp: requests.Response) -> tuple[tuple[str, ...], str]:
    """The registry's error codes and a short ``CODE: message`` text from an error body."""
    try:
        data = json.loads(resp.content[:65536] or b"null")
    except (ValueError, RuntimeError):
        return (), ""
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return (), ""
    codes, parts = [], []
    for e in errors:
        if isinstance(e, dict):
            code = str(e.get("code") or "")
            codes.append(code)
            msg = str(e.get("message") or "")
            parts.append(f"{code}: {msg}" if msg else code)
    return tuple(codes), "; ".join(parts)[:500]


def media_type(resp: requests.Response) -> str:
    return resp.headers.get("Content-Type", "").split(";")[0].strip()


def _looks_like_registry(resp: requests.Response) -> bool:
    if resp.headers.get(API_VERSION_HEADER):
        return True
    if resp.status_code == 401 and parse_challenge(resp.headers.get("WWW-Authenticate")):
        return True
    return "json" in resp.headers.get("Content-Type", "")


def _repository_of(url: str, scopes: Sequence[str]) -> str:
    m = _REPO_IN_PATH.search(urlsplit(url).path)
    if m:
        return m.group(1)
    for s in scopes:
        if s.startswith("repository:"):
            return s.split(":")[1]
    return ""


def not_a_registry(host: str, method: str, url: str, resp: requests.Response) -> RegistryError:
    kind = media_type(resp) or "no content type"
    return RegistryError(
        f"{host} does not look like an OCI registry: {method} {url} answered "
        f"{resp.status_code} {resp.reason} ({kind}, no {API_VERSION_HEADER} header); "
        "check the host and port of the registry (a URL path is not part of a registry address)",
        method=method,
        url=url,
        status=resp.status_code,
        host=host,
        kind="not_a_registry",
    )


def plain_http_to_tls(host: str, url: str, status: int, *, loopback: bool = False) -> RegistryError:
    """A TLS server contacted over plain HTTP (it said so in a 400)."""
    return RegistryError(
        f"{host} speaks HTTPS but was contacted over plain HTTP"
        f"{' (the default for loopback registries)' if loopback else ''}",
        method="GET",
        url=url,
        status=status,
        host=host,
        kind="plain_http_to_tls",
    )


@dataclass(frozen=True)
class _Answer:
    """An error answer with what its message needs: the registry's words, who asked, for what."""

    host: str
    method: str
    url: str
    resp: requests.Response
    context: ErrorContext
    codes: tuple[str, ...]
    detail: str
    credentials: Credentials | None

    @property
    def said(self) -> str:
        return f" (the registry said: {self.detail})" if self.detail else ""

    @property
    def who(self) -> str:
        return self.credentials.describe() if self.credentials else "anonymous access"

    @property
    def what(self) -> str:
        repo = _repository_of(self.url, self.context.scopes)
        return f"repository {repo}" if repo else "this registry"

    @property
    def action(self) -> str:
        return {"GET": "pull from", "HEAD": "pull from", "DELETE": "delete from"}.get(self.method, "push to")

    def data(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "status": self.resp.status_code,
            "codes": self.codes,
            "host": self.host,
            "anonymous": self.credentials is None,
        }


def translate(
    host: str,
    method: str,
    url: str,
    failure: requests.Response | BaseException,
    context: ErrorContext = ErrorContext(),
    *,
    attempts: int = 1,
) -> ProvisioningError:
    """Turn a registry answer or a transport failure into our error (the one status switch for failures)."""
    if isinstance(failure, BaseException):
        return _from_exception(host, method, url, failure, attempts)
    resp = failure
    status = resp.status_code
    codes, detail = error_details(resp)
    a = _Answer(host, method, url, resp, context, codes, detail, context.credentials())
    said, what = a.said, a.what
    text, kind = f"{method} {url} failed: {status} {resp.reason}{said}", "failed"
    match status:
        case 401 | 403:
            return _refused(a)
        case 400 if b"HTTP request to an HTTPS server" in resp.content:
            return plain_http_to_tls(host, url, status)
        case _ if "DIGEST_INVALID" in codes or "SIZE_INVALID" in codes:
            return DigestMismatch(f"{host} refused the content uploaded to {what}: it does not match its digest{said}")
        case 404 if "NAME_UNKNOWN" in codes and method in ("PUT", "POST", "PATCH"):
            kind = "no_repository"
            text = (
                f"{host} has no {what} and does not create repositories on push{said}; "
                "create the repository in the registry first (ECR and some Harbor projects need this)"
            )
        case 404:
            return NotFound(f"{method} {url}: not found on {host}{said}")
        case 405 if method == "DELETE":
            kind = "delete_disabled"
            text = (
                f"{host} does not allow deleting (405){said}; enable deletes in the registry "
                "(distribution: storage.delete.enabled: true) or ask its administrator"
            )
        case 429:
            kind = "rate_limited"
            text = (
                f"{host} is rate limiting requests (429) and still was after {attempts} attempts{said}; "
                "wait and run the command again, or log in for a higher limit"
            )
        case _ if status >= 500:
            kind = "server_error"
            text = (
                f"{host} failed on {method} {url} with {status} {resp.reason} after {attempts} attempts{said}; "
                "the registry may be overloaded or misconfigured: run the command again later"
            )
        case _ if not _looks_like_registry(resp):
            return not_a_registry(host, method, url, resp)
        case 400 if method == "PUT" and "/manifests/" in url:
            kind = "manifest_refused"
            text = (
                f"{host} refused the manifest for {what} ({status}){said}; some registries refuse unknown config "
                "media types, artifactType or other fields: check the registry's documentation for OCI artifacts"
            )
    return RegistryError(text, kind=kind, **a.data())


def _refused(a: _Answer) -> AuthError:
    """A 401 or 403: which of missing, wrong, expired or insufficient credentials it was."""
    host, method, url, status, creds, who = a.host, a.method, a.url, a.resp.status_code, a.credentials, a.who
    if a.context.purpose == "token":
        said = f" (the token service said: {a.detail})" if a.detail else ""
        scope_text = " ".join(a.context.scopes) or "login"
        if status == 401:
            fix = "check the username and password" if creds else "credentials are needed"
            text, kind = (
                f"the token service of {host} refused {who} for {scope_text} ({status}){said}: {fix}",
                "token_refused",
            )
        else:
            text = (
                f"no permission: the token service of {host} refused {who} access to {scope_text} (403){said}; "
                "ask the registry's administrator for access or log in as a user who has it"
            )
            kind = "forbidden"
        return AuthError(text, kind=kind, **a.data())
    said, what, action = a.said, a.what, a.action
    sent = a.resp.request.headers.get("Authorization", "") if a.resp.request is not None else ""
    ch = parse_challenge(a.resp.headers.get("WWW-Authenticate"))
    if status == 403:
        text = (
            f"no permission to {action} {what} on {host} with {who} (403){said}; "
            "ask the registry's administrator for access or log in as a user who has it"
        )
        kind = "forbidden"
    elif not sent and creds is None:
        text, kind = f"{host} requires authentication to {action} {what} (401){said}", "login_required"
    elif (ch and ch.error == "insufficient_scope") or "DENIED" in a.codes:
        if creds is None:
            text = f"{host} does not allow anonymous access to {action} {what} (401 insufficient scope){said}"
            kind = "login_required"
        else:
            text = f"no permission to {action} {what} on {host} with {who} (401 insufficient scope){said}"
            kind = "no_permission"
    elif sent.startswith("Basic"):
        text, kind = f"{host} rejected the credentials ({who}) for {method} {url} (401){said}", "bad_credentials"
    elif sent.startswith("Bearer"):
        text = (
            f"{host} refused the bearer token for {method} {url} (401){said}: the token ({who}) was "
            "rejected or has expired"
        )
        kind = "token_rejected"
    else:
        text, kind = f"{host} requires authentication for {method} {url} (401){said}", "auth_required"
    return AuthError(text, kind=kind, **a.data())


def _from_exception(host: str, method: str, url: str, exc: BaseException, attempts: int) -> ProvisioningError:
    kw: dict[str, Any] = {"method": method, "url": url, "host": host}
    text = str(exc)
    low = text.lower()
    if isinstance(exc, requests.exceptions.SSLError):
        if any(s in low for s in ("wrong version number", "record layer failure", "unknown protocol", "http request")):
            return RegistryError(
                f"TLS handshake with {host} failed: the server speaks plain HTTP, not HTTPS",
                kind="tls_to_plain_http",
                **kw,
            )
        if "certificate verify failed" in low or "hostname" in low or "doesn't match" in low:
            reason = re.search(r"certificate verify failed: ([^(')\"]+)", text)
            because = f" ({reason.group(1).strip()})" if reason else ""
            return RegistryError(f"the TLS certificate of {host} is not trusted{because}", kind="tls_untrusted", **kw)
        return RegistryError(f"TLS handshake with {host} failed: {text[:300]}", kind="tls_failed", **kw)
    if isinstance(exc, requests.exceptions.Timeout):
        return RegistryError(
            f"{host} did not answer {method} {url} in time ({attempts} attempts); "
            "check the network or the registry's health and run the command again",
            kind="timeout",
            **kw,
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "refused" in low:
            return RegistryError(
                f"cannot connect to {host} (connection refused after {attempts} attempts)",
                kind="connection_refused",
                **kw,
            )
        if "name or service not known" in low or "nodename nor servname" in low or "failed to resolve" in low:
            return RegistryError(f"cannot resolve the registry host {host}: check its name", kind="unknown_host", **kw)
        return RegistryError(
            f"the connection to {host} broke during {method} {url} ({exc.__class__.__name__}, "
            f"{attempts} attempts); nothing incomplete was stored: run the command again to finish",
            kind="connection_broken",
            **kw,
        )
    return RegistryError(f"{method} {url} failed: {exc.__class__.__name__}: {text[:300]}", kind="failed", **kw)


def untrusted_elsewhere(host: str, method: str, url: str, exc: BaseException) -> RegistryError:
    """A redirect or token service on another host whose certificate is not trusted: nothing was sent there."""
    return RegistryError(
        f"{host} sent this request to {urlsplit(url).netloc}, whose TLS certificate is "
        f"not trusted ({str(exc)[:160]}); nothing was sent there",
        method=method,
        url=url,
        host=host,
        kind="tls_untrusted_elsewhere",
    )


def no_catalog(host: str, resp: requests.Response | None, *, anonymous: bool) -> RegistryError:
    answer, kw = "", {}
    if resp is not None:
        codes, detail = error_details(resp)
        answer = f" (GET /v2/_catalog answered {resp.status_code}{': ' + detail if detail else ''})"
        kw = {"method": "GET", "url": resp.url, "status": resp.status_code, "codes": codes}
    return RegistryError(
        f"{host} does not allow listing its repositories{answer}: many registries (GHCR, Docker Hub, ECR) "
        "forbid the catalog",
        host=host,
        kind="no_catalog",
        anonymous=anonymous,
        **kw,
    )
