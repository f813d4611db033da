"""A loopback HTTP proxy in front of a real registry that can "stop" it after a number of requests.

Stopping a registry process at an exact point of a run is not possible from outside; this proxy lets
a test say "the registry answers the first N requests, then nothing" (the connection is dropped, as
when the server goes away), and bring it back later. Everything it does answer comes from the real
registry, unchanged.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


class FaultProxy:
    """``host`` is ``127.0.0.1:PORT``; ``budget`` requests are forwarded, then connections are dropped."""

    def __init__(self, upstream: str, budget: int | None = None) -> None:
        self.upstream = upstream
        self.budget = budget
        self.served = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                with proxy._lock:
                    alive = proxy.budget is None or proxy.served < proxy.budget
                    if alive:
                        proxy.served += 1
                if not alive:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                resp = requests.request(
                    self.command,
                    f"http://{proxy.upstream}{self.path}",
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=30,
                )
                content = resp.content
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def stop_after(self, budget: int | None) -> None:
        """From now on answer ``budget`` more requests (None: all of them)."""
        with self._lock:
            self.budget = None if budget is None else self.served + budget

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
