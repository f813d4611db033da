"""Installing: the verified cache, unsafe archives, atomic swaps, concurrent runs, local overrides, migration."""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from hostile import member
from test_workspace_helpers import (  # noqa: F401
    PROJECT_ROOT,
    deterministic_tar,
    extension_files,
    extension_manifest,
    home,
    lock_json,
    make_workspace,
    publish_catalog,
    push,
    seed_config,
    snapshot,
    store,
    ws,
)

from provisioning.cli import main
from provisioning.oci.layout import LayoutStorage
from provisioning.workspace import install as install_mod
from provisioning.workspace.install import recover
from provisioning.workspace.sources import oci as oci_source


def run(*argv: str) -> int:
    return main(list(argv))


def cache_blob(home_dir: Path, digest: str) -> Path:
    return home_dir / "oci-cache" / "blobs" / "sha256" / digest.split(":")[1]


def layer_digest(store: LayoutStorage, name: str, version: str) -> str:
    import json

    target = store.repository(f"provisioning-extensions/{name}")
    desc = target.resolve(version)
    return json.loads(b"".join(target.fetch(desc)))["layers"][0]["digest"]


# ------------------------------------------------------------------------------------------- cache


def test_cache_write_takes_another_temp_name_and_never_follows_a_planted_link(tmp_path: Path, monkeypatch) -> None:
    import itertools
    import threading

    from provisioning.oci.descriptor import CONFIG_TYPE, Descriptor
    from provisioning.workspace import cache as cache_mod

    data = b'{"name": "redis"}'
    desc = Descriptor.of(CONFIG_TYPE, data)
    cache = cache_mod.BlobCache(tmp_path / "cache")
    blob = cache.path(desc.digest)
    blob.parent.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep me")
    monkeypatch.setattr(cache_mod, "_serial", itertools.count())
    planted = blob.parent / f".{blob.name[:16]}.{os.getpid()}.{threading.get_ident()}.0.part"
    planted.symlink_to(outside)  # the name the first write would take

    cache.store_bytes(desc, data)

    assert blob.read_bytes() == data and outside.read_bytes() == b"keep me"
    assert blob.stat().st_mode & 0o777 == 0o444
    assert planted.is_symlink()  # left alone, not written through or replaced
    assert [p.name for p in blob.parent.iterdir() if p.name.endswith(".part")] == [planted.name]


def test_cache_write_of_wrong_content_leaves_nothing(tmp_path: Path) -> None:
    from provisioning.errors import DigestMismatch
    from provisioning.oci.descriptor import CONFIG_TYPE, Descriptor
    from provisioning.workspace.cache import BlobCache

    desc = Descriptor.of(CONFIG_TYPE, b"the real content")
    cache = BlobCache(tmp_path / "cache")  # its folders do not exist yet: the first write makes them
    with pytest.raises(DigestMismatch):
        cache.ensure_bytes(desc, lambda: iter([b"something ", b"else"]), "the config")
    assert list(cache.path(desc.digest).parent.iterdir()) == []
    assert cache.ensure_bytes(desc, lambda: iter([b"the real ", b"content"]), "the config") == b"the real content"
    assert cache.read(desc) == b"the real content"


def test_tampered_cached_layer_is_detected_and_fetched_again(ws: Path, home: Path, store, tmp_path, capsys) -> None:
    assert run("dep", "resolve") == 0
    blob = cache_blob(home, layer_digest(store, "kubernetes", "1.28.0"))
    blob.chmod(0o644)
    blob.write_bytes(b"not what was published")
    other = make_workspace(tmp_path / "ws2", (ws / "config" / "provisioning.yaml").read_text())
    shutil.copy(ws / "config" / "provisioning.lock", other / "config")
    capsys.readouterr()
    assert run("dep", "resolve", "--locked", "-w", str(other)) == 0
    captured = capsys.readouterr()
    assert "fetched again (corrupt in the cache): kubernetes" in captured.out
    assert snapshot(other / "extensions") == snapshot(ws / "extensions")
    assert blob.read_bytes() != b"not what was published"  # the cache healed


