"""Shared fixtures: real registries on loopback, always stopped."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tools import put_tools_on_path  # noqa: E402

put_tools_on_path()  # cosign, crane and oras from .ci/go-tools

from registry_server import (  # noqa: E402
    Certificates,
    RegistryServer,
    TokenServer,
    make_certificates,
    write_htpasswd,
)

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A plain-HTTP registry without auth, shared by the session (use unique repository names)."""
    with RegistryServer(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A plain-HTTP registry of the test's own."""
    with RegistryServer(tmp_path / "registry") as server:
        yield server


# Users of the auth-enabled registries. Test passwords only; tests assert they never reach logs.
BASIC_USERS = {"alice": "alice-basic-S3cret", "bob": "bob-basic-S3cret"}
TOKEN_USERS = {"alice": "alice-token-S3cret", "reader": "reader-token-S3cret", "stranger": "stranger-token-S3cret"}
TOKEN_PERMISSIONS: dict[str, dict] = {
    "alice": {"*": ["pull", "push", "delete"]},
    "reader": {"*": ["pull"]},
    "stranger": {"public/hello": ["pull"]},
    "anonymous": {"public/hello": ["pull"]},
}
REFRESH_TOKENS = {"alice-refresh-T0ken": "alice"}


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A generated CA and a server certificate for 127.0.0.1 signed by it."""
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[RegistryServer]:
    """HTTPS (certificate from ``certificates``) with htpasswd basic auth for ``BASIC_USERS``."""
    root = tmp_path_factory.mktemp("tls-registry")
    htpasswd = write_htpasswd(root / "htpasswd", BASIC_USERS)
    server = RegistryServer(
        root,
        auth={"htpasswd": {"realm": "provisioning-test", "path": str(htpasswd)}},
        tls=(certificates.server_cert, certificates.server_key),
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    """The token service of ``token_registry`` (users ``TOKEN_USERS``, grants ``TOKEN_PERMISSIONS``)."""
    with TokenServer(
        tmp_path_factory.mktemp("token-server"), TOKEN_USERS, TOKEN_PERMISSIONS, refresh_tokens=REFRESH_TOKENS
    ) as server:
        yield server


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory, token_server: TokenServer) -> Iterator[RegistryServer]:
    """A plain-HTTP registry that trusts only JWTs from ``token_server`` (the Harbor/GHCR flow)."""
    with RegistryServer(tmp_path_factory.mktemp("token-registry"), auth=token_server.registry_auth()) as server:
        yield server


@pytest.fixture
def tokens(token_server: TokenServer) -> Iterator[TokenServer]:
    """``token_server`` with its knobs (validity, expires_in, omit_token) reset after the test."""
    token_server.issued.clear()
    token_server.tokens.clear()
    yield token_server
    token_server.validity, token_server.expires_in, token_server.omit_token = 300.0, 300, False


@pytest.fixture
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Credential lookup sees only files under ``tmp_path`` (never the machine's docker/podman logins)."""
    home = tmp_path / "credentials-home"
    home.mkdir()
    monkeypatch.setenv("PROVISIONING_HOME", str(home / "provisioning"))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / "docker"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    return home
