"""``RemoteStorage``: one registry (its endpoint, session, auth, what it can do), the ``/v2/`` ping,
credentials checks and the catalog.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

from ... import __version__
from ...errors import RegistryError
from ..credentials import Credentials
from ..endpoint import Endpoint, is_loopback, parse_endpoint
from ..reference import validate_repository
from .auth import CATALOG_SCOPE, RegistryAuth
from .errors import API_VERSION_HEADER, Translation
from .repository import RemoteTarget
from .transport import (
    ANY_FINAL_STATUS,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CHUNK_THRESHOLD,
    DEFAULT_RETRIES,
    POOL_SIZE,
    Transport,
)
from .watch import (
    Limits,
    WatchedAdapter,
    same_origin,
)

log = logging.getLogger(__name__)


@dataclass
class Capabilities:
    """What one registry supports, learnt on first use (None = not known yet)."""

    referrers: bool | None = None
    mount: bool | None = None
    chunked_upload: bool | None = None
    catalog: bool | None = None


class RemoteStorage(Transport, Translation):
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
        self._ping_first = True

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

    def ping_on_doubt(self) -> None:
        """Skip the up-front ``/v2/`` ping: the first answer proves the registry speaks the API.

        For callers that open a registry for one cheap read (a resolve that learns from one HEAD
        that the catalog did not change). A read answered with the distribution API header is
        proof enough, and a 401 on it is answered like any other; anything else (a connection
        failure, an answer without the header) runs the ping after all, whose checks word the
        error exactly as before, and the read is sent again once the ping passed.
        """
        self._ping_first = False

    def _unproven(self, method: str, data: Any) -> bool:
        """Whether this request goes out before the ping (see ``ping_on_doubt``)."""
        return not self._ping_first and not self._ready and method in ("GET", "HEAD") and data is None

    def _proven(self, resp: requests.Response) -> bool:
        if resp.headers.get(API_VERSION_HEADER):
            self._ready = True
            return True
        return False

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
