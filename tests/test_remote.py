"""The remote store against a real docker-registry: plain HTTP, TLS + basic auth, faults and interop.

Faults a real server cannot produce on demand (429, 503 at a chosen request, a corrupt body,
a registry with the referrers API) are injected with ``FaultAdapter`` in front of the real
registry; a registry that dies mid-upload is the real process, stopped and started again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import BASIC_USERS
from registry_server import fake_response, fault_session, free_port, replace_body

from provisioning.advice import explain
from provisioning.errors import AuthError, DigestMismatch, NotFound, ProvisioningError, RegistryError
from provisioning.oci.credentials import Credentials
from provisioning.oci.descriptor import (
    ARTIFACT_TYPE,
    CONFIG_TYPE,
    INDEX,
    LAYER_TYPE,
    MANIFEST,
    Descriptor,
    canonical_json,
)
from provisioning.oci.remote import RemoteStorage, RemoteTarget, is_loopback
from provisioning.oci.store import Target, fetch_bytes

KiB = 1024
TITLE = "org.opencontainers.image.title"


def unique(prefix: str = "t") -> str:
    return f"remote-tests/{prefix}-{uuid.uuid4().hex[:10]}"


def storage(host: str, **kwargs) -> RemoteStorage:
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("retries", 3)
    return RemoteStorage(host, **kwargs)


def build_artifact(layer: bytes | None = None, **extra) -> tuple[list[tuple[Descriptor, bytes]], Descriptor, bytes]:
    """A provisioning extension artifact: config, one layer, manifest (plus ``extra`` manifest fields)."""
    config = canonical_json({"name": "ext", "version": "1.0.0", "nonce": uuid.uuid4().hex})
    layer = layer if layer is not None else os.urandom(3000)
    cd = Descriptor.of(CONFIG_TYPE, config)
    ld = Descriptor.of(LAYER_TYPE, layer, annotations={TITLE: "ext.tar.gz"})
    doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": cd.to_dict(),
        "layers": [ld.to_dict()],
        **extra,
    }
    manifest = canonical_json(doc)
    return [(cd, config), (ld, layer)], Descriptor.of(MANIFEST, manifest), manifest


def push_artifact(target: RemoteTarget, tag: str | None = None, **extra) -> tuple[Descriptor, bytes, list]:
    blobs, md, manifest = build_artifact(**extra)
    for desc, data in blobs:
        target.push(desc, [data])
    if tag:
        target.push_reference(md, [manifest], tag)
    else:
        target.push(md, [manifest])
    return md, manifest, blobs


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    """A one-shot stream of ``data`` (as a fetch from another registry would be)."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


def methods(adapter, method: str, part: str = "") -> list:
    return [s for s in adapter.seen if s[0] == method and part in s[1]]


# -- plain HTTP: the Target protocol ---------------------------------------------------------------


def test_push_resolve_fetch_roundtrip_with_build_metadata_tag(registry):
    target = storage(registry.host).repository(unique())
    assert isinstance(target, Target)
    md, manifest, blobs = push_artifact(target, "1.2.3+build.5")
    assert target.tags() == ["1.2.3_build.5"]
    assert target.resolve("1.2.3+build.5") == md
    assert target.resolve("1.2.3_build.5") == md
    assert target.resolve(md.digest) == md
    assert target.fetch_reference("1.2.3+build.5") == (md, manifest)
    assert fetch_bytes(target, md) == manifest
    for desc, data in blobs:
        assert target.exists(desc)
        assert fetch_bytes(target, desc) == data
    assert target.exists(md)
    assert not target.exists(Descriptor.of(LAYER_TYPE, b"never pushed"))


