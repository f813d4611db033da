"""Publishing to the embedded store: idempotent, immutable versions, readable by skopeo."""

import json
import subprocess

import pytest
from extension_factory import make_extension

from provisioning.oci.layout import LayoutStorage
from provisioning.oci.memory import MemoryStorage
from provisioning.package import build_artifact
from provisioning.publish import publish, publish_extension

NS = "provisioning-extensions"


def snapshot(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*")}


def test_publish_is_idempotent_and_refuses_changed_content(tmp_path):
    tree = tmp_path / "extensions"
    ext = make_extension(tree, "redis", version="1.0.0")
    store_root = tmp_path / "store"
    storage = LayoutStorage(store_root)

    first = publish_extension(ext, storage, NS)
    assert first.status == "published", first.message
    repo = store_root / NS / "redis"
    index = json.loads((repo / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["1.0.0"]
    assert index["manifests"][0]["digest"] == first.digest

    before = snapshot(store_root)
    again = publish_extension(ext, storage, NS)
    assert again.status == "unchanged" and again.digest == first.digest
    assert snapshot(store_root) == before  # nothing written

    (ext / "docs" / "README.md").write_text("# redis\nchanged without a version bump\n")
    refused = publish_extension(ext, storage, NS)
    assert refused.status == "refused"
    assert "Bump 'version'" in refused.message and "--force" in refused.message
    assert snapshot(store_root) == before

    forced = publish_extension(ext, storage, NS, force=True)
    assert forced.status == "published" and forced.digest != first.digest


def test_publish_artifact_in_memory_counts_as_unchanged_when_identical(tmp_path):
    ext = make_extension(tmp_path, "etcd", version="3.5.0")
    storage = MemoryStorage()
    art = build_artifact(ext, use_git=False)
    assert publish(art, storage, NS).status == "published"
    assert publish(art, storage, NS).status == "unchanged"


def test_invalid_extension_fails_without_writing(tmp_path):
    ext = make_extension(tmp_path / "extensions", "redis")
    (ext / "kcl" / "redis.k").write_text("schema Redis:\n    port: int =\n")
    store_root = tmp_path / "store"
    result = publish_extension(ext, LayoutStorage(store_root), NS)
    assert result.status == "failed" and "redis.k" in result.message
    assert not (store_root / NS / "redis").exists() or not list((store_root / NS / "redis").rglob("sha256/*"))


def test_skopeo_reads_the_embedded_store(tmp_path):
    ext = make_extension(tmp_path / "extensions", "cilium", version="1.14.0")
    store_root = tmp_path / "store"
    result = publish_extension(ext, LayoutStorage(store_root), NS)
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{store_root / NS / 'cilium'}:1.14.0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    manifest = json.loads(raw)
    assert manifest["artifactType"] == "application/vnd.provisioning.extension.v1"
    out = tmp_path / "copied"
    subprocess.run(
        ["skopeo", "copy", "-q", f"oci:{store_root / NS / 'cilium'}:1.14.0", f"oci:{out}:1.14.0"],
        check=True,
        capture_output=True,
    )
    assert LayoutStorage(out.parent).repository(out.name).resolve("1.14.0").digest == result.digest


@pytest.fixture
def oras_client(registry):
    import oras.client

    return oras.client.OrasClient(hostname=registry.host, insecure=True)


def test_oras_reads_what_we_published(tmp_path, registry, oras_client):
    """Embedded store -> real registry with skopeo, then oras-py pulls it."""
    ext = make_extension(tmp_path / "extensions", "upcloud", type_="provider", version="1.5.0")
    store_root = tmp_path / "store"
    publish_extension(ext, LayoutStorage(store_root), NS)
    subprocess.run(
        [
            "skopeo",
            "copy",
            "-q",
            "--dest-tls-verify=false",
            f"oci:{store_root / NS / 'upcloud'}:1.5.0",
            f"docker://{registry.host}/{NS}/oras-check-upcloud:1.5.0",
        ],
        check=True,
        capture_output=True,
    )
    files = oras_client.pull(target=f"{registry.host}/{NS}/oras-check-upcloud:1.5.0", outdir=str(tmp_path / "pulled"))
    assert any(str(f).endswith("upcloud-1.5.0.tar.gz") for f in files)


class FlakyStorage:
    """A memory store whose first push to one repository fails, as a registry that drops a connection."""

    def __init__(self, failing: str) -> None:
        self.inner = MemoryStorage()
        self.failing = failing

    def repository(self, name: str):
        target = self.inner.repository(name)
        if name.endswith("/" + self.failing) and self.failing:
            outer = self

            class Once:
                def __getattr__(self, attr):
                    return getattr(target, attr)

                def push(self, desc, content):
                    if outer.failing:
                        outer.failing = ""
                        from provisioning.errors import RegistryError

                        raise RegistryError("connection reset while uploading")
                    target.push(desc, content)

            return Once()
        return target


def test_preflight_uploads_ready_extensions_and_subtasks_retry_what_failed(tmp_path):
    from provisioning.extension import discover, load_extension
    from provisioning.publish import preflight, upload_ready

    tree = tmp_path / "extensions"
    make_extension(tree, "containerd", version="1.7.0")
    make_extension(tree, "etcd", version="3.5.0")
    broken = make_extension(tree, "cilium", version="1.14.0")
    (broken / "kcl" / "cilium.k").write_text("schema Cilium:\n    port: int =\n")
    exts = [load_extension(d) for d in discover(tree)]
    storage = FlakyStorage("etcd")
    found = preflight(exts, storage, NS, known=[e.name for e in exts])
    assert found[broken].problems and "cilium.k" in found[broken].problems[0]
    upload_ready(exts, found, storage, NS)
    by_name = {e.name: found[e.path] for e in exts}
    assert by_name["containerd"].published and by_name["etcd"].published is None
    assert by_name["cilium"].published is None
    assert storage.inner.repository(f"{NS}/containerd").tags() == ["1.7.0"]

    results = {e.name: publish_extension(e, storage, NS, checked=found[e.path]) for e in exts}
    assert results["containerd"].status == "published"
    assert results["etcd"].status == "published"  # the subtask pushed it again
    assert storage.inner.repository(f"{NS}/etcd").tags() == ["3.5.0"]
    assert results["cilium"].status == "failed" and "cilium.k" in results["cilium"].message


def test_publishing_without_a_known_list_still_refuses_unknown_dependencies(tmp_path):
    ext = make_extension(tmp_path / "extensions", "kubernetes", dependencies={"containerd": ">=1.7.0"})
    result = publish_extension(ext, MemoryStorage(), NS)
    assert result.status == "failed"
    assert "no extension 'containerd' in this tree" in result.message
