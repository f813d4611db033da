"""One registry as the repositories see it: the ``/v2/`` ping done once, authenticated requests, paged lists,
and what the registry was found to support.

Below the client and the repositories, above auth and the transport: every registry request a
repository makes goes through ``Connection.request``, which binds the auth for the request's scopes
and hands it to the transport.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

from ...errors import RegistryError
from ..endpoint import is_loopback
from .auth import RegistryAuth
from .errors import API_VERSION_HEADER, ErrorContext, not_a_registry, plain_http_to_tls, translate
from .transport import ANY_FINAL_STATUS, DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_THRESHOLD, Transport
from .watch import same_origin

log = logging.getLogger(__name__)


@dataclass
class Capabilities:
    """What one registry supports, learnt on first use (None = not known yet)."""

    referrers: bool | None = None
    mount: bool | None = None
    chunked_upload: bool | None = None
    catalog: bool | None = None


class Connection:
    """Authenticated requests to one registry, after one ``/v2/`` ping (thread-safe)."""

    def __init__(
        self,
        transport: Transport,
        auth: RegistryAuth,
        *,
        chunk_threshold: int = DEFAULT_CHUNK_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        page_size: int | None = None,
    ) -> None:
        self.transport = transport
        self.auth = auth
        self.host = transport.host
        self.chunk_threshold = chunk_threshold
        self.chunk_size = chunk_size
        self.page_size = page_size
        self.capabilities = Capabilities()
        self._ready = False
        self._ready_lock = threading.Lock()
        self._ping_first = True

    def context(self, scopes: Sequence[str] = ()) -> ErrorContext:
        return ErrorContext(tuple(scopes), "registry", lambda: self.auth.known_credentials)

    def request(
        self, method: str, url: str, *, scopes: Sequence[str] = (), ok: Iterable[int] = (200,), **kwargs: Any
    ) -> requests.Response:
        """A registry request with the auth for ``scopes`` (see ``Transport.request`` for the rest)."""
        unproven = not self._ping_first and not self._ready and method in ("GET", "HEAD") and "data" not in kwargs
        if not unproven:
            self.ensure_ready()
        resp = self.transport.request(
            method,
            url,
            ok=ok,
            auth=self.auth.bind(scopes),
            context=self.context(scopes),
            prove=self.ensure_ready if unproven else None,
            **kwargs,
        )
        if unproven and resp.headers.get(API_VERSION_HEADER):
            self._ready = True
        return resp

    def ping_on_doubt(self) -> None:
        """Skip the up-front ``/v2/`` ping: the first answer proves the registry speaks the API.

        For callers that open a registry for one cheap read (a resolve that learns from one HEAD
        that the catalog did not change). A read answered with the distribution API header is
        proof enough, and a 401 on it is answered like any other; anything else (a connection
        failure, an answer without the header) runs the ping after all, whose checks word the
        error exactly as before, and the read is sent again once the ping passed.
        """
        self._ping_first = False

    # -- readiness ---------------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        """Ping ``/v2/`` once: is it a registry, does it want auth (and which scheme)."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            resp = self.transport.request("GET", "/v2/", ok=ANY_FINAL_STATUS, context=ErrorContext(purpose="ping"))
            try:
                self._check_ping(resp)
            finally:
                resp.close()
            self._ready = True

    def _check_ping(self, resp: requests.Response) -> None:
        status = resp.status_code
        url = resp.request.url or self.transport.base_url + "/v2/"
        match status:
            case 401 if self.auth.learn(resp):
                return
            case _ if 200 <= status < 300 and (
                resp.headers.get(API_VERSION_HEADER) or not resp.content.strip().startswith(b"<")
            ):
                return
            case 400 if b"HTTP request to an HTTPS server" in resp.content:
                raise plain_http_to_tls(self.host, url, status, loopback=is_loopback(self.host))
            case 401 | 403:
                raise translate(self.host, "GET", url, resp, self.context())
        raise not_a_registry(self.host, "GET", url, resp)

    # -- lists -------------------------------------------------------------------------------------
    def pages(self, url: str, what: str, **kwargs: Any) -> Iterator[requests.Response]:
        """GET ``url`` and each ``Link: rel=next`` page after it: at most ``limits.max_pages`` pages, no page
        twice, none on another host."""
        seen: set[str] = set()
        next_url: str | None = url
        limit = self.transport.limits.max_pages
        while next_url:
            if next_url in seen:
                raise RegistryError(
                    f"{self.host} paginates {what} in a circle (back to {next_url}); the registry is broken",
                    url=next_url,
                )
            if len(seen) >= limit:
                raise RegistryError(
                    f"{self.host} sent more than {limit} pages of {what}; stopped there "
                    "(a registry that paginates without end)",
                    url=next_url,
                )
            seen.add(next_url)
            resp = self.request("GET", next_url, **kwargs)
            yield resp
            next_url = self._next_link(resp)

    def string_list(self, resp: requests.Response, key: str) -> list[str]:
        """``{"KEY": ["a", "b"]}`` from a registry answer; anything else names the registry as broken."""
        try:
            doc = resp.json()
        except ValueError:
            raise not_a_registry(self.host, "GET", resp.url, resp) from None
        values = doc.get(key) if isinstance(doc, dict) else None
        if values is None and isinstance(doc, dict):
            return []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise RegistryError(
                f"{self.host} answered GET {resp.url} with a malformed document: {key!r} must be a list of "
                "strings; the registry is broken",
                method="GET",
                url=resp.url,
                status=resp.status_code,
            )
        return values

    def _next_link(self, resp: requests.Response) -> str | None:
        nxt = resp.links.get("next", {}).get("url")
        if not nxt:
            return None
        url = urljoin(resp.url, nxt)
        if not same_origin(url, self.transport.base_url):
            raise RegistryError(
                f"{self.host} answered {resp.url} with a Link to another host ({url}); refused: the next "
                "page of a registry's list comes from the registry",
                url=resp.url,
            )
        return url
