"""Start a real CNCF distribution registry (Debian's ``docker-registry``) on loopback.

Used by the test fixtures (and the benchmarks). Each instance gets a free port on
127.0.0.1, its own storage folder, and is always stopped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import requests.adapters
import yaml

REGISTRY_BINARY = "docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RegistryServer:
    """One running registry process; ``host`` is ``127.0.0.1:PORT``."""

    root: Path
    auth: dict | None = None
    tls: tuple[Path, Path] | None = None  # (cert, key)
    extra_config: dict = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def config(self) -> dict:
        http: dict = {"addr": self.host, "secret": "test-secret", "headers": {"X-Content-Type-Options": ["nosniff"]}}
        if self.tls:
            http["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}
        cfg = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": http,
        }
        if self.auth:
            cfg["auth"] = self.auth
        cfg.update(self.extra_config)
        return cfg

    def start(self, timeout: float = 20.0) -> RegistryServer:
        if not shutil.which(REGISTRY_BINARY):
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config_path = self.root / "config.yml"
        config_path.write_text(yaml.safe_dump(self.config()))
        log = open(self.root / "registry.log", "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        # docker-registry reads every REGISTRY_* variable as configuration (REGISTRY_AUTH_FILE would break it).
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self.process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"registry exited: {(self.root / 'registry.log').read_text()[-2000:]}")
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = requests.get(f"{self.url}/v2/", timeout=1, verify=False)
                if r.status_code in (200, 401):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("registry did not become ready")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- TLS, htpasswd and token auth for the registry -------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(folder: Path) -> Certificates:
    """Generate a CA and a server certificate (EC P-256, fast) with the ``cryptography`` package."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("provisioning test CA"))
        .issuer_name(_name("provisioning test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    certs = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    certs.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certs.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.server_key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certs


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """bcrypt htpasswd (what distribution accepts): ``htpasswd -B`` when installed, else the bcrypt package."""
    lines = []
    for user, password in sorted(users.items()):
        if shutil.which("htpasswd"):
            out = subprocess.run(
                ["htpasswd", "-Bbn", "-C", "4", user, password], capture_output=True, text=True, check=True
            ).stdout
            lines.append(out.strip())
        else:
            import bcrypt

            lines.append(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


class LoopbackServer:
    """What the loopback HTTP servers of the tests share: a thread serving ``_server``, always stopped."""

    _server: Any = None
    _thread: Any = None

    def _serve(self, handler: Any) -> None:
        import threading
        from http.server import ThreadingHTTPServer

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                import sys

                if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is not news
                    super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TokenServer(LoopbackServer):
    """A docker-style token service (the Harbor/GHCR flow) on 127.0.0.1 for a token-auth registry.

    Issues RS256 JWTs whose header carries the signing certificate (``x5c``), which distribution
    verifies against ``rootcertbundle``. ``users`` are basic credentials; ``permissions`` maps a
    user (or ``"anonymous"``) to ``{repository or "*": [actions]}`` plus ``"catalog": True`` for
    ``registry:catalog:*``. Requested actions are cut down to what is granted, as real token
    services do; a known user asking for a repository with no grant at all gets 403 (GHCR does).
    ``validity`` is how long the *registry* accepts a token (it adds 60 s leeway to ``exp``);
    ``expires_in`` is what the client is told. ``issued`` records (user, scopes) per token.
    """

    service = "provisioning-test-registry"
    issuer = "provisioning-test-token-issuer"

    def __init__(
        self,
        root: Path,
        users: dict[str, str],
        permissions: dict[str, dict],
        *,
        refresh_tokens: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.users = users
        self.permissions = permissions
        self.refresh_tokens = refresh_tokens or {}
        self.validity = 300.0
        self.expires_in = 300
        self.omit_token = False
        self.issued: list[tuple[str, list[str]]] = []
        self.tokens: list[str] = []  # every token handed out (tests assert none reaches a log)
        self._server = None
        self._thread = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def registry_auth(self) -> dict:
        """The ``auth:`` section of the registry's config."""
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.root / "token-signing.pem"),
            }
        }

    def _keys(self) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.root.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(self.issuer))
            .issuer_name(_name(self.issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        (self.root / "token-signing.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        import base64

        self._x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]

    def grant(self, user: str, scope: str) -> dict | None:
        """The access entry for one requested scope (None when nothing is granted)."""
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        perms = self.permissions.get(user, {})
        if kind == "registry" and name == "catalog":
            return {"type": "registry", "name": "catalog", "actions": ["*"]} if perms.get("catalog") else None
        if kind != "repository":
            return None
        allowed = set(perms.get(name, perms.get("*", [])))
        granted = sorted(a for a in actions.split(",") if a in allowed or "*" in allowed)
        return {"type": "repository", "name": name, "actions": granted}

    def issue(self, user: str, scopes: list[str]) -> dict:
        import time as _time
        import uuid

        import jwt

        access = [a for a in (self.grant(user, s) for s in scopes) if a]
        now = int(_time.time())
        claims = {
            "iss": self.issuer,
            "sub": "" if user == "anonymous" else user,
            "aud": self.service,
            "exp": now - 60 + int(self.validity),
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = jwt.encode(claims, self._key_pem, algorithm="RS256", headers={"x5c": self._x5c})
        self.issued.append((user, scopes))
        self.tokens.append(token)
        if self.omit_token:
            return {"expires_in": self.expires_in}
        return {"token": token, "access_token": token, "expires_in": self.expires_in}

    def start(self) -> TokenServer:
        import base64
        import json as _json
        from http.server import BaseHTTPRequestHandler
        from urllib.parse import parse_qs, urlsplit

        self._keys()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = _json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _scopes(self, values: list[str]) -> list[str]:
                return [s for v in values for s in v.split(" ") if s]

            def _decide(self, user: str, scopes: list[str]) -> None:
                if user != "anonymous":
                    for s in scopes:
                        entry = server.grant(user, s)
                        if s.startswith("repository:") and entry is not None and not entry["actions"]:
                            self._answer(403, {"errors": [{"code": "DENIED", "message": f"{user} may not {s}"}]})
                            return
                self._answer(200, server.issue(user, scopes))

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/token":
                    self._answer(404, {})
                    return
                query = parse_qs(url.query)
                user = "anonymous"
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(name) != password:
                        self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                        return
                    user = name
                self._decide(user, self._scopes(query.get("scope", [])))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                refresh = (form.get("refresh_token") or [""])[0]
                user = server.refresh_tokens.get(refresh)
                if form.get("grant_type") != ["refresh_token"] or user is None:
                    self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad refresh token"}]})
                    return
                self._decide(user, self._scopes(form.get("scope", [])))

        self._serve(Handler)
        return self


# -- faults a real registry will not produce on demand ---------------------------------------------


def fake_response(request, status: int, headers: dict | None = None, body: bytes = b""):
    """A requests Response as if a server had answered ``request``."""
    from http import HTTPStatus

    resp = requests.Response()
    resp.status_code = status
    resp.reason = HTTPStatus(status).phrase
    resp.headers.update({"Content-Length": str(len(body)), **(headers or {})})
    resp._content = body
    resp._content_consumed = True
    resp.url = request.url
    resp.request = request
    return resp


def replace_body(resp, body: bytes, headers: dict | None = None):
    """Give a real response another body (and headers), as a misbehaving server or proxy would."""
    resp._content = body
    resp._content_consumed = True
    resp.headers["Content-Length"] = str(len(body))
    resp.headers.update(headers or {})
    return resp


class FaultAdapter(requests.adapters.HTTPAdapter):
    """Sits between the client and a real registry; ``rule(request)`` may fake or alter an answer.

    ``rule`` returns None (pass through), a Response (answer instead of the server), or a
    callable that gets the real response and returns what the client sees. Every request is
    recorded in ``seen`` as (method, url, headers).
    """

    def __init__(self, rule) -> None:
        super().__init__(pool_maxsize=16, max_retries=0)
        self.rule = rule
        self.seen: list[tuple[str, str, dict]] = []

    def send(self, request, **kwargs):
        self.seen.append((request.method, request.url, dict(request.headers)))
        action = self.rule(request)
        if isinstance(action, requests.Response):
            action.connection = self
            return action
        resp = super().send(request, **kwargs)
        return action(resp) if callable(action) else resp


def fault_session(rule=lambda request: None) -> tuple[requests.Session, FaultAdapter]:
    """A session whose every request passes through a FaultAdapter with ``rule``."""
    session = requests.Session()
    adapter = FaultAdapter(rule)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session, adapter


# -- a loopback proxy in front of a real registry ----------------------------------------------------


def ghcr_catalog_refusal(method: str, path: str) -> tuple[int, dict, bytes] | None:
    """Answer ``/v2/_catalog`` the way GHCR does (no catalog API: a plain 404 page); pass the rest on."""
    if path.split("?", 1)[0] == "/v2/_catalog":
        return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"404 page not found\n"
    return None


class RegistryProxy(LoopbackServer):
    """A plain-HTTP proxy on 127.0.0.1 that forwards to a real registry, except what ``refuse`` answers.

    ``refuse(method, path)`` returns None (forward) or (status, headers, body). Every request is
    recorded in ``seen`` as (method, path), so tests count what a command asked for, and its headers
    in ``seen_headers``; ``add_headers`` are added to every forwarded answer (a load balancer's cookie).
    """

    def __init__(self, upstream: str, refuse=ghcr_catalog_refusal, add_headers: dict | None = None) -> None:
        self.upstream = upstream
        self.refuse = refuse
        self.add_headers = dict(add_headers or {})
        self.seen: list[tuple[str, str]] = []
        self.seen_headers: list[dict[str, str]] = []
        self.inflight = 0
        self.max_inflight = 0  # the most requests it was answering at one time
        self._server = None
        self._thread = None

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RegistryProxy:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler

        proxy = self
        lock = threading.Lock()
        upstream_host, upstream_port = self.upstream.rsplit(":", 1)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                with lock:
                    proxy.seen.append((self.command, self.path))
                    proxy.seen_headers.append(dict(self.headers.items()))
                    proxy.inflight += 1
                    proxy.max_inflight = max(proxy.max_inflight, proxy.inflight)
                try:
                    self._answer()
                finally:
                    with lock:
                        proxy.inflight -= 1

            def _answer(self) -> None:
                body = self._body()
                refused = proxy.refuse(self.command, self.path)
                if refused is not None:
                    status, headers, data = refused
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection")
                }
                if body or self.command in ("PUT", "POST", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(upstream_host, int(upstream_port), timeout=60)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(k, v)
                    for k, v in proxy.add_headers.items():
                        self.send_header(k, v)
                    length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                    self.send_header("Content-Length", length or str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self._serve(Handler)
        return self
