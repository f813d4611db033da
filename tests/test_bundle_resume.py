"""A resumed ``bundle create OUT REF…`` finishes the job as it was begun: the references as they resolved then,
asked about again by nobody; a journal that is not this job's (or not ours at all) is ignored with a message."""

# ruff: noqa: F811  (pytest fixtures imported from other test modules)

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_server import RegistryProxy
from test_bundle import namespace, origin, run  # noqa: F401
from test_workspace_helpers import extension_manifest, home, push  # noqa: F401

from provisioning.oci.descriptor import Descriptor
from provisioning.oci.open import open_storage

JOURNAL = ".bundle-progress"


@pytest.fixture
def proxy(origin: str) -> Iterator[RegistryProxy]:
    """The origin behind a proxy that counts every request (and forwards all of them)."""
    with RegistryProxy(origin, refuse=lambda method, path: None) as p:
        yield p


def _refs(host: str, namespace: str) -> list[str]:
    return [f"{host}/{namespace}/kubernetes:1.28.0", f"{host}/{namespace}/cilium:1.14.0"]


def _create(capsys, out: Path, refs: list[str], *extra: str) -> tuple[int, str, str]:
    return run(capsys, "bundle", "create", str(out), *refs, "--plain-http", "--output", "json", *extra)


def _interrupted(capsys, monkeypatch: pytest.MonkeyPatch, out: Path, refs: list[str], blobs: int) -> list[str]:
    """A create whose disk fills after ``blobs`` blobs of the bundle; returns its journal's lines (the disk is
    free again)."""
    from provisioning.oci.layout import LayoutTarget

    real, calls = LayoutTarget._write_blob, {"n": 0}

    def full(self, desc, content):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > blobs:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, desc, content)

    monkeypatch.setattr(LayoutTarget, "_write_blob", full)
    code, _, err = _create(capsys, out, refs, "--concurrency", "1")
    assert code == 1 and "No space left on device" in err, err
    monkeypatch.setattr(LayoutTarget, "_write_blob", real)
    return (out / JOURNAL).read_text().splitlines()


def _artifacts(out: Path) -> dict[tuple[str, str], str]:
    doc = json.loads((out / "bundle.json").read_text())
    return {(a["repository"].rsplit("/", 1)[-1], a["kind"]): a["digest"] for a in doc["artifacts"]}


def _by_tag(seen: list[tuple[str, str]], namespace: str) -> list[str]:
    """Manifests asked for by version tag: what resolving a reference (or a dependency range) costs."""
    return [p for m, p in seen if m == "GET" and f"/v2/{namespace}/" in p and "/manifests/" in p and "sha256" not in p]