def test_tampered_cached_blob_is_refused_when_it_cannot_be_fetched(
    ws: Path, home: Path, store, tmp_path, capsys
) -> None:
    assert run("dep", "resolve") == 0
    blob = cache_blob(home, layer_digest(store, "etcd", "3.5.9"))
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-10])
    other = make_workspace(tmp_path / "ws2", (ws / "config" / "provisioning.yaml").read_text())
    shutil.copy(ws / "config" / "provisioning.lock", other / "config")
    shutil.rmtree(store.root)  # the registry is gone (air-gapped, offline)
    before = snapshot(other)
    capsys.readouterr()
    assert run("dep", "resolve", "--locked", "-w", str(other)) == 1
    err = capsys.readouterr().err
    assert "the cached copy of the content of etcd 3.5.9" in err and "is corrupt" in err
    assert snapshot(other) == before  # nothing installed, not even the intact ones


def test_tampered_cached_config_is_refetched_during_resolve(ws: Path, home: Path, tmp_path: Path) -> None:
    assert run("dep", "resolve", "--no-install") == 0
    for p in (home / "oci-cache" / "blobs" / "sha256").iterdir():
        p.chmod(0o644)
        p.write_bytes(b"{}")  # every cached manifest and config now lies
    other = make_workspace(tmp_path / "ws2", (ws / "config" / "provisioning.yaml").read_text())
    assert run("dep", "resolve", "-w", str(other)) == 0
    assert lock_json(other)["extensions"] == lock_json(ws)["extensions"]


# ------------------------------------------------------------------------------------------- unsafe archives


