"""The one retry policy of a registry's requests: bounded attempts with backoff, ``Retry-After`` honoured up
to a stated cap, and a host that stopped answering for a whole round not retried again in the run.

Single requests (``Transport.request``) and multi-request operations (a blob upload, which restarts
from its first byte) both run under ``RetryPolicy.run``; an attempt that may be retried raises
``Transient``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import requests

from ...errors import ProvisioningError, RegistryError
from .errors import ErrorContext, translate

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETRIES = 4  # attempts in all, for one request or one whole blob upload
MAX_BACKOFF = 30.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_NO_CONTEXT = ErrorContext()


class Transient(Exception):
    """A retryable failure of one attempt: ``Transport.retrying`` waits and runs the operation again."""

    def __init__(
        self,
        method: str,
        url: str,
        failure: requests.Response | requests.RequestException,
        context: ErrorContext = _NO_CONTEXT,
    ) -> None:
        super().__init__(f"{method} {url}")
        self.method = method
        self.url = url
        self.failure = failure
        self.context = context


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


class RetryPolicy:
    """How often and how long one registry's failed attempts are tried again (thread-safe enough: a flag)."""

    def __init__(
        self, host: str, *, retries: int = DEFAULT_RETRIES, backoff: float = 0.5, max_retry_after: float = 60.0
    ) -> None:
        self.host = host
        self.retries = max(1, retries)
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self._unreachable = False  # see give_up()

    def answered(self) -> None:
        """The host answered (any status): it is reachable again."""
        self._unreachable = False

    def run(self, operation: Callable[[int], T], *, done: Callable[[], bool] | None = None) -> T | None:
        """The one retry policy: run ``operation(attempt)`` until it does not raise ``Transient``.

        At most ``retries`` attempts, waiting between them (``pause``); the last failure becomes our
        error. ``done`` is asked after each wait whether the work landed although its answer was lost
        (an upload); when it says so, None is returned without another attempt.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return operation(attempt)
            except Transient as t:
                if self.give_up(t.failure, attempt):
                    raise translate(self.host, t.method, t.url, t.failure, t.context, attempts=attempt) from None
                self.pause(t.failure, attempt)
            if done is not None:
                try:
                    if done():
                        return None
                except ProvisioningError:
                    pass

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
            log.info("%s could not be reached in %d attempts; not retrying it again in this run", self.host, attempt)
        return True

    def pause(self, failure: requests.Response | requests.RequestException, attempt: int) -> None:
        """Wait before another attempt: Retry-After when the registry says (up to a stated cap), else backoff."""
        delay = None
        if isinstance(failure, requests.Response):
            delay = _retry_after(failure.headers.get("Retry-After"))
            failure.close()
            cap = self.max_retry_after
            if delay is not None and delay > cap:
                raise RegistryError(
                    f"{self.host} asked to wait {delay:.0f}s before trying again (Retry-After, "
                    f"{failure.status_code}); this tool waits at most {cap:.0f}s "
                    "(PROVISIONING_HTTP_MAX_RETRY_AFTER): run the command again later",
                    method=failure.request.method if failure.request is not None else "",
                    url=failure.url or "",
                    status=failure.status_code,
                    host=self.host,
                    kind="retry_later",
                )
            status = str(failure.status_code)
        else:
            status = failure.__class__.__name__
        if delay is None:
            delay = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF) * (0.5 + random.random() / 2)
        log.info("%s: %s, attempt %d of %d; retrying in %.1fs", self.host, status, attempt, self.retries, delay)
        time.sleep(delay)