def test_small_blob_is_checked_first_then_streamed_monolithically(registry):
    session, adapter = fault_session()
    target = storage(registry.host, session=session).repository(unique())
    data = os.urandom(50 * KiB)
    desc = Descriptor.of(LAYER_TYPE, data)
    target.push(desc, pieces(data, 7000))
    [put] = methods(adapter, "PUT", "/blobs/uploads/")
    assert put[2]["Content-Length"] == str(len(data)) and "Transfer-Encoding" not in put[2]
    assert len(methods(adapter, "POST")) == 1 and not methods(adapter, "PATCH")
    adapter.seen.clear()
    target.push(desc, [data])  # already there: one HEAD, no upload
    assert [s[0] for s in adapter.seen] == ["HEAD"]
    assert fetch_bytes(target, desc) == data


def test_large_blob_goes_up_in_chunks_from_a_one_shot_stream(registry):
    session, adapter = fault_session()
    remote = storage(registry.host, session=session, chunk_threshold=64 * KiB, chunk_size=16 * KiB)
    target = remote.repository(unique())
    data = os.urandom(200 * KiB)
    desc = Descriptor.of(LAYER_TYPE, data)
    target.push(desc, pieces(data, 5000))
    patches = methods(adapter, "PATCH")
    assert len(patches) == 13  # ceil(200 / 16)
    ranges = [p[2]["Content-Range"] for p in patches]
    assert ranges[0] == "0-16383" and ranges[-1] == f"{12 * 16 * KiB}-{len(data) - 1}"
    assert remote.capabilities.chunked_upload is True
    assert fetch_bytes(target, desc) == data


def test_chunk_size_honours_oci_chunk_min_length(registry):
    def rule(request):
        if request.method == "POST" and "/blobs/uploads/" in request.url:
            return lambda resp: replace_body(resp, resp.content, {"OCI-Chunk-Min-Length": "40000"})
        return None

    session, adapter = fault_session(rule)
    target = storage(registry.host, session=session, chunk_threshold=64 * KiB, chunk_size=16 * KiB).repository(unique())
    data = os.urandom(100 * KiB)
    target.push(Descriptor.of(LAYER_TYPE, data), [data])
    sizes = [int(p[2]["Content-Length"]) for p in methods(adapter, "PATCH")]
    assert sizes == [40000, 40000, len(data) - 80000]


def test_chunked_upload_falls_back_to_monolithic_when_refused(registry):
    def rule(request):
        if request.method == "PATCH":
            return fake_response(request, 405, {"Docker-Distribution-Api-Version": "registry/2.0"})
        return None

    session, adapter = fault_session(rule)
    remote = storage(registry.host, session=session, chunk_threshold=10 * KiB, chunk_size=4 * KiB)
    target = remote.repository(unique())
    first, second = os.urandom(30 * KiB), os.urandom(30 * KiB)
    target.push(Descriptor.of(LAYER_TYPE, first), pieces(first, 1000))
    assert remote.capabilities.chunked_upload is False
    assert len(methods(adapter, "PATCH")) == 1
    target.push(Descriptor.of(LAYER_TYPE, second), [second])
    assert len(methods(adapter, "PATCH")) == 1  # remembered: no second try
    assert fetch_bytes(target, Descriptor.of(LAYER_TYPE, first)) == first


def test_tag_and_tag_list_pagination(registry):
    def paginate(request):
        """distribution 2.8 ignores ``n`` for tags; page the real answer as GHCR or zot would."""
        if request.method != "GET" or "/tags/list" not in request.url:
            return None

        def page(resp):
            from urllib.parse import parse_qs, urlsplit

            query = parse_qs(urlsplit(request.url).query)
            n, last = int(query["n"][0]), query.get("last", [""])[0]
            tags = sorted(resp.json()["tags"])
            rest = [t for t in tags if t > last]
            doc = dict(resp.json(), tags=rest[:n])
            headers = {}
            if len(rest) > n:
                path = urlsplit(request.url).path
                headers["Link"] = f'<{path}?n={n}&last={rest[n - 1]}>; rel="next"'
            return replace_body(resp, json.dumps(doc).encode(), headers)

        return page

    session, adapter = fault_session(paginate)
    target = storage(registry.host, session=session, page_size=2).repository(unique())
    md, _, _ = push_artifact(target, "1.0.0")
    for tag in ("1.0.1", "1.1.0", "2.0.0+meta", "latest"):
        target.tag(md, tag)
    assert target.tags() == ["1.0.0", "1.0.1", "1.1.0", "2.0.0_meta", "latest"]
    assert len(methods(adapter, "GET", "/tags/list")) == 3
    assert target.resolve("2.0.0+meta") == md


