"""Bundles: create from a workspace resolved against a real registry, verify offline, push into another registry,
install from it; faults (truncated blob, edited bundle.json, hostile tar, full disk, registry gone) exit 1."""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

import errno
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
from oci_samples import push_signature
from test_workspace_helpers import (  # noqa: F401
    home,
    lock_json,
    make_workspace,
    publish_catalog,
    seed_config,
    snapshot,
)
from test_workspace_registry import http_log  # noqa: F401

from provisioning.cli import main
from provisioning.oci.open import open_storage
from provisioning.oci.reference import version_for_tag
from tools import require


@pytest.fixture
def namespace() -> str:
    return f"bd-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def origin(fresh_registry, namespace: str) -> str:
    """A registry holding the seed catalogue, kubernetes and etcd signed (cosign's tag schema)."""
    storage = open_storage(fresh_registry.host, tls_enabled=False)
    publish_catalog(storage, namespace=namespace)
    for name, version in (("kubernetes", "1.28.0"), ("etcd", "3.5.9")):  # their signatures share a config blob
        repo = storage.repository(f"{namespace}/{name}")
        push_signature(repo, repo.resolve(version))
    return fresh_registry.host


@pytest.fixture
def ws(tmp_path: Path, origin: str, namespace: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workspace(tmp_path / "ws", seed_config(origin, namespace))
    monkeypatch.chdir(root)
    assert main(["dep", "resolve"]) == 0
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def create(capsys, ws: Path, out: Path, *extra: str) -> dict:
    code, text, err = run(capsys, "bundle", "create", str(out), "--workspace", str(ws), "--output", "json", *extra)
    assert code == 0, err
    return json.loads(text)


def test_create_holds_the_locked_closure_with_signatures(ws: Path, tmp_path: Path, namespace: str, origin: str, capsys):
    out = tmp_path / "bundle"
    report = create(capsys, ws, out)
    assert report["copied"] > 0
    doc = json.loads((out / "bundle.json").read_text())
    assert doc["origin"] == {"registry": origin, "namespace": namespace}
    assert doc["lock"] == lock_json(ws)
    kinds = {(a["repository"].split("/")[-1], a["kind"]) for a in doc["artifacts"]}
    for name in lock_json(ws)["order"]:
        assert (name, "extension") in kinds
    assert ("kubernetes", "signature") in kinds
    sig = next(a for a in doc["artifacts"] if a["kind"] == "signature" and "kubernetes" in a["repository"])
    assert sig["tag"].endswith(".sig") and sig["subject"] == lock_json(ws)["extensions"]["kubernetes"]["digest"]
    # the same lock gives the same bundle.json; a rerun reuses everything and copies nothing
    again = create(capsys, ws, out)
    assert again["copied"] == 0 and again["reused"] > 0
    assert json.loads((out / "bundle.json").read_text()) == doc
    # skopeo and the layout readers see plain OCI layouts
    k8s = out / namespace / "kubernetes"
    subprocess.run(["skopeo", "inspect", "--raw", f"oci:{k8s}:1.28.0"], check=True, capture_output=True)
    code, text, err = run(capsys, "bundle", "verify", str(out))
    assert code == 0, err
    assert "verified" in text


def test_create_from_references_holds_each_ones_dependency_closure(
    ws: Path, tmp_path: Path, namespace: str, origin: str, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bundle create OUT REF…`` resolves like a workspace asking for exactly those versions."""
    from oci_samples import push_referrer

    from provisioning.workspace.sources import base

    checked: list[str] = []  # the schema check, once per config: the reference lookup and the resolve share it
    real_problems = base.manifest_problems
    monkeypatch.setattr(
        base, "manifest_problems", lambda meta, where: (checked.append(where), real_problems(meta, where))[1]
    )

    lock = lock_json(ws)
    k8s = lock["extensions"]["kubernetes"]
    closure, todo = set(), ["kubernetes"]
    while todo:  # kubernetes and everything it depends on, as the workspace's lock resolved them
        name = todo.pop()
        if name not in closure:
            closure.add(name)
            todo.extend(lock["extensions"][name]["dependencies"])
    assert len(closure) > 1
    plain = open_storage(origin).repository(f"{namespace}/not-an-extension")  # any other artifact rides along alone
    sbom = push_referrer(plain, open_storage(origin).repository(f"{namespace}/kubernetes").resolve("1.28.0"))
    plain.tag(sbom, "v1")
    out = tmp_path / "refs"
    refs = [
        f"{origin}/{namespace}/kubernetes:{version_for_tag(k8s['tag'])}",
        f"{origin}/{namespace}/not-an-extension:v1",
    ]
    code, text, err = run(capsys, "bundle", "create", str(out), *refs, "--plain-http", "--output", "json")
    assert code == 0, err
    doc = json.loads((out / "bundle.json").read_text())
    assert doc["origin"] == {"registry": origin, "namespace": namespace}
    extensions = {a["repository"].split("/")[-1]: a["digest"] for a in doc["artifacts"] if a["kind"] == "extension"}
    # the same names; versions are the newest each range allows (the workspace pins some of them itself)
    assert set(extensions) == closure and extensions["kubernetes"] == k8s["digest"]
    assert any(a["kind"] == "signature" and a["subject"] == k8s["digest"] for a in doc["artifacts"])
    assert [a["digest"] for a in doc["artifacts"] if a["kind"] == "artifact"] == [sbom.digest]
    assert run(capsys, "bundle", "verify", str(out))[0] == 0
    assert len(checked) == len(closure), checked  # kubernetes was looked up, then resolved: checked once
    # a name that does not exist: one clear line, exit 1
    code, _, err = run(
        capsys, "bundle", "create", str(tmp_path / "x"), f"{origin}/{namespace}/nope:1.0.0", "--plain-http"
    )
    assert code == 1 and "nope" in err


def test_the_oras_cli_reads_the_bundle_layouts(ws: Path, tmp_path: Path, namespace: str, capsys) -> None:
    oras = require("oras")
    out = tmp_path / "bundle"
    create(capsys, ws, out)
    digest = lock_json(ws)["extensions"]["kubernetes"]["digest"]
    layout = out / namespace / "kubernetes"
    fetched = subprocess.run(
        [oras, "manifest", "fetch", "--oci-layout", f"{layout}:1.28.0", "--descriptor"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(fetched.stdout)["digest"] == digest
    tags = subprocess.run([oras, "repo", "tags", "--oci-layout", str(layout)], check=True, capture_output=True)
    assert b"1.28.0" in tags.stdout and b".sig" in tags.stdout


def test_tar_bundles_are_byte_identical_and_verify(ws: Path, tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a.tar", tmp_path / "b" / "bundle.tar"
    b.parent.mkdir()
    create(capsys, ws, a)
    create(capsys, ws, b, "--tar")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert not (tmp_path / "a.tar.d").exists()
    with tarfile.open(a) as tar:
        names = tar.getnames()
        assert names == sorted(names) or "bundle.json" in names
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    code, _, err = run(capsys, "bundle", "verify", str(a))
    assert code == 0, err


def test_a_resumed_create_reuses_what_verifies(ws: Path, tmp_path: Path, namespace: str, capsys) -> None:
    out = tmp_path / "bundle"
    full = create(capsys, ws, out)
    # an interrupted run: no bundle.json, one repository gone, one blob damaged
    (out / "bundle.json").unlink()
    shutil.rmtree(out / namespace / "etcd")
    blobs = sorted((out / namespace / "cilium" / "blobs" / "sha256").iterdir(), key=lambda p: -p.stat().st_size)
    blobs[0].write_bytes(blobs[0].read_bytes()[:10])
    code, _, err = run(capsys, "bundle", "verify", str(out))
    assert code == 1 and "bundle.json" in err and "did not finish" in err
    again = create(capsys, ws, out)
    assert 0 < again["copied"] < full["copied"]
    assert run(capsys, "bundle", "verify", str(out))[0] == 0


def test_a_progress_journal_that_is_a_link_is_replaced_not_written_through(ws: Path, tmp_path: Path, capsys) -> None:
    """An unfinished bundle folder from elsewhere may hold ``.bundle-progress`` as a link to a file outside."""
    out = tmp_path / "bundle"
    out.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    (out / ".bundle-progress").symlink_to(outside)
    create(capsys, ws, out)
    assert outside.read_text() == "keep me\n"
    assert not (out / ".bundle-progress").exists() and not (out / ".bundle-progress").is_symlink()
    assert run(capsys, "bundle", "verify", str(out))[0] == 0


def test_a_manifest_written_but_never_listed_before_a_crash_is_listed_by_the_rerun(
    ws: Path, tmp_path: Path, namespace: str, origin: str, capsys
) -> None:
    """A crash between a manifest's blob and its index.json entry: the rerun lists it (push and referrer queries
    see a repository through its index, so a blob alone would be lost on the way to the site)."""
    from oci_samples import push_referrer

    k8s = open_storage(origin).repository(f"{namespace}/kubernetes")
    sbom = push_referrer(k8s, k8s.resolve("1.28.0"))  # untagged: only the index lists it
    out = tmp_path / "bundle"
    create(capsys, ws, out)
    index = out / namespace / "kubernetes" / "index.json"
    doc = json.loads(index.read_text())
    doc["manifests"] = [e for e in doc["manifests"] if e["digest"] != sbom.digest]
    index.write_text(json.dumps(doc))
    assert (out / namespace / "kubernetes" / "blobs" / "sha256" / sbom.digest[7:]).is_file()
    code, _, err = run(capsys, "bundle", "verify", str(out))
    assert code == 1 and sbom.digest in err and "does not list it" in err, err
    (out / "bundle.json").unlink()
    create(capsys, ws, out)
    assert any(e["digest"] == sbom.digest for e in json.loads(index.read_text())["manifests"])
    assert run(capsys, "bundle", "verify", str(out))[0] == 0


def test_since_writes_only_what_is_new(ws: Path, tmp_path: Path, capsys) -> None:
    old = tmp_path / "old.lock"
    shutil.copy(ws / "config" / "provisioning.lock", old)
    report = create(capsys, ws, tmp_path / "delta", "--since", str(old))
    assert report["left_out"] == len(lock_json(ws)["order"])
    doc = json.loads((tmp_path / "delta" / "bundle.json").read_text())
    assert not [a for a in doc["artifacts"] if a["kind"] == "extension"]
    assert doc["since"].startswith("sha256:")


def test_verify_names_the_first_bad_part(ws: Path, tmp_path: Path, namespace: str, capsys) -> None:
    out = tmp_path / "bundle"
    create(capsys, ws, out)
    blobs = (out / namespace / "cilium" / "blobs" / "sha256").iterdir()
    layer = next(p for p in blobs if p.read_bytes()[:2] == b"\x1f\x8b")  # the gzip layer
    good = layer.read_bytes()
    layer.write_bytes(good[: len(good) // 2])  # truncated
    code, _, err = run(capsys, "bundle", "verify", str(out))
    assert code == 1 and f"blob sha256:{layer.name}" in err and "cilium" in err and "truncated" in err
    layer.write_bytes(good)
    doc = json.loads((out / "bundle.json").read_text())
    doc["origin"]["registry"] = "evil.example"
    (out / "bundle.json").write_text(json.dumps(doc))
    code, _, err = run(capsys, "bundle", "verify", str(out))
    assert code == 1 and "bundle.json was changed" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not json{", "the bundle manifest is not JSON"),
        (b"[]", "the bundle manifest is not a JSON object"),
        (b'{"bundleVersion": 9}', "bundleVersion 9 is not 1"),
    ],
)
def test_a_bundle_json_that_is_not_ours_is_refused_with_its_reason(
    tmp_path: Path, capsys, content: bytes, expected: str
) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bundle.json").write_bytes(content)
    code, _, err = run(capsys, "bundle", "verify", str(tmp_path / "b"))
    assert code == 1 and expected in err and "bundle.json" in err, err


def test_a_tar_with_members_outside_the_tree_is_refused(tmp_path: Path, capsys) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    for cmd in (["bundle", "verify", str(evil)], ["bundle", "push", str(evil), "127.0.0.1:1"]):
        code, _, err = run(capsys, *cmd)
        assert code == 1 and "refused" in err
    assert not (tmp_path.parent / "escaped").exists()


def _disk_fills_after(monkeypatch: pytest.MonkeyPatch, files: int):  # type: ignore[no-untyped-def]
    """Writes into stores fail with ENOSPC once ``files`` files were put in place; returns the real os.replace."""
    import provisioning.oci.layout as layout

    real = layout.os.replace
    calls = {"n": 0}

    def full(src, dst):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > files:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(layout.os, "replace", full)
    return real


def test_a_full_disk_during_create_is_a_clear_error_and_a_rerun_completes(
    ws: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import provisioning.oci.layout as layout

    real = _disk_fills_after(monkeypatch, 12)
    out = tmp_path / "bundle"
    # one artifact at a time, so the first ones are complete when the disk fills
    code, _, err = run(capsys, "bundle", "create", str(out), "--workspace", str(ws), "--concurrency", "1")
    assert code == 1, err
    assert "No space left on device" in err and "run the same command again" in err, err
    assert not (out / "bundle.json").exists()
    monkeypatch.setattr(layout.os, "replace", real)
    report = create(capsys, ws, out)
    assert report["reused"] > 0
    assert run(capsys, "bundle", "verify", str(out))[0] == 0


def test_an_interrupted_create_asks_the_registry_nothing_about_what_it_finished(
    ws: Path, tmp_path: Path, namespace: str, capsys, monkeypatch: pytest.MonkeyPatch, http_log: list[str]
) -> None:
    import provisioning.oci.layout as layout

    create(capsys, ws, tmp_path / "whole")
    whole = len(http_log)
    real = _disk_fills_after(monkeypatch, 20)
    out = tmp_path / "bundle"
    code, _, err = run(capsys, "bundle", "create", str(out), "--workspace", str(ws), "--concurrency", "1")
    assert code == 1 and "No space left on device" in err, err
    journal = out / ".bundle-progress"
    header, *finished = journal.read_text().splitlines()
    assert json.loads(header)["job"]["lock"], "the journal names the job: the lock, by digest"
    assert finished, "the artifacts finished before the disk filled are noted"
    monkeypatch.setattr(layout.os, "replace", real)
    # a crash may leave an index.json cut short (files are synced only at the end): the rerun rebuilds it
    first = json.loads(finished[0])["listed"][0][0]
    (out / first / "index.json").write_text('{"manifests": [')
    del http_log[:]
    code, text, err = run(capsys, "bundle", "create", str(out), "--workspace", str(ws), "--output", "json")
    assert code == 0, err
    assert f"resuming the create begun at {json.loads(header)['begun']} (the same lock)" in err
    report = json.loads(text)
    assert report["reused"] > 0
    assert len(http_log) < whole, (len(http_log), whole)
    assert not journal.exists()
    assert run(capsys, "bundle", "verify", str(out))[0] == 0
    assert json.loads((out / "bundle.json").read_text()) == json.loads((tmp_path / "whole" / "bundle.json").read_text())


def test_push_loads_an_empty_registry_and_a_rerun_finishes(ws: Path, tmp_path: Path, namespace: str, capsys) -> None:
    from registry_server import RegistryServer, free_port

    out = tmp_path / "bundle"
    create(capsys, ws, out)
    # the registry is not there: clear message, exit 1
    code, _, err = run(capsys, "bundle", "push", str(out), f"127.0.0.1:{free_port()}")
    assert code == 1 and "run the same command again" in err
    with RegistryServer(tmp_path / "site") as site:
        code, text, err = run(capsys, "bundle", "push", str(out), site.host, "--output", "json")
        assert code == 0, err
        first = json.loads(text)
        assert first["failed"] == 0 and first["copied"] > 0
        dst = open_storage(site.host)
        k8s = dst.repository(f"{namespace}/kubernetes")
        assert any(t.endswith(".sig") for t in k8s.tags())
        again = json.loads(run(capsys, "bundle", "push", str(out), site.host, "--output", "json")[1])
        assert again["copied"] == 0 and again["up_to_date"] == again["tags"]


def _site_workspace(tmp_path: Path, ws: Path, name: str) -> Path:
    """The same workspace on another machine: config and lock copied, nothing installed, an empty cache."""
    other = tmp_path / name / "ws"
    (other / "config").mkdir(parents=True)
    for f in ("provisioning.yaml", "provisioning.lock"):
        shutil.copy(ws / "config" / f, other / "config" / f)
    return other


def test_online_resolve_bundle_empty_registry_and_no_registry_install_with_the_same_lock(
    ws: Path, tmp_path: Path, origin: str, namespace: str, fresh_registry, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry_server import RegistryServer

    lock_bytes = (ws / "config" / "provisioning.lock").read_bytes()
    installed = snapshot(ws / "extensions")
    bundle = tmp_path / "bundle"
    create(capsys, ws, bundle)
    fresh_registry.stop()  # the origin is gone: from here on the site is air-gapped

    # 1. no registry at all: the bundle folder as the registry; the online lock is reused as it is
    site = _site_workspace(tmp_path, ws, "site1")
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "site1" / "home"))
    code, _, err = run(capsys, "dep", "resolve", "--locked", "-w", str(site), "--registry", str(bundle))
    assert code == 0, err
    assert (site / "config" / "provisioning.lock").read_bytes() == lock_bytes
    assert snapshot(site / "extensions") == installed

    # 2. the site's own empty registry, loaded from the bundle, named as a mirror of the origin
    with RegistryServer(tmp_path / "site-registry") as local:
        assert run(capsys, "bundle", "push", str(bundle), local.host)[0] == 0
        site = _site_workspace(tmp_path, ws, "site2")
        config = site / "config" / "provisioning.yaml"
        config.write_text(
            config.read_text()
            + f'\n  registry:\n    mirrors:\n      "{origin}": ["{local.host}"]\n    mirror_only: true\n'
            if "\ndependencies:" not in config.read_text()
            else config.read_text().replace(
                "\ndependencies:\n",
                f'\ndependencies:\n  registry:\n    mirrors:\n      "{origin}": ["{local.host}"]\n'
                "    mirror_only: true\n",
                1,
            )
        )
        monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "site2" / "home"))
        code, _, err = run(capsys, "dep", "resolve", "-w", str(site))
        assert code == 0, err
        assert (site / "config" / "provisioning.lock").read_bytes() == lock_bytes
        assert snapshot(site / "extensions") == installed


def test_the_registry_going_away_during_push_then_a_rerun_finishes(
    ws: Path, tmp_path: Path, namespace: str, capsys
) -> None:
    from registry_server import RegistryServer

    from provisioning.bundle.push import push_bundle

    out = tmp_path / "bundle"
    create(capsys, ws, out)
    site = RegistryServer(tmp_path / "site").start()
    port = site.port
    try:
        done: list[str] = []

        def stop_after_two(rc) -> None:  # the site's registry dies after the second repository
            done.append(rc.source)
            if len(done) == 2:
                site.stop()

        result = push_bundle(out, open_storage(site.host), parallel=1, on_repository=stop_after_two)
        assert len(result.failed) >= 1 and len(result.repositories) - len(result.failed) >= 2
        assert "run the command again" in result.failed[0].error or "connect" in result.failed[0].error
        site = RegistryServer(tmp_path / "site", port=port).start()  # back, with what it had stored
        code, text, err = run(capsys, "bundle", "push", str(out), site.host, "--output", "json")
        assert code == 0, err
        again = json.loads(text)
        assert again["failed"] == 0 and again["copied"] > 0 and again["up_to_date"] >= 2
        dst = open_storage(site.host)
        for name, e in lock_json(ws)["extensions"].items():
            assert dst.repository(f"{namespace}/{name}").resolve(e["tag"]).digest == e["digest"]
    finally:
        site.stop()


def test_verify_with_a_key_checks_every_extension_signature(
    ws: Path, tmp_path: Path, origin: str, namespace: str, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provisioning.oci.layout import LayoutStorage
    from provisioning.signing.keys import load_private_key, write_key_pair
    from provisioning.signing.sign import sign_artifact

    password = b"bundle-test-password"
    priv, pub = write_key_pair(tmp_path / "cosign", password)
    key = load_private_key(priv, password)
    storage = open_storage(origin)

    def sign(name: str) -> None:
        target = storage.repository(f"{namespace}/{name}")
        digest = lock_json(ws)["extensions"][name]["digest"]
        sign_artifact(target, target.resolve(digest), key, f"{origin}/{namespace}/{name}")

    for name in lock_json(ws)["extensions"]:
        if name != "cilium":
            sign(name)
    out = tmp_path / "bundle"
    create(capsys, ws, out)
    # cilium is not signed: the check names it and says so
    code, _, err = run(capsys, "bundle", "verify", str(out), "--key", str(pub))
    assert code == 1 and "cilium" in err and "not signed" in err
    sign("cilium")
    create(capsys, ws, out)
    code, text, err = run(capsys, "bundle", "verify", str(out), "--key", str(pub), "--output", "json")
    assert code == 0, err
    assert len(json.loads(text)["signatures"]) == len(lock_json(ws)["extensions"])
    # an unknown key: exit 1 naming the signature check
    _, other = write_key_pair(tmp_path / "other", password)
    code, _, err = run(capsys, "bundle", "verify", str(out), "--key", str(other))
    assert code == 1 and "signature" in err
    # a signature lost on the way: bundle.json still lists it
    cilium = LayoutStorage(out).repository(f"{namespace}/cilium")
    cilium.untag(next(t for t in cilium.tags() if t.endswith(".sig")))
    code, _, err = run(capsys, "bundle", "verify", str(out), "--key", str(pub))
    assert code == 1 and "cilium" in err and ".sig" in err
