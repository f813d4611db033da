"""Registry auth the way requests does it: an object that answers a 401 challenge and resends once.

Three schemes, chosen by the registry's ``WWW-Authenticate`` challenge: anonymous (no
challenge), basic (htpasswd registries), and the bearer token flow of the distribution spec
(Harbor, GHCR, Docker Hub, Quay): GET the challenge's realm with ``service`` and ``scope``
(basic credentials when we have them, anonymous otherwise), cache the token per scope set,
and renew it on 401. Renewal is per request, so a token that expires in the middle of a
chunked upload is replaced and the next chunk goes on with the new one.

Tokens are fetched through the registry's transport (``transport.Transport.request``, below
this module), so retries, TLS settings and error data are the same as for the registry itself.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from requests.auth import AuthBase

from ...errors import AuthError
from ..credentials import Credentials
from .challenge import Challenge, parse_challenge
from .errors import ErrorContext
from .transport import Transport
from .watch import MAX_ERROR_BODY, MAX_TOKEN_BODY, BodyTooLarge, may_receive_credentials, read_body

__all__ = ["CATALOG_SCOPE", "BoundAuth", "Challenge", "RegistryAuth", "parse_challenge", "repository_scope"]

CATALOG_SCOPE = "registry:catalog:*"
DEFAULT_TOKEN_LIFETIME = 60.0  # seconds, what the spec says to assume when expires_in is absent
RENEW_MARGIN = 0.1  # renew when less than this fraction of the lifetime is left


def repository_scope(name: str, *actions: str) -> str:
    """``repository:NAME:pull,push`` (actions default to pull)."""
    return f"repository:{name}:{','.join(actions or ('pull',))}"


@dataclass
class _Token:
    value: str
    expires_at: float

    @property
    def fresh(self) -> bool:
        return time.monotonic() < self.expires_at


def _scope_key(scopes: Sequence[str]) -> str:
    return " ".join(sorted(set(scopes)))


def _parse_scope(scope: str) -> tuple[str, str, frozenset[str]] | None:
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return kind, name, frozenset(a for a in actions.split(",") if a)


def _covers(have: Sequence[str], want: Sequence[str]) -> bool:
    """True when a token for ``have`` grants at least what ``want`` asks (same resources, more actions)."""
    granted: dict[tuple[str, str], frozenset[str]] = {}
    for s in have:
        p = _parse_scope(s)
        if p:
            granted[(p[0], p[1])] = granted.get((p[0], p[1]), frozenset()) | p[2]
    for s in want:
        p = _parse_scope(s)
        if not p or not p[2] <= granted.get((p[0], p[1]), frozenset()):
            return False
    return True


class RegistryAuth:
    """Credentials, the registry's challenge and cached tokens for one registry (thread-safe).

    ``bind(scopes)`` gives the requests auth object for one request; ``credentials`` may be a
    callable so credential files and helpers are only consulted when a registry asks for them.
    """

    def __init__(
        self,
        transport: Transport,
        credentials: Credentials | Callable[[], Credentials | None] | None = None,
    ) -> None:
        self._transport = transport
        self._credentials_source = credentials
        self._credentials: Credentials | None = None
        self._resolved = False
        self._lock = threading.RLock()
        self._fetch_locks: dict[str, threading.Lock] = {}
        self.challenge: Challenge | None = None
        self._tokens: dict[str, tuple[tuple[str, ...], _Token]] = {}
        self.token_requests = 0  # how many times the token service was asked (tests and --verbose)

    # -- credentials -------------------------------------------------------------------------------
    @property
    def credentials(self) -> Credentials | None:
        with self._lock:
            if not self._resolved:
                src = self._credentials_source
                self._credentials = src() if callable(src) else src
                self._resolved = True
            return self._credentials

    @property
    def known_credentials(self) -> Credentials | None:
        """The credentials if they were already looked up (messages must not run credential helpers)."""
        return self._credentials if self._resolved else None

    def set_credentials(self, credentials: Credentials | None) -> None:
        """Use other credentials from now on (``oci login`` checks new ones this way)."""
        with self._lock:
            self._credentials_source = credentials
            self._credentials = credentials
            self._resolved = True
            self._tokens.clear()

    # -- challenge and headers ----------------------------------------------------------------------
    def learn(self, response: requests.Response) -> Challenge | None:
        """Remember the scheme a 401 asked for (the ``/v2/`` ping tells it before any real request)."""
        ch = parse_challenge(response.headers.get("WWW-Authenticate"))
        if ch is not None:
            with self._lock:
                self.challenge = Challenge(ch.scheme, {k: v for k, v in ch.params.items() if k in ("realm", "service")})
        return ch

    def header(self, scopes: Sequence[str]) -> str | None:
        """The Authorization header for a request needing ``scopes``; None means send anonymously."""
        ch = self.challenge
        if ch is None:
            return None
        creds = self.credentials
        if ch.scheme == "basic":
            if creds and creds.username:
                raw = f"{creds.username}:{creds.password}".encode()
                return "Basic " + base64.b64encode(raw).decode()
            if creds and creds.registry_token:
                return "Bearer " + creds.registry_token
            return None
        if creds and creds.registry_token and not (creds.username or creds.identity_token):
            return "Bearer " + creds.registry_token
        return "Bearer " + self._token(ch, scopes).value

    def _cached(self, scopes: Sequence[str]) -> _Token | None:
        hit = self._tokens.get(_scope_key(scopes))
        if hit and hit[1].fresh:
            return hit[1]
        for have, token in self._tokens.values():
            if token.fresh and _covers(have, scopes):
                return token
        return None

    def _token(self, ch: Challenge, scopes: Sequence[str]) -> _Token:
        key = _scope_key(scopes)
        with self._lock:
            token = self._cached(scopes)
            if token:
                return token
            fetch_lock = self._fetch_locks.setdefault(key, threading.Lock())
        with fetch_lock:  # one fetch per scope set even with 16 upload threads
            with self._lock:
                token = self._cached(scopes)
                if token:
                    return token
            token = self._fetch_token(ch, scopes)
            with self._lock:
                self._tokens[key] = (tuple(sorted(set(scopes))), token)
            return token

    def invalidate(self, sent_header: str | None) -> None:
        """Forget the token that was just refused, so the next header() fetches a new one."""
        if not sent_header or not sent_header.startswith("Bearer "):
            return
        value = sent_header[len("Bearer ") :]
        with self._lock:
            for key, (_, token) in list(self._tokens.items()):
                if token.value == value:
                    del self._tokens[key]

    def _fetch_token(self, ch: Challenge, scopes: Sequence[str]) -> _Token:
        """Ask the token service (the challenge's realm) for a token for ``scopes``."""
        host = self._transport.host
        if not ch.realm:
            raise AuthError(f"{host} asked for a bearer token but named no token service (realm)")
        creds = self.credentials
        if creds is not None and not creds.is_empty:
            why_not = may_receive_credentials(ch.realm, self._transport.base_url, self._transport.verify_elsewhere)
            if why_not:
                raise AuthError(
                    f"{host} sent us to {why_not}: its credentials ({creds.describe()}) "
                    "are not sent there. Credentials go to another host only over verified TLS; if the token "
                    "service is genuine, its operator must serve it over HTTPS",
                    url=ch.realm,
                )
        self.token_requests += 1
        context = ErrorContext(scopes, "token", lambda: self.known_credentials)
        if creds and creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "provisioning",
                "scope": " ".join(scopes),
            }
            if ch.service:
                form["service"] = ch.service
            resp = self._transport.request(
                "POST", ch.realm, data=form, auth_everywhere=True, context=context, max_body=MAX_TOKEN_BODY
            )
        else:
            params: list[tuple[str, str]] = [("service", ch.service)] if ch.service else []
            params += [("scope", s) for s in scopes]
            basic = (creds.username, creds.password) if creds and creds.username else None
            resp = self._transport.request(
                "GET",
                ch.realm,
                params=params,
                auth=basic,
                auth_everywhere=True,
                context=context,
                max_body=MAX_TOKEN_BODY,
            )
        return self._parse_token_response(resp, ch)

    def _parse_token_response(self, resp: requests.Response, ch: Challenge) -> _Token:
        try:
            data = resp.json()
        except ValueError:
            data = None
        value = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not value or not isinstance(value, str):
            raise AuthError(
                f"the token service of {self._transport.host} ({ch.realm}) answered without a token; "
                "the registry's auth setup is broken or the realm is not a token service",
                method=resp.request.method or "GET",
                url=ch.realm,
                status=resp.status_code,
            )
        try:
            lifetime = float(data.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        lifetime = max(lifetime, 1.0)
        return _Token(value, time.monotonic() + lifetime * (1 - RENEW_MARGIN))

    def bind(self, scopes: Sequence[str]) -> BoundAuth:
        return BoundAuth(self, tuple(scopes))


class BoundAuth(AuthBase):
    """The requests auth for one request: sets the header, answers one 401 by renewing and resending.

    A request whose body is a stream cannot be resent; its 401 response is returned marked
    ``auth_renewed`` so the upload code restarts the upload with the renewed credentials.
    """

    def __init__(self, auth: RegistryAuth, scopes: tuple[str, ...]) -> None:
        self.auth = auth
        self.scopes = scopes

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        value = self.auth.header(self.scopes)
        if value:
            r.headers["Authorization"] = value
        r.register_hook("response", self.handle_401)
        return r

    def handle_401(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        if r.status_code != 401:
            return r
        sent = r.request.headers.get("Authorization")
        first = self.auth.challenge is None
        ch = self.auth.learn(r)
        if ch is None:
            return r
        if ch.error == "insufficient_scope" and sent and not sent.startswith("Bearer "):
            return r
        self.auth.invalidate(sent)
        try:
            value = self.auth.header(self.scopes)
        except BaseException:
            r.close()
            raise
        if not value or (value == sent and not first):
            return r  # nothing new to offer: the caller reports the 401
        body = r.request.body
        if body is not None and not isinstance(body, (bytes, str)):
            r.auth_renewed = True  # type: ignore[attr-defined]
            return r
        try:  # drain (a little) so the connection goes back to the pool
            read_body(r, MAX_ERROR_BODY)
        except (BodyTooLarge, requests.RequestException):
            pass
        r.close()
        prep = r.request.copy()
        prep.headers["Authorization"] = value
        resent = r.connection.send(prep, **kwargs)
        resent.history.append(r)
        resent.request = prep
        return resent