def test_catalog_follows_link_pagination(registry):
    session, adapter = fault_session()
    remote = storage(registry.host, session=session, page_size=2)
    names = sorted(unique("cat") for _ in range(3))
    for name in names:
        push_artifact(remote.repository(name), "1.0.0")
    listed = remote.catalog()
    assert set(names) <= set(listed) and listed == sorted(listed)
    assert len(methods(adapter, "GET", "/v2/_catalog")) >= 2
    assert remote.capabilities.catalog is True


def test_catalog_absent_says_the_registry_does_not_allow_listing(registry):
    session, _ = fault_session(
        lambda r: (
            fake_response(r, 404, {"Content-Type": "text/plain"}, b"404 page not found")
            if "_catalog" in r.url
            else None
        )
    )
    remote = storage(registry.host, session=session)
    with pytest.raises(RegistryError, match="does not allow listing its repositories") as err:
        remote.catalog()
    assert err.value.status == 404
    assert remote.capabilities.catalog is False


def test_delete_manifest_by_digest(registry):
    target = storage(registry.host).repository(unique())
    md, _, _ = push_artifact(target, "1.0.0")
    target.delete(md)
    with pytest.raises(NotFound):
        target.resolve("1.0.0")
    assert not target.exists(md)
    with pytest.raises(NotFound):
        target.delete(md)


def test_cross_repository_mount(registry):
    remote = storage(registry.host)
    source, dest = remote.repository(unique("src")), remote.repository(unique("dst"))
    _, _, blobs = push_artifact(source, "1.0.0")
    layer, data = blobs[1]
    assert dest.mount(layer, source.name) is True
    assert remote.capabilities.mount is True
    assert fetch_bytes(dest, layer) == data
    assert dest.mount(Descriptor.of(LAYER_TYPE, b"not anywhere"), source.name) is False


def test_mount_falls_back_when_the_registry_answers_202(registry):
    def no_mount(request):
        if request.method == "POST" and "mount=" in request.url:
            request.url = request.url.split("?", 1)[0]  # the registry then just opens an upload: 202
        return None

    session, adapter = fault_session(no_mount)
    remote = storage(registry.host, session=session)
    source, dest = remote.repository(unique("src")), remote.repository(unique("dst"))
    _, _, blobs = push_artifact(source, "1.0.0")
    assert dest.mount(blobs[1][0], source.name) is False
    assert remote.capabilities.mount is False  # the blob was there: this registry does not mount
    assert methods(adapter, "DELETE", "/blobs/uploads/")  # the session it opened was cancelled
    adapter.seen.clear()
    assert dest.mount(blobs[0][0], source.name) is False
    assert adapter.seen == []


def test_referrers_fall_back_to_the_tag_schema(registry):
    target = storage(registry.host).repository(unique())
    subject, _, _ = push_artifact(target, "1.0.0")
    sig_type = "application/vnd.example.signature.v1"
    extra = {"artifactType": sig_type, "subject": subject.to_dict(), "annotations": {"who": "ci"}}
    sig, _, _ = push_artifact(target, **extra)
    found = target.referrers(subject)
    assert [d.digest for d in found] == [sig.digest]
    assert found[0].artifact_type == sig_type and found[0].annotations == {"who": "ci"}
    assert target.referrers(subject, artifact_type="application/vnd.other") == []
    assert target.capabilities.referrers is False
    assert "sha256-" + subject.digest.split(":")[1] in target.tags()
    push_artifact(target, **extra)  # a second referrer joins the same index
    assert len(target.referrers(subject, artifact_type=sig_type)) == 2


