"""One graph copy: push, pull and mirror between memory, layouts and (through skopeo/oras) a real registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_layout import REPO, Artifact, index_of, make_artifact

from provisioning.errors import DigestMismatch, NotFound, RegistryError
from provisioning.oci.copy import CopyError, CopyResult, copy, copy_graph
from provisioning.oci.descriptor import ARTIFACT_TYPE, LAYER_TYPE, MANIFEST, Descriptor, canonical_json
from provisioning.oci.layout import LayoutStorage, LayoutTarget
from provisioning.oci.memory import MemoryStorage, MemoryTarget
from provisioning.oci.store import fetch_bytes


class Recorder:
    """Wraps a target and records every call; offers ``push_reference`` only when the wrapped target does."""

    def __init__(self, inner: Any, *, fail_push: set[str] | None = None, delay: float = 0.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[str, str]] = []
        self.fail_push = fail_push or set()
        self.delay = delay
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        if hasattr(inner, "push_reference"):
            self.push_reference = self._push_reference

    def _record(self, method: str, digest: str) -> None:
        with self._lock:
            self.calls.append((method, digest))

    def called(self, method: str) -> list[str]:
        return [d for m, d in self.calls if m == method]

    def exists(self, desc: Descriptor) -> bool:
        self._record("exists", desc.digest)
        return self.inner.exists(desc)

    def fetch(self, desc: Descriptor) -> Iterator[bytes]:
        self._record("fetch", desc.digest)
        return self.inner.fetch(desc)

    def resolve(self, reference: str) -> Descriptor:
        self._record("resolve", reference)
        return self.inner.resolve(reference)

    def tags(self) -> list[str]:
        return self.inner.tags()

    def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        self._record("push", desc.digest)
        if desc.digest in self.fail_push:
            raise RegistryError("blob upload refused: 507 Insufficient Storage", method="PUT", status=507)
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            self.inner.push(desc, content)
        finally:
            with self._lock:
                self.in_flight -= 1

    def tag(self, desc: Descriptor, tag: str) -> None:
        self._record("tag", desc.digest)
        self.inner.tag(desc, tag)

    def _push_reference(self, desc: Descriptor, content: Iterable[bytes], tag: str) -> None:
        self._record("push_reference", desc.digest)
        self.inner.push_reference(desc, content, tag)


def memory_with(*artifacts: Artifact, tag: bool = True) -> MemoryTarget:
    src = MemoryStorage().repository(REPO)
    for art in artifacts:
        art.push(src, art.manifest.digest[7:19] if tag else None)
    return src


def assert_has(target: Any, art: Artifact) -> None:
    for desc, data in art.blobs():
        assert fetch_bytes(target, desc) == data


@pytest.fixture
def layout(tmp_path: Path) -> LayoutTarget:
    return LayoutStorage(tmp_path / "store").repository(REPO)


# -- memory <-> layout ----------------------------------------------------------------------------------------------


def test_memory_to_layout_to_memory(layout: LayoutTarget) -> None:
    art = make_artifact()
    src = MemoryStorage().repository(REPO)
    art.push(src, "1.28.0")

    pushed = copy(src, "1.28.0", layout)
    assert pushed == CopyResult(art.manifest, copied=3, bytes_copied=sum(d.size for d, _ in art.blobs()))
    assert layout.resolve("1.28.0") == art.manifest
    assert_has(layout, art)

    back = MemoryStorage().repository(REPO)
    pulled = copy(layout, "1.28.0", back)  # MemoryTarget has no push_reference: push, then tag
    assert pulled.copied == 3 and not pulled.up_to_date
    assert back.resolve("1.28.0") == art.manifest
    assert_has(back, art)


def test_layout_to_layout_under_another_tag_and_by_digest(tmp_path: Path, layout: LayoutTarget) -> None:
    art = make_artifact()
    art.push(layout, "1.28.0")
    other = LayoutStorage(tmp_path / "other")

    copy(layout, "1.28.0", other.repository("mirror/kubernetes"), "stable")
    assert other.repository("mirror/kubernetes").tags() == ["stable"]

    by_digest = other.repository("pinned/kubernetes")
    result = copy(layout, art.manifest.digest, by_digest)
    assert result.copied == 3
    assert by_digest.tags() == []  # copying by digest without a tag leaves the destination untagged
    assert by_digest.resolve(art.manifest.digest) == art.manifest


def test_root_is_pushed_with_push_reference_when_the_destination_has_it(layout: LayoutTarget) -> None:
    art = make_artifact()
    dst = Recorder(layout)
    copy(memory_with(art), art.manifest.digest, dst, "1.28.0")
    assert dst.called("push_reference") == [art.manifest.digest]
    assert art.manifest.digest not in dst.called("push")
    assert dst.called("tag") == []
    assert layout.tags() == ["1.28.0"]


# -- skip what the destination has ----------------------------------------------------------------------------------


def test_unchanged_republish_costs_one_lookup_and_writes_nothing(layout: LayoutTarget) -> None:
    art = make_artifact()
    src = memory_with(art)
    copy(src, art.manifest.digest, layout, "1.28.0")
    for p in layout.path.rglob("*"):
        os.utime(p, ns=(10**18, 10**18))
    before = {p: p.stat().st_mtime_ns for p in layout.path.rglob("*")}

    dst = Recorder(layout)
    seen: list[tuple[str, str]] = []
    result = copy(src, art.manifest.digest, dst, "1.28.0", on_blob=lambda d, s: seen.append((d.digest, s)))

    assert result == CopyResult(art.manifest, skipped=1, up_to_date=True)
    assert dst.calls == [("resolve", "1.28.0")]
    assert seen == [(art.manifest.digest, "skipped")]
    assert {p: p.stat().st_mtime_ns for p in layout.path.rglob("*")} == before


def test_existing_root_under_another_tag_is_only_tagged(layout: LayoutTarget) -> None:
    art = make_artifact()
    src = memory_with(art)
    copy(src, art.manifest.digest, layout, "1.28.0")
    dst = Recorder(layout)
    result = copy(src, art.manifest.digest, dst, "latest")
    assert result.up_to_date and result.copied == 0
    assert dst.called("push") == [] and dst.called("tag") == [art.manifest.digest]
    assert layout.tags() == ["1.28.0", "latest"]


def test_blobs_the_destination_has_are_skipped(layout: LayoutTarget) -> None:
    art = make_artifact()
    layout.push(art.layer, [art.layer_bytes])
    dst = Recorder(layout)
    statuses: dict[str, str] = {}
    result = copy(
        memory_with(art), art.manifest.digest, dst, "1.28.0", on_blob=lambda d, s: statuses.update({d.digest: s})
    )

    assert result.copied == 2 and result.skipped == 1
    assert result.bytes_copied == art.config.size + art.manifest.size
    assert art.layer.digest not in dst.called("push")
    assert statuses == {art.layer.digest: "skipped", art.config.digest: "copied", art.manifest.digest: "copied"}


def test_a_child_manifest_the_destination_has_is_skipped_with_its_subgraph(layout: LayoutTarget) -> None:
    a, b = make_artifact("etcd"), make_artifact("cilium")
    idx, idx_bytes = index_of(a, b)
    src = memory_with(a, b)
    src.push(idx, [idx_bytes])
    src.tag(idx, "bundle")
    a.push(layout)

    dst = Recorder(layout)
    result = copy(src, "bundle", dst)

    touched = {d for _, d in dst.calls}
    assert not touched & {a.config.digest, a.layer.digest}  # never even asked about
    assert sorted(dst.called("push")) == sorted([b.config.digest, b.layer.digest, b.manifest.digest])
    assert dst.called("push")[-1] == b.manifest.digest
    assert dst.called("push_reference") == [idx.digest]
    assert result.skipped == 1 and result.copied == 4
    assert layout.resolve("bundle") == idx


# -- graph order, de-duplication, concurrency -----------------------------------------------------------------------


def test_index_graph_copies_children_first_and_shared_blobs_once(tmp_path: Path) -> None:
    shared = make_artifact("base").layer_bytes
    arts = [make_artifact(f"ext{i}", shared_layer=shared) for i in range(3)]
    idx, idx_bytes = index_of(*arts)
    src = memory_with(*arts)
    src.push(idx, [idx_bytes])
    src.tag(idx, "bundle")

    dst = Recorder(MemoryStorage().repository(REPO))
    result = copy(src, "bundle", dst)

    pushed = dst.called("push")
    assert len(pushed) == len(set(pushed)), "a shared node was pushed twice"
    assert pushed.count(arts[0].layer.digest) == 1
    assert result.copied == len(pushed) == 1 + 3 + 3 + 1  # shared layer, 3 configs, 3 manifests, the index
    for art in arts:
        assert pushed.index(art.manifest.digest) > max(pushed.index(art.config.digest), pushed.index(art.layer.digest))
    assert pushed[-1] == idx.digest
    assert dst.inner.resolve("bundle") == idx
    for art in arts:
        assert_has(dst.inner, art)


def test_blobs_are_copied_concurrently() -> None:
    src = MemoryStorage().repository(REPO)
    art = make_artifact()
    art.push(src)
    layers = []
    for i in range(8):  # a manifest with many layers, so there is something to do in parallel
        data = f"layer {i}".encode() * 100
        layers.append(Descriptor.of(LAYER_TYPE, data))
        src.push(layers[-1], [data])
    doc = json.loads(art.manifest_bytes)
    doc["layers"] = [d.to_dict() for d in layers]
    man_bytes = canonical_json(doc)
    man = Descriptor.of(MANIFEST, man_bytes, artifact_type=ARTIFACT_TYPE)
    src.push(man, [man_bytes])

    dst = Recorder(MemoryStorage().repository(REPO), delay=0.05)
    result = copy_graph(src, dst, man, tag="wide", concurrency=4)
    assert dst.max_in_flight > 1
    assert result.copied == 10
    assert dst.called("push")[-1] == man.digest  # the manifest only after all of its blobs

    serial = Recorder(MemoryStorage().repository(REPO))
    copy_graph(src, serial, man, concurrency=1)
    assert serial.max_in_flight == 1
    with pytest.raises(ValueError):
        copy_graph(src, serial, man, concurrency=0)


def test_blobs_below_inline_below_are_copied_by_the_calling_thread_and_larger_ones_on_the_pool() -> None:
    """A bundle copies hundreds of small graphs side by side: their small blobs skip the pool's thread handoff."""
    from concurrent.futures import ThreadPoolExecutor

    from provisioning.oci.copy import CopyOptions

    src = MemoryStorage().repository(REPO)
    art = make_artifact()
    art.push(src)
    big = os.urandom(64 << 10)
    layer = Descriptor.of(LAYER_TYPE, big)
    src.push(layer, [big])
    doc = json.loads(art.manifest_bytes)
    doc["layers"].append(layer.to_dict())
    man_bytes = canonical_json(doc)
    man = Descriptor.of(MANIFEST, man_bytes, artifact_type=ARTIFACT_TYPE)
    src.push(man, [man_bytes])

    threads: dict[str, str] = {}

    class Where(Recorder):
        def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
            threads[desc.digest] = threading.current_thread().name
            super().push(desc, content)

    dst = Where(MemoryStorage().repository(REPO))
    with ThreadPoolExecutor(2, thread_name_prefix="pool") as pool:
        result = copy_graph(src, dst, man, tag="t", options=CopyOptions(executor=pool, inline_below=32 << 10))
    assert result.copied == 4
    here = threading.current_thread().name
    assert threads[art.config.digest] == here and threads[art.layer.digest] == here
    assert threads[layer.digest].startswith("pool")
    assert dst.inner.resolve("t") == man  # the manifest last, once its blobs are in
    for desc, data in ((art.config, art.config_bytes), (art.layer, art.layer_bytes), (layer, big)):
        assert fetch_bytes(dst.inner, desc) == data


