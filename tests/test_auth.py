"""Auth and credentials: the bearer token flow against a real token-auth registry, credential
lookup (our login file, containers auth.json, docker config.json with helpers, auth_token_path),
login/logout, open_storage, and secrets never reaching logs or messages."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import stat
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BASIC_USERS, TOKEN_USERS
from registry_server import fake_response, fault_session

from provisioning import paths
from provisioning.advice import explain
from provisioning.errors import AuthError, RegistryError
from provisioning.oci import credentials as creds_mod
from provisioning.oci.credentials import Credentials, logout, lookup
from provisioning.oci.descriptor import LAYER_TYPE, MANIFEST, Descriptor, canonical_json
from provisioning.oci.open import open_storage
from provisioning.oci.remote import RemoteStorage, login
from provisioning.oci.remote.auth import parse_challenge
from provisioning.oci.store import fetch_bytes

KiB = 1024


def unique(prefix: str = "t") -> str:
    return f"auth-tests/{prefix}-{uuid.uuid4().hex[:10]}"


def user(name: str, password: str | None = None) -> Credentials:
    return Credentials(name, password if password is not None else TOKEN_USERS[name], source="the test")


def remote(host: str, credentials=None, **kwargs) -> RemoteStorage:
    return RemoteStorage(host, credentials=credentials, backoff=0.01, retries=2, **kwargs)


def push_blob(target, data: bytes) -> Descriptor:
    desc = Descriptor.of(LAYER_TYPE, data)
    target.push(desc, [data])
    return desc


def push_manifest(target, tag: str) -> Descriptor:
    config = b"{}"
    cd = push_blob(target, config)
    doc = {"schemaVersion": 2, "mediaType": MANIFEST, "config": cd.to_dict(), "layers": []}
    manifest = canonical_json(doc)
    md = Descriptor.of(MANIFEST, manifest)
    target.push_reference(md, [manifest], tag)
    return md


# -- the challenge ---------------------------------------------------------------------------------


def test_parse_challenge():
    ch = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:a/b:pull,push",error="insufficient_scope"'
    )
    assert ch.scheme == "bearer" and ch.realm == "https://auth.example.com/token"
    assert ch.service == "registry.example.com" and ch.error == "insufficient_scope"
    assert ch.params["scope"] == "repository:a/b:pull,push"
    assert parse_challenge('Basic realm="Registry Realm"').scheme == "basic"
    assert parse_challenge("Negotiate abc") is None and parse_challenge("") is None


# -- the token flow against a real registry --------------------------------------------------------


def test_token_flow_push_pull_and_token_reuse(token_registry, tokens):
    storage = remote(token_registry.host, user("alice"))
    target = storage.repository(unique())
    md = push_manifest(target, "1.0.0")
    data = os.urandom(2000)
    desc = push_blob(target, data)
    assert target.resolve("1.0.0") == md
    assert fetch_bytes(target, desc) == data and target.tags() == ["1.0.0"]
    # one token for pull,push serves the pulls too; no token per request
    assert tokens.issued == [("alice", [f"repository:{target.name}:pull,push"])]
    assert storage.auth.token_requests == 1


def test_anonymous_pull_takes_a_token_round_trip(token_registry, tokens):
    public = remote(token_registry.host, user("alice")).repository("public/hello")
    md = push_manifest(public, "1.0.0")
    anonymous = remote(token_registry.host).repository("public/hello")
    assert anonymous.resolve("1.0.0") == md
    assert ("anonymous", ["repository:public/hello:pull"]) in tokens.issued
    with pytest.raises(AuthError, match=r"does not allow anonymous access to pull from repository ") as err:
        remote(token_registry.host).repository(unique()).tags()
    assert err.value.kind == "login_required" and "oci login" in explain(err.value)[0]


def test_wrong_password_at_the_token_service(token_registry, tokens):
    with pytest.raises(AuthError, match=r"token service of .* refused user 'alice'") as err:
        remote(token_registry.host, user("alice", "wrong-password")).repository(unique()).tags()
    assert err.value.status == 401 and "wrong-password" not in explain(err.value)[0]
    assert re.search(r"token service of .* refused user 'alice'.*oci login", explain(err.value)[0])


def test_pull_only_user_cannot_push(token_registry, tokens):
    target = remote(token_registry.host, user("reader")).repository(unique())
    assert target.tags() == []  # pull is fine
    with pytest.raises(AuthError, match=r"no permission to push to repository .* with user 'reader'"):
        push_blob(target, b"not allowed")


def test_user_without_access_gets_403(token_registry, tokens):
    with pytest.raises(AuthError, match=r"no permission.*refused user 'stranger'.*\(403\)") as err:
        remote(token_registry.host, user("stranger")).repository(unique()).tags()
    assert err.value.status == 403 and err.value.codes == ("DENIED",)


def test_token_service_answering_without_a_token(token_registry, tokens):
    tokens.omit_token = True
    with pytest.raises(AuthError, match="answered without a token"):
        remote(token_registry.host, user("alice")).repository(unique()).tags()


def test_identity_token_is_exchanged_at_the_token_service(token_registry, tokens):
    storage = remote(token_registry.host, Credentials(identity_token="alice-refresh-T0ken", source="the test"))
    target = storage.repository(unique())
    assert push_manifest(target, "1.0.0") == target.resolve("1.0.0")
    assert tokens.issued[0][0] == "alice"


def test_token_expiring_mid_chunked_upload_is_renewed_and_the_upload_goes_on(token_registry, tokens):
    tokens.validity = 2  # the registry accepts each token for 1-2 s; the client is told 300 s
    session, adapter = fault_session()
    storage = remote(token_registry.host, user("alice"), session=session, chunk_threshold=8 * KiB, chunk_size=4 * KiB)
    target = storage.repository(unique())
    data = os.urandom(16 * KiB)

    def slow() -> Iterator[bytes]:
        yield data[: 8 * KiB]
        time.sleep(2.1)  # the token expires between chunks
        yield data[8 * KiB :]

    desc = Descriptor.of(LAYER_TYPE, data)
    target.push(desc, slow())
    assert len([s for s in adapter.seen if s[0] == "POST"]) == 1  # renewed in place, not restarted
    patches = [s[2]["Content-Range"] for s in adapter.seen if s[0] == "PATCH"]
    assert len(patches) >= 5 and len(set(patches)) == 4  # a chunk was refused (401) and resent
    assert len(tokens.issued) >= 2
    assert fetch_bytes(target, desc) == data


def test_401_on_a_streamed_upload_renews_the_token_and_restarts_the_upload(token_registry, tokens):
    refused = []

    def rule(request):
        if request.method == "PUT" and "/blobs/uploads/" in request.url and not refused:
            refused.append(1)  # as if the token expired between POST and PUT
            challenge = f'Bearer realm="{tokens.realm}",service="{tokens.service}",error="invalid_token"'
            return fake_response(
                request, 401, {"WWW-Authenticate": challenge, "Docker-Distribution-Api-Version": "registry/2.0"}
            )
        return None

    session, adapter = fault_session(rule)
    target = remote(token_registry.host, user("alice"), session=session).repository(unique())
    data = os.urandom(5000)
    desc = Descriptor.of(LAYER_TYPE, data)
    target.push(desc, iter([data[:2000], data[2000:]]))
    assert len([s for s in adapter.seen if s[0] == "POST"]) == 2
    assert len(tokens.issued) == 2
    assert fetch_bytes(target, desc) == data


def test_mount_asks_for_both_repositories(token_registry, tokens):
    storage = remote(token_registry.host, user("alice"))
    source, dest = storage.repository(unique("src")), storage.repository(unique("dst"))
    desc = push_blob(source, b"shared layer")
    assert dest.mount(desc, source.name) is True
    wanted = sorted([f"repository:{dest.name}:pull,push", f"repository:{source.name}:pull"])
    assert ("alice", wanted) in [(u, sorted(s)) for u, s in tokens.issued]


def test_catalog_forbidden_says_so_plainly(token_registry, tokens):
    with pytest.raises(RegistryError, match=r"does not allow listing its repositories") as err:
        remote(token_registry.host, user("alice")).catalog()
    assert err.value.kind == "no_catalog"
    assert re.search(r"does not allow listing its repositories.*Name the repository", explain(err.value)[0])


def test_delete_with_token_auth(token_registry, tokens):
    target = remote(token_registry.host, user("alice")).repository(unique())
    md = push_manifest(target, "1.0.0")
    target.delete(md)
    assert target.tags() == []


# -- secrets never logged ---------------------------------------------------------------------------


def test_credentials_never_reach_logs_or_messages(tls_registry, certificates, token_registry, tokens, caplog):
    caplog.set_level(logging.DEBUG)
    basic = Credentials("alice", BASIC_USERS["alice"], source="the test")
    tls = {"plain_http": False, "ca_file": str(certificates.ca_cert)}
    push_manifest(remote(tls_registry.host, basic, **tls).repository(unique()), "1.0.0")
    push_manifest(remote(token_registry.host, user("alice")).repository(unique()), "1.0.0")
    messages = []
    for storage in (
        remote(tls_registry.host, Credentials("alice", "wrong-basic-pw"), **tls),
        remote(token_registry.host, Credentials("alice", "wrong-token-pw")),
    ):
        with pytest.raises(AuthError) as err:
            storage.repository("x/y").tags()
        messages.append(str(err.value))
    text = caplog.text + "\n".join(messages) + repr(basic) + str(user("alice"))
    secrets = [BASIC_USERS["alice"], TOKEN_USERS["alice"], "wrong-basic-pw", "wrong-token-pw", *tokens.tokens]
    secrets += [base64.b64encode(f"alice:{p}".encode()).decode() for p in (BASIC_USERS["alice"], TOKEN_USERS["alice"])]
    assert tokens.tokens and "<redacted>" in caplog.text
    for secret in secrets:
        assert secret not in text


# -- credential lookup ------------------------------------------------------------------------------


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def helper_script(folder: Path, name: str, answers: dict[str, tuple[str, str]]) -> Path:
    """A docker credential helper on PATH that answers ``get`` from ``answers`` and logs the asked host."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / f"docker-credential-{name}"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"answers = {answers!r}\n"
        "host = sys.stdin.read().strip()\n"
        f"open({str(folder / (name + '.asked'))!r}, 'a').write(host + '\\n')\n"
        "if sys.argv[1:] != ['get'] or host not in answers:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n"
        "u, s = answers[host]\n"
        "print(json.dumps({'ServerURL': host, 'Username': u, 'Secret': s}))\n"
    )
    script.chmod(0o755)
    return script