def test_referrers_api_is_used_when_the_registry_has_it(registry):
    entries = [
        {"mediaType": MANIFEST, "digest": "sha256:" + "a" * 64, "size": 10, "artifactType": "x/sig"},
        {"mediaType": MANIFEST, "digest": "sha256:" + "b" * 64, "size": 10, "artifactType": "x/sbom"},
    ]
    body = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
    session, adapter = fault_session(
        lambda r: fake_response(r, 200, {"Content-Type": INDEX}, body) if "/referrers/" in r.url else None
    )
    target = storage(registry.host, session=session).repository(unique())
    subject = Descriptor(MANIFEST, "sha256:" + "c" * 64, 10)
    assert [d.artifact_type for d in target.referrers(subject, artifact_type="x/sbom")] == ["x/sbom"]
    assert target.capabilities.referrers is True
    assert not methods(adapter, "GET", "/manifests/sha256-")


# -- faults ----------------------------------------------------------------------------------------


def test_429_is_retried_after_the_time_the_registry_asks(registry):
    target = storage(registry.host).repository(unique())
    md, _, _ = push_artifact(target, "1.0.0")
    limited = []

    def rule(request):
        if request.method == "HEAD" and "/manifests/" in request.url and not limited:
            limited.append(time.monotonic())
            return fake_response(request, 429, {"Retry-After": "1", "Content-Type": "application/json"})
        return None

    session, adapter = fault_session(rule)
    remote = storage(registry.host, session=session)
    assert remote.repository(target.name).resolve("1.0.0") == md
    assert time.monotonic() - limited[0] >= 1.0
    assert len(methods(adapter, "HEAD", "/manifests/")) == 2


def test_server_errors_are_retried_a_bounded_number_of_times(registry):
    session, adapter = fault_session(
        lambda r: fake_response(r, 503, {"Content-Type": "text/plain"}) if "/tags/list" in r.url else None
    )
    with pytest.raises(RegistryError, match="after 3 attempts") as err:
        storage(registry.host, session=session).repository(unique()).tags()
    assert err.value.status == 503 and err.value.method == "GET" and "/tags/list" in err.value.url
    assert len(methods(adapter, "GET", "/tags/list")) == 3


def test_upload_restarts_from_scratch_after_a_server_error(registry):
    failed = []

    def rule(request):
        if request.method == "PATCH" and request.headers["Content-Range"].startswith("4096-") and not failed:
            failed.append(1)
            return fake_response(request, 503, {"Content-Type": "application/json"})
        return None

    session, adapter = fault_session(rule)
    target = storage(registry.host, session=session, chunk_threshold=8 * KiB, chunk_size=4 * KiB).repository(unique())
    data = os.urandom(20 * KiB)
    desc = Descriptor.of(LAYER_TYPE, data)
    target.push(desc, pieces(data, 3000))  # one-shot: the restart replays what was spooled
    assert len(methods(adapter, "POST", "/blobs/uploads/")) == 2
    assert fetch_bytes(target, desc) == data


def test_registry_dying_mid_upload_leaves_nothing_and_a_rerun_completes(fresh_registry):
    data = os.urandom(64 * KiB)
    desc = Descriptor.of(LAYER_TYPE, data)
    name = unique()

    def dying() -> Iterator[bytes]:
        for i, chunk in enumerate(pieces(data, 8 * KiB)):
            if i == 3:
                fresh_registry.stop()
            yield chunk

    remote = storage(fresh_registry.host, chunk_threshold=16 * KiB, chunk_size=8 * KiB)
    with pytest.raises(RegistryError) as err:
        remote.repository(name).push(desc, dying())
    assert err.value.kind == "connection_refused" and "is the registry running" in explain(err.value)[0]
    fresh_registry.start()
    again = storage(fresh_registry.host, chunk_threshold=16 * KiB, chunk_size=8 * KiB).repository(name)
    assert not again.exists(desc)
    again.push(desc, pieces(data, 8 * KiB))
    assert fetch_bytes(again, desc) == data


