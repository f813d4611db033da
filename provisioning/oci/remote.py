"""The remote store: an OCI distribution registry over HTTP(S), through one requests.Session.

``RemoteStorage`` is one registry (connection pool, auth, what the registry can do);
``RemoteTarget`` is one repository in it and speaks the ``Target`` protocol of store.py, so
push, pull and mirror are the same graph copy as for the embedded store.

Registries differ, so what one supports is learnt once and remembered per ``RemoteStorage``
(``capabilities``): the referrers API (else the ``sha256-<hex>`` tag schema), cross-repository
mount, chunked upload (else monolithic), and ``_catalog``. Every request goes through
``RemoteStorage.request``: auth, bounded retries with backoff honouring ``Retry-After``,
redacted debug logging, and the one place where HTTP answers and transport failures become
``RegistryError``/``AuthError``/``NotFound`` with a message that says what to do.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from .. import __version__
from ..errors import AuthError, DigestMismatch, NotFound, ProvisioningError, RegistryError, TagConflict
from .auth import CATALOG_SCOPE, RegistryAuth, parse_challenge, repository_scope
from .credentials import Credentials
from .descriptor import (
    INDEX,
    MANIFEST,
    MANIFEST_TYPES,
    MAX_MANIFEST_SIZE,
    Descriptor,
    InvalidContent,
    check_size,
    sha256_digest,
)
from .endpoint import Endpoint, is_loopback, parse_endpoint, split_host  # noqa: F401 (re-exported)
from .reference import tag_for_version, validate_repository
from .store import verified
from .transport import (
    MAX_BODY,
    MAX_ERROR_BODY,
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    WATCHDOG,
    BodyTooLarge,
    Limits,
    WatchedAdapter,
    body_chunks,
    cut_by_deadline,
    read_body,
    redirect_target,
    same_origin,
    too_slow,
    watched_response,
)

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_CHUNK_THRESHOLD = 8 * MiB  # blobs larger than this go up in chunks
DEFAULT_CHUNK_SIZE = 8 * MiB
POOL_SIZE = 16  # connections per host: enough for concurrent uploads
READ_SIZE = 256 * 1024
DEFAULT_TIMEOUT = (Limits.connect, Limits.first_byte)  # connect, first byte (transport.Limits has the rest)
DEFAULT_RETRIES = 4  # attempts in all, for one request or one whole blob upload
MAX_BACKOFF = 30.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ANY_FINAL_STATUS = frozenset(range(100, 600)) - RETRY_STATUSES
MANIFEST_ACCEPT = ", ".join(MANIFEST_TYPES)
API_VERSION_HEADER = "Docker-Distribution-Api-Version"
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_REPO_IN_PATH = re.compile(r"/v2/(.+?)/(?:manifests|blobs|tags|referrers)/")


def redact_headers(headers: Any) -> dict[str, str]:
    """Headers fit for a log: credentials replaced."""
    return {k: ("<redacted>" if k.lower() in SENSITIVE_HEADERS else v) for k, v in dict(headers or {}).items()}


@dataclass
class Capabilities:
    """What one registry supports, learnt on first use (None = not known yet)."""

    referrers: bool | None = None
    mount: bool | None = None
    chunked_upload: bool | None = None
    catalog: bool | None = None


class _Transient(Exception):
    """A retryable failure inside a multi-request operation (an upload restarts from scratch)."""

    def __init__(self, method: str, url: str, failure: requests.Response | requests.RequestException) -> None:
        super().__init__(f"{method} {url}")
        self.method = method
        self.url = url
        self.failure = failure


class _ChunkedUnsupported(Exception):
    """The registry refused the first PATCH: upload this blob (and later ones) monolithically."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


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


class _Replayable:
    """Upload content that can be read again from the start, so a failed upload restarts from scratch.

    Bytes and re-iterable containers are iterated again; a one-shot iterator (a fetch from
    another registry) is spooled as it passes (in memory up to 8 MiB, then a temporary file).
    """

    def __init__(self, content: Iterable[bytes]) -> None:
        self._spool: Any = None
        if isinstance(content, (bytes, bytearray, memoryview)):
            self._items: Iterable[bytes] | None = [bytes(content)]
            self._iterator: Iterator[bytes] | None = None
        elif iter(content) is not content:
            self._items, self._iterator = content, None
        else:
            self._items, self._iterator = None, iter(content)
            self._spool = tempfile.SpooledTemporaryFile(max_size=DEFAULT_CHUNK_THRESHOLD)  # noqa: SIM115
            self._spooled = 0

    def __iter__(self) -> Iterator[bytes]:
        if self._items is not None:
            yield from self._items
            return
        pos = 0
        while pos < self._spooled:
            self._spool.seek(pos)
            data = self._spool.read(min(READ_SIZE, self._spooled - pos))
            pos += len(data)
            yield data
        assert self._iterator is not None
        for chunk in self._iterator:
            if chunk:
                self._spool.seek(self._spooled)
                self._spool.write(chunk)
                self._spooled += len(chunk)
                yield chunk

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


