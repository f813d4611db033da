"""``RemoteStorage``: one registry as a ``Storage`` (repositories by name, the catalog), credentials
checks and ``login``.

It puts the stack together once, calls going down only: ``Transport`` (the session, retries) under
``RegistryAuth`` (challenges, tokens fetched through that transport) under ``Connection`` (the ping,
authenticated requests), which every ``RemoteTarget`` it hands out uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import requests

from ..credentials import Credentials, normalize_host, store_login
from ..endpoint import Endpoint, parse_endpoint
from ..reference import validate_repository
from .auth import CATALOG_SCOPE, RegistryAuth
from .connection import Capabilities, Connection
from .errors import no_catalog
from .repository import RemoteTarget
from .transport import DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_THRESHOLD, DEFAULT_RETRIES, Transport
from .watch import Limits

log = logging.getLogger(__name__)

__all__ = ["Capabilities", "RemoteStorage", "login"]


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
        connect, first_byte = timeout if timeout is not None else (None, None)
        limits = limits or Limits.from_env(connect=connect, first_byte=first_byte, max_retry_after=max_retry_after)
        self.endpoint = host
        self.transport = Transport(host, session=session, limits=limits, retries=retries, backoff=backoff)
        self.auth = RegistryAuth(self.transport, credentials)
        self.connection = Connection(
            self.transport, self.auth, chunk_threshold=chunk_threshold, chunk_size=chunk_size, page_size=page_size
        )

    # what settings and tests read of the registry this storage reaches
    registry_host = property(lambda self: self.endpoint.host)
    base_url = property(lambda self: self.endpoint.base_url)
    plain_http = property(lambda self: self.endpoint.plain_http)
    ca_file = property(lambda self: self.endpoint.ca_file)
    insecure = property(lambda self: self.endpoint.insecure)
    session = property(lambda self: self.transport.session)
    limits = property(lambda self: self.transport.limits)
    timeout = property(lambda self: self.transport.limits.timeout)
    retries = property(lambda self: self.transport.policy.retries)
    capabilities = property(lambda self: self.connection.capabilities)

    def __repr__(self) -> str:
        return f"RemoteStorage({self.base_url!r})"

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RemoteStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping_on_doubt(self) -> None:
        """Let the first read's answer stand in for the ``/v2/`` ping (``Connection.ping_on_doubt``)."""
        self.connection.ping_on_doubt()

    def repository(self, name: str) -> RemoteTarget:
        return RemoteTarget(self.connection, validate_repository(name))

    # -- credentials -------------------------------------------------------------------------------
    def asks_for_credentials(self) -> bool:
        """Whether ``/v2/`` answers with an auth challenge (a local registry as started answers none)."""
        self.connection.ensure_ready()
        return self.auth.challenge is not None

    def check_credentials(self, credentials: Credentials | None) -> None:
        """Use ``credentials`` from now on and prove the registry (or its token service) accepts them."""
        self.auth.set_credentials(credentials)
        self.connection.ensure_ready()
        if self.auth.challenge is None:
            log.info("%s does not ask for credentials; nothing to check", self.registry_host)
            return
        self.connection.request("GET", "/v2/", ok=(200,)).close()

    # -- catalog -----------------------------------------------------------------------------------
    def catalog(self) -> list[str]:
        """All repository names (sorted); a clear error where the registry forbids ``_catalog``."""
        caps = self.connection.capabilities
        if caps.catalog is False:
            raise no_catalog(self.registry_host, None, anonymous=self.auth.known_credentials is None)
        names: list[str] = []
        first = "/v2/_catalog" + (f"?n={self.connection.page_size}" if self.connection.page_size else "")
        for resp in self.connection.pages(first, "repositories", scopes=[CATALOG_SCOPE], ok=(200, 401, 403, 404, 405)):
            match resp.status_code:
                case 200:
                    caps.catalog = True
                    names.extend(self.connection.string_list(resp, "repositories"))
                case _:
                    caps.catalog = False
                    raise no_catalog(self.registry_host, resp, anonymous=self.auth.known_credentials is None)
        return sorted(set(names))


def login(host: str, username: str, password: str, *, verify_with: RemoteStorage | None = None) -> Path:
    """Check the credentials against the registry (when ``verify_with``), then store them 0600 for ``host``."""
    if verify_with is not None and username and password:
        verify_with.check_credentials(Credentials(username=username, password=password, source="the login command"))
    return store_login(normalize_host(host), username, password)
