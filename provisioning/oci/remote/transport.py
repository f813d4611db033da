"""The request loop over one ``requests.Session``: auth bound per request, bounded retries with
backoff honouring ``Retry-After`` (idempotent requests only; a stream cannot be sent twice),
redacted debug logging, bodies read within the limits of ``watch``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from ...errors import ProvisioningError, RegistryError
from ..descriptor import MANIFEST_TYPES
from .watch import (
    MAX_BODY,
    MAX_ERROR_BODY,
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    WATCHDOG,
    BodyTooLarge,
    Limits,
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
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def redact_headers(headers: Any) -> dict[str, str]:
    """Headers fit for a log: credentials replaced."""
    return {k: ("<redacted>" if k.lower() in SENSITIVE_HEADERS else v) for k, v in dict(headers or {}).items()}


class _Transient(Exception):
    """A retryable failure inside a multi-request operation (an upload restarts from scratch)."""

    def __init__(self, method: str, url: str, failure: requests.Response | requests.RequestException) -> None:
        super().__init__(f"{method} {url}")
        self.method = method
        self.url = url
        self.failure = failure


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


class Transport:
    """Methods of ``RemoteStorage`` (transport)."""

    _unreachable = False  # see give_up()

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
        unproven = purpose == "registry" and self._unproven(method, data)
        if purpose == "registry" and not unproven:
            self._ensure_ready()
        full = url if "://" in url else self.base_url + url
        if data is not None and not isinstance(data, (bytes, str, dict)):
            retry = False  # a consumed stream cannot be sent again; the caller restarts
        attempt = 0
        while True:
            attempt += 1
            failure: requests.Response | requests.RequestException
            try:
                kwargs = {"params": params, "data": data, "headers": headers}
                if unproven:
                    unproven = False
                    resp = self._send_unproven(method, full, scopes, purpose, auth, **kwargs)
                else:
                    resp = self._send(method, full, scopes, purpose, auth, **kwargs)
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
            if self.give_up(failure, attempt):
                raise self.translate(method, full, failure, scopes=scopes, purpose=purpose, attempts=attempt) from None
            self.pause(failure, attempt)

    def give_up(self, failure: requests.Response | requests.RequestException, attempt: int) -> bool:
        """Whether a failed attempt is the last one.

        A host that could not be reached through a whole round of retries is marked unreachable for
        this process: later requests to it make one attempt each, not another round of backoff, so a
        registry that went away mid-run fails the remaining work in seconds, not minutes. Any answer
        from the host clears the mark.
        """
        lost = isinstance(failure, requests.ConnectionError)
        if lost and self._unreachable:
            return True
        if attempt < self.retries:
            return False
        if lost:
            self._unreachable = True
            log.info(
                "%s could not be reached in %d attempts; not retrying it again in this run", self.registry_host, attempt
            )
        return True

    def _send_unproven(
        self, method: str, url: str, scopes: Sequence[str], purpose: str, auth: Any, **kwargs: Any
    ) -> requests.Response:
        """A read sent before the ping: kept when its answer proves a registry, else ping and send again."""
        try:
            resp = self._send(method, url, scopes, purpose, auth, **kwargs)
        except requests.RequestException:
            resp = None
        if resp is not None and self._proven(resp):
            return resp
        if resp is not None:
            resp.close()
        self._ensure_ready()  # the ping's own checks name what is wrong (TLS, plain HTTP, not a registry)
        return self._send(method, url, scopes, purpose, auth, **kwargs)

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
            self._unreachable = False
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
