"""The registry transport's bounds: how long a request may take, how much it may read, where credentials go.

A registry may be hostile or merely broken, so nothing it does may cost unbounded time or memory,
and nothing it names may receive credentials meant for it:

- **Time**: a request gets ``connect`` + ``first_byte`` + ``grace`` seconds, then must move at least
  ``min_rate`` bytes per second since it started. A watchdog cuts the connection of one that falls
  behind, so a server that drips a byte every few seconds (which per-read socket timeouts never
  notice) fails in bounded time with a message that names the bound; one that never answers fails
  at the first-byte timeout, once (a timeout is not retried).
- **Memory**: bodies read whole (tags lists, tokens, error documents) are read with a size bound.
- **Credentials**: they belong to one origin (scheme, host, port). A request to any other origin (a
  redirect, a ``Link`` page, an upload ``Location``) is sent without them, with certificate
  verification on (``--insecure`` names one host, not the hosts it points at); a token service on
  another origin gets them only over verified TLS or on loopback.

Used by ``remote.RemoteStorage``; only this module and remote/auth know about requests/urllib3.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ...errors import RegistryError
from ..endpoint import is_loopback

KiB = 1024
MiB = 1024 * KiB
MAX_BODY = 4 * MiB  # a tags page, an error document, a referrers index
MAX_TOKEN_BODY = 256 * KiB  # a token response (JWTs are a few kilobytes)
MAX_ERROR_BODY = 64 * KiB
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Limits:
    """Bounds on one registry's requests (documented defaults; ``PROVISIONING_HTTP_*`` override them).

    ``connect`` and ``first_byte`` are socket timeouts; ``min_rate`` (bytes/s) turns a transfer's size
    into time; ``grace`` is added once per request. ``max_retry_after`` is the longest a ``Retry-After``
    is honoured; ``max_pages`` bounds ``Link`` pagination.
    """

    connect: float = 10.0
    first_byte: float = 30.0
    min_rate: float = 32 * KiB
    grace: float = 10.0
    max_retry_after: float = 60.0
    max_pages: int = 1000

    @classmethod
    def from_env(cls, **overrides: Any) -> Limits:
        env = {
            "connect": "PROVISIONING_HTTP_CONNECT_TIMEOUT",
            "first_byte": "PROVISIONING_HTTP_FIRST_BYTE_TIMEOUT",
            "min_rate": "PROVISIONING_HTTP_MIN_RATE",
            "grace": "PROVISIONING_HTTP_GRACE",
            "max_retry_after": "PROVISIONING_HTTP_MAX_RETRY_AFTER",
        }
        values: dict[str, Any] = {}
        for field_name, var in env.items():
            raw = os.environ.get(var, "").strip()
            try:
                if raw and float(raw) > 0:
                    values[field_name] = float(raw)
            except ValueError:
                continue
        return replace(cls(**values), **{k: v for k, v in overrides.items() if v is not None})

    @property
    def timeout(self) -> tuple[float, float]:
        """What requests takes: (connect, read) socket timeouts."""
        return (self.connect, self.first_byte)

    def describe(self) -> str:
        return (
            f"{self.connect:g}s to connect, {self.first_byte:g}s to the first byte, then at least "
            f"{self.min_rate / KiB:g} KiB/s (after {self.grace:g}s of grace)"
        )


# -------------------------------------------------------------------------------------------- deadlines


class _Watch:
    """One request under the watchdog: its connection, what it moved, whether the watchdog cut it.

    The request is overdue when, after ``base`` seconds (connect, first byte, grace), fewer bytes
    arrived than ``min_rate`` per second since; bytes it sends count in advance (``credit``).
    """

    def __init__(self, limits: Limits, credit: int) -> None:
        self.t0 = time.monotonic()
        self.base = limits.connect + limits.first_byte + limits.grace
        self.rate = limits.min_rate
        self.credit = max(0, credit)
        self.received = 0
        self.conn: Any = None
        self.response: Any = None  # urllib3 response once the headers are in
        self.fired = False
        self.done = False

    @property
    def due(self) -> float:
        """When the request becomes overdue if nothing more arrives."""
        return self.t0 + self.base + (self.received + self.credit) / self.rate

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def cut(self) -> None:
        """Shut the socket down: a read blocked on it returns at once."""
        if self.done:
            return
        raw = self.response
        if raw is not None and getattr(raw, "_connection", self.conn) is not self.conn:
            return  # the body was read and the connection went back to the pool: not ours any more
        sock = getattr(self.conn, "sock", None)
        if sock is None:
            return
        self.fired = True
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


IDLE = 30.0  # seconds the thread waits with nothing to watch before it ends
SWEEP_MIN = 64  # watches the heap may hold before finished ones are swept out from under an open one


class Watchdog:
    """One thread for all requests of the process: a heap of the times requests become overdue."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Watch]] = []
        self._sweep_at = SWEEP_MIN
        self._wakes_at = 0.0  # when the thread, asleep, looks again (0: it is awake and will look)
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.local = threading.local()

    def watch(self, limits: Limits, credit: int = 0) -> _Watch:
        """Watch the calling thread's next connection; the caller restores ``local.current`` afterwards."""
        w = _Watch(limits, credit)
        with self._cond:
            self._drop_finished()
            heapq.heappush(self._heap, (w.due, next(self._counter), w))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="oci-deadlines", daemon=True)
                self._thread.start()
            elif w.due < self._wakes_at:
                # the thread sleeps until it would next look: wake it only for a deadline before that
                # (deadlines mostly grow, so most requests wake nobody: a wake-up each costs a GIL switch)
                self._cond.notify()
        self.local.current = w
        return w

    def _drop_finished(self) -> None:
        """Finished requests leave the heap here (the thread no longer wakes for each): from the top, and
        all at once when the heap doubled since the last sweep (a request left open holds the top)."""
        heap = self._heap
        while heap and heap[0][2].done:
            heapq.heappop(heap)
        if len(heap) > self._sweep_at:
            heap[:] = [entry for entry in heap if not entry[2].done]
            heapq.heapify(heap)
            self._sweep_at = max(SWEEP_MIN, 2 * len(heap))

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wakes_at = time.monotonic() + IDLE
                    self._cond.wait(IDLE)
                    self._wakes_at = 0.0
                    if not self._heap:
                        self._thread = None
                        return
                    continue
                at, _, w = self._heap[0]
                now = time.monotonic()
                if at > now:
                    self._wakes_at = at
                    self._cond.wait(at - now)
                    self._wakes_at = 0.0
                    continue
                heapq.heappop(self._heap)
                if w.due > now:  # bytes arrived since: look again when it would be overdue
                    heapq.heappush(self._heap, (w.due, next(self._counter), w))
                    continue
            w.cut()


