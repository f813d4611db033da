import gzip
import io
import json
import os
import shutil
import tarfile

import pytest
from extension_factory import make_extension

from provisioning.errors import ValidationError
from provisioning.oci.descriptor import ARTIFACT_TYPE, CONFIG_TYPE, LAYER_TYPE, MANIFEST, sha256_digest
from provisioning.package import SOURCE_ANNOTATION, build_artifact, source_digest, write_artifact


def members(layer: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def test_artifact_follows_the_contract(tmp_path):
    ext = make_extension(tmp_path, "redis", version="1.0.0", dependencies={"base": ">=1.0.0"})
    art = build_artifact(ext, use_git=False)
    manifest = json.loads(art.manifest)
    assert manifest["mediaType"] == MANIFEST and manifest["schemaVersion"] == 2
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert manifest["config"]["mediaType"] == CONFIG_TYPE
    assert [layer["mediaType"] for layer in manifest["layers"]] == [LAYER_TYPE]
    assert json.loads(art.config)["dependencies"] == {"base": ">=1.0.0"}
    assert art.config_desc.digest == sha256_digest(art.config)
    assert art.layer_desc.digest == sha256_digest(art.layer)
    ann = manifest["annotations"]
    assert ann["org.opencontainers.image.title"] == "redis"
    assert ann["org.opencontainers.image.version"] == "1.0.0"
    assert ann["org.opencontainers.image.licenses"] == "MIT"
    assert ann[SOURCE_ANNOTATION] == source_digest(ext)
    assert "org.opencontainers.image.created" not in ann  # no commit, no SOURCE_DATE_EPOCH: never "now"
    names = members(art.layer)
    assert "manifest.yaml" in names and "oci-manifest.json" in names and "kcl/redis.k" in names
    assert not [n for n in names if n.startswith("tests")]
    assert all(m.uid == 0 and m.gid == 0 and m.mtime == 0 and m.uname == "" for m in names.values())


def test_identical_content_is_byte_identical_whatever_the_mtimes_and_modes(tmp_path):
    a = make_extension(tmp_path / "a", "etcd", version="3.5.0")
    b = tmp_path / "b" / "taskservs" / "etcd"
    shutil.copytree(a, b)
    for i, path in enumerate(sorted(b.rglob("*"))):
        os.utime(path, (1_000_000 + i, 2_000_000 + i * 7))
        os.chmod(path, 0o700 if path.is_dir() else (0o600 if i % 2 else 0o664))
    old = os.umask(0o077)
    try:
        art_a, art_b = build_artifact(a, use_git=False), build_artifact(b, use_git=False)
    finally:
        os.umask(old)
    assert art_a.layer == art_b.layer
    assert art_a.manifest == art_b.manifest
    assert art_a.manifest_desc.digest == art_b.manifest_desc.digest
    assert gzip.decompress(art_a.layer)  # a valid gzip stream
    # and it changes when content changes
    (b / "docs" / "README.md").write_text("# etcd, edited\n")
    assert build_artifact(b, use_git=False).layer_desc != art_a.layer_desc


def test_source_date_epoch_sets_created(tmp_path, monkeypatch):
    ext = make_extension(tmp_path, "cilium")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    ann = json.loads(build_artifact(ext, use_git=False).manifest)["annotations"]
    assert ann["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"


def test_ignore_file_leaves_out_more(tmp_path):
    ext = make_extension(tmp_path, "web", type_="cluster")
    (ext / "notes.bak").write_text("scratch")
    (ext / "templates" / "old.bak").write_text("scratch")
    (ext / "tmp").mkdir()
    (ext / "tmp" / "x").write_text("x")
    (ext / ".provisioningignore").write_text("# editor leftovers\n*.bak\ntmp/\n")
    names = members(build_artifact(ext, use_git=False).layer)
    assert not [n for n in names if n.endswith(".bak") or n.startswith("tmp")]
    assert ".provisioningignore" not in names


def test_links_are_refused(tmp_path):
    ext = make_extension(tmp_path, "aws", type_="provider")
    (ext / "docs" / "link.md").symlink_to("/etc/passwd")
    with pytest.raises(ValidationError, match="link"):
        build_artifact(ext, use_git=False)


def test_write_artifact_is_atomic_and_idempotent(tmp_path):
    ext = make_extension(tmp_path, "postgres", version="16.1.0")
    art = build_artifact(ext, use_git=False)
    out = tmp_path / "build"
    tarball = write_artifact(art, out)
    assert tarball.name == "postgres-16.1.0.tar.gz"
    assert tarball.read_bytes() == art.layer
    mtimes = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    write_artifact(art, out)
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