def test_credentials_repr_redacts_secrets():
    c = Credentials("alice", "pw-123", identity_token="it-456", registry_token="rt-789", source="x")
    for text in (repr(c), str(c), c.describe()):
        assert "pw-123" not in text and "it-456" not in text and "rt-789" not in text
    assert "alice" in repr(c) and "<redacted>" in repr(c)


def test_lookup_order(no_credentials, tmp_path, monkeypatch):
    host = "registry.test:5000"
    token_file = tmp_path / "token"
    token_file.write_text("tok-user:tok-pass\n")
    assert lookup(host) is None
    assert lookup(host, auth_token_path=token_file).username == "tok-user"
    write_json(no_credentials / "docker" / "config.json", {"auths": {f"https://{host}": {"auth": b64("dock:dpw")}}})
    assert lookup(host, auth_token_path=token_file).username == "dock"
    write_json(no_credentials / "run" / "containers" / "auth.json", {"auths": {host: {"auth": b64("pod:ppw")}}})
    assert lookup(host).username == "pod"
    write_json(paths.auth_file(), {"auths": {host: {"auth": b64("ours:opw")}}})
    found = lookup(host)
    assert (found.username, found.password) == ("ours", "opw") and str(paths.auth_file()) in found.source
    assert lookup(host, explicit=Credentials("explicit", "epw")).username == "explicit"
    assert lookup("other.test") is None