WATCHDOG = Watchdog()


def _register(conn: Any) -> Any:
    current = getattr(WATCHDOG.local, "current", None)
    if current is not None and not current.done:
        current.conn = conn
    return conn


class _WatchedHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _register(super()._get_conn(timeout))


class _WatchedHTTPSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _register(super()._get_conn(timeout))


class WatchedAdapter(HTTPAdapter):
    """An adapter whose connections the watchdog can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def watched_response(resp: requests.Response, watch: _Watch) -> requests.Response:
    """Keep the watch on while a streamed body is read; closing the response ends it."""
    watch.response = getattr(resp, "raw", None)
    resp.watch = watch  # type: ignore[attr-defined]
    close = resp.close

    def close_and_unwatch() -> None:
        watch.done = True
        close()

    resp.close = close_and_unwatch  # type: ignore[method-assign]
    return resp


def cut_by_deadline(resp_or_watch: Any) -> _Watch | None:
    """The watch of a request whose deadline cut it (None when it was not cut)."""
    watch = getattr(resp_or_watch, "watch", resp_or_watch)
    return watch if isinstance(watch, _Watch) and watch.fired else None


def body_chunks(resp: requests.Response, size: int = 64 * KiB) -> Iterator[bytes]:
    """A response body as it arrives, each chunk counted for the watchdog's rate check."""
    watch = getattr(resp, "watch", None)
    for chunk in resp.iter_content(size):
        if watch is not None:
            watch.received += len(chunk)
        yield chunk


# -------------------------------------------------------------------------------------------- bodies


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


def read_body(resp: requests.Response, limit: int, *, has_body: bool = True) -> bytes:
    """Read a response's whole body, at most ``limit`` bytes (``BodyTooLarge`` beyond); later ``.content``
    and ``.json()`` use what was read. ``has_body=False`` (a HEAD): the Content-Length describes what a GET
    would send, so it is not a reason to refuse."""
    if getattr(resp, "_content_consumed", False) and isinstance(resp._content, bytes):
        if len(resp._content) > limit:
            raise BodyTooLarge(limit)
        return resp._content
    length = resp.headers.get("Content-Length", "")
    if has_body and length.isdigit() and int(length) > limit:
        resp.close()
        raise BodyTooLarge(limit)
    data = bytearray()
    for chunk in body_chunks(resp):
        data += chunk
        if len(data) > limit:
            resp.close()
            raise BodyTooLarge(limit)
    resp._content = bytes(data)
    resp._content_consumed = True
    return resp._content


# -------------------------------------------------------------------------------------------- origins


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute URL: what credentials and ``--insecure`` are scoped to."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def same_origin(a: str, b: str) -> bool:
    return origin(a) == origin(b)


def may_receive_credentials(url: str, registry_url: str, verify_elsewhere: bool | str) -> str | None:
    """None when ``url`` (a token realm) may be sent the registry's credentials, else why not."""
    if same_origin(url, registry_url):
        return None
    scheme, host, _ = origin(url)
    if is_loopback(host):
        return None
    if scheme != "https":
        return f"the token service {url} is on another host and speaks plain HTTP"
    if verify_elsewhere is False:
        return f"the token service {url} is on another host whose certificate is not checked"
    return None


def redirect_target(resp: requests.Response, current: str, registry_url: str) -> str:
    """Where a redirect leads; a downgrade from TLS to plain HTTP on another host is refused."""
    from urllib.parse import urljoin

    nxt = urljoin(current, resp.headers.get("Location", ""))
    scheme, host, _ = origin(nxt)
    if scheme not in ("http", "https"):
        raise RegistryError(f"{current} redirected to {nxt!r}, which is not an HTTP URL; refused", url=current)
    if origin(current)[0] == "https" and scheme == "http" and not is_loopback(host):
        raise RegistryError(
            f"{current} redirected from TLS to plain HTTP ({nxt}); refused", url=current, status=resp.status_code
        )
    return nxt


def too_slow(host: str, method: str, url: str, limits: Limits, watch: Any = None) -> RegistryError:
    moved = f" ({watch.received} bytes in {watch.elapsed:.0f}s)" if watch is not None else ""
    return RegistryError(
        f"{host} was too slow: {method} {url} was cut off{moved}; every request gets {limits.describe()}. "
        "The registry or the network is failing; for a slow link raise PROVISIONING_HTTP_FIRST_BYTE_TIMEOUT or "
        "lower PROVISIONING_HTTP_MIN_RATE (bytes per second)",
        method=method,
        url=url,
    )