def test_large_blobs_are_streamed_in_chunks(tmp_path: Path, layout: LayoutTarget) -> None:
    big = os.urandom(5 * (1 << 20) + 3)
    desc = Descriptor.of(LAYER_TYPE, big)
    layout.push(desc, [big[i : i + (1 << 20)] for i in range(0, len(big), 1 << 20)])
    chunk_sizes: list[int] = []

    class Watch(MemoryTarget):
        def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
            def watched() -> Iterator[bytes]:
                for chunk in content:
                    chunk_sizes.append(len(chunk))
                    yield chunk

            super().push(desc, watched())

    dst = Watch(REPO, {})
    result = copy_graph(layout, dst, desc)
    assert result.bytes_copied == len(big)
    assert len(chunk_sizes) > 1 and max(chunk_sizes) <= 1 << 20
    assert fetch_bytes(dst, desc) == big


# -- mount ----------------------------------------------------------------------------------------------------------


def test_blobs_are_mounted_between_repositories_of_one_store(tmp_path: Path) -> None:
    storage = LayoutStorage(tmp_path / "store")
    src = storage.repository(REPO)
    art = make_artifact()
    art.push(src, "1.28.0")
    dst = storage.repository("mirror/kubernetes")

    result = copy(src, "1.28.0", dst)
    assert result.mounted == 2 and result.copied == 1
    assert src.blob_path(art.layer.digest).stat().st_ino == dst.blob_path(art.layer.digest).stat().st_ino
    assert_has(dst, art)

    elsewhere = LayoutStorage(tmp_path / "elsewhere").repository(REPO)  # another registry: bytes are copied
    result = copy(src, "1.28.0", elsewhere)
    assert result.mounted == 0 and result.copied == 3