def test_a_host_lost_for_a_whole_round_of_retries_gets_one_attempt_per_request_until_it_answers(registry):
    """A registry gone mid-run: the first request retries, the rest fail at once, an answer restores retries."""
    from fault_proxy import FaultProxy

    with FaultProxy(registry.host, budget=0) as proxy:
        remote = storage(proxy.host, retries=3)
        remote.connection.ensure_ready = lambda: None  # the ping would be the first request; count only ours
        paused: list[int] = []
        remote.transport.policy.pause = lambda failure, attempt: paused.append(attempt)
        repo = remote.repository(unique())
        for _ in range(3):
            with pytest.raises(RegistryError):
                repo.tags()
        assert paused == [1, 2], "only the first request goes through a round of retries"
        proxy.stop_after(None)
        assert repo.tags() == []
        proxy.stop_after(0)
        paused.clear()
        with pytest.raises(RegistryError):
            repo.tags()
        assert paused == [1, 2], "an answer from the host clears the mark"


def test_a_blob_whose_content_does_not_match_its_digest_is_rejected(registry):
    target = storage(registry.host).repository(unique())
    _, _, blobs = push_artifact(target, "1.0.0")
    layer, data = blobs[1]

    def corrupt(request):
        if request.method == "GET" and layer.digest in request.url:
            return lambda resp: replace_body(resp, b"X" + resp.content[1:])
        return None

    session, _ = fault_session(corrupt)
    evil = storage(registry.host, session=session).repository(target.name)
    received = []
    with pytest.raises(DigestMismatch, match="does not match"):
        for chunk in evil.fetch(layer):
            received.append(chunk)
    assert b"".join(received) != data  # the last chunk is held back until the digest checked out
    with pytest.raises(DigestMismatch):
        fetch_bytes(target, Descriptor(LAYER_TYPE, layer.digest, layer.size - 1))


@pytest.mark.parametrize("threshold", [1 * 1024 * 1024, 4 * KiB], ids=["monolithic", "chunked"])
def test_pushing_content_that_does_not_match_the_descriptor_is_refused(registry, threshold):
    target = storage(registry.host, chunk_threshold=threshold, chunk_size=2 * KiB).repository(unique())
    data = os.urandom(10 * KiB)
    desc = Descriptor.of(LAYER_TYPE, data)
    wrong = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(DigestMismatch):
        target.push(desc, pieces(wrong, 3000))
    with pytest.raises(DigestMismatch):
        target.push(desc, [data + b"more"])
    assert not target.exists(desc)


def test_unknown_tag_and_repository(registry):
    target = storage(registry.host).repository(unique())
    assert target.tags() == []
    with pytest.raises(NotFound, match=r"not found: check the name and version") as err:
        target.resolve("9.9.9")
    assert err.value.kind == "manifest_not_found" and err.value.repository == target.name
    assert f"oci tags {target.name}` lists the versions" in explain(err.value)[0]
    with pytest.raises(NotFound):
        list(target.fetch(Descriptor.of(LAYER_TYPE, b"missing")))


