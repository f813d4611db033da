"""A hostile or broken registry: credentials stay with their host, nothing hangs, every read is bounded.

The registry is a scripted fake on 127.0.0.1; 127.0.0.2 plays "another host". Each test shows one
class of attack refused, and none ends in a traceback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from fake_registry import FakeRegistry, Reply, drip, json_reply

from provisioning.advice import explain
from provisioning.cli import main
from provisioning.errors import AuthError, ProvisioningError, RegistryError
from provisioning.oci.copy import CopyError, copy
from provisioning.oci.credentials import Credentials
from provisioning.oci.descriptor import CONFIG_TYPE, MANIFEST, Descriptor, InvalidContent
from provisioning.oci.memory import MemoryStorage
from provisioning.oci.remote import RemoteStorage
from provisioning.oci.remote.watch import Limits, may_receive_credentials

ALICE = Credentials(username="alice", password="s3cret", source="test")
BASIC = "Basic " + base64.b64encode(b"alice:s3cret").decode()
FAST = Limits(connect=2, first_byte=2, grace=1, min_rate=2048, max_retry_after=5, max_pages=20)


def basic_registry(fake: FakeRegistry) -> FakeRegistry:
    """The fake asks for basic auth on /v2/ until it gets alice's credentials."""

    def ping(req):  # type: ignore[no-untyped-def]
        if req.authorization == BASIC:
            return Reply(200, {}, b"{}")
        return Reply(401, {"WWW-Authenticate": 'Basic realm="fake"'}, b"{}")

    fake.route("GET", "/v2/", ping)
    return fake


def remote(fake: FakeRegistry, **kw) -> RemoteStorage:  # type: ignore[no-untyped-def]
    kw.setdefault("limits", FAST)
    kw.setdefault("retries", 2)
    kw.setdefault("backoff", 0.01)
    return RemoteStorage(fake.host if not fake.url.startswith("https") else fake.url, **kw)


def blob(data: bytes) -> Descriptor:
    return Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), len(data))


@pytest.fixture
def fake():  # type: ignore[no-untyped-def]
    with FakeRegistry("127.0.0.1") as f:
        yield f


@pytest.fixture
def other():  # type: ignore[no-untyped-def]
    with FakeRegistry("127.0.0.2") as f:
        yield f


# ------------------------------------------------------------------------------------ credentials


def test_a_redirect_to_another_host_gets_no_credentials(fake: FakeRegistry, other: FakeRegistry) -> None:
    data = b"layer bytes"
    desc = blob(data)
    basic_registry(fake).route(
        "GET", "/v2/ns/x/blobs", lambda r: Reply(307, {"Location": f"{other.url}/cdn/{desc.digest}"})
    )
    other.route("GET", "/cdn", lambda r: Reply(200, {}, data))
    target = remote(fake, credentials=ALICE).repository("ns/x")
    assert b"".join(target.fetch(desc)) == data
    assert [r.authorization for r in fake.seen("/v2/ns/x/blobs")] == [BASIC]
    assert other.seen("/cdn") and all(r.authorization == "" for r in other.requests)


def test_a_bearer_token_is_not_sent_to_another_host_either(fake: FakeRegistry, other: FakeRegistry) -> None:
    data = b"layer bytes"
    desc = blob(data)

    def ping(req):  # type: ignore[no-untyped-def]
        if req.authorization == "Bearer T0KEN":
            return Reply(200, {}, b"{}")
        return Reply(401, {"WWW-Authenticate": f'Bearer realm="{fake.url}/token",service="fake"'}, b"{}")

    fake.route("GET", "/v2/", ping)
    fake.route("GET", "/token", lambda r: json_reply({"token": "T0KEN"}))
    fake.route("GET", "/v2/ns/x/blobs", lambda r: Reply(302, {"Location": f"{other.url}/cdn/x"}))
    other.route("GET", "/cdn", lambda r: Reply(200, {}, data))
    target = remote(fake, credentials=ALICE).repository("ns/x")
    assert b"".join(target.fetch(desc)) == data
    assert fake.seen("/v2/ns/x/blobs")[-1].authorization == "Bearer T0KEN"
    assert all(r.authorization == "" for r in other.requests)


def test_a_tags_link_to_another_host_is_refused_and_never_followed(fake: FakeRegistry, other: FakeRegistry) -> None:
    basic_registry(fake).route(
        "GET",
        "/v2/ns/x/tags/list",
        lambda r: json_reply({"tags": ["1.0.0"]}, Link=f'<{other.url}/v2/ns/x/tags/list?last=1.0.0>; rel="next"'),
    )
    with pytest.raises(RegistryError, match="with a Link to another host"):
        remote(fake, credentials=ALICE).repository("ns/x").tags()
    assert other.requests == []


