"""The one translation: a registry answer or a transport failure becomes our error, with method, URL,
status and the registry's codes, and a message that says what to do.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from ...errors import AuthError, DigestMismatch, NotFound, ProvisioningError, RegistryError
from .auth import parse_challenge

log = logging.getLogger(__name__)

API_VERSION_HEADER = "Docker-Distribution-Api-Version"
_REPO_IN_PATH = re.compile(r"/v2/(.+?)/(?:manifests|blobs|tags|referrers)/")


def _error_details(resp: requests.Response) -> tuple[tuple[str, ...], str]:
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


def _looks_like_registry(resp: requests.Response) -> bool:
    if resp.headers.get(API_VERSION_HEADER):
        return True
    if resp.status_code == 401 and parse_challenge(resp.headers.get("WWW-Authenticate")):
        return True
    return "json" in resp.headers.get("Content-Type", "")


def _media_type(resp: requests.Response) -> str:
    return resp.headers.get("Content-Type", "").split(";")[0].strip()


class Translation:
    """Methods of ``RemoteStorage`` (errors)."""

    def _not_a_registry(self, method: str, url: str, resp: requests.Response) -> RegistryError:
        kind = _media_type(resp) or "no content type"
        return RegistryError(
            f"{self.registry_host} does not look like an OCI registry: {method} {url} answered "
            f"{resp.status_code} {resp.reason} ({kind}, no {API_VERSION_HEADER} header); "
            "check the host and port of the registry (a URL path is not part of a registry address)",
            method=method,
            url=url,
            status=resp.status_code,
        )

    # -- the one translation ------------------------------------------------------------------------
    def translate(
        self,
        method: str,
        url: str,
        failure: requests.Response | BaseException,
        *,
        scopes: Sequence[str] = (),
        purpose: str = "registry",
        attempts: int = 1,
    ) -> ProvisioningError:
        """Turn a registry answer or a transport failure into our error, saying what to do."""
        host = self.registry_host
        if isinstance(failure, BaseException):
            return self._translate_exception(method, url, failure, attempts)
        resp = failure
        status = resp.status_code
        codes, detail = _error_details(resp)
        said = f" (the registry said: {detail})" if detail else ""
        kw: dict[str, Any] = {"method": method, "url": url, "status": status, "codes": codes}
        creds = self.auth.known_credentials
        who = creds.describe() if creds else "anonymous access"
        repo = self._repository_of(url, scopes)
        action = {"GET": "pull from", "HEAD": "pull from", "DELETE": "delete from"}.get(method, "push to")
        what = f"repository {repo}" if repo else "this registry"
        if purpose == "token":
            said = f" (the token service said: {detail})" if detail else ""
            scope_text = " ".join(scopes) or "login"
            if status == 401:
                fix = "check the username and password" if creds else "credentials are needed"
                return AuthError(
                    f"the token service of {host} refused {who} for {scope_text} ({status}){said}: "
                    f"{fix}; run `provisioning oci login {host}`",
                    **kw,
                )
            if status == 403:
                return AuthError(
                    f"no permission: the token service of {host} refused {who} access to {scope_text} (403){said}; "
                    "ask the registry's administrator for access or log in as a user who has it",
                    **kw,
                )
        if status == 401:
            sent = resp.request.headers.get("Authorization", "") if resp.request is not None else ""
            ch = parse_challenge(resp.headers.get("WWW-Authenticate"))
            if not sent and creds is None:
                return AuthError(
                    f"{host} requires authentication to {action} {what} (401){said}; "
                    f"run `provisioning oci login {host}` (docker and podman logins are honoured too)",
                    **kw,
                )
            if (ch and ch.error == "insufficient_scope") or "DENIED" in codes:
                if creds is None:
                    return AuthError(
                        f"{host} does not allow anonymous access to {action} {what} (401 insufficient scope){said}; "
                        f"run `provisioning oci login {host}` (docker and podman logins are honoured too)",
                        **kw,
                    )
                return AuthError(
                    f"no permission to {action} {what} on {host} with {who} (401 insufficient scope){said}; "
                    f"ask the registry's administrator for access or run `provisioning oci login {host}` "
                    "as a user who has it",
                    **kw,
                )
            if sent.startswith("Basic"):
                return AuthError(
                    f"{host} rejected the credentials ({who}) for {method} {url} (401){said}; "
                    f"run `provisioning oci login {host}` with the right username and password",
                    **kw,
                )
            if sent.startswith("Bearer"):
                return AuthError(
                    f"{host} refused the bearer token for {method} {url} (401){said}: the token ({who}) was "
                    f"rejected or has expired; run `provisioning oci login {host}` to get new credentials",
                    **kw,
                )
            return AuthError(
                f"{host} requires authentication for {method} {url} (401){said}; run `provisioning oci login {host}`",
                **kw,
            )
        if status == 403:
            return AuthError(
                f"no permission to {action} {what} on {host} with {who} (403){said}; "
                "ask the registry's administrator for access or log in as a user who has it",
                **kw,
            )
        if status == 400 and b"HTTP request to an HTTPS server" in resp.content:
            return RegistryError(
                f"{host} speaks HTTPS but was contacted over plain HTTP: set tls_enabled: true or drop --plain-http",
                **kw,
            )
        if "DIGEST_INVALID" in codes or "SIZE_INVALID" in codes:
            return DigestMismatch(f"{host} refused the content uploaded to {what}: it does not match its digest{said}")
        if status == 404:
            if "NAME_UNKNOWN" in codes and method in ("PUT", "POST", "PATCH"):
                return RegistryError(
                    f"{host} has no {what} and does not create repositories on push{said}; "
                    "create the repository in the registry first (ECR and some Harbor projects need this)",
                    **kw,
                )
            return NotFound(f"{method} {url}: not found on {host}{said}")
        if status == 405 and method == "DELETE":
            return RegistryError(
                f"{host} does not allow deleting (405){said}; enable deletes in the registry "
                "(distribution: storage.delete.enabled: true) or ask its administrator",
                **kw,
            )
        if status == 429:
            return RegistryError(
                f"{host} is rate limiting requests (429) and still was after {attempts} attempts{said}; "
                "wait and run the command again, or log in for a higher limit",
                **kw,
            )
        if status >= 500:
            return RegistryError(
                f"{host} failed on {method} {url} with {status} {resp.reason} after {attempts} attempts{said}; "
                "the registry may be overloaded or misconfigured: run the command again later",
                **kw,
            )
        if not _looks_like_registry(resp):
            return self._not_a_registry(method, url, resp)
        if method == "PUT" and "/manifests/" in url and status == 400:
            return RegistryError(
                f"{host} refused the manifest for {what} ({status}){said}; some registries refuse unknown config "
                "media types, artifactType or other fields: check the registry's documentation for OCI artifacts",
                **kw,
            )
        return RegistryError(f"{method} {url} failed: {status} {resp.reason}{said}", **kw)

    def _translate_exception(self, method: str, url: str, exc: BaseException, attempts: int) -> ProvisioningError:
        host = self.registry_host
        kw: dict[str, Any] = {"method": method, "url": url}
        text = str(exc)
        low = text.lower()
        if isinstance(exc, requests.exceptions.SSLError):
            if any(
                s in low for s in ("wrong version number", "record layer failure", "unknown protocol", "http request")
            ):
                return RegistryError(
                    f"TLS handshake with {host} failed: the server speaks plain HTTP, not HTTPS; "
                    "use --plain-http (tls_enabled: false in the workspace config)",
                    **kw,
                )
            if "certificate verify failed" in low or "hostname" in low or "doesn't match" in low:
                reason = re.search(r"certificate verify failed: ([^(')\"]+)", text)
                because = f" ({reason.group(1).strip()})" if reason else ""
                return RegistryError(
                    f"the TLS certificate of {host} is not trusted{because}: pass the registry's CA certificate "
                    "with --ca-file (ca_file), or --insecure to skip verification (not --plain-http: the server "
                    "does speak TLS)",
                    **kw,
                )
            return RegistryError(f"TLS handshake with {host} failed: {text[:300]}", **kw)
        if isinstance(exc, requests.exceptions.Timeout):
            return RegistryError(
                f"{host} did not answer {method} {url} in time ({attempts} attempts); "
                "check the network or the registry's health and run the command again",
                **kw,
            )
        if isinstance(exc, requests.exceptions.ConnectionError):
            if "refused" in low:
                return RegistryError(
                    f"cannot connect to {host} (connection refused after {attempts} attempts): is the registry "
                    "running? (`provisioning oci-registry status` for the local one)",
                    **kw,
                )
            if "name or service not known" in low or "nodename nor servname" in low or "failed to resolve" in low:
                return RegistryError(f"cannot resolve the registry host {host}: check its name", **kw)
            return RegistryError(
                f"the connection to {host} broke during {method} {url} ({exc.__class__.__name__}, "
                f"{attempts} attempts); nothing incomplete was stored: run the command again to finish",
                **kw,
            )
        return RegistryError(f"{method} {url} failed: {exc.__class__.__name__}: {text[:300]}", **kw)

    @staticmethod
    def _repository_of(url: str, scopes: Sequence[str]) -> str:
        m = _REPO_IN_PATH.search(urlsplit(url).path)
        if m:
            return m.group(1)
        for s in scopes:
            if s.startswith("repository:"):
                return s.split(":")[1]
        return ""

    def _no_catalog(self, resp: requests.Response | None) -> RegistryError:
        host = self.registry_host
        answer, kw = "", {}
        if resp is not None:
            codes, detail = _error_details(resp)
            answer = f" (GET /v2/_catalog answered {resp.status_code}{': ' + detail if detail else ''})"
            kw = {"method": "GET", "url": resp.url, "status": resp.status_code, "codes": codes}
        hint = (
            f"; if it lists repositories to logged-in users, run `provisioning oci login {host}`"
            if self.auth.known_credentials is None
            else ""
        )
        return RegistryError(
            f"{host} does not allow listing its repositories{answer}: many registries (GHCR, Docker Hub, ECR) "
            f"forbid the catalog. Name the repository instead (for example `provisioning oci tags NAME`){hint}",
            **kw,
        )