UNSAFE = {
    "dotdot": ([member("../escape.txt")], "climbs out of the extension with '..'"),
    "absolute": ([member("/tmp/provisioning-absolute.txt")], "has an absolute path"),
    "symlink-escape": ([member("docs/up", tarfile.SYMTYPE, linkname="../../../outside")], "escapes the extension"),
    "symlink-absolute": ([member("docs/etc", tarfile.SYMTYPE, linkname="/etc")], "is absolute"),
    "through-link": (
        [member("here", tarfile.SYMTYPE, linkname="."), member("here/x.txt")],
        "would be written through a link",
    ),
    "hardlink-escape": ([member("docs/passwd", tarfile.LNKTYPE, linkname="/etc/passwd")], "has an absolute path"),
    "hardlink-dangling": ([member("docs/h", tarfile.LNKTYPE, linkname="nothing/here")], "does not name an earlier"),
    "device": ([member("dev/null", tarfile.CHRTYPE)], "is a device file"),
    "fifo": ([member("pipe", tarfile.FIFOTYPE)], "is a fifo file"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_archives_are_refused_and_the_workspace_untouched(
    case: str, ws: Path, store: LayoutStorage, capsys, tmp_path: Path
) -> None:
    assert run("dep", "resolve") == 0  # a good install first: it must survive
    members, why = UNSAFE[case]
    meta = extension_manifest("cilium", "1.99.0", "taskserv", {"kubernetes": "^1.27"})

    def add(tar: tarfile.TarFile) -> None:
        for info, data in members:
            tar.addfile(info, data)

    push(store, meta, layer=deterministic_tar(extension_files(meta), extra=add))
    cfg = ws / "config" / "provisioning.yaml"
    cfg.write_text(cfg.read_text().replace("cilium:1.14.0", "cilium:1.99.0"))
    before = snapshot(ws)
    capsys.readouterr()
    assert run("dep", "resolve") == 1
    err = capsys.readouterr().err
    assert "cilium 1.99.0" in err and why in err, err
    assert "Traceback" not in err
    assert snapshot(ws) == before  # old cilium still installed, lock unchanged, no staging left
    assert not (tmp_path / "outside").exists() and not Path("/tmp/provisioning-absolute.txt").exists()


def test_size_bound_and_garbage_layers(ws: Path, store: LayoutStorage, monkeypatch, capsys) -> None:
    meta = extension_manifest("cilium", "1.98.0", "taskserv", {"kubernetes": "^1.27"})
    files = extension_files(meta)
    files["templates/big.bin"] = b"\0" * 200_000
    push(store, meta, files=files)
    cfg = ws / "config" / "provisioning.yaml"
    cfg.write_text(cfg.read_text().replace("cilium:1.14.0", "cilium:1.98.0"))
    monkeypatch.setenv("PROVISIONING_MAX_EXTRACT_BYTES", "100000")
    assert run("dep", "resolve") == 1
    assert "unpacks to more than 100000 bytes" in capsys.readouterr().err
    assert not (ws / "extensions").exists() and not (ws / "config" / "provisioning.lock").exists()
    monkeypatch.delenv("PROVISIONING_MAX_EXTRACT_BYTES")
    meta = extension_manifest("cilium", "1.97.0", "taskserv", {"kubernetes": "^1.27"})
    push(store, meta, layer=b"\x1f\x8b garbage that is no tar")
    cfg.write_text(cfg.read_text().replace("cilium:1.98.0", "cilium:1.97.0"))
    assert run("dep", "resolve") == 1
    assert "not a readable tar archive" in capsys.readouterr().err
    assert not (ws / "extensions").exists()


# ------------------------------------------------------------------------------------------- atomicity


def test_interrupted_swap_leaves_the_previous_state_and_a_rerun_completes(ws: Path, monkeypatch) -> None:
    assert run("dep", "resolve") == 0
    old = snapshot(ws / "extensions" / "taskservs" / "kubernetes")
    cfg = ws / "config" / "provisioning.yaml"
    cfg.write_text(cfg.read_text().replace("kubernetes:1.28.0", "kubernetes:1.29.0"))
    real_rename = os.rename

    def dying_rename(src, dst, *a, **kw):  # the process dies between moving the old folder out and the new in
        if "/new/taskservs/kubernetes" in str(src):
            raise KeyboardInterrupt
        return real_rename(src, dst, *a, **kw)

    monkeypatch.setattr(install_mod.os, "rename", dying_rename)
    assert run("dep", "resolve") == 130
    monkeypatch.setattr(install_mod.os, "rename", real_rename)
    assert not (ws / "extensions" / "taskservs" / "kubernetes").exists()  # mid-swap
    recover(ws)  # what the next run does first
    assert snapshot(ws / "extensions" / "taskservs" / "kubernetes") == old
    assert not list((ws / "extensions").glob(".staging-*"))
    assert run("dep", "resolve") == 0
    assert lock_json(ws)["extensions"]["kubernetes"]["version"] == "1.29.0"
    assert "1.29.0" in (ws / "extensions" / "taskservs" / "kubernetes" / "manifest.yaml").read_text()


def test_interrupted_staging_changes_nothing(ws: Path, monkeypatch, capsys) -> None:
    real = oci_source.safe_extract
    count = {"n": 0}

    def dying_extract(*a, **kw):
        count["n"] += 1
        if count["n"] == 4:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(oci_source, "safe_extract", dying_extract)
    assert run("dep", "resolve") == 130
    assert not (ws / "extensions").exists() and not (ws / "config" / "provisioning.lock").exists()
    monkeypatch.setattr(oci_source, "safe_extract", real)
    assert run("dep", "resolve") == 0
    assert len(lock_json(ws)["order"]) == 7


def test_concurrent_runs_share_the_cache_safely(tmp_path: Path, store: LayoutStorage, home: Path) -> None:
    text = seed_config(str(store.root), full_refs=False)
    workspaces = [make_workspace(tmp_path / f"w{i}", text) for i in range(3)]
    script = "import sys; from provisioning.cli import main; sys.exit(main(['dep', 'resolve', '-w', sys.argv[1]]))"
    env = {**os.environ, "PROVISIONING_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)}
    targets = [workspaces[0], workspaces[0], workspaces[1], workspaces[2]]  # two runs on one workspace too
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(w)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for w in targets
    ]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0, 0, 0], [r[1].decode() for r in results]
    first = snapshot(workspaces[0] / "extensions")
    for w in workspaces[1:]:
        assert snapshot(w / "extensions") == first
    assert not list((home / "oci-cache" / "blobs" / "sha256").glob(".*part"))


# ------------------------------------------------------------------------------------------- local overrides


def write_local(root: Path, name: str, version: str, type_: str = "taskserv", deps: dict | None = None) -> Path:
    folder = root / f"{type_}s" / name
    for rel, data in extension_files(extension_manifest(name, version, type_, deps)).items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data[0] if isinstance(data, tuple) else data)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_it.nu").write_text("# not installed\n")
    return folder


