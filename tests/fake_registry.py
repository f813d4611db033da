"""A scriptable fake registry on loopback, for faults a real registry cannot produce.

Each route is ``(METHOD, path prefix) -> handler(request) -> Reply``; every request is recorded
with its headers, so tests can assert what reached which host (``127.0.0.1`` is the registry,
``127.0.0.2`` plays "another host"). A reply's body may be a callable that writes slowly (a
dripping server) or waits until the server stops (a server that never answers).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Request:
    method: str
    path: str  # with the query
    headers: dict[str, str]
    body: bytes

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")


@dataclass
class Reply:
    status: int = 200  # 0: never answer at all
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Callable[[Any, threading.Event], None] = b""


def json_reply(doc: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(status, {"Content-Type": "application/json", **headers}, json.dumps(doc).encode())


class FakeRegistry:
    """``with FakeRegistry("127.0.0.2") as other: other.route("GET", "/v2/x", handler)``."""

    def __init__(self, bind: str = "127.0.0.1", *, tls: Any = None) -> None:
        self.requests: list[Request] = []
        self.routes: dict[tuple[str, str], Callable[[Request], Reply]] = {}
        self.stopping = threading.Event()
        self.route("GET", "/v2/", lambda r: Reply(200, {"Docker-Distribution-Api-Version": "registry/2.0"}, b"{}"))
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                fake.requests.append(req)
                reply = fake._handler(req)(req)
                if reply.status == 0:  # a server that never answers
                    fake.stopping.wait(600)
                    return
                self.send_response(reply.status)
                payload = reply.body
                headers = {"Docker-Distribution-Api-Version": "registry/2.0", **reply.headers}
                if isinstance(payload, bytes):
                    headers.setdefault("Content-Length", str(len(payload)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    if callable(payload):
                        payload(self.wfile, fake.stopping)
                    elif self.command != "HEAD":
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

        self.server = ThreadingHTTPServer((bind, 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # clients we cut off reset connections
        if tls is not None:  # registry_server.Certificates
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls.server_cert), str(tls.server_key))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.host = f"{bind}:{self.server.server_address[1]}"
        self.url = f"{'https' if tls is not None else 'http'}://{self.host}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def route(self, method: str, prefix: str, handler: Callable[[Request], Reply]) -> None:
        self.routes[(method, prefix)] = handler

    def _handler(self, req: Request) -> Callable[[Request], Reply]:
        path = urlsplit(req.path).path
        best = max(
            (p for (m, p) in self.routes if m == req.method and (path == p or path.startswith(p.rstrip("/") + "/"))),
            key=len,
            default=None,
        )
        if best is None:
            return lambda r: json_reply({"errors": [{"code": "NAME_UNKNOWN", "message": "no route"}]}, 404)
        return self.routes[(req.method, best)]

    def seen(self, prefix: str = "") -> list[Request]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    def __enter__(self) -> FakeRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def drip(size: int, every: float) -> Callable[[Any, threading.Event], None]:
    """A body that sends one byte every ``every`` seconds until ``size`` bytes or the server stops."""

    def write(wfile: Any, stopping: threading.Event) -> None:
        for _ in range(size):
            if stopping.wait(every):
                return
            wfile.write(b" ")
            wfile.flush()

    return write


def never(wfile: Any, stopping: threading.Event) -> None:
    """A body that never comes (the headers were sent)."""
    stopping.wait(600)
