"""One Endpoint, parsed once: the TLS rules, and the same answer through `oci` and `dep` commands."""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from conftest import BASIC_USERS
from test_workspace_helpers import extension_manifest, home, make_workspace, push  # noqa: F401

from provisioning.cli import main
from provisioning.errors import RegistryError
from provisioning.oci.credentials import Credentials
from provisioning.oci.endpoint import Endpoint, parse_endpoint, strip_scheme
from provisioning.oci.open import open_storage
from provisioning.oci.remote import login


@pytest.mark.parametrize(
    ("text", "kw", "expected"),
    [
        ("localhost:5000", {}, Endpoint("localhost:5000", plain_http=True)),
        ("127.0.0.1:5000", {}, Endpoint("127.0.0.1:5000", plain_http=True)),
        ("[::1]:5000", {}, Endpoint("[::1]:5000", plain_http=True)),
        ("harbor.example.test", {}, Endpoint("harbor.example.test")),
        ("http://harbor.example.test/", {}, Endpoint("harbor.example.test", plain_http=True)),
        ("HTTPS://localhost:5000", {}, Endpoint("localhost:5000")),
        ("oci://localhost:5000", {}, Endpoint("localhost:5000", plain_http=True)),
        # a CA file or skipping verification means TLS, loopback included
        ("localhost:5000", {"ca_file": "/ca.pem"}, Endpoint("localhost:5000", ca_file="/ca.pem")),
        ("127.0.0.1:5000", {"insecure": True}, Endpoint("127.0.0.1:5000", insecure=True)),
        # an explicit choice wins over the scheme and over the loopback rule
        ("https://localhost:5000", {"tls": False}, Endpoint("localhost:5000", plain_http=True)),
        ("localhost:5000", {"tls": True}, Endpoint("localhost:5000")),
    ],
)
def test_parse_endpoint_rules(text: str, kw: dict, expected: Endpoint) -> None:
    assert parse_endpoint(text, **kw) == expected


def test_endpoint_urls_and_verify() -> None:
    assert parse_endpoint("localhost:5000").base_url == "http://localhost:5000"
    assert parse_endpoint("localhost:5000", ca_file="/ca.pem").verify == "/ca.pem"
    assert parse_endpoint("harbor.example.test", insecure=True).verify is False
    assert strip_scheme(" https://harbor.example.test/ ") == ("harbor.example.test", True)


@pytest.mark.parametrize("text", ["", "https://", "harbor.example.test/v2/", "localhost:5000/ns"])
def test_parse_endpoint_refuses_what_is_not_a_host(text: str) -> None:
    with pytest.raises(RegistryError, match="HOST"):
        parse_endpoint(text)


def test_a_ca_file_in_the_workspace_config_means_tls_for_oci_and_dep_alike(
    tmp_path: Path, tls_registry, certificates, home: Path, monkeypatch, capsys
) -> None:
    """The workspace names a loopback TLS registry and its CA, nothing else: both commands use HTTPS."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    host, ca = tls_registry.host, str(certificates.ca_cert)
    namespace = f"ca-{uuid.uuid4().hex[:8]}"
    alice = Credentials("alice", BASIC_USERS["alice"])
    storage = open_storage(host, tls_enabled=True, ca_file=ca, credentials=alice)
    push(storage, extension_manifest("redis", "7.2.0", "taskserv", {}), namespace=namespace)
    login(host, "alice", BASIC_USERS["alice"])
    root = make_workspace(
        tmp_path / "ws",
        "dependencies:\n"
        "  extensions:\n"
        "    source_type: oci\n"
        f"    oci: {{registry: '{host}', namespace: {namespace}, ca_file: '{ca}'}}\n"
        "    modules:\n"
        "      taskservs: [redis]\n",
    )
    monkeypatch.chdir(root)

    capsys.readouterr()
    assert main(["oci", "tags", "redis", "--output", "json"]) == 0, capsys.readouterr().err
    assert [t["version"] for t in json.loads(capsys.readouterr().out)] == ["7.2.0"]

    code = main(["dep", "resolve"])
    err = capsys.readouterr().err
    assert code == 0, err
    lock = json.loads((root / "config" / "provisioning.lock").read_text())
    assert lock["extensions"]["redis"]["version"] == "7.2.0"
    assert (root / "extensions" / "taskservs" / "redis" / "manifest.yaml").is_file()