def test_an_upload_location_on_another_host_gets_no_credentials(fake: FakeRegistry, other: FakeRegistry) -> None:
    basic_registry(fake)
    fake.route("HEAD", "/v2/ns/x/blobs", lambda r: Reply(404))
    fake.route("POST", "/v2/ns/x/blobs/uploads", lambda r: Reply(202, {"Location": f"{other.url}/upload/1"}))
    other.route("PUT", "/upload", lambda r: Reply(401, {"WWW-Authenticate": 'Basic realm="other"'}))
    target = remote(fake, credentials=ALICE).repository("ns/x")
    with pytest.raises(ProvisioningError):
        target.push(blob(b"data"), [b"data"])
    assert other.seen("/upload") and all(r.authorization == "" for r in other.requests)


def test_a_token_realm_on_another_host_gets_credentials_only_over_verified_tls(certificates, other) -> None:  # type: ignore[no-untyped-def]
    # the rule itself, for hosts a test cannot serve: plain HTTP or unchecked TLS elsewhere gets nothing
    assert may_receive_credentials("http://auth.example/token", "https://reg.example", True)
    assert may_receive_credentials("https://auth.example/token", "https://reg.example", False)
    assert may_receive_credentials("https://auth.example/token", "https://reg.example", True) is None
    assert may_receive_credentials("http://127.0.0.2:1/token", "https://reg.example", True) is None  # loopback
    assert may_receive_credentials("http://reg.example/token", "http://reg.example", False) is None  # same host
    # and on the wire: a registry reached with --insecure points at a token service whose certificate is not
    # trusted; --insecure names the registry only, so the handshake fails and no credentials leave
    with FakeRegistry("127.0.0.1", tls=certificates) as registry, FakeRegistry("127.0.0.2", tls=certificates) as realm:
        challenge = f'Bearer realm="{realm.url}/token",service="fake"'
        registry.route("GET", "/v2/", lambda r: Reply(401, {"WWW-Authenticate": challenge}, b"{}"))
        realm.route("GET", "/token", lambda r: json_reply({"token": "T"}))
        storage = remote(registry, credentials=ALICE, insecure=True)
        refused = r"to 127.0.0.2:\d+, whose TLS certificate is not trusted.* apply to 127.0.0.1:\d+ only"
        with pytest.raises(RegistryError) as err:
            storage.repository("ns/x").tags()
        assert err.value.kind == "tls_untrusted_elsewhere" and re.search(refused, explain(err.value)[0])
        assert realm.requests == []
    # a plain-HTTP realm elsewhere would be refused before any request
    with FakeRegistry("127.0.0.1") as registry:
        registry.route(
            "GET", "/v2/", lambda r: Reply(401, {"WWW-Authenticate": 'Bearer realm="http://auth.invalid/t"'}, b"{}")
        )
        with pytest.raises(AuthError, match="plain HTTP: its credentials .* are not sent there"):
            remote(registry, credentials=ALICE).repository("ns/x").tags()


# ------------------------------------------------------------------------------------ time


def test_a_dripping_server_is_cut_off(fake: FakeRegistry) -> None:
    fake.route("GET", "/v2/ns/x/tags/list", lambda r: Reply(200, {"Content-Length": "100000"}, drip(100000, 0.5)))
    with pytest.raises(RegistryError, match="too slow: GET .* was cut off .* at least 2 KiB/s"):
        remote(fake).repository("ns/x").tags()
    assert len(fake.seen("/v2/ns/x/tags/list")) == 1  # not asked again


def test_a_server_that_never_answers_is_asked_once(fake: FakeRegistry) -> None:
    fake.route("GET", "/v2/ns/x/tags/list", lambda r: Reply(0))
    with pytest.raises(RegistryError, match="did not answer"):
        remote(fake, retries=4).repository("ns/x").tags()
    assert len(fake.seen("/v2/ns/x/tags/list")) == 1


