"""What is attached to a manifest (cosign tags, referrers) is found and carried by copies, in every store."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_layout import REPO, make_artifact

from provisioning.oci.attached import (
    MAX_ATTACHED,
    AttachedError,
    attached,
    attached_tag,
    copy_attached,
    referrers_tag,
)
from provisioning.oci.copy import copy
from provisioning.oci.descriptor import EMPTY_CONFIG_TYPE, MANIFEST, Descriptor, canonical_json
from provisioning.oci.layout import LayoutStorage
from provisioning.oci.memory import MemoryStorage
from provisioning.oci.open import open_storage
from provisioning.oci.store import Target


def _small_manifest(target: Target, layer: bytes, *, subject: Descriptor | None = None, tag: str | None = None):
    """A manifest with one JSON layer (a signature or a referrer), pushed with its blobs."""
    config_bytes = b"{}"
    config = Descriptor.of(EMPTY_CONFIG_TYPE, config_bytes)
    blob = Descriptor.of("application/json", layer)
    doc = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config.to_dict(), "layers": [blob.to_dict()]}
    if subject is not None:
        doc["subject"] = subject.to_dict()
        doc["artifactType"] = "application/vnd.example.referrer+json"
    data = canonical_json(doc)
    desc = Descriptor.of(MANIFEST, data, artifact_type=doc.get("artifactType"))
    target.push(config, [config_bytes])
    target.push(blob, [layer])
    target.push(desc, [data])
    if tag:
        target.tag(desc, tag)
    return desc


def _stores(tmp_path: Path, registry) -> dict[str, object]:
    return {
        "memory": MemoryStorage(),
        "layout": LayoutStorage(tmp_path / "store"),
        "registry": open_storage(registry.host, plain_http=True),
    }


@pytest.mark.parametrize("src_kind", ["layout", "registry"])
@pytest.mark.parametrize("dst_kind", ["memory", "layout", "registry"])
def test_copy_carries_cosign_tags_and_referrers(tmp_path: Path, registry, src_kind: str, dst_kind: str) -> None:
    repo = f"{REPO}-attached-{src_kind}-{dst_kind}"
    src = _stores(tmp_path / "src", registry)[src_kind].repository(repo)
    dst_repo = repo + "-copy" if src_kind == dst_kind == "registry" else repo
    dst = _stores(tmp_path / "dst", registry)[dst_kind].repository(dst_repo)
    art = make_artifact(version="1.0.0", payload=f"{src_kind}-{dst_kind}".encode())
    art.push(src, "1.0.0")
    sig = _small_manifest(src, b'{"sig":1}', tag=attached_tag(art.manifest.digest, "sig"))
    att = _small_manifest(src, b'{"att":1}', tag=attached_tag(art.manifest.digest, "att"))
    ref = _small_manifest(src, b'{"referrer":1}', subject=art.manifest)
    if getattr(src, "referrers", None) is None:
        # a store without a referrers API: the fallback index names the referrer
        from provisioning.oci.attached import _index_referrer

        _index_referrer(src, art.manifest, ref)

    found = attached(src, art.manifest)
    expected = [("sig", sig.digest), ("att", att.digest), ("referrer", ref.digest)]
    assert [(a.kind, a.descriptor.digest) for a in found] == expected

    copy(src, "1.0.0", dst)
    assert attached(dst, art.manifest) == []
    copied = copy_attached(src, dst, art.manifest)
    assert len(copied) == 3
    again = attached(dst, art.manifest)
    assert sorted((a.kind, a.descriptor.digest) for a in again) == sorted(
        [("sig", sig.digest), ("att", att.digest), ("referrer", ref.digest)]
    )
    # every blob of each attached manifest is there too
    for item in again:
        assert dst.exists(item.descriptor)
    # a second copy changes nothing and finds the same
    copy_attached(src, dst, art.manifest)
    assert len(attached(dst, art.manifest)) == 3


def test_destination_signature_on_other_content_is_kept_or_merged(tmp_path: Path) -> None:
    storage = LayoutStorage(tmp_path / "store")
    src, dst = storage.repository(REPO + "-a"), LayoutStorage(tmp_path / "other").repository(REPO)
    art = make_artifact()
    art.push(src, "1.0.0")
    copy(src, "1.0.0", dst)
    tag = attached_tag(art.manifest.digest)
    ours = _small_manifest(src, b'{"sig":"src"}', tag=tag)
    theirs = _small_manifest(dst, b'{"sig":"dst"}', tag=tag)
    copy_attached(src, dst, art.manifest)
    assert dst.resolve(tag).digest == theirs.digest  # never silently replaced
    merged = []
    copy_attached(src, dst, art.manifest, merge=lambda s, item, d, cur: merged.append((item.descriptor, cur)))
    assert merged == [(ours, theirs)]


def test_too_many_attached_artifacts_are_refused(tmp_path: Path) -> None:
    target = MemoryStorage().repository(REPO)
    art = make_artifact()
    art.push(target, "1.0.0")
    for i in range(MAX_ATTACHED + 1):
        _small_manifest(target, b'{"n":%d}' % i, subject=art.manifest)

    class WithReferrers:
        def __init__(self, inner):
            self.inner, self.name = inner, inner.name

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def referrers(self, desc):
            return [Descriptor.of(MANIFEST, b"%d" % i) for i in range(MAX_ATTACHED + 1)]

    with pytest.raises(AttachedError, match="more than"):
        attached(WithReferrers(target), art.manifest)


def test_malformed_digests_name_no_tag() -> None:
    with pytest.raises(AttachedError):
        referrers_tag("sha256:../../etc")
    assert attached_tag("sha256:" + "a" * 64, "sbom") == "sha256-" + "a" * 64 + ".sbom"