# -- errors say which side failed -----------------------------------------------------------------------------------


def test_a_corrupt_source_blob_is_blamed_on_the_source_and_not_stored(tmp_path: Path, layout: LayoutTarget) -> None:
    art = make_artifact()
    art.push(layout, "1.28.0")
    path = layout.blob_path(art.layer.digest)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    dst = LayoutStorage(tmp_path / "dst").repository(REPO)

    with pytest.raises(CopyError) as err:
        copy(layout, "1.28.0", dst)
    assert err.value.side == "source"
    assert isinstance(err.value.cause, DigestMismatch)
    assert str(err.value.cause) in str(err.value)
    assert "source" in str(err.value) and art.layer.digest in str(err.value)
    assert not dst.exists(art.layer) and not dst.exists(art.manifest)
    assert dst.tags() == []


def test_a_refusing_destination_is_blamed_on_the_destination(layout: LayoutTarget) -> None:
    art = make_artifact()
    dst = Recorder(layout, fail_push={art.layer.digest})
    with pytest.raises(CopyError) as err:
        copy(memory_with(art), art.manifest.digest, dst, "1.28.0")
    assert err.value.side == "destination"
    assert isinstance(err.value.cause, RegistryError)
    assert "507 Insufficient Storage" in str(err.value)
    assert dst.called("push_reference") == []  # the parent never lands without its children
    assert layout.tags() == []