def test_oci_tags_against_a_dripping_registry_exits_1(fake: FakeRegistry, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    for var, value in {"CONNECT_TIMEOUT": "2", "FIRST_BYTE_TIMEOUT": "2", "GRACE": "1", "MIN_RATE": "2048"}.items():
        monkeypatch.setenv(f"PROVISIONING_HTTP_{var}", value)
    fake.route("GET", "/v2/ns/x/tags/list", lambda r: Reply(200, {"Content-Length": "9999"}, drip(9999, 0.5)))
    assert main(["oci", "tags", f"{fake.host}/ns/x"]) == 1
    err = capsys.readouterr().err
    assert "was too slow" in err and "Traceback" not in err


def test_retry_after_beyond_the_cap_is_refused_with_the_cap_named(fake: FakeRegistry) -> None:
    fake.route("GET", "/v2/ns/x/tags/list", lambda r: Reply(429, {"Retry-After": "3600"}))
    with pytest.raises(RegistryError, match="asked to wait 3600s .* waits at most 5s"):
        remote(fake).repository("ns/x").tags()


def test_pagination_is_bounded_in_pages_and_circles(fake: FakeRegistry) -> None:
    def endless(req):  # type: ignore[no-untyped-def]
        n = int(req.path.rsplit("=", 1)[-1]) if "last=" in req.path else 0
        return json_reply({"tags": [f"t{n}"]}, Link=f'</v2/ns/x/tags/list?last={n + 1}>; rel="next"')

    fake.route("GET", "/v2/ns/x/tags/list", endless)
    with pytest.raises(RegistryError, match="more than 20 pages of tags"):
        remote(fake).repository("ns/x").tags()
    assert len(fake.seen("/v2/ns/x/tags/list")) == 20
    fake.route(
        "GET", "/v2/ns/y/tags/list", lambda r: json_reply({"tags": ["a"]}, Link='</v2/ns/y/tags/list>; rel="next"')
    )
    with pytest.raises(RegistryError, match="paginates tags of ns/y in a circle"):
        remote(fake).repository("ns/y").tags()


# ------------------------------------------------------------------------------------ sizes and shapes


def _manifest(config: dict) -> bytes:  # type: ignore[type-arg]
    return json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": []}).encode()


def _serve_manifest(fake: FakeRegistry, data: bytes) -> None:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    headers = {"Content-Type": MANIFEST, "Docker-Content-Digest": digest}
    fake.route("GET", "/v2/ns/x/manifests", lambda r: Reply(200, headers, data))
    fake.route("HEAD", "/v2/ns/x/manifests", lambda r: Reply(200, {**headers, "Content-Length": str(len(data))}))


def test_a_config_claiming_a_gigabyte_is_refused_before_downloading(fake: FakeRegistry) -> None:
    config = {"mediaType": CONFIG_TYPE, "digest": "sha256:" + "a" * 64, "size": 1 << 30}
    _serve_manifest(fake, _manifest(config))
    with pytest.raises(CopyError, match="claims 1073741824 bytes .* refused before downloading"):
        copy(remote(fake).repository("ns/x"), "1.0.0", MemoryStorage().repository("ns/x"))
    assert fake.seen("/v2/ns/x/blobs") == []


@pytest.mark.parametrize(
    "config,why",
    [
        ({"mediaType": CONFIG_TYPE, "size": 2}, "no valid 'digest'"),
        ({"mediaType": CONFIG_TYPE, "digest": "sha256:" + "a" * 64, "size": "2"}, "'size' must be a non-negative"),
        ({"digest": "sha256:" + "a" * 64, "size": 2, "annotations": ["x"]}, "'annotations' must map strings"),
        ("not a descriptor", "'config' must be a descriptor object"),
    ],
    ids=["no-digest", "size-string", "annotations-list", "config-string"],
)
def test_malformed_descriptors_are_errors_naming_the_registry(fake: FakeRegistry, config, why, capsys) -> None:  # type: ignore[no-untyped-def]
    _serve_manifest(fake, _manifest(config))
    with pytest.raises(CopyError, match=why) as info:
        copy(remote(fake).repository("ns/x"), "1.0.0", MemoryStorage().repository("ns/x"))
    assert "ns/x" in str(info.value) and isinstance(info.value.cause, InvalidContent)
    assert main(["oci", "pull", f"{fake.host}/ns/x:1.0.0", "--dest", "/nonexistent/never"]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_tags_that_are_objects_are_an_error_not_a_traceback(fake: FakeRegistry, capsys) -> None:  # type: ignore[no-untyped-def]
    fake.route("GET", "/v2/ns/x/tags/list", lambda r: json_reply({"tags": [{"name": "1.0.0"}]}))
    with pytest.raises(RegistryError, match="'tags' must be a list of strings"):
        remote(fake).repository("ns/x").tags()
    assert main(["oci", "tags", f"{fake.host}/ns/x"]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_oversized_bodies_are_refused(fake: FakeRegistry) -> None:
    fake.route(
        "GET", "/v2/ns/x/tags/list", lambda r: Reply(200, {"Content-Type": "application/json"}, b" " * (5 << 20))
    )
    with pytest.raises(RegistryError, match="more than 4194304 bytes"):
        remote(fake).repository("ns/x").tags()
    fake.route("GET", "/v2/", lambda r: Reply(401, {"WWW-Authenticate": f'Bearer realm="{fake.url}/token"'}, b"{}"))
    fake.route("GET", "/token", lambda r: Reply(200, {}, b'{"token": "' + b"t" * (300 << 10) + b'"}'))
    with pytest.raises(RegistryError, match="more than 262144 bytes"):
        remote(fake, credentials=ALICE).repository("ns/x").tags()


def test_a_head_of_a_large_blob_is_not_a_large_body(fake: FakeRegistry) -> None:
    big = Descriptor("application/octet-stream", "sha256:" + "b" * 64, 1 << 30)
    fake.route("HEAD", "/v2/ns/x/blobs", lambda r: Reply(200, {"Content-Length": str(1 << 30)}))
    assert remote(fake).repository("ns/x").exists(big)
