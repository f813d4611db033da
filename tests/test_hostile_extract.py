"""Hostile layers, sources and locks: nothing they hold lands outside the workspace or the pull folder."""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest
from hostile import chain_to_root, huge_header, layer, member
from test_workspace_helpers import (  # noqa: F401
    deterministic_tar,
    extension_files,
    extension_manifest,
    home,
    make_workspace,
    push,
    seed_config,
    snapshot,
    store,
    ws,
)

from provisioning.archive import safe_extract
from provisioning.cli import main
from provisioning.errors import UnsafeArchive
from provisioning.oci.layout import LayoutStorage
from provisioning.workspace.install import MARKER
from provisioning.workspace.sources.git import folder_in_checkout
from provisioning.workspace.sources.local import copy_local


def _links(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_symlink()] if folder.exists() else []


def _push_cilium(store: LayoutStorage, version: str, extra_members: list[tuple]) -> None:
    meta = extension_manifest("cilium", version, "taskserv", {"kubernetes": "^1.27"})

    def add(tar: tarfile.TarFile) -> None:
        for info, data in extra_members:
            tar.addfile(info, data)

    push(store, meta, layer=deterministic_tar(extension_files(meta), extra=add))


# ------------------------------------------------------------------------------------- links


def test_links_that_escape_only_together_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "chain.tar.gz"
    archive.write_bytes(layer(*chain_to_root()))
    with pytest.raises(UnsafeArchive, match=r"symlink 'up' -> .* escapes the extension"):
        safe_extract(archive, tmp_path / "out", what="layer")
    assert _links(tmp_path / "out") == []  # decided before any link was made


def test_links_inside_are_kept_even_through_other_links(tmp_path: Path) -> None:
    archive = tmp_path / "ok.tar.gz"
    archive.write_bytes(
        layer(
            member("docs/readme.md", data=b"hi"),
            member("a", tarfile.SYMTYPE, linkname="b/readme.md"),
            member("b", tarfile.SYMTYPE, linkname="docs/../docs"),
            member("docs/self", tarfile.SYMTYPE, linkname="../docs"),
        )
    )
    assert safe_extract(archive, tmp_path / "out", what="layer") == 1
    assert (tmp_path / "out" / "a").read_text() == "hi"


@pytest.mark.parametrize(
    "members,why",
    [
        ([member("d", tarfile.SYMTYPE, linkname="."), member("d/x")], "would be written through a link"),
        ([member("f"), member("f", tarfile.SYMTYPE, linkname="g")], "appears twice"),
        ([member("d/x"), member("d", tarfile.SYMTYPE, linkname=".")], "clashes with an earlier member"),
        ([member("loop", tarfile.SYMTYPE, linkname="loop/x")], "escapes the extension"),
        ([member("s", tarfile.GNUTYPE_SPARSE)], "sparse file"),
    ],
    ids=["through-link", "twice", "dir-then-link", "link-loop", "sparse"],
)
def test_member_lists_that_could_follow_a_link_are_refused(tmp_path: Path, members: list, why: str) -> None:
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(layer(*members))
    with pytest.raises(UnsafeArchive, match=why):
        safe_extract(archive, tmp_path / "out", what="layer")
    assert _links(tmp_path / "out") == []


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE])
def test_extended_headers_claiming_gigabytes_are_refused_unread(tmp_path: Path, kind: bytes) -> None:
    archive = tmp_path / "huge.tar.gz"
    archive.write_bytes(layer(member("docs/a"), raw_prefix=huge_header(kind)))
    assert archive.stat().st_size < 10_000
    with pytest.raises(UnsafeArchive, match=r"extended tar header .* of 2147483648 bytes"):
        safe_extract(archive, tmp_path / "out", what="layer")


def test_oci_pull_refuses_a_layer_whose_links_reach_the_root(tmp_path: Path, home: Path, capsys) -> None:
    store = LayoutStorage(tmp_path / "store")
    _push_cilium(store, "1.0.0", chain_to_root())
    dest = tmp_path / "pulled"
    code = main(["oci", "pull", "cilium:1.0.0", "--registry", str(store.root), "--dest", str(dest)])
    err = capsys.readouterr().err
    assert code == 1 and "escapes the extension" in err and "Traceback" not in err
    assert not dest.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".pulled")]


# ------------------------------------------------------------------------------------- install markers


def test_a_marker_planted_as_a_link_is_replaced_not_written_through(ws: Path, store: LayoutStorage) -> None:
    _push_cilium(store, "1.99.0", [member(MARKER, tarfile.SYMTYPE, linkname="docs/planted.json")])
    cfg = ws / "config" / "provisioning.yaml"
    cfg.write_text(cfg.read_text().replace("cilium:1.14.0", "cilium:1.99.0"))
    assert main(["dep", "resolve"]) == 0
    folder = ws / "extensions" / "taskservs" / "cilium"
    marker = folder / MARKER
    assert not marker.is_symlink() and json.loads(marker.read_text())["version"] == "1.99.0"
    assert not (folder / "docs" / "planted.json").exists()


