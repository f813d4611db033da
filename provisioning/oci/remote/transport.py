"""The HTTP of one registry: the session, redirects, bounded reads, redacted debug logging, under the one
retry policy of ``retry`` (idempotent requests only: a stream cannot be sent twice).

Knows nothing of auth beyond the requests auth object a caller hands it for one request; failures
become our errors through ``errors.translate``.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import requests
from requests.structures import CaseInsensitiveDict

from ... import __version__
from ...errors import ProvisioningError, RegistryError
from ..descriptor import MANIFEST_TYPES
from ..endpoint import Endpoint
from .errors import API_VERSION_HEADER, ErrorContext, translate, untrusted_elsewhere
from .retry import _NO_CONTEXT, DEFAULT_RETRIES, RETRY_STATUSES, RetryPolicy, Transient
from .watch import (
    MAX_BODY,
    MAX_ERROR_BODY,
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    WATCHDOG,
    BodyTooLarge,
    Limits,
    WatchedAdapter,
    cut_by_deadline,
    read_body,
    redirect_target,
    same_origin,
    too_slow,
    watched_response,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

MiB = 1024 * 1024
DEFAULT_CHUNK_THRESHOLD = 8 * MiB  # blobs larger than this go up in chunks
DEFAULT_CHUNK_SIZE = 8 * MiB
POOL_SIZE = 16  # connections per host: enough for concurrent uploads
READ_SIZE = 256 * 1024
DEFAULT_TIMEOUT = (Limits.connect, Limits.first_byte)  # connect, first byte (transport.Limits has the rest)
ANY_FINAL_STATUS = frozenset(range(100, 600)) - RETRY_STATUSES
MANIFEST_ACCEPT = ", ".join(MANIFEST_TYPES)
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def redact_headers(headers: Any) -> dict[str, str]:
    """Headers fit for a log: credentials replaced."""
    return {k: ("<redacted>" if k.lower() in SENSITIVE_HEADERS else v) for k, v in dict(headers or {}).items()}


# the rest of a URL after our base that requests' prepare_url leaves as it is (no quoting, no fragment)
_CANONICAL_REST = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")


def _prepared_url(url: str) -> str | None:
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
    except requests.RequestException:
        return None
    return prepared.url


def _rereadable(data: Any) -> bool:
    return data is None or isinstance(data, (bytes, str, dict))


class Transport:
    """One registry's session and request loop.

    A ``session`` passed in is used as is (tests inject faults that way); otherwise one is made
    with a pool sized for concurrent uploads, reading proxy and CA-bundle variables once.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        session: requests.Session | None = None,
        limits: Limits | None = None,
        retries: int = DEFAULT_RETRIES,
        backoff: float = 0.5,
    ) -> None:
        self.endpoint = endpoint
        self.host = endpoint.host
        self.base_url = endpoint.base_url
        self.verify: bool | str = endpoint.verify
        # --insecure names this host: any other host (a redirect, a token service) is verified
        self.verify_elsewhere: bool | str = endpoint.ca_file or True
        if endpoint.insecure and not endpoint.plain_http:
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
            log.warning("TLS certificate verification is disabled for %s (--insecure)", self.host)
        self._own_session = session is None
        self.session = session or self._new_session()
        if self._own_session:
            # requests reads proxy and CA-bundle variables (and ~/.netrc) again on every request: a scan
            # of the environment and a file lookup each time, measurable in a resolve of hundreds of
            # requests. This transport talks to one host, so read them once, here.
            self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle and self.verify is True:
                self.verify = bundle
            if bundle and self.verify_elsewhere is True:
                self.verify_elsewhere = bundle
            self.session.trust_env = False
        self.limits = limits or Limits.from_env()
        api_root = self.base_url + "/v2/"
        self._canonical_base = self.base_url + "/" if _prepared_url(api_root) == api_root else "\0"  # \0: never
        self._base_len = len(self._canonical_base)
        self.policy = RetryPolicy(
            self.host, retries=retries, backoff=backoff, max_retry_after=self.limits.max_retry_after
        )

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

    # -- the one door ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        ok: Iterable[int] = (200,),
        auth: Any = None,
        auth_everywhere: bool = False,
        context: ErrorContext = _NO_CONTEXT,
        headers: dict[str, str] | None = None,
        params: Any = None,
        data: Any = None,
        stream: bool = False,
        retry: bool = True,
        max_body: int = MAX_BODY,
        prove: Callable[[], None] | None = None,
    ) -> requests.Response:
        """Send one request; an answer not in ``ok`` becomes our error (``context`` says what it was for).

        ``auth`` goes with the request to the registry's own origin only, unless ``auth_everywhere``
        (a token service's credentials, already cleared for its origin by auth). With
        ``retry=False``, or a body that cannot be read twice, a retryable failure raises
        ``Transient`` for the caller's ``retrying``. A body that is not streamed is read here, at most
        ``max_body`` bytes; a streamed one stays under the rate watch until the response is closed.

        ``prove`` (the caller's ``/v2/`` ping) marks a read sent before the registry was proven: an
        answer carrying the distribution API header proves it; anything else (a failure, an answer
        without the header) runs ``prove``, whose checks say what is wrong, and sends the read again.
        """
        ok = frozenset(ok)
        full = url if "://" in url else self.base_url + url

        def attempt(n: int) -> requests.Response:
            return self._attempt(
                method,
                full,
                n,
                ok=ok,
                stream=stream,
                max_body=max_body,
                context=context,
                auth=auth,
                auth_everywhere=auth_everywhere,
                params=params,
                data=data,
                headers=headers,
                prove=prove if n == 1 else None,
            )

        if not retry or not _rereadable(data):  # a consumed stream cannot be sent again: the caller restarts
            return attempt(1)
        return self.policy.run(attempt)  # type: ignore[return-value]  # None only with ``done``

    def retrying(self, operation: Callable[[int], T], *, done: Callable[[], bool] | None = None) -> T | None:
        """Run a multi-request operation under the one retry policy (``RetryPolicy.run``)."""
        return self.policy.run(operation, done=done)

    def _attempt(
        self,
        method: str,
        url: str,
        attempt: int,
        *,
        ok: frozenset[int],
        stream: bool,
        max_body: int,
        context: ErrorContext,
        prove: Callable[[], None] | None,
        **send: Any,
    ) -> requests.Response:
        """One attempt: a final answer in ``ok`` is returned, a retryable one raises ``Transient``."""
        failure: requests.Response | requests.RequestException
        try:
            resp = self._send_proving(method, url, prove, **send) if prove else self._send(method, url, **send)
        except requests.exceptions.SSLError as exc:
            raise translate(self.host, method, url, exc, context) from None
        except requests.exceptions.ReadTimeout as exc:  # a server that does not answer is not asked again
            raise translate(self.host, method, url, exc, context, attempts=attempt) from None
        except requests.RequestException as exc:
            log.debug("%s %s -> %s", method, url, exc.__class__.__name__)
            failure = exc
        else:
            self._log(resp)
            if resp.status_code in ok:
                if not stream:
                    self._read_whole(resp, method, url, max_body)
                return resp
            self._read_error_body(resp, method, url)
            if resp.status_code == 401 and getattr(resp, "auth_renewed", False):
                resp.close()  # the token was renewed for a body that could not be resent: start again
                raise Transient(method, url, resp, context)
            if resp.status_code not in RETRY_STATUSES:
                try:
                    raise translate(self.host, method, url, resp, context, attempts=attempt) from None
                finally:
                    resp.close()
            failure = resp
        raise Transient(method, url, failure, context)

    def _send_proving(self, method: str, url: str, prove: Callable[[], None], **send: Any) -> requests.Response:
        """A read sent before the ping: kept when its answer proves a registry, else ping and send again."""
        try:
            resp: requests.Response | None = self._send(method, url, **send)
        except requests.RequestException:
            resp = None
        if resp is not None and resp.headers.get(API_VERSION_HEADER):
            return resp
        if resp is not None:
            resp.close()
        prove()  # the ping's own checks name what is wrong (TLS, plain HTTP, not a registry)
        return self._send(method, url, **send)

    def _send(self, method: str, url: str, *, auth: Any, auth_everywhere: bool, **kwargs: Any) -> requests.Response:
        """One request, following redirects ourselves: credentials and ``--insecure`` only for our own origin,
        every hop under the transport's rate watch."""
        data = kwargs.get("data")
        credit = len(data) if isinstance(data, (bytes, str)) else len(data) if hasattr(data, "__len__") else 0
        for _hop in range(MAX_REDIRECTS + 1):
            own = same_origin(url, self.base_url)
            previous = getattr(WATCHDOG.local, "current", None)
            watch = WATCHDOG.watch(self.limits, credit)
            try:
                prepared = self._prepare(method, url, auth=auth if own or auth_everywhere else None, **kwargs)
                resp = self.session.send(
                    prepared,
                    stream=True,
                    timeout=self.limits.timeout,
                    verify=(self.verify if own else self.verify_elsewhere) if url.startswith("https:") else True,
                    proxies=self.session.proxies,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                watch.done = True
                if watch.fired:
                    raise too_slow(self.host, method, url, self.limits, watch) from None
                if not own and isinstance(exc, requests.exceptions.SSLError):
                    raise untrusted_elsewhere(self.host, method, url, exc) from None
                raise
            finally:
                WATCHDOG.local.current = previous
            resp = watched_response(resp, watch)
            self.policy.answered()
            if resp.status_code not in REDIRECT_STATUSES or not resp.headers.get("Location"):
                return resp
            nxt = redirect_target(resp, resp.url or url, self.base_url)
            resp.close()
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
                method, kwargs["data"] = "GET", None
            elif not _rereadable(data):
                raise RegistryError(f"{url} redirected an upload whose body cannot be sent twice", url=url)
            log.debug("%s %s redirected to %s", method, url, nxt if same_origin(nxt, url) else "another host")
            kwargs["params"] = None  # the Location carries its own query
            url = nxt
        raise RegistryError(f"{url}: more than {MAX_REDIRECTS} redirects; refused", method=method, url=url)

    def _prepare(
        self, method: str, url: str, *, auth: Any, headers: dict[str, str] | None, params: Any, data: Any
    ) -> requests.PreparedRequest:
        """What ``Session.request`` would send, built by requests' own steps without its per-call merging.

        ``Session.request`` merges cookies, settings and hooks into fresh objects on every call: about
        half of the CPU of a small read on loopback, which is what bounds a resolve of hundreds of
        requests. The session's headers come first and a ``None`` among ours removes one, as requests
        does.
        """
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        if params is None and url.startswith(self._canonical_base) and _CANONICAL_REST.fullmatch(url, self._base_len):
            prepared.url = url  # our own URL in the form prepare_url gives: parsing it again changes nothing
        else:
            prepared.prepare_url(url, params)
        merged = CaseInsensitiveDict(self.session.headers)
        for name, value in (headers or {}).items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        prepared.prepare_headers(merged)
        prepared.prepare_cookies(self.session.cookies)
        prepared.prepare_body(data, None)
        prepared.prepare_auth(auth, url)
        return prepared

    def _read_whole(self, resp: requests.Response, method: str, url: str, limit: int) -> None:
        """Read a body that is used whole, bounded in size (and in time by the rate watch)."""
        try:
            read_body(resp, limit, has_body=method != "HEAD")
        except BodyTooLarge:
            raise RegistryError(
                f"{self.host} answered {method} {url} with more than {limit} bytes; refused (not what a "
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
            return too_slow(self.host, method, url, self.limits, watch)
        return translate(self.host, method, url, exc)

    def _read_error_body(self, resp: requests.Response, method: str, url: str) -> None:
        """An error answer's body, for its error codes: at most a little, and nothing that hangs."""
        try:
            read_body(resp, MAX_ERROR_BODY, has_body=method != "HEAD")
        except (BodyTooLarge, requests.RequestException, ProvisioningError):
            resp._content, resp._content_consumed = b"", True

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