def test_a_server_that_is_not_a_registry_is_named_as_such(tmp_path):
    (tmp_path / "index.html").write_text("<html>hello</html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    server.RequestHandlerClass.log_message = lambda *a: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        with pytest.raises(RegistryError, match="does not look like an OCI registry") as err:
            storage(host).repository("a/b").tags()
        assert err.value.status == 404
    finally:
        server.shutdown()
        server.server_close()


def test_connection_refused_asks_whether_the_registry_runs():
    with pytest.raises(RegistryError) as err:
        storage(f"127.0.0.1:{free_port()}", retries=2).repository("a/b").tags()
    assert err.value.kind == "connection_refused" and err.value.host.startswith("127.0.0.1:")
    assert re.search(r"connection refused.*is the registry running", explain(err.value)[0])


def test_plain_http_is_the_default_for_loopback_hosts_only():
    assert is_loopback("localhost:5000") and is_loopback("127.0.0.2:5000") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example.com") and not is_loopback("10.0.0.1:5000")
    assert RemoteStorage("localhost:5000").base_url == "http://localhost:5000"
    assert RemoteStorage("127.0.0.1:5000", plain_http=False).base_url == "https://127.0.0.1:5000"
    assert RemoteStorage("registry.example.com").base_url == "https://registry.example.com"
    assert RemoteStorage("http://registry.example.com:8080").base_url == "http://registry.example.com:8080"


# -- TLS and basic auth ----------------------------------------------------------------------------


def alice() -> Credentials:
    return Credentials("alice", BASIC_USERS["alice"], source="the test")


def test_tls_with_a_ca_file_and_basic_auth(tls_registry, certificates):
    remote = storage(tls_registry.host, plain_http=False, ca_file=str(certificates.ca_cert), credentials=alice())
    target = remote.repository(unique())
    md, manifest, blobs = push_artifact(target, "1.0.0")
    assert target.resolve("1.0.0") == md and fetch_bytes(target, blobs[1][0]) == blobs[1][1]
    insecure = storage(tls_registry.host, plain_http=False, insecure=True, credentials=alice())
    assert insecure.repository(target.name).fetch_reference("1.0.0") == (md, manifest)


def test_tls_failures_say_which_option_is_needed(tls_registry, registry):
    with pytest.raises(RegistryError, match="not trusted") as err:
        storage(tls_registry.host, plain_http=False).repository("a/b").tags()
    assert err.value.kind == "tls_untrusted" and "--" not in str(err.value)  # the library names no flag
    assert re.search(r"not trusted.*--ca-file.*--insecure.*not --plain-http", explain(err.value)[0])
    with pytest.raises(RegistryError, match=r"speaks HTTPS.*plain HTTP") as err:
        storage(tls_registry.host).repository("a/b").tags()  # loopback: plain HTTP by default
    assert err.value.kind == "plain_http_to_tls"
    assert re.search(r"speaks HTTPS.*plain HTTP.*tls_enabled: true", explain(err.value)[0])
    with pytest.raises(RegistryError, match=r"speaks plain HTTP") as err:
        storage(registry.host, plain_http=False).repository("a/b").tags()
    assert err.value.kind == "tls_to_plain_http"
    assert re.search(r"speaks plain HTTP.*--plain-http", explain(err.value)[0])


def test_basic_auth_errors_say_how_to_log_in(tls_registry, certificates):
    tls = {"plain_http": False, "ca_file": str(certificates.ca_cert)}
    wrong = Credentials("alice", "not-the-password", source="the test")
    with pytest.raises(AuthError, match=r"rejected the credentials \(user 'alice'") as err:
        storage(tls_registry.host, credentials=wrong, **tls).repository("a/b").tags()
    assert err.value.status == 401 and "not-the-password" not in explain(err.value)[0]
    assert re.search(r"rejected the credentials \(user 'alice'.*oci login", explain(err.value)[0])
    with pytest.raises(AuthError, match="requires authentication") as err:
        storage(tls_registry.host, **tls).repository("a/b").tags()
    assert err.value.kind == "login_required" and err.value.anonymous
    assert re.search(r"requires authentication.*provisioning oci login 127\.0\.0\.1", explain(err.value)[0])


# -- interop ---------------------------------------------------------------------------------------


def test_skopeo_and_oras_read_what_we_push(registry, tmp_path):
    import oras.client

    target = storage(registry.host).repository(unique("interop"))
    md, manifest, blobs = push_artifact(target, "1.0.0")
    ref = f"{registry.host}/{target.name}:1.0.0"
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"], capture_output=True, check=True
    )
    assert raw.stdout == manifest
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{tmp_path / 'copied'}:1.0.0"],
        capture_output=True,
        check=True,
    )
    index = json.loads((tmp_path / "copied" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == md.digest
    files = oras.client.OrasClient(hostname=registry.host, insecure=True).pull(
        target=ref, outdir=str(tmp_path / "oras")
    )
    assert [Path(f).name for f in files] == ["ext.tar.gz"]
    assert Path(files[0]).read_bytes() == blobs[1][1]


def test_we_read_what_oras_pushes(registry, tmp_path, monkeypatch):
    import oras.client

    name = unique("oras")
    (tmp_path / "hello.txt").write_text("hello from oras")
    monkeypatch.chdir(tmp_path)
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    client.push(target=f"{registry.host}/{name}:v1", files=["hello.txt"])
    target = storage(registry.host).repository(name)
    desc, manifest = target.fetch_reference("v1")
    assert desc == target.resolve("v1")
    layer = Descriptor.from_dict(json.loads(manifest)["layers"][0])
    assert layer.annotations[TITLE] == "hello.txt"
    assert fetch_bytes(target, layer) == b"hello from oras"


def write_oci_layout(folder: Path, tag: str) -> tuple[str, bytes]:
    """A minimal OCI image layout (one image) for skopeo to copy from."""
    import gzip
    import hashlib

    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layer = gzip.compress(b"not really a tar, but a layer all the same", mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config.encode())},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(layer)}],
        }
    ).encode()
    entry = {"mediaType": MANIFEST, **blob(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return entry["digest"], layer


def test_we_read_what_skopeo_copies_in(registry, tmp_path):
    digest, layer = write_oci_layout(tmp_path / "layout", "1.0.0")
    name = unique("skopeo")
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"oci:{tmp_path / 'layout'}:1.0.0",
            f"docker://{registry.host}/{name}:1.0.0",
        ],
        capture_output=True,
        check=True,
    )
    target = storage(registry.host).repository(name)
    desc = target.resolve("1.0.0")
    assert desc.digest == digest
    manifest = json.loads(fetch_bytes(target, desc))
    layer_desc = Descriptor.from_dict(manifest["layers"][0])
    assert fetch_bytes(target, layer_desc) == layer
    assert fetch_bytes(target, Descriptor.from_dict(manifest["config"]))