def test_module_load_local_overrides_the_registry(ws: Path, tmp_path: Path, capsys) -> None:
    assert run("dep", "resolve") == 0
    src = tmp_path / "src"
    redis = write_local(src, "redis", "7.2.0", deps={"etcd": ">=3.5.0"})
    k8s = write_local(src, "kubernetes", "1.30.0-dev", deps={"etcd": ">=3.5.0", "containerd": ">=1.7.0"})
    assert run("module", "load", "taskserv", str(ws), "redis", "--source", "local", "--path", str(redis)) == 0
    assert run("module", "load", "taskservs", str(ws), "kubernetes", "--path", str(k8s)) == 0
    capsys.readouterr()
    lock = lock_json(ws)
    assert lock["extensions"]["redis"]["source"] == "local"
    assert lock["extensions"]["redis"]["path"] == "../src/taskservs/redis"
    assert lock["extensions"]["kubernetes"]["source"] == "local"
    assert lock["extensions"]["kubernetes"]["version"] == "1.30.0-dev"
    assert lock["extensions"]["etcd"]["source"] == "oci"
    installed = ws / "extensions" / "taskservs" / "redis"
    assert (installed / "manifest.yaml").is_file() and not (installed / "tests").exists()
    cfg = yaml.safe_load((ws / "config" / "provisioning.yaml").read_text())
    assert {"name": "redis", "source": "local", "path": "../src/taskservs/redis"} in cfg["dependencies"]["extensions"][
        "modules"
    ]["taskservs"]
    # an edit in the local folder is picked up by the next resolve
    (redis / "scripts" / "install.nu").write_text("def main [] { print 'v2' }\n")
    assert run("dep", "resolve") == 0
    assert (installed / "scripts" / "install.nu").read_text() == "def main [] { print 'v2' }\n"
    assert run("dep", "resolve", "--locked") == 0


def test_module_load_errors(ws: Path, tmp_path: Path, capsys) -> None:
    before = snapshot(ws)
    assert run("module", "load", "taskserv", str(ws), "redis", "--path", str(tmp_path / "nope")) == 1
    assert "no local extension redis found" in capsys.readouterr().err
    folder = write_local(tmp_path / "src", "redis", "7.2.0", deps={"etcdd": "^3"})
    assert run("module", "load", "provider", str(ws), "redis", "--path", str(folder)) == 1
    assert "says type 'taskserv', not 'provider'" in capsys.readouterr().err
    assert run("module", "load", "taskserv", str(ws), "redis", "--path", str(folder)) == 1
    assert "Did you mean 'etcd'?" in capsys.readouterr().err
    assert snapshot(ws) == before  # the config edit was rolled back


def test_migrate_to_oci_checks_each_is_published(ws: Path, tmp_path: Path, store: LayoutStorage, capsys) -> None:
    src = tmp_path / "src"
    redis = write_local(src, "redis", "7.2.0", deps={"etcd": ">=3.5.0"})
    assert run("module", "load", "taskserv", str(ws), "redis", "--path", str(redis), "--no-install") == 0
    cfg = ws / "config" / "provisioning.yaml"
    before = cfg.read_text()
    capsys.readouterr()
    assert run("workspace", "migrate-to-oci", str(ws)) == 1
    err = capsys.readouterr().err
    assert "not published" in err and "redis 7.2.0" in err and "the config was not changed" in err
    assert cfg.read_text() == before
    push(store, extension_manifest("redis", "7.2.0", "taskserv", {"etcd": ">=3.5.0"}))
    assert run("workspace", "migrate-to-oci", str(ws)) == 0
    assert "redis:7.2.0" in capsys.readouterr().out
    modules = yaml.safe_load(cfg.read_text())["dependencies"]["extensions"]["modules"]["taskservs"]
    assert "redis:7.2.0" in modules
    assert run("dep", "resolve") == 0
    assert lock_json(ws)["extensions"]["redis"]["source"] == "oci"
    assert run("workspace", "migrate-to-oci", str(ws)) == 1
    assert "no local module entries" in capsys.readouterr().err