def test_a_resumed_create_takes_the_references_as_resolved_and_asks_nothing_about_what_it_finished(
    proxy: RegistryProxy, namespace: str, tmp_path: Path, home: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = _refs(proxy.host, namespace)
    code, _, err = _create(capsys, tmp_path / "whole", refs)
    assert code == 0, err
    whole = len(proxy.seen)
    assert _by_tag(proxy.seen, namespace), "resolving asks for the references' manifests by tag"
    out = tmp_path / "bundle"
    header, *finished = _interrupted(capsys, monkeypatch, out, refs, blobs=8)
    assert finished, "the artifacts finished before the disk filled are noted"
    head = json.loads(header)
    assert head["job"]["refs"] == refs and head["resolved"], head
    assert {r[0] for r in head["resolved"]} == {proxy.host}  # where each artifact is read from
    del proxy.seen[:]
    code, text, err = _create(capsys, out, refs)
    assert code == 0, err
    assert f"resuming the create begun at {head['begun']}; references as resolved then" in err
    assert json.loads(text)["resumed"] == head["begun"]
    assert _by_tag(proxy.seen, namespace) == [], "nothing is resolved again"
    done = {item[1] for line in finished for item in json.loads(line)["listed"]}
    asked = " ".join(p for _, p in proxy.seen)
    assert not any(d in asked for d in done), "nothing is asked about a finished artifact"
    assert len(proxy.seen) < whole - len(finished), (len(proxy.seen), whole)
    assert not (out / JOURNAL).exists()
    assert _artifacts(out) == _artifacts(tmp_path / "whole")
    assert run(capsys, "bundle", "verify", str(out))[0] == 0


def test_a_resume_after_a_tag_moved_keeps_the_snapshot_and_a_fresh_create_takes_the_new_content(
    origin: str, namespace: str, tmp_path: Path, home: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = _refs(origin, namespace)
    out = tmp_path / "bundle"
    header, *finished = _interrupted(capsys, monkeypatch, out, refs, blobs=0)  # the journal, then nothing
    assert not finished
    resolved = {r[1].rsplit("/", 1)[-1]: r[5] for r in json.loads(header)["resolved"]}
    # the release is published again under the same tag, with other content
    meta = extension_manifest("kubernetes", "1.28.0", dependencies={"etcd": ">=3.5.0", "containerd": ">=1.7.0"})
    meta["description"] = "published again"
    moved = push(open_storage(origin), meta, namespace=namespace)
    assert moved.digest != resolved["kubernetes"]

    code, _, err = _create(capsys, out, refs)
    assert code == 0, err
    assert "references as resolved then" in err
    assert _artifacts(out)[("kubernetes", "extension")] == resolved["kubernetes"]
    k8s = open_storage(str(out)).repository(f"{namespace}/kubernetes")
    assert k8s.resolve("1.28.0").digest == resolved["kubernetes"], "the bundle's tag agrees with bundle.json"
    assert run(capsys, "bundle", "verify", str(out))[0] == 0

    code, _, err = _create(capsys, tmp_path / "fresh", refs)
    assert code == 0, err
    assert "resuming" not in err
    assert _artifacts(tmp_path / "fresh")[("kubernetes", "extension")] == moved.digest


def test_a_resume_whose_recorded_digest_is_gone_says_how_to_resolve_anew(
    origin: str, namespace: str, tmp_path: Path, home: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = _refs(origin, namespace)
    out = tmp_path / "bundle"
    header, *_ = _interrupted(capsys, monkeypatch, out, refs, blobs=0)
    resolved = {r[1].rsplit("/", 1)[-1]: r for r in json.loads(header)["resolved"]}
    # kubernetes 1.28.0 is published again and the content the create began with is deleted from the registry
    meta = extension_manifest("kubernetes", "1.28.0", dependencies={"etcd": ">=3.5.0", "containerd": ">=1.7.0"})
    meta["description"] = "published again"
    moved = push(open_storage(origin), meta, namespace=namespace)
    old = resolved["kubernetes"]
    open_storage(origin).repository(old[1]).delete(Descriptor(old[4], old[5], old[6]))
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "other-home"))  # nor does the blob cache hold it

    code, _, err = _create(capsys, out, refs)
    assert code == 1, err
    assert old[5] in err and "no longer has" in err and f"remove {out / JOURNAL}" in err, err
    assert not (out / "bundle.json").exists()
    (out / JOURNAL).unlink()
    code, _, err = _create(capsys, out, refs)
    assert code == 0, err
    assert _artifacts(out)[("kubernetes", "extension")] == moved.digest
    assert run(capsys, "bundle", "verify", str(out))[0] == 0


def _tampered(header: str, change) -> str:  # type: ignore[no-untyped-def]
    doc = json.loads(header)
    change(doc)
    return json.dumps(doc) + "\n"


@pytest.mark.parametrize(
    ("journal", "reason"),
    [
        (lambda header: "not a journal at all\n", "not a header"),
        (lambda header: header.encode()[: len(header) // 2].decode(errors="ignore") + "\n", "not a header"),
        (lambda header: _tampered(header, lambda d: d["job"]["refs"].pop()), "other references"),
        (
            lambda header: _tampered(header, lambda d: [r.__setitem__(0, "evil.example:5000") for r in d["resolved"]]),
            "none of the references name",
        ),
        (
            lambda header: _tampered(header, lambda d: d["resolved"][0].__setitem__(1, "../../../escaped")),
            "malformed",
        ),
        (lambda header: _tampered(header, lambda d: d["resolved"][0].__setitem__(5, "sha256:../x")), "malformed"),
        (lambda header: _tampered(header, lambda d: d["resolved"][0].__setitem__(6, 1 << 40)), "malformed"),
        (lambda header: _tampered(header, lambda d: d.__setitem__("notes", [1])), "notes"),
        (lambda header: _tampered(header, lambda d: d.__setitem__("notes", ["\x1b]0;owned\x07"])), "printable"),
    ],
    ids=["garbage", "cut-short", "other-references", "other-registry", "path", "digest", "size", "notes", "escapes"],
)
def test_a_journal_that_is_not_this_jobs_is_ignored_with_a_message_and_the_create_starts_over(
    journal, reason: str, origin: str, namespace: str, tmp_path: Path, home: Path, capsys, monkeypatch
) -> None:
    refs = _refs(origin, namespace)
    out = tmp_path / "bundle"
    header, *_ = _interrupted(capsys, monkeypatch, out, refs, blobs=0)
    (out / JOURNAL).write_text(journal(header))
    code, _, err = _create(capsys, out, refs)
    assert code == 0, err
    assert f"ignoring {out / JOURNAL}" in err and reason in err and "starts over" in err, err
    assert "resuming" not in err and "\x1b" not in err  # nothing from the file reaches the terminal raw
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.glob("**/escaped"))
    code, _, err = _create(capsys, tmp_path / "fresh", refs)
    assert code == 0, err
    assert _artifacts(out) == _artifacts(tmp_path / "fresh")
    assert run(capsys, "bundle", "verify", str(out))[0] == 0