def test_registry_auth_file_and_xdg_config_auth_json(no_credentials, monkeypatch, tmp_path):
    write_json(no_credentials / "config" / "containers" / "auth.json", {"auths": {"a.test": {"auth": b64("x:y")}}})
    assert lookup("a.test").username == "x"
    custom = write_json(tmp_path / "custom.json", {"auths": {"a.test": {"username": "u", "password": "p"}}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(custom))
    assert (lookup("a.test").username, lookup("a.test").password) == ("u", "p")


def test_docker_config_cred_helpers_and_creds_store(no_credentials, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    helper_script(bin_dir, "fake", {"helped.test": ("helper-user", "helper-secret")})
    helper_script(bin_dir, "store", {"stored.test": ("<token>", "identity-secret")})
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    write_json(
        no_credentials / "docker" / "config.json",
        {
            "auths": {"plain.test": {"auth": b64("plain-user:plain-pw")}, "stored.test": {}},
            "credHelpers": {"helped.test": "fake", "missing.test": "not-installed"},
            "credsStore": "store",
        },
    )
    helped = lookup("helped.test")
    assert (helped.username, helped.password) == ("helper-user", "helper-secret")
    assert "docker-credential-fake" in helped.source
    assert (bin_dir / "fake.asked").read_text() == "helped.test\n"
    stored = lookup("stored.test")
    assert stored.identity_token == "identity-secret" and not stored.username
    assert lookup("plain.test").password == "plain-pw"
    assert lookup("missing.test") is None  # a helper that is not installed is skipped, with a warning
    assert lookup("nowhere.test") is None  # the store says "not found"


def test_auth_token_path_holds_a_token_or_user_password(tmp_path, no_credentials):
    path = tmp_path / "token"
    path.write_text("eyJhbGciOi.bearer.token\n")
    assert lookup("x.test", auth_token_path=path).registry_token == "eyJhbGciOi.bearer.token"
    with pytest.raises(AuthError, match="does not exist"):
        lookup("x.test", auth_token_path=tmp_path / "absent")


def test_login_checks_then_stores_0600_and_logout_removes(tls_registry, certificates, no_credentials):
    tls = {"plain_http": False, "ca_file": str(certificates.ca_cert)}
    host = tls_registry.host
    with pytest.raises(AuthError, match="rejected the credentials"):
        login(host, "alice", "wrong", verify_with=remote(host, **tls))
    assert not paths.auth_file().exists()
    path = login(host, "alice", BASIC_USERS["alice"], verify_with=remote(host, **tls))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert BASIC_USERS["alice"] not in path.read_text()  # base64 as docker writes it, never plain
    storage = open_storage(host, tls_enabled=True, ca_file=certificates.ca_cert)
    push_manifest(storage.repository(unique()), "1.0.0")
    assert logout(host) is True and logout(host) is False
    assert lookup(host) is None


def test_login_against_a_token_registry(token_registry, tokens, no_credentials):
    host = token_registry.host
    with pytest.raises(AuthError, match="refused user 'alice'"):
        login(host, "alice", "wrong", verify_with=remote(host))
    login(host, "alice", TOKEN_USERS["alice"], verify_with=remote(host))
    assert lookup(host).username == "alice"


def test_open_storage(tmp_path, registry, no_credentials, monkeypatch):
    layout = open_storage(str(tmp_path / "store"))
    assert type(layout).__name__ == "LayoutStorage"
    assert type(open_storage(f"oci-layout:{tmp_path / 'store'}")).__name__ == "LayoutStorage"
    assert open_storage("registry.test:5000", tls_enabled=False).base_url == "http://registry.test:5000"
    assert open_storage("127.0.0.1:5000", tls_enabled=True).base_url == "https://127.0.0.1:5000"
    assert open_storage("localhost:5000").base_url == "http://localhost:5000"
    # credentials are only looked up when a registry asks: an anonymous registry never runs a helper
    bin_dir = tmp_path / "bin"
    helper_script(bin_dir, "spy", {})
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    write_json(no_credentials / "docker" / "config.json", {"credsStore": "spy"})
    assert open_storage(registry.host).repository(unique()).tags() == []
    assert not (bin_dir / "spy.asked").exists()


def test_helper_failure_is_a_clear_error(no_credentials, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    broken = bin_dir / "docker-credential-broken"
    broken.write_text("#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    write_json(no_credentials / "docker" / "config.json", {"credHelpers": {"b.test": "broken"}})
    with pytest.raises(AuthError, match=r"docker-credential-broken .* failed .* exit code 3: keychain locked"):
        creds_mod.lookup("b.test")


def test_registry_401_without_challenge_details_is_reported(registry):
    """A registry answering 401 to a request even after auth: the message names the fix."""
    session, _ = fault_session(
        lambda r: (
            fake_response(
                r, 401, {"Docker-Distribution-Api-Version": "registry/2.0", "WWW-Authenticate": 'Basic realm="x"'}
            )
            if "/tags/list" in r.url
            else None
        )
    )
    with pytest.raises(AuthError, match=r"requires authentication") as err:
        remote(registry.host, session=session).repository("a/b").tags()
    assert re.search(r"requires authentication.*oci login", explain(err.value)[0])
