"""The embedded store: an OCI image layout per repository that skopeo, oras and zot agree on."""

from __future__ import annotations

import gzip
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioning.errors import DigestMismatch, NotFound, ProvisioningError
from provisioning.oci.descriptor import (
    ARTIFACT_TYPE,
    CONFIG_TYPE,
    INDEX,
    LAYER_TYPE,
    MANIFEST,
    Descriptor,
    canonical_json,
)
from provisioning.oci.layout import REF_NAME, LayoutError, LayoutStorage, LayoutTarget, read_layout
from provisioning.oci.reference import InvalidReference
from provisioning.oci.store import Target, fetch_bytes

REPO = "provisioning-extensions/kubernetes"
TITLE = "org.opencontainers.image.title"
needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")


# -- test artifacts, built here the way the packager builds them ----------------------------------------------------


@dataclass
class Artifact:
    config: Descriptor
    config_bytes: bytes
    layer: Descriptor
    layer_bytes: bytes
    manifest: Descriptor
    manifest_bytes: bytes

    def blobs(self) -> list[tuple[Descriptor, bytes]]:
        """Everything in push order: children before the manifest."""
        return [(self.config, self.config_bytes), (self.layer, self.layer_bytes), (self.manifest, self.manifest_bytes)]

    def push(self, target: Target, tag: str | None = None) -> None:
        for desc, data in self.blobs():
            target.push(desc, [data])
        if tag:
            target.tag(self.manifest, tag)


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A deterministic tar+gzip layer (sorted, normalised owner/mode/mtime, fixed gzip header)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), mtime=0)


def make_artifact(
    name: str = "kubernetes", version: str = "1.28.0", payload: bytes = b"", shared_layer: bytes = b""
) -> Artifact:
    """An extension artifact: JSON config (the manifest.yaml as JSON), one tar+gzip layer, an OCI image manifest."""
    config_bytes = canonical_json({"name": name, "version": version, "type": "taskserv", "dependencies": {}})
    layer_bytes = shared_layer or tar_gz(
        {"manifest.yaml": f"name: {name}\nversion: {version}\n".encode(), "kcl/main.k": payload or name.encode()}
    )
    config = Descriptor.of(CONFIG_TYPE, config_bytes)
    layer = Descriptor.of(LAYER_TYPE, layer_bytes, annotations={TITLE: f"{name}-{version}.tar.gz"})
    manifest_bytes = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": config.to_dict(),
            "layers": [layer.to_dict()],
            "annotations": {"org.opencontainers.image.version": version, TITLE: name},
        }
    )
    manifest = Descriptor.of(MANIFEST, manifest_bytes, artifact_type=ARTIFACT_TYPE)
    return Artifact(config, config_bytes, layer, layer_bytes, manifest, manifest_bytes)


def index_of(*artifacts: Artifact) -> tuple[Descriptor, bytes]:
    """An OCI image index over several artifacts (a multi-manifest graph)."""
    data = canonical_json(
        {"schemaVersion": 2, "mediaType": INDEX, "manifests": [a.manifest.to_dict() for a in artifacts]}
    )
    return Descriptor.of(INDEX, data), data


def tree_state(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its mtime: equal states mean nothing was written."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def age_tree(root: Path) -> None:
    """Push every mtime into the past so a rewrite shows even on coarse filesystem clocks."""
    for p in root.rglob("*"):
        os.utime(p, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))


@pytest.fixture
def storage(tmp_path: Path) -> LayoutStorage:
    return LayoutStorage(tmp_path / "store")


@pytest.fixture
def repo(storage: LayoutStorage) -> LayoutTarget:
    return storage.repository(REPO)


# -- the layout on disk ---------------------------------------------------------------------------------------------


def test_layout_target_speaks_the_store_interface(repo: LayoutTarget) -> None:
    assert isinstance(repo, Target)