def test_local_source_type_workspace(tmp_path: Path, home: Path, store: LayoutStorage) -> None:
    src = tmp_path / "monorepo" / "extensions"
    write_local(src, "kubernetes", "1.28.0", deps={"etcd": ">=3.5.0"})
    write_local(src, "etcd", "3.5.0")
    text = (
        "dependencies:\n  extensions:\n    source_type: local\n    local: {path: ../monorepo/extensions}\n"
        f"    oci: {{registry: {store.root}}}\n    modules:\n      taskservs: [kubernetes]\n"
    )
    w = make_workspace(tmp_path / "ws", text)
    assert run("dep", "resolve", "-w", str(w)) == 0
    lock = lock_json(w)
    assert {n: e["source"] for n, e in lock["extensions"].items()} == {"kubernetes": "local", "etcd": "local"}
    cfg = w / "config" / "provisioning.yaml"
    assert run("workspace", "migrate-to-oci", str(w)) == 0  # kubernetes 1.28.0 is published
    doc = yaml.safe_load(cfg.read_text())
    assert doc["dependencies"]["extensions"]["source_type"] == "oci"
    assert doc["dependencies"]["extensions"]["modules"]["taskservs"] == ["kubernetes:1.28.0"]
    assert run("dep", "resolve", "-w", str(w)) == 0
    lock = lock_json(w)
    assert {n: (e["source"], e["version"]) for n, e in lock["extensions"].items()} == {
        "kubernetes": ("oci", "1.28.0"),
        "etcd": ("oci", "3.5.9"),
        "containerd": ("oci", "1.7.2"),
    }


# ------------------------------------------------------------------------------------------- doit


def test_doit_resolve_and_install_tasks(ws: Path, home: Path) -> None:
    dodo = ws.parent / "dodo.py"
    dodo.write_text("from provisioning.tasks.workspace import task_install, task_resolve  # noqa: F401\n")
    env = {
        **os.environ,
        "PROVISIONING_HOME": str(home),
        "PYTHONPATH": str(PROJECT_ROOT),
        "PROVISIONING_WORKSPACE": "ws",
    }

    def doit(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "doit", "-f", str(dodo), "--db-file", str(ws.parent / ".doit.db"), *args]
        return subprocess.run(cmd, cwd=ws.parent, env=env, capture_output=True, text=True, timeout=120)

    r = doit("install")
    assert r.returncode == 0, r.stderr
    assert ".  resolve" in r.stdout and ".  install" in r.stdout
    assert (ws / "config" / "provisioning.lock").is_file()
    assert (ws / "extensions" / "taskservs" / "etcd" / "manifest.yaml").is_file()
    r = doit("install")
    assert r.returncode == 0 and "-- resolve" in r.stdout and "-- install" in r.stdout  # both up to date
    shutil.rmtree(ws / "extensions" / "taskservs" / "etcd")
    r = doit("install")
    assert r.returncode == 0 and "-- resolve" in r.stdout and ".  install" in r.stdout
    assert (ws / "extensions" / "taskservs" / "etcd" / "manifest.yaml").is_file()
    cfg = ws / "config" / "provisioning.yaml"
    cfg.write_text(cfg.read_text().replace("kubernetes:1.28.0", "kubernetes:1.99.0"))
    r = doit("install")
    assert r.returncode != 0
    assert "no version of kubernetes satisfies" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_folders_not_installed_by_us_are_never_replaced(ws: Path, capsys) -> None:
    mine = ws / "extensions" / "taskservs" / "etcd"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("hand-made\n")
    before = snapshot(ws)
    assert run("dep", "resolve") == 1
    err = capsys.readouterr().err
    assert "extensions/taskservs/etcd" in err and "not installed by provisioning" in err
    assert snapshot(ws) == before


def test_usage_errors_exit_2(ws: Path, capsys) -> None:
    for argv in (["dep"], ["module"], ["workspace"]):
        assert run(*argv) == 2
    with pytest.raises(SystemExit) as info:
        run("dep", "resolve", "--bogus")
    assert info.value.code == 2


def test_json_outputs(ws: Path, capsys) -> None:
    import json

    assert run("dep", "resolve", "-o", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["order"][-1] == "cilium" and data["result"]["lock_written"] is True
    assert len(data["result"]["installed"]) == 7
    assert run("dep", "validate", "-o", "json") == 0
    assert json.loads(capsys.readouterr().out)["lock"] == "up to date"
    assert run("dep", "tree", "cilium", "-o", "json") == 0
    tree = json.loads(capsys.readouterr().out)
    assert tree[0]["dependencies"][0]["name"] == "kubernetes"