def test_errors_are_provisioning_errors_with_request_details(registry):
    session, _ = fault_session(
        lambda r: (
            fake_response(
                r,
                400,
                {"Content-Type": "application/json", "Docker-Distribution-Api-Version": "registry/2.0"},
                b'{"errors":[{"code":"MANIFEST_INVALID","message":"unknown config media type"}]}',
            )
            if r.method == "PUT"
            else None
        )
    )
    target = storage(registry.host, session=session).repository(unique())
    _, md, manifest = build_artifact()
    with pytest.raises(
        RegistryError, match=r"refused the manifest.*MANIFEST_INVALID: unknown config media type"
    ) as err:
        target.push(md, [manifest])
    assert isinstance(err.value, ProvisioningError)
    assert err.value.codes == ("MANIFEST_INVALID",) and err.value.method == "PUT" and err.value.status == 400


def test_graph_copy_pushes_mounts_and_pulls_through_the_remote_store(registry, tmp_path):
    from provisioning.oci.copy import copy
    from provisioning.oci.layout import LayoutStorage
    from provisioning.oci.memory import MemoryStorage

    source = MemoryStorage().repository("ns/ext")
    blobs, md, manifest = build_artifact(layer=os.urandom(40 * KiB))
    for desc, data in blobs:
        source.push(desc, [data])
    source.push(md, [manifest])
    source.tag(md, "1.0.0")
    session, adapter = fault_session()
    remote = storage(registry.host, session=session, chunk_threshold=16 * KiB, chunk_size=8 * KiB)
    first = remote.repository(unique("copy"))
    copy(source, "1.0.0", first)
    assert first.resolve("1.0.0") == md
    heads = methods(adapter, "HEAD", "/blobs/")
    assert len(heads) == 2  # copy's check is the only one per blob
    adapter.seen.clear()
    assert copy(source, "1.0.0", first).up_to_date
    assert len(adapter.seen) == 1  # a no-change republish costs one request
    second = remote.repository(unique("mirror"))
    result = copy(first, "1.0.0", second)
    assert result.mounted == 2 and second.resolve("1.0.0") == md
    pulled = LayoutStorage(tmp_path / "layout").repository("ns/ext")
    copy(second, "1.0.0", pulled)
    assert fetch_bytes(pulled, blobs[1][0]) == blobs[1][1]