def test_install_refuses_a_layer_whose_links_escape_and_leaves_the_workspace(
    ws: Path, store: LayoutStorage, tmp_path: Path, capsys
) -> None:
    assert main(["dep", "resolve"]) == 0
    before = snapshot(ws)
    escape = [*chain_to_root(2), member(MARKER, tarfile.SYMTYPE, linkname="up/outside-marker")]
    _push_cilium(store, "1.98.0", escape)
    cfg = ws / "config" / "provisioning.yaml"
    text = cfg.read_text()
    cfg.write_text(text.replace("cilium:1.14.0", "cilium:1.98.0"))
    capsys.readouterr()
    assert main(["dep", "resolve"]) == 1
    err = capsys.readouterr().err
    assert "escapes the extension" in err and "Traceback" not in err
    cfg.write_text(text)
    assert snapshot(ws) == before
    assert not list(tmp_path.rglob("outside-marker"))


def test_local_and_git_sources_follow_the_same_link_rules(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    (src / "manifest.yaml").write_text("name: x\n")
    (src / "docs" / "README.md").write_text("docs")
    os.symlink("../outside.txt", src / MARKER)
    with pytest.raises(UnsafeArchive, match="escapes the extension"):
        copy_local(src, tmp_path / "dest", what="x from src")
    os.unlink(src / MARKER)
    os.symlink("docs/../manifest.yaml", src / "inner")
    copy_local(src, tmp_path / "dest2", what="x from src")
    assert (tmp_path / "dest2" / "inner").read_text() == "name: x\n"
    # a git checkout: the extension folder named by a lock, or reached through a link, stays inside
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    os.symlink(str(tmp_path), checkout / "taskservs")
    with pytest.raises(UnsafeArchive, match="not a path inside the repository"):
        folder_in_checkout(checkout, "../src", "x")
    with pytest.raises(UnsafeArchive, match="leads outside the repository"):
        folder_in_checkout(checkout, "taskservs/src", "x")
    assert outside.read_text() == "keep"


# ------------------------------------------------------------------------------------- locks


def _tamper_lock(ws: Path, change) -> None:  # type: ignore[no-untyped-def]
    path = ws / "config" / "provisioning.lock"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _rename_to_escape(doc: dict) -> None:
    entry = doc["extensions"].pop("cilium")
    entry["name"] = "../../../escaped"
    doc["extensions"]["../../../escaped"] = entry
    doc["order"] = [("../../../escaped" if n == "cilium" else n) for n in doc["order"]]


@pytest.mark.parametrize(
    "change,why",
    [
        (_rename_to_escape, "is not an extension name"),
        (lambda d: d["extensions"]["cilium"].update(size="12"), "size must be a non-negative integer"),
        (lambda d: d["extensions"]["cilium"].update(namespace="../.."), "is not a repository namespace"),
        (lambda d: d["extensions"]["cilium"].update(tag="../x"), "is not an OCI tag"),
        (lambda d: d["extensions"]["cilium"].update(reference=["x"]), "reference must be a string"),
        (lambda d: d.update(order=[["cilium"]]), "order must list every locked extension"),
        (lambda d: d.update(platform=["x"]), "platform.images must be an object"),
    ],
    ids=["dotdot-name", "size-string", "namespace", "tag", "reference-list", "order-lists", "platform-list"],
)
def test_hostile_locks_are_refused_before_they_touch_a_path(ws: Path, tmp_path: Path, capsys, change, why) -> None:
    assert main(["dep", "resolve"]) == 0
    _tamper_lock(ws, change)
    for ext in (ws / "extensions").glob("*/*"):
        (ext / MARKER).unlink()  # nothing counts as installed: --locked must read every entry
    capsys.readouterr()
    assert main(["dep", "resolve", "--locked"]) == 1
    err = capsys.readouterr().err
    assert why in err and "provisioning.lock" in err and "Traceback" not in err
    assert not list(tmp_path.rglob("escaped"))


def test_a_lock_that_is_a_link_is_refused_and_never_written_through(ws: Path, tmp_path: Path, capsys) -> None:
    assert main(["dep", "resolve"]) == 0
    lock = ws / "config" / "provisioning.lock"
    elsewhere = tmp_path / "elsewhere.lock"
    elsewhere.write_text(lock.read_text())
    lock.unlink()
    os.symlink("/dev/zero", lock)
    assert main(["dep", "resolve", "--locked"]) == 1
    assert "is a symbolic link" in capsys.readouterr().err
    lock.unlink()
    os.symlink(elsewhere, lock)
    cfg = ws / "config" / "provisioning.yaml"
    cfg.write_text(cfg.read_text().replace("cilium:1.14.0", "cilium:1.14.0\n"))
    keep = elsewhere.read_text()
    main(["dep", "resolve"])
    assert elsewhere.read_text() == keep


def test_a_workspace_whose_extensions_folder_is_a_link_is_not_installed_into(ws: Path, tmp_path: Path, capsys) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (ws / "extensions").mkdir()
    os.symlink(elsewhere, ws / "extensions" / "taskservs")
    assert main(["dep", "resolve"]) == 1
    err = capsys.readouterr().err
    assert "is a symbolic link" in err and "Traceback" not in err
    assert list(elsewhere.iterdir()) == []