def test_a_missing_source_reference_is_blamed_on_the_source(layout: LayoutTarget) -> None:
    with pytest.raises(CopyError) as err:
        copy(MemoryStorage().repository(REPO), "9.9.9", layout)
    assert err.value.side == "source" and isinstance(err.value.cause, NotFound)
    assert not layout.path.exists()


def test_a_source_blob_missing_mid_copy_is_blamed_on_the_source(layout: LayoutTarget) -> None:
    art = make_artifact()
    src = memory_with(art)
    src._blobs.pop(art.config.digest)
    with pytest.raises(CopyError) as err:
        copy(src, art.manifest.digest, layout, "1.28.0")
    assert err.value.side == "source" and isinstance(err.value.cause, NotFound)


# -- interop: what copy writes, skopeo moves to a real registry and oras pulls --------------------------------------


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_copy_into_a_layout_then_skopeo_to_registry_then_oras_pulls(tmp_path: Path, registry) -> None:
    import oras.client

    art = make_artifact("redis", "7.2.0")
    src = MemoryStorage().repository("provisioning-extensions/redis")
    art.push(src, "7.2.0")
    layout = LayoutStorage(tmp_path / "store").repository("provisioning-extensions/redis")
    copy(src, "7.2.0", layout)

    dest = f"{registry.host}/copy-interop/redis:7.2.0"
    proc = subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout.path}:7.2.0", f"docker://{dest}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    files = client.pull(target=dest, outdir=str(tmp_path / "pulled"))
    assert [Path(f).read_bytes() for f in files] == [art.layer_bytes]