def test_resolve_falls_back_to_get_when_head_lacks_the_digest(registry):
    target = storage(registry.host).repository(unique())
    md, _, _ = push_artifact(target, "1.0.0")

    def strip(request):
        if request.method == "HEAD":

            def without_digest(resp):
                del resp.headers["Docker-Content-Digest"]
                return resp

            return without_digest
        return None

    session, adapter = fault_session(strip)
    assert storage(registry.host, session=session).repository(target.name).resolve("1.0.0") == md
    assert methods(adapter, "GET", "/manifests/1.0.0")


# -- the request path: what Session.request did, kept -----------------------------------------------


def test_a_cookie_the_registry_sets_is_sent_back(registry):
    """A load balancer's sticky-session cookie still reaches the next requests (as through Session.request)."""
    from registry_server import RegistryProxy

    proxy = RegistryProxy(registry.host, refuse=lambda m, p: None, add_headers={"Set-Cookie": "lb=node-2; Path=/"})
    proxy.start()
    try:
        target = storage(proxy.host).repository(unique())
        push_artifact(target, "1.0.0")
        assert target.tags() == ["1.0.0"]
    finally:
        proxy.stop()
    cookies = [h.get("Cookie") for h in proxy.seen_headers]
    assert cookies[0] is None  # the first request had nothing to send back yet
    assert cookies[1:] and all(c == "lb=node-2" for c in cookies[1:])
    assert all(h.get("User-Agent", "").startswith("provisioning/") for h in proxy.seen_headers)


def test_finished_requests_do_not_pile_up_under_the_watchdog(registry):
    """The watchdog is not woken per request, so finished requests must leave its heap as new ones come."""
    from provisioning.oci.remote.watch import WATCHDOG

    target = storage(registry.host).repository(unique())
    push_artifact(target, "1.0.0")
    target.fetch(target.resolve("1.0.0"))  # a read left open holds the top of the heap
    for _ in range(300):
        target.tags()
    finished = [w for *_, w in WATCHDOG._heap if w.done]
    assert len(finished) <= 64


@pytest.mark.parametrize("base", ["http://127.0.0.1:5000", "https://Registry.Example:8443"])
def test_urls_are_prepared_exactly_as_requests_prepares_them(base):
    """Our own URLs skip requests' URL parsing; whatever a registry names (Link, Location) still gets it."""
    import requests

    from provisioning.oci.endpoint import parse_endpoint
    from provisioning.oci.remote.transport import Transport

    transport = Transport(parse_endpoint(base))
    rests = [
        "/v2/a/b/tags/list",
        "/v2/a-b/c_d.e/manifests/sha256:" + "0" * 64,
        "/v2/a/b/tags/list?n=100&last=1.0.0",
        "/v2/x/blobs/uploads/8a7b?_state=AbC%3D%3D&digest=sha256:00",
        "/v2/a b/tags/list",  # a space: quoted
        "/v2/ä/tags/list",  # not ASCII: quoted
        "/v2/a/tags/list?last=%zz",  # a bare %: quoted
        "/v2/a/tags/list#frag",
        "/v2/a/tags/list?q=<script>",
    ]
    for rest in rests:
        url = transport.base_url + rest
        expected = requests.PreparedRequest()
        expected.prepare_url(url, None)
        got = transport._prepare("GET", url, auth=None, headers=None, params=None, data=None)
        assert got.url == expected.url, rest
    with_params = transport._prepare(
        "GET",
        transport.base_url + "/v2/a/tags/list",
        auth=None,
        headers=None,
        params={"n": "2", "last": "a b"},
        data=None,
    )
    assert with_params.url.endswith("/v2/a/tags/list?n=2&last=a+b")