class _SizedBody:
    """A streamed request body with a known length: sent with Content-Length, not chunked encoding."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = chunks
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


def _bounded(chunks: Iterable[bytes], desc: Descriptor) -> Iterator[bytes]:
    """Stop reading as soon as a download exceeds its descriptor's size."""
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > desc.size:
            raise DigestMismatch(f"the registry sent more than the {desc.size} bytes of {desc.digest}; rejected")
        yield chunk


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup a stream into pieces of exactly ``size`` bytes (the last may be shorter)."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + "digest=" + quote(digest, safe="")


class RemoteStorage:
    """One registry: ``repository(name)`` gives targets; ``catalog()`` lists repositories.

    ``host`` is an ``Endpoint`` or a registry name that ``parse_endpoint`` turns into one with
    ``plain_http``, ``ca_file`` and ``insecure`` (the rules, loopback included, live there). ``credentials`` may
    be a callable, called only when the registry asks for authentication. A ``session`` passed
    in is used as is (tests inject faults that way); otherwise one is made with a pool sized for
    concurrent uploads.
    """

    def __init__(
        self,
        host: str | Endpoint,
        *,
        plain_http: bool | None = None,
        ca_file: str | None = None,
        insecure: bool = False,
        credentials: Credentials | Callable[[], Credentials | None] | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] | None = None,
        retries: int = DEFAULT_RETRIES,
        backoff: float = 0.5,
        max_retry_after: float | None = None,
        limits: Limits | None = None,
        chunk_threshold: int = DEFAULT_CHUNK_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        page_size: int | None = None,
    ) -> None:
        if not isinstance(host, Endpoint):
            tls = None if plain_http is None else not plain_http
            host = parse_endpoint(host, tls=tls, ca_file=ca_file, insecure=insecure)
        self.endpoint = host
        self.registry_host = host.host
        self.plain_http = host.plain_http
        self.base_url = host.base_url
        self.ca_file = host.ca_file
        self.insecure = host.insecure
        self._verify: bool | str = host.verify
        # --insecure names this host: any other host (a redirect, a token service) is verified
        self._verify_elsewhere: bool | str = host.ca_file or True
        insecure, host = host.insecure, host.host
        if insecure and not self.plain_http:
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
            log.warning("TLS certificate verification is disabled for %s (--insecure)", host)
        self._own_session = session is None
        self.session = session or self._new_session()
        if self._own_session:
            # requests reads proxy and CA-bundle variables (and ~/.netrc) again on every request: a scan
            # of the environment and a file lookup each time, measurable in a resolve of hundreds of
            # requests. This storage talks to one host, so read them once, here.
            self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle and self._verify is True:
                self._verify = bundle
            if bundle and self._verify_elsewhere is True:
                self._verify_elsewhere = bundle
            self.session.trust_env = False
        connect, first_byte = timeout if timeout is not None else (None, None)
        self.limits = limits or Limits.from_env(connect=connect, first_byte=first_byte, max_retry_after=max_retry_after)
        self.timeout = self.limits.timeout
        self.retries = max(1, retries)
        self.backoff = backoff
        self.max_retry_after = self.limits.max_retry_after
        self.chunk_threshold = chunk_threshold
        self.chunk_size = chunk_size
        self.page_size = page_size
        self.capabilities = Capabilities()
        self.auth = RegistryAuth(self, credentials)
        self._ready = False
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RemoteStorage({self.base_url!r})"

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        adapter = WatchedAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = f"provisioning/{__version__}"
        return session

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> RemoteStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def repository(self, name: str) -> RemoteTarget:
        return RemoteTarget(self, validate_repository(name))

    # -- the one door ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str] = (),
        ok: Iterable[int] = (200,),
        headers: dict[str, str] | None = None,
        params: Any = None,
        data: Any = None,
        stream: bool = False,
        retry: bool = True,
        purpose: str = "registry",
        auth: Any = None,
        max_body: int = MAX_BODY,
    ) -> requests.Response:
        """Send one request: auth, retries with backoff, logging; any other answer becomes our error.

        ``purpose`` is ``registry`` (the default), ``ping`` (no auth, no readiness check) or
        ``token`` (the token service; ``auth`` is then basic credentials or None). With
        ``retry=False`` a retryable failure raises ``_Transient`` for the caller's own loop.
        A body that is not streamed is read here, at most ``max_body`` bytes; a streamed one stays
        under the transport's rate watch until the response is closed.
        """
        ok = frozenset(ok)
        if purpose == "registry":
            self._ensure_ready()
        full = url if "://" in url else self.base_url + url
        if data is not None and not isinstance(data, (bytes, str, dict)):
            retry = False  # a consumed stream cannot be sent again; the caller restarts
        attempt = 0
        while True:
            attempt += 1
            failure: requests.Response | requests.RequestException
            try:
                resp = self._send(method, full, scopes, purpose, auth, params=params, data=data, headers=headers)
            except requests.exceptions.SSLError as exc:
                raise self.translate(method, full, exc, scopes=scopes, purpose=purpose) from None
            except requests.exceptions.ReadTimeout as exc:  # a server that does not answer is not asked again
                raise self.translate(method, full, exc, scopes=scopes, purpose=purpose, attempts=attempt) from None
            except requests.RequestException as exc:
                log.debug("%s %s -> %s", method, full, exc.__class__.__name__)
                failure = exc
            else:
                self._log(resp)
                if resp.status_code in ok:
                    if not stream:
                        self._read_whole(resp, method, full, max_body)
                    return resp
                self._read_error_body(resp, method, full)
                if resp.status_code == 401 and getattr(resp, "auth_renewed", False) and not retry:
                    resp.close()
                    raise _Transient(method, full, resp)
                if resp.status_code not in RETRY_STATUSES:
                    try:
                        raise self.translate(method, full, resp, scopes=scopes, purpose=purpose) from None
                    finally:
                        resp.close()
                failure = resp
            if not retry:
                raise _Transient(method, full, failure)
            if attempt >= self.retries:
                raise self.translate(method, full, failure, scopes=scopes, purpose=purpose, attempts=attempt) from None
            self.pause(failure, attempt)

    def _send(
        self, method: str, url: str, scopes: Sequence[str], purpose: str, auth: Any, **kwargs: Any
    ) -> requests.Response:
        """One request, following redirects ourselves: credentials and ``--insecure`` only for our own origin,
        every hop under the transport's rate watch."""
        data = kwargs.get("data")
        credit = len(data) if isinstance(data, (bytes, str)) else len(data) if hasattr(data, "__len__") else 0
        for _hop in range(MAX_REDIRECTS + 1):
            own = same_origin(url, self.base_url)
            if purpose == "registry":
                hop_auth = self.auth.bind(scopes) if own else None
            else:
                hop_auth = auth  # the token service's credentials were cleared for its origin by auth.py
            previous = getattr(WATCHDOG.local, "current", None)
            watch = WATCHDOG.watch(self.limits, credit)
            try:
                resp = self.session.request(
                    method,
                    url,
                    stream=True,
                    timeout=self.limits.timeout,
                    verify=self._verify if own else self._verify_elsewhere,
                    auth=hop_auth,
                    allow_redirects=False,
                    **kwargs,
                )
            except requests.RequestException as exc:
                watch.done = True
                if watch.fired:
                    raise too_slow(self.registry_host, method, url, self.limits, watch) from None
                if not own and isinstance(exc, requests.exceptions.SSLError):
                    raise RegistryError(
                        f"{self.registry_host} sent this request to {urlsplit(url).netloc}, whose TLS certificate is "
                        f"not trusted ({str(exc)[:160]}); nothing was sent there. --insecure and --ca-file apply to "
                        f"{self.registry_host} only",
                        method=method,
                        url=url,
                    ) from None
                raise
            finally:
                WATCHDOG.local.current = previous
            resp = watched_response(resp, watch)
            if resp.status_code not in REDIRECT_STATUSES or not resp.headers.get("Location"):
                return resp
            nxt = redirect_target(resp, resp.url or url, self.base_url)
            resp.close()
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
                method, kwargs["data"] = "GET", None
            elif data is not None and not isinstance(data, (bytes, str, dict)):
                raise RegistryError(f"{url} redirected an upload whose body cannot be sent twice", url=url)
            log.debug("%s %s redirected to %s", method, url, nxt if same_origin(nxt, url) else "another host")
            kwargs["params"] = None  # the Location carries its own query
            url = nxt
        raise RegistryError(f"{url}: more than {MAX_REDIRECTS} redirects; refused", method=method, url=url)

    def _read_whole(self, resp: requests.Response, method: str, url: str, limit: int) -> None:
        """Read a body that is used whole, bounded in size (and in time by the rate watch)."""
        try:
            read_body(resp, limit, has_body=method != "HEAD")
        except BodyTooLarge:
            raise RegistryError(
                f"{self.registry_host} answered {method} {url} with more than {limit} bytes; refused (not what a "
                "registry sends for this request)",
                method=method,
                url=url,
                status=resp.status_code,
            ) from None
        except requests.RequestException as exc:
            raise self.broken_body(method, url, resp, exc) from None
        finally:
            resp.close()

    def broken_body(
        self, method: str, url: str, resp: requests.Response, exc: requests.RequestException
    ) -> ProvisioningError:
        """A body that failed while being read: cut for being too slow, or a transport failure."""
        watch = cut_by_deadline(resp)
        if watch is not None:
            return too_slow(self.registry_host, method, url, self.limits, watch)
        return self.translate(method, url, exc)

    def _read_error_body(self, resp: requests.Response, method: str, url: str) -> None:
        """An error answer's body, for its error codes: at most a little, and nothing that hangs."""
        try:
            read_body(resp, MAX_ERROR_BODY, has_body=method != "HEAD")
        except (BodyTooLarge, requests.RequestException):
            resp._content, resp._content_consumed = b"", True
        except ProvisioningError:
            resp._content, resp._content_consumed = b"", True

    def pause(self, failure: requests.Response | requests.RequestException, attempt: int) -> None:
        """Wait before another attempt: Retry-After when the registry says (up to a stated cap), else backoff."""
        delay = None
        if isinstance(failure, requests.Response):
            delay = _retry_after(failure.headers.get("Retry-After"))
            failure.close()
            if delay is not None and delay > self.max_retry_after:
                raise RegistryError(
                    f"{self.registry_host} asked to wait {delay:.0f}s before trying again (Retry-After, "
                    f"{failure.status_code}); this tool waits at most {self.max_retry_after:.0f}s "
                    "(PROVISIONING_HTTP_MAX_RETRY_AFTER): run the command again later",
                    method=failure.request.method if failure.request is not None else "",
                    url=failure.url or "",
                    status=failure.status_code,
                )
            status = str(failure.status_code)
        else:
            status = failure.__class__.__name__
        if delay is None:
            delay = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF) * (0.5 + random.random() / 2)
        log.info(
            "%s: %s, attempt %d of %d; retrying in %.1fs", self.registry_host, status, attempt, self.retries, delay
        )
        time.sleep(delay)

    def _log(self, resp: requests.Response) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        for r in [*resp.history, resp]:
            log.debug(
                "%s %s -> %s %s; request headers %s",
                r.request.method,
                r.request.url,
                r.status_code,
                r.reason,
                redact_headers(r.request.headers),
            )

    # -- readiness ---------------------------------------------------------------------------------
    def _ensure_ready(self) -> None:
        """Ping ``/v2/`` once: is it a registry, does it want auth (and which scheme)."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            resp = self.request("GET", "/v2/", ok=ANY_FINAL_STATUS, purpose="ping")
            try:
                self._check_ping(resp)
            finally:
                resp.close()
            self._ready = True

    def _check_ping(self, resp: requests.Response) -> None:
        status = resp.status_code
        url = resp.request.url or self.base_url + "/v2/"
        if status == 401 and self.auth.learn(resp):
            return
        if 200 <= status < 300 and (resp.headers.get(API_VERSION_HEADER) or not resp.content.strip().startswith(b"<")):
            return
        if status == 400 and b"HTTP request to an HTTPS server" in resp.content:
            raise RegistryError(
                f"{self.registry_host} speaks HTTPS but was contacted over plain HTTP"
                f"{' (the default for loopback registries)' if is_loopback(self.registry_host) else ''}: "
                "set tls_enabled: true in the workspace config or drop --plain-http",
                method="GET",
                url=url,
                status=status,
            )
        if status in (401, 403):
            raise self.translate("GET", url, resp, scopes=(), purpose="registry")
        raise self._not_a_registry("GET", url, resp)

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

    def asks_for_credentials(self) -> bool:
        """Whether ``/v2/`` answers with an auth challenge (a local registry as started answers none)."""
        self._ensure_ready()
        return self.auth.challenge is not None

    def check_credentials(self, credentials: Credentials | None) -> None:
        """Use ``credentials`` from now on and prove the registry (or its token service) accepts them."""
        self.auth.set_credentials(credentials)
        self._ensure_ready()
        if self.auth.challenge is None:
            log.info("%s does not ask for credentials; nothing to check", self.registry_host)
            return
        self.request("GET", "/v2/", ok=(200,)).close()

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

    # -- catalog -----------------------------------------------------------------------------------
    def catalog(self) -> list[str]:
        """All repository names (sorted); a clear error where the registry forbids ``_catalog``."""
        if self.capabilities.catalog is False:
            raise self._no_catalog(None)
        names: list[str] = []
        first = "/v2/_catalog" + (f"?n={self.page_size}" if self.page_size else "")
        for resp in self.pages(first, "repositories", scopes=[CATALOG_SCOPE], ok=(200, 401, 403, 404, 405)):
            if resp.status_code != 200:
                self.capabilities.catalog = False
                raise self._no_catalog(resp)
            self.capabilities.catalog = True
            names.extend(self._string_list(resp, "repositories"))
        return sorted(set(names))

    def pages(self, url: str, what: str, **kwargs: Any) -> Iterator[requests.Response]:
        """GET ``url`` and each ``Link: rel=next`` page after it: at most ``limits.max_pages`` pages, no page
        twice, none on another host."""
        seen: set[str] = set()
        next_url: str | None = url
        while next_url:
            if next_url in seen:
                raise RegistryError(
                    f"{self.registry_host} paginates {what} in a circle (back to {next_url}); the registry is broken",
                    url=next_url,
                )
            if len(seen) >= self.limits.max_pages:
                raise RegistryError(
                    f"{self.registry_host} sent more than {self.limits.max_pages} pages of {what}; stopped there "
                    "(a registry that paginates without end)",
                    url=next_url,
                )
            seen.add(next_url)
            resp = self.request("GET", next_url, **kwargs)
            yield resp
            next_url = self._next_link(resp)

    def _string_list(self, resp: requests.Response, key: str) -> list[str]:
        """``{"KEY": ["a", "b"]}`` from a registry answer; anything else names the registry as broken."""
        try:
            doc = resp.json()
        except ValueError:
            raise self._not_a_registry("GET", resp.url, resp) from None
        values = doc.get(key) if isinstance(doc, dict) else None
        if values is None and isinstance(doc, dict):
            return []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise RegistryError(
                f"{self.registry_host} answered GET {resp.url} with a malformed document: {key!r} must be a list of "
                "strings; the registry is broken",
                method="GET",
                url=resp.url,
                status=resp.status_code,
            )
        return values

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

    def _next_link(self, resp: requests.Response) -> str | None:
        nxt = resp.links.get("next", {}).get("url")
        if not nxt:
            return None
        url = urljoin(resp.url, nxt)
        if not same_origin(url, self.base_url):
            raise RegistryError(
                f"{self.registry_host} answered {resp.url} with a Link to another host ({url}); refused: the next "
                "page of a registry's list comes from the registry",
                url=resp.url,
            )
        return url


class RemoteTarget:
    """One repository of a registry, speaking the ``Target`` protocol (plus mount, delete, referrers).

    ``push`` takes one-shot streams: what it must be able to send again (an upload restarted
    after a fault) it spools as it streams, so copy() need not read a blob whole beforehand.
    """

    def __init__(self, storage: RemoteStorage, name: str) -> None:
        self.storage = storage
        self.name = name
        self._pull = (repository_scope(name, "pull"),)
        self._push = (repository_scope(name, "pull", "push"),)
        self._absent: set[str] = set()  # blobs exists() just found missing: push skips its own check

    def __repr__(self) -> str:
        return f"RemoteTarget({self.storage.registry_host}/{self.name})"

    @property
    def registry_host(self) -> str:
        """Targets with the same host may mount blobs from each other (copy() checks this)."""
        return self.storage.registry_host

    @property
    def referrers_api(self) -> bool | None:
        """Whether the registry has the referrers API (None: not learnt yet)."""
        return self.storage.capabilities.referrers

    def _path(self, kind: str, ref: str) -> str:
        return f"/v2/{self.name}/{kind}/{ref}"

    def _kind(self, desc: Descriptor) -> str:
        return "manifests" if desc.is_manifest else "blobs"

    def _accept(self, desc: Descriptor | None = None) -> dict[str, str]:
        return {"Accept": MANIFEST_ACCEPT} if desc is None or desc.is_manifest else {}

    # -- read --------------------------------------------------------------------------------------
    def exists(self, desc: Descriptor) -> bool:
        found = self._head(desc, self._pull)
        if not found and not desc.is_manifest:
            self._absent.add(desc.digest)
        return found

    def expect_absent(self, desc: Descriptor) -> None:
        """The caller knows the blob is new: the next push uploads it without asking first."""
        self._absent.add(desc.digest)

    def _head(self, desc: Descriptor, scopes: Sequence[str]) -> bool:
        resp = self.storage.request(
            "HEAD", self._path(self._kind(desc), desc.digest), scopes=scopes, ok=(200, 404), headers=self._accept(desc)
        )
        resp.close()
        return resp.status_code == 200

    def fetch(self, desc: Descriptor) -> Iterator[bytes]:
        """Stream content, verifying size and digest as it passes (DigestMismatch before the last chunk)."""
        check_size(desc, f"{self.storage.registry_host}/{self.name}")
        path = self._path(self._kind(desc), desc.digest)
        resp = self.storage.request(
            "GET", path, scopes=self._pull, ok=(200, 404), stream=True, headers=self._accept(desc)
        )
        if resp.status_code == 404:
            resp.close()
            raise NotFound(f"{self.storage.registry_host}/{self.name}@{desc.digest} not found")
        return self._stream(desc, resp)

    def _stream(self, desc: Descriptor, resp: requests.Response) -> Iterator[bytes]:
        def body() -> Iterator[bytes]:
            try:
                yield from body_chunks(resp)
            except requests.RequestException as exc:
                raise self.storage.broken_body("GET", resp.url, resp, exc) from None

        try:
            yield from verified(desc, _bounded(body(), desc))
        except DigestMismatch as exc:
            raise DigestMismatch(f"{self.storage.registry_host}/{self.name}: {exc}") from None
        finally:
            resp.close()

    def resolve(self, reference: str) -> Descriptor:
        """Tag or digest -> the manifest's descriptor, by HEAD (GET when the registry omits the digest)."""
        ref = reference if reference.startswith("sha256:") else tag_for_version(reference)
        resp = self.storage.request(
            "HEAD", self._path("manifests", ref), scopes=self._pull, ok=(200, 404), headers=self._accept()
        )
        resp.close()
        if resp.status_code == 404:
            raise self._not_found(ref)
        digest = resp.headers.get("Docker-Content-Digest", "")
        media_type = _media_type(resp)
        size = resp.headers.get("Content-Length", "")
        if not digest or media_type not in MANIFEST_TYPES or not size.isdigit():
            return self.fetch_reference(ref)[0]
        if ref.startswith("sha256:") and digest != ref:
            raise DigestMismatch(
                f"{self.storage.registry_host}/{self.name}: asked for {ref}, the registry named {digest}"
            )
        return Descriptor(media_type, digest, int(size))

    def fetch_reference(self, reference: str) -> tuple[Descriptor, bytes]:
        """Resolve and fetch a manifest in one GET (the optional power store.fetch_manifest uses)."""
        ref = reference if reference.startswith("sha256:") else tag_for_version(reference)
        resp = self.storage.request(
            "GET", self._path("manifests", ref), scopes=self._pull, ok=(200, 404), stream=True, headers=self._accept()
        )
        try:
            if resp.status_code == 404:
                raise self._not_found(ref)
            data = b""
            for chunk in body_chunks(resp):
                data += chunk
                if len(data) > MAX_MANIFEST_SIZE:
                    raise RegistryError(
                        f"{self.storage.registry_host}/{self.name}:{ref} is larger than {MAX_MANIFEST_SIZE} bytes; "
                        "not a manifest"
                    )
        except requests.RequestException as exc:
            raise self.storage.broken_body("GET", resp.url, resp, exc) from None
        finally:
            resp.close()
        digest = sha256_digest(data)
        named = resp.headers.get("Docker-Content-Digest")
        if (ref.startswith("sha256:") and digest != ref) or (named and named != digest):
            raise DigestMismatch(
                f"{self.storage.registry_host}/{self.name}:{ref}: the manifest's content has digest {digest}, "
                f"not {ref if ref.startswith('sha256:') else named}; rejected"
            )
        media_type = _media_type(resp)
        if media_type not in MANIFEST_TYPES:
            try:
                media_type = json.loads(data).get("mediaType") or MANIFEST
            except (ValueError, AttributeError):
                media_type = MANIFEST
        return Descriptor(media_type, digest, len(data)), data

    def _not_found(self, ref: str) -> NotFound:
        sep = "@" if ref.startswith("sha256:") else ":"
        return NotFound(
            f"{self.storage.registry_host}/{self.name}{sep}{ref} not found: check the name and version "
            f"(`provisioning oci tags {self.name}` lists the versions)"
        )

    def tags(self) -> list[str]:
        """All tags, sorted, following Link pagination; empty when the repository does not exist."""
        page = self.storage.page_size
        first = f"/v2/{self.name}/tags/list" + (f"?n={page}" if page else "")
        found: list[str] = []
        for resp in self.storage.pages(first, f"tags of {self.name}", scopes=self._pull, ok=(200, 404)):
            if resp.status_code == 404:
                return []
            found.extend(self.storage._string_list(resp, "tags"))
        return sorted(set(found))

    # -- write -------------------------------------------------------------------------------------
    def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        """Manifests are PUT by digest; blobs are checked first, then uploaded (chunked when large)."""
        if desc.is_manifest:
            self._put_manifest(desc, self._read_manifest(desc, content), desc.digest)
        else:
            self._push_blob(desc, content)

    def push_reference(self, desc: Descriptor, content: Iterable[bytes], tag: str, *, immutable: bool = False) -> None:
        """PUT a manifest by tag in one request (push and tag together).

        ``immutable``: the tag may not move. Registries have no conditional PUT, so the tag is checked just
        before the PUT and again after it: of two concurrent pushes with different content, the one whose
        content the tag holds afterwards won, and the other reports the conflict (``TagConflict``).
        """
        data = self._read_manifest(desc, content)
        ref = tag_for_version(tag)
        if immutable:
            self._check_tag(ref, desc, before=True)
        self._put_manifest(desc, data, ref)
        if immutable:
            self._check_tag(ref, desc, before=False)

    def _check_tag(self, ref: str, desc: Descriptor, *, before: bool) -> None:
        try:
            now = self.resolve(ref).digest
        except NotFound:
            if before:
                return
            now = "nothing (it was deleted)"
        if now == desc.digest:
            return
        where = f"{self.storage.registry_host}/{self.name}:{ref}"
        when = "was published with other content" if before else "was overwritten by another push"
        raise TagConflict(
            f"{where} {when} ({now}) while this push ({desc.digest}) was in flight; the other push won: the tag holds "
            f"{now}. Versions are immutable: check which content is right and bump the version",
            reference=where,
            ours=desc.digest,
            winner=now,
        )

    def tag(self, desc: Descriptor, tag: str) -> None:
        """Point ``tag`` at an existing manifest by PUTting its bytes again under the tag."""
        _, data = self.fetch_reference(desc.digest)
        self._put_manifest(desc, data, tag_for_version(tag))

    def delete(self, desc: Descriptor) -> None:
        """Delete a manifest (or blob) by digest; its tags go with it."""
        resp = self.storage.request(
            "DELETE",
            self._path(self._kind(desc), desc.digest),
            scopes=(repository_scope(self.name, "delete"),),
            ok=(200, 202, 204, 404),
        )
        resp.close()
        if resp.status_code == 404:
            raise NotFound(f"{self.storage.registry_host}/{self.name}@{desc.digest} not found; nothing deleted")

    def mount(self, desc: Descriptor, from_repository: str) -> bool:
        """Link a blob from another repository of this registry; False when the registry would not."""
        caps = self.storage.capabilities
        if caps.mount is False or from_repository == self.name:
            return False
        scopes = (*self._push, repository_scope(from_repository, "pull"))
        query = f"?mount={quote(desc.digest, safe='')}&from={quote(from_repository, safe='/')}"
        resp = self.storage.request("POST", f"/v2/{self.name}/blobs/uploads/{query}", scopes=scopes, ok=(201, 202))
        resp.close()
        if resp.status_code == 201:
            caps.mount = True
            return True
        self._cancel(self._location(resp))
        if caps.mount is None:
            try:
                there = self.storage.repository(from_repository).exists(desc)
            except ProvisioningError:  # no pull permission on the source: we learnt nothing
                there = False
            if there:
                caps.mount = False  # the blob was there to mount and the registry did not: it cannot
                log.info("%s does not mount blobs across repositories; uploading", self.storage.registry_host)
        return False

    def _read_manifest(self, desc: Descriptor, content: Iterable[bytes]) -> bytes:
        if desc.size > MAX_MANIFEST_SIZE:
            raise RegistryError(f"manifest {desc.digest} is {desc.size} bytes; registries accept at most 4 MiB")
        return b"".join(verified(desc, content))

    def _put_manifest(self, desc: Descriptor, data: bytes, ref: str) -> None:
        resp = self.storage.request(
            "PUT",
            self._path("manifests", ref),
            scopes=self._push,
            ok=(200, 201, 202, 204),
            data=data,
            headers={"Content-Type": desc.media_type},
        )
        resp.close()
        named = resp.headers.get("Docker-Content-Digest")
        if named and named != desc.digest:
            raise RegistryError(
                f"{self.storage.registry_host} stored manifest {desc.digest} as {named}: the registry rewrote it; "
                "it may not support this manifest media type"
            )
        if resp.headers.get("OCI-Subject"):
            self.storage.capabilities.referrers = True
        elif desc.media_type in (MANIFEST, INDEX):
            self._index_referrer(desc, data)

    def _index_referrer(self, desc: Descriptor, data: bytes) -> None:
        """Without the referrers API, record a manifest with a ``subject`` in the ``sha256-<hex>`` tag index."""
        try:
            doc = json.loads(data)
        except ValueError:
            return
        subject = doc.get("subject") if isinstance(doc, dict) else None
        if not isinstance(subject, dict) or not str(subject.get("digest", "")).startswith("sha256:"):
            return
        if self.storage.capabilities.referrers:
            return
        entry = Descriptor(
            desc.media_type,
            desc.digest,
            desc.size,
            annotations=dict(doc.get("annotations") or {}),
            artifact_type=doc.get("artifactType") or (doc.get("config") or {}).get("mediaType"),
        )
        tag = "sha256-" + subject["digest"].split(":", 1)[1]
        try:
            _, current = self.fetch_reference(tag)
            manifests = json.loads(current).get("manifests") or []
        except NotFound:
            manifests = []
        if any(m.get("digest") == desc.digest for m in manifests):
            return
        manifests.append(entry.to_dict())
        index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}, indent=None).encode()
        self._put_manifest(Descriptor.of(INDEX, index), index, tag)

    def referrers(self, desc: Descriptor, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``desc``: the referrers API, else the tag-schema index."""
        caps = self.storage.capabilities
        if caps.referrers is not False:
            query = f"?artifactType={quote(artifact_type, safe='')}" if artifact_type else ""
            url = self._path("referrers", desc.digest) + query
            found: list[dict[str, Any]] = []
            filtered = False
            for resp in self.storage.pages(
                url, f"referrers of {desc.digest}", scopes=self._pull, ok=ANY_FINAL_STATUS, headers={"Accept": INDEX}
            ):
                resp.close()
                try:
                    doc = resp.json() if resp.status_code == 200 else None
                except ValueError:
                    doc = None
                if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
                    if resp.status_code not in (404, 405, 400) and found == []:
                        log.debug("referrers API of %s answered %s", self.storage.registry_host, resp.status_code)
                    caps.referrers = False
                    break
                caps.referrers = True
                filtered = filtered or "artifactType" in resp.headers.get("OCI-Filters-Applied", "")
                found.extend(doc["manifests"])
            if caps.referrers:
                return self._filter(found, artifact_type if not filtered else None)
        tag = "sha256-" + desc.digest.split(":", 1)[1]
        try:
            _, data = self.fetch_reference(tag)
        except NotFound:
            return []
        try:
            manifests = json.loads(data).get("manifests") or []
        except (ValueError, AttributeError):
            return []
        return self._filter(manifests, artifact_type)

    def _filter(self, manifests: Any, artifact_type: str | None) -> list[Descriptor]:
        try:
            if not isinstance(manifests, list):
                raise InvalidContent("'manifests' must be a list of descriptors")
            out = [Descriptor.from_dict(m) for m in manifests]
        except InvalidContent as exc:
            raise RegistryError(
                f"{self.storage.registry_host}/{self.name}: the referrers of a manifest are malformed: {exc}"
            ) from None
        return [d for d in out if artifact_type is None or d.artifact_type == artifact_type]

    # -- blob upload -------------------------------------------------------------------------------
    def _push_blob(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        if desc.digest in self._absent:
            self._absent.discard(desc.digest)  # copy() asked a moment ago: no second HEAD
        elif self._head(desc, self._push):
            return
        storage = self.storage
        caps = storage.capabilities
        source = _Replayable(content)
        attempt = 0
        try:
            while True:
                try:
                    if desc.size > storage.chunk_threshold and caps.chunked_upload is not False:
                        self._upload_chunked(desc, source)
                    else:
                        self._upload_monolithic(desc, source)
                    return
                except _ChunkedUnsupported:
                    caps.chunked_upload = False
                    log.info("%s refused a chunked upload; uploading whole blobs", storage.registry_host)
                except _Transient as t:
                    attempt += 1
                    if attempt >= storage.retries:
                        raise storage.translate(
                            t.method, t.url, t.failure, scopes=self._push, attempts=attempt
                        ) from None
                    storage.pause(t.failure, attempt)
                    try:  # the blob may have landed although the answer was lost
                        if self._head(desc, self._push):
                            return
                    except ProvisioningError:
                        pass
        finally:
            source.close()

    def _location(self, resp: requests.Response, previous: str | None = None) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(
                f"{self.storage.registry_host} answered {resp.status_code} to an upload without a Location header",
                method=resp.request.method or "",
                url=resp.url,
                status=resp.status_code,
            )
        return urljoin(previous or resp.url, loc)

    def _start_upload(self) -> requests.Response:
        resp = self.storage.request(
            "POST", f"/v2/{self.name}/blobs/uploads/", scopes=self._push, ok=(202,), retry=False
        )
        resp.close()
        return resp

    def _cancel(self, location: str) -> None:
        """Best effort: drop an upload session we will not finish."""
        try:
            self.storage.request("DELETE", location, scopes=self._push, ok=ANY_FINAL_STATUS, retry=False).close()
        except (ProvisioningError, _Transient):
            pass

    def _upload_monolithic(self, desc: Descriptor, source: _Replayable) -> None:
        location = self._location(self._start_upload())
        chunks = verified(desc, source)
        try:
            body: Any = b"".join(chunks) if desc.size == 0 else _SizedBody(chunks, desc.size)
            self.storage.request(
                "PUT",
                _with_digest(location, desc.digest),
                scopes=self._push,
                ok=(201, 204),
                data=body,
                headers={"Content-Type": "application/octet-stream"},
                retry=False,
            ).close()
        except DigestMismatch:
            self._cancel(location)
            raise

    def _upload_chunked(self, desc: Descriptor, source: _Replayable) -> None:
        start = self._start_upload()
        location = self._location(start)
        minimum = start.headers.get("OCI-Chunk-Min-Length", "")
        size = max(self.storage.chunk_size, int(minimum) if minimum.isdigit() else 0)
        offset = 0
        try:
            for piece in _rechunk(verified(desc, source), size):
                end = offset + len(piece) - 1
                refusals = (400, 405, 415, 416, 501) if offset == 0 else ()
                resp = self.storage.request(
                    "PATCH",
                    location,
                    scopes=self._push,
                    ok=(202, *refusals),
                    data=piece,
                    headers={"Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{end}"},
                    retry=False,
                )
                resp.close()
                if resp.status_code != 202:
                    self._cancel(location)
                    raise _ChunkedUnsupported
                location = self._location(resp, location)
                offset = end + 1
            self.storage.request(
                "PUT", _with_digest(location, desc.digest), scopes=self._push, ok=(201, 204), data=b"", retry=False
            ).close()
        except DigestMismatch:
            self._cancel(location)
            raise
        self.storage.capabilities.chunked_upload = True