def test_push_tag_fetch_resolve_round_trip(repo: LayoutTarget) -> None:
    art = make_artifact()
    art.push(repo, "1.28.0")

    assert repo.path == repo.root / "provisioning-extensions" / "kubernetes"
    assert json.loads((repo.path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    for desc, data in art.blobs():
        assert (repo.path / "blobs" / "sha256" / desc.digest.removeprefix("sha256:")).read_bytes() == data
        assert repo.exists(desc)
        assert fetch_bytes(repo, desc) == data
    index = json.loads((repo.path / "index.json").read_text())
    assert index["schemaVersion"] == 2
    assert [(m["digest"], m["annotations"][REF_NAME]) for m in index["manifests"]] == [(art.manifest.digest, "1.28.0")]
    resolved = repo.resolve("1.28.0")
    assert resolved == art.manifest
    assert resolved.artifact_type == ARTIFACT_TYPE
    assert REF_NAME not in resolved.annotations
    assert repo.resolve(art.manifest.digest) == art.manifest
    assert repo.tags() == ["1.28.0"]


def test_fetch_streams_in_chunks(repo: LayoutTarget) -> None:
    big = os.urandom(3 * (1 << 20) + 5)
    desc = Descriptor.of(LAYER_TYPE, big)
    repo.push(desc, (big[i : i + 65536] for i in range(0, len(big), 65536)))
    chunks = list(repo.fetch(desc))
    assert len(chunks) > 1 and max(map(len, chunks)) <= 1 << 20
    assert b"".join(chunks) == big


def test_missing_repository_reads_empty_and_creates_nothing(storage: LayoutStorage) -> None:
    repo = storage.repository("provisioning-extensions/absent")
    art = make_artifact()
    assert repo.tags() == []
    assert not repo.exists(art.manifest)
    with pytest.raises(NotFound):
        repo.resolve("1.0.0")
    with pytest.raises(NotFound):
        repo.fetch(art.layer)
    assert not storage.root.exists()


def test_catalog_lists_tagged_repositories_with_nested_names(storage: LayoutStorage) -> None:
    make_artifact("kubernetes").push(storage.repository("provisioning-extensions/kubernetes"), "1.28.0")
    make_artifact("aws").push(storage.repository("provisioning/extensions/providers/aws"), "2.0.0")
    make_artifact("core").push(storage.repository("provisioning-core"), "v3.5.0")
    make_artifact("untagged").push(storage.repository("provisioning-extensions/untagged"))
    assert storage.catalog() == [
        "provisioning-core",
        "provisioning-extensions/kubernetes",
        "provisioning/extensions/providers/aws",
    ]
    assert LayoutStorage(storage.root / "nowhere").catalog() == []


def test_tagging_never_duplicates_and_retagging_moves_the_tag(repo: LayoutTarget) -> None:
    old, new = make_artifact(version="1.0.0"), make_artifact(version="1.1.0")
    old.push(repo, "1.0.0")
    new.push(repo)
    repo.tag(old.manifest, "1.0.0")
    repo.tag(old.manifest, "latest")
    repo.tag(old.manifest, "latest")

    def entries() -> list[tuple[str | None, str]]:
        return [(m.get("annotations", {}).get(REF_NAME), m["digest"]) for m in read_layout(repo.path)["manifests"]]

    assert entries() == [("1.0.0", old.manifest.digest), ("latest", old.manifest.digest), (None, new.manifest.digest)]

    repo.tag(new.manifest, "latest")  # moves; the untagged entry for `new` is replaced by its tag entry
    assert entries() == [("1.0.0", old.manifest.digest), ("latest", new.manifest.digest)]
    assert repo.resolve("latest") == new.manifest

    repo.tag(new.manifest, "1.0.0")  # `old` lost its last tag: it stays listed, untagged
    assert entries() == [("1.0.0", new.manifest.digest), ("latest", new.manifest.digest), (None, old.manifest.digest)]
    assert repo.resolve(old.manifest.digest) == old.manifest

    with pytest.raises(NotFound):
        repo.tag(make_artifact(version="9.9.9").manifest, "9.9.9")
    with pytest.raises(InvalidReference):
        repo.tag(new.manifest, "bad tag!")


def test_untag_keeps_the_manifest(repo: LayoutTarget) -> None:
    art = make_artifact()
    art.push(repo, "1.28.0")
    repo.untag("1.28.0")
    assert repo.tags() == []
    assert repo.resolve(art.manifest.digest) == art.manifest
    with pytest.raises(NotFound):
        repo.untag("1.28.0")


def test_push_reference_pushes_and_tags_in_one_step(repo: LayoutTarget) -> None:
    art = make_artifact()
    repo.push(art.config, [art.config_bytes])
    repo.push(art.layer, [art.layer_bytes])
    repo.push_reference(art.manifest, [art.manifest_bytes], "1.28.0")
    assert repo.resolve("1.28.0") == art.manifest
    assert len(read_layout(repo.path)["manifests"]) == 1


def test_a_batch_writes_index_json_once_and_keeps_a_concurrent_writers_tags(storage: LayoutStorage) -> None:
    """Inside ``batch()`` reads see what was pushed; index.json is written at the end, over what another writer
    tagged meanwhile; a block that fails lists nothing."""
    art, other, late = make_artifact(), make_artifact(version="1.29.0"), make_artifact(version="1.30.0")
    repo = storage.repository(REPO)
    with repo.batch():
        art.push(repo, "1.28.0")
        assert repo.resolve("1.28.0") == art.manifest and repo.tags() == ["1.28.0"]
        assert not (repo.path / "index.json").exists()  # not yet on disk
        other.push(storage.repository(REPO), "1.29.0")  # another writer, meanwhile
    assert storage.repository(REPO).tags() == ["1.28.0", "1.29.0"]
    with pytest.raises(RuntimeError), repo.batch():
        late.push(repo, "1.30.0")
        raise RuntimeError("the copy failed")
    fresh = storage.repository(REPO)
    assert fresh.tags() == ["1.28.0", "1.29.0"] and fresh.exists(late.manifest)  # the blob, unlisted
    assert late.manifest.digest not in {e["digest"] for e in read_layout(fresh.path)["manifests"]}


def test_index_json_is_sorted_and_deterministic(tmp_path: Path) -> None:
    arts = [make_artifact(version=v) for v in ("1.0.0", "1.2.0", "1.10.0")]
    a, b = LayoutStorage(tmp_path / "a").repository(REPO), LayoutStorage(tmp_path / "b").repository(REPO)
    for art in arts:
        art.push(a, art.manifest.digest[7:15])
    for art in reversed(arts):
        art.push(b, art.manifest.digest[7:15])
    assert (a.path / "index.json").read_bytes() == (b.path / "index.json").read_bytes()
    tags = [m["annotations"][REF_NAME] for m in read_layout(a.path)["manifests"]]
    assert tags == sorted(tags)


def test_pushing_existing_content_writes_nothing(repo: LayoutTarget) -> None:
    art = make_artifact()
    art.push(repo, "1.28.0")
    age_tree(repo.path)
    before = tree_state(repo.path)

    art.push(repo, "1.28.0")
    repo.push_reference(art.manifest, [art.manifest_bytes], "1.28.0")
    repo.tag(art.manifest, "1.28.0")

    assert tree_state(repo.path) == before


# -- verification: nothing wrong is stored, nothing wrong is handed out ---------------------------------------------


def test_corrupt_blob_on_disk_is_refused_on_fetch(repo: LayoutTarget) -> None:
    art = make_artifact()
    art.push(repo, "1.28.0")
    path = repo.blob_path(art.layer.digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch):
        fetch_bytes(repo, art.layer)

    path.write_bytes(bytes(data[:-1]))  # truncated: refused before any byte is read
    with pytest.raises(DigestMismatch, match="corrupt"):
        repo.fetch(art.layer)
    assert not repo.exists(art.layer)


def test_push_of_wrong_bytes_is_rejected_and_never_lands(repo: LayoutTarget) -> None:
    art = make_artifact()
    with pytest.raises(DigestMismatch, match="not stored"):
        repo.push(art.layer, [art.layer_bytes[:-1] + b"X"])  # right size, wrong digest
    with pytest.raises(DigestMismatch):
        repo.push(art.layer, [art.layer_bytes, b"extra"])  # wrong size
    with pytest.raises(DigestMismatch):
        repo.push(art.manifest, [b"{}"])

    def failing_stream() -> Iterator[bytes]:
        yield art.layer_bytes[:10]
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        repo.push(art.layer, failing_stream())

    assert not repo.blob_path(art.layer.digest).exists()
    assert not repo.blob_path(art.manifest.digest).exists()
    assert list(repo.blobs_dir.iterdir()) == []  # no temp files left behind
    assert repo.tags() == []


def test_malformed_digests_and_repository_names_are_refused(storage: LayoutStorage) -> None:
    repo = storage.repository(REPO)
    with pytest.raises(DigestMismatch):
        repo.exists(Descriptor(LAYER_TYPE, "sha256:../../../etc/passwd", 1))
    for bad in ("../escape", "provisioning-extensions/../../x", "/abs", "Upper/case"):
        with pytest.raises(InvalidReference):
            storage.repository(bad)


def test_missing_or_corrupt_index_json_names_the_file(repo: LayoutTarget) -> None:
    make_artifact().push(repo, "1.28.0")
    index = repo.path / "index.json"

    index.write_text("{not json")
    with pytest.raises(LayoutError, match=str(index)) as err:
        repo.tags()
    assert isinstance(err.value, ProvisioningError)
    assert "not valid JSON" in str(err.value)

    index.write_text('{"schemaVersion": 2, "manifests": [{"digest": 5}]}')
    with pytest.raises(LayoutError, match=r"manifests\[0\]"):
        repo.resolve("1.28.0")

    index.unlink()
    with pytest.raises(LayoutError, match=f"{index} is missing"):
        repo.resolve("1.28.0")
    with pytest.raises(LayoutError, match="is missing"):
        read_layout(repo.root / "not-a-layout")

    (repo.path / "oci-layout").write_text("garbage")
    with pytest.raises(LayoutError, match="oci-layout"):
        read_layout(repo.path)


# -- delete and garbage collection ----------------------------------------------------------------------------------


def test_delete_untags_and_collects_only_unshared_blobs(repo: LayoutTarget) -> None:
    a = make_artifact(version="1.0.0")
    b = make_artifact(version="1.1.0", shared_layer=a.layer_bytes)
    a.push(repo, "1.0.0")
    repo.tag(a.manifest, "stable")
    b.push(repo, "1.1.0")

    removed = repo.delete(a.manifest)

    assert repo.tags() == ["1.1.0"]
    assert sorted(removed) == sorted([a.manifest.digest, a.config.digest])
    assert not repo.exists(a.manifest) and not repo.exists(a.config)
    assert repo.exists(a.layer)  # still used by b
    with pytest.raises(NotFound):
        repo.resolve(a.manifest.digest)
    for desc, data in b.blobs():
        assert fetch_bytes(repo, desc) == data
    with pytest.raises(NotFound):
        repo.delete(a.manifest)

    assert repo.delete(b.manifest, gc=False) == []
    assert repo.tags() == [] and repo.exists(b.layer)
    assert sorted(repo.collect_garbage()) == sorted([b.manifest.digest, b.config.digest, b.layer.digest])
    assert list(repo.blobs_dir.iterdir()) == []


# -- concurrency: two processes, one layout -------------------------------------------------------------------------


def _publish_many(root: str, worker: int, count: int) -> None:
    """Child process: push ``count`` artifacts with their own tags, and race the other worker for `latest`."""
    repo = LayoutStorage(Path(root)).repository(REPO)
    for i in range(count):
        art = make_artifact(version=f"{worker}.{i}.0")
        art.push(repo, f"{worker}.{i}.0")
        repo.tag(art.manifest, "latest")


def test_concurrent_processes_keep_a_valid_index(storage: LayoutStorage) -> None:
    ctx = multiprocessing.get_context("spawn")
    count = 15
    procs = [ctx.Process(target=_publish_many, args=(str(storage.root), w, count)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0

    repo = storage.repository(REPO)
    manifests = read_layout(repo.path)["manifests"]
    expected = {f"{w}.{i}.0" for w in (1, 2) for i in range(count)} | {"latest"}
    assert set(repo.tags()) == expected
    names = [m.get("annotations", {}).get(REF_NAME) for m in manifests]
    assert len(names) == len(set(names)) == len(expected)  # one entry per tag, `latest` exactly once
    for tag in expected:
        desc = repo.resolve(tag)
        assert json.loads(fetch_bytes(repo, desc))["artifactType"] == ARTIFACT_TYPE
    assert not [p for p in repo.blobs_dir.iterdir() if p.name.startswith(".")]


def test_concurrent_threads_keep_every_tag(storage: LayoutStorage) -> None:
    """Threads of one process exclude each other too (a file lock per open file, not per process)."""
    from concurrent.futures import ThreadPoolExecutor

    arts = [make_artifact(version=f"1.{i}.0") for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda a: a.push(storage.repository(REPO), a.manifest.digest[7:19]), arts))
    assert storage.repository(REPO).tags() == sorted(a.manifest.digest[7:19] for a in arts)


# -- interop: skopeo and oras read what we write, we read what they write -------------------------------------------


def skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_skopeo
def test_skopeo_reads_our_layout_and_we_read_what_skopeo_writes(storage: LayoutStorage, tmp_path: Path) -> None:
    repo = storage.repository(REPO)
    art = make_artifact()
    art.push(repo, "1.28.0")

    raw = skopeo("inspect", "--raw", f"oci:{repo.path}:1.28.0")
    assert raw.encode() == art.manifest_bytes

    # Round trip through a layout skopeo writes, then back into our own layout under a new tag.
    other = tmp_path / "skopeo-layout"
    skopeo("copy", f"oci:{repo.path}:1.28.0", f"oci:{other}:1.28.0")
    theirs = LayoutTarget(tmp_path, "skopeo-layout")
    assert theirs.tags() == ["1.28.0"]
    assert theirs.resolve("1.28.0") == art.manifest
    for desc, data in art.blobs():
        assert fetch_bytes(theirs, desc) == data

    skopeo("copy", f"oci:{other}:1.28.0", f"oci:{repo.path}:stable")
    assert repo.tags() == ["1.28.0", "stable"]
    assert repo.resolve("stable") == art.manifest
    make_artifact(version="1.29.0").push(repo, "1.29.0")  # our writes keep skopeo's entries
    assert repo.tags() == ["1.28.0", "1.29.0", "stable"]
    assert skopeo("inspect", "--raw", f"oci:{repo.path}:stable").encode() == art.manifest_bytes


@needs_skopeo
def test_layout_to_registry_with_skopeo_and_oras_pulls_it(storage: LayoutStorage, registry, tmp_path: Path) -> None:
    import oras.client

    repo = storage.repository(REPO)
    art = make_artifact(payload=b"schema Kubernetes:\n    version: str\n")
    art.push(repo, "1.28.0")
    dest = f"{registry.host}/layout-interop/kubernetes:1.28.0"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{repo.path}:1.28.0", f"docker://{dest}")

    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    manifest = client.get_manifest(dest)
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert manifest["config"]["mediaType"] == CONFIG_TYPE
    files = client.pull(target=dest, outdir=str(tmp_path / "pulled"))
    assert [Path(f).name for f in files] == ["kubernetes-1.28.0.tar.gz"]
    assert Path(files[0]).read_bytes() == art.layer_bytes


@needs_skopeo
def test_we_read_what_oras_pushes(storage: LayoutStorage, registry, tmp_path: Path) -> None:
    import oras.client

    payload = tmp_path / "hello.txt"
    payload.write_text("pushed by oras\n")
    target = f"{registry.host}/oras-interop/hello:v1"
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    client.push(files=[str(payload)], target=target, disable_path_validation=True)

    repo = storage.repository("oras-interop/hello")
    repo.path.mkdir(parents=True)  # skopeo wants the parent folder; it writes the layout itself
    skopeo("copy", "--src-tls-verify=false", f"docker://{target}", f"oci:{repo.path}:v1")
    manifest = json.loads(fetch_bytes(repo, repo.resolve("v1")))
    (layer,) = manifest["layers"]
    assert fetch_bytes(repo, Descriptor.from_dict(layer)) == payload.read_bytes()
    assert storage.catalog() == ["oras-interop/hello"]
