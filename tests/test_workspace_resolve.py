"""Resolving from the embedded store: the seed's workspace, the lock, no-op reruns, and every way it can fail."""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from test_workspace_helpers import (  # noqa: F401
    SEED_CATALOG,
    CountingStorage,
    extension_manifest,
    home,
    lock_json,
    make_workspace,
    publish_catalog,
    push,
    seed_config,
    snapshot,
    store,
)

from provisioning.cli import main
from provisioning.oci.layout import LayoutStorage
from provisioning.workspace import stores as stores_mod

ORDER = ["aws", "containerd", "etcd", "upcloud", "kubernetes", "buildkit", "cilium"]


@pytest.fixture
def ws(tmp_path: Path, store: LayoutStorage, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workspace(tmp_path / "ws", seed_config("../store", full_refs=False))  # relative to the workspace
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[CountingStorage]:
    """Every store the workspace code opens, wrapped to count what it is asked."""
    opened: list[CountingStorage] = []
    real = stores_mod.open_store

    def wrapped(settings: Any) -> CountingStorage:
        c = CountingStorage(real(settings))
        opened.append(c)
        return c

    monkeypatch.setattr(stores_mod, "open_store", wrapped)
    return opened


def calls(opened: list[CountingStorage]) -> list[tuple[str, str, str]]:
    """The store operations of a resolve, less the one lookup of the namespace's catalog (absent here)."""
    found = [c for s in opened for c in s.calls]
    lookups = [c for c in found if c[1].endswith("/provisioning-catalog")]
    assert len(lookups) <= 1, lookups
    return [c for c in found if c not in lookups]


def modules(**types: list[Any]) -> dict[str, list[Any]]:
    return {k: v for k, v in types.items()}


def workspace_with(tmp_path: Path, store: LayoutStorage, name: str = "ws2", **mods: list[Any]) -> Path:
    return make_workspace(tmp_path / name, seed_config(str(store.root), modules=modules(**mods), full_refs=False))


def run(*argv: str) -> int:
    return main(list(argv))


# ------------------------------------------------------------------------------------------- the seed


def test_seed_workspace_resolves_and_installs_from_the_embedded_store(ws: Path, capsys) -> None:
    assert run("dep", "resolve") == 0
    out = capsys.readouterr().out
    assert "wrote config/provisioning.lock" in out
    lock = lock_json(ws)
    assert lock["order"] == ORDER
    versions = {n: e["version"] for n, e in lock["extensions"].items()}
    assert versions == {
        "aws": "2.0.0",
        "upcloud": "1.5.0",
        "kubernetes": "1.28.0",
        "containerd": "1.7.0",
        "etcd": "3.5.9",  # pulled in by kubernetes (>=3.5.0), newest
        "cilium": "1.14.0",
        "buildkit": "0.12.0",
    }
    assert lock["extensions"]["etcd"]["requested"] is False
    assert lock["extensions"]["kubernetes"]["dependencies"] == {"containerd": ">=1.7.0", "etcd": ">=3.5.0"}
    assert lock["extensions"]["kubernetes"]["registry"] == "../store"  # relative: the lock travels
    for name, e in lock["extensions"].items():
        folder = ws / "extensions" / f"{e['type']}s" / name
        assert (folder / "manifest.yaml").is_file()
        assert (folder / "scripts" / "install.nu").stat().st_mode & 0o111
    assert not list((ws / "extensions").glob(".staging-*"))


def test_second_resolve_is_a_no_op_without_any_store_access(ws: Path, counted, capsys) -> None:
    assert run("dep", "resolve") == 0
    first = calls(counted)
    tag_lists = [c for c in first if c[0] == "tags"]
    assert len(tag_lists) == 7  # one per name
    before = snapshot(ws)
    lock_mtime = (ws / "config" / "provisioning.lock").stat().st_mtime_ns
    counted.clear()
    capsys.readouterr()
    assert run("dep", "resolve") == 0
    assert counted == []  # no store was even opened
    assert snapshot(ws) == before
    assert (ws / "config" / "provisioning.lock").stat().st_mtime_ns == lock_mtime
    assert "config/provisioning.lock is up to date" in capsys.readouterr().out


def test_cold_resolve_reads_tags_manifests_and_configs_only(ws: Path, counted) -> None:
    assert run("dep", "resolve", "--no-install") == 0
    c = calls(counted)
    fetched = [x for x in c if x[0] == "fetch"]
    # per chosen version: the manifest (resolve + fetch on a layout) and the config; never a layer
    assert len([x for x in c if x[0] == "resolve"]) == 7
    assert len(fetched) == 14
    assert not (ws / "extensions").exists()
    lock = lock_json(ws)
    cache_blobs = {p.name for p in (Path.cwd().parent / "home" / "oci-cache" / "blobs" / "sha256").iterdir()}
    for e in lock["extensions"].values():
        assert e["digest"].split(":")[1] in cache_blobs  # manifests cached by digest


def test_warm_cache_resolve_fetches_no_blobs(ws: Path, counted, tmp_path: Path, store: LayoutStorage) -> None:
    assert run("dep", "resolve", "--no-install") == 0
    other = make_workspace(tmp_path / "other", (ws / "config" / "provisioning.yaml").read_text())
    counted.clear()
    assert run("dep", "resolve", "--no-install", "--workspace", str(other)) == 0
    c = calls(counted)
    assert [x for x in c if x[0] == "fetch"] == []  # manifests and configs come from the shared cache
    assert len([x for x in c if x[0] == "tags"]) == 7


def test_lock_reproduces_the_same_install_elsewhere(ws: Path, tmp_path: Path, monkeypatch, store) -> None:
    assert run("dep", "resolve") == 0
    other = tmp_path / "machine2" / "ws"
    (other / "config").mkdir(parents=True)
    shutil.copy(ws / "config" / "provisioning.yaml", other / "config")
    shutil.copy(ws / "config" / "provisioning.lock", other / "config")
    shutil.copytree(store.root, tmp_path / "machine2" / "store")  # its own mirror of the store
    # A newer etcd appears after the lock was written: the lock still wins.
    push(LayoutStorage(tmp_path / "machine2" / "store"), extension_manifest("etcd", "3.6.0"))
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "machine2" / "home"))  # a cold cache too
    assert run("dep", "resolve", "--locked", "--workspace", str(other)) == 0
    assert snapshot(other / "extensions") == snapshot(ws / "extensions")
    assert (other / "config" / "provisioning.lock").read_bytes() == (ws / "config" / "provisioning.lock").read_bytes()


def test_locked_fails_when_config_and_lock_disagree(ws: Path, capsys) -> None:
    assert run("dep", "resolve") == 0
    text = (ws / "config" / "provisioning.yaml").read_text().replace("- buildkit:0.12.0", "- buildkit:0.11.0")
    (ws / "config" / "provisioning.yaml").write_text(text.replace("taskservs:\n", "taskservs:\n      - etcd\n"))
    before = snapshot(ws)
    capsys.readouterr()
    assert run("dep", "resolve", "--locked") == 1
    err = capsys.readouterr().err
    assert "--locked: config/provisioning.yaml and config/provisioning.lock disagree" in err
    assert "the config adds etcd" in err and "run `provisioning dep resolve`" in err
    assert snapshot(ws) == before


def test_locked_without_a_lock(ws: Path, capsys) -> None:
    assert run("dep", "resolve", "--locked") == 1
    assert "config/provisioning.lock does not exist" in capsys.readouterr().err
    assert not (ws / "extensions").exists()


def test_changed_config_keeps_locked_versions_and_prunes(ws: Path, store: LayoutStorage) -> None:
    assert run("dep", "resolve") == 0
    push(store, extension_manifest("etcd", "3.5.10"))
    cfg = ws / "config" / "provisioning.yaml"
    cfg.write_text(cfg.read_text().replace("      - cilium:1.14.0\n", "").replace("- buildkit:0.12.0", "- buildkit"))
    assert run("dep", "resolve") == 0
    lock = lock_json(ws)
    assert "cilium" not in lock["extensions"]
    assert lock["extensions"]["etcd"]["version"] == "3.5.9"  # unchanged parts keep their locked versions
    assert not (ws / "extensions" / "taskservs" / "cilium").exists()
    assert run("dep", "update", "etcd") == 0
    assert lock_json(ws)["extensions"]["etcd"]["version"] == "3.5.10"
    marker = (ws / "extensions" / "taskservs" / "etcd" / ".provisioning-install.json").read_text()
    assert '"3.5.10"' in marker


def test_corrupt_lock_is_a_clear_error(ws: Path, capsys) -> None:
    assert run("dep", "resolve") == 0
    lock = ws / "config" / "provisioning.lock"
    for bad, why in [
        ('{"lockVersion": 1, "inputs": "x",', "not valid JSON (line 1"),
        ("[]", "the top level is not an object"),
        (lock.read_text().replace('"sha256:', '"md5:', 1), "is not a sha256 digest"),
        (lock.read_text().replace('"order": [\n    "aws",', '"order": [', 1), "order must list every locked extension"),
    ]:
        lock.write_text(bad)
        before = snapshot(ws)
        capsys.readouterr()
        assert run("dep", "resolve") == 1
        err = capsys.readouterr().err
        assert "config/provisioning.lock is corrupt" in err and why in err, err
        assert "Delete it and run `provisioning dep resolve`" in err
        assert snapshot(ws) == before


# ------------------------------------------------------------------------------------------- choices


def test_plain_names_get_the_newest_compatible_release(tmp_path: Path, store, home, capsys) -> None:
    w = workspace_with(tmp_path, store, providers=["aws"], taskservs=["kubernetes", "etcd@~3.4"])
    assert run("dep", "resolve", "--no-install", "-w", str(w)) == 0
    v = {n: e["version"] for n, e in lock_json(w)["extensions"].items()}
    assert (v["kubernetes"], v["etcd"]) == ("1.27.0", "3.4.0")  # backtracked: 1.28+ want etcd >=3.5
    w = workspace_with(tmp_path, store, "ws3", providers=["aws"], taskservs=["kubernetes", "containerd@<1.7"])
    assert run("dep", "resolve", "--no-install", "-w", str(w)) == 0
    v = {n: e["version"] for n, e in lock_json(w)["extensions"].items()}
    assert v["aws"] == "2.0.0"  # 2.1.0-rc.1 is a prerelease: not picked by a plain name
    assert v["kubernetes"] == "1.27.0"  # backtracked: 1.28/1.29 need containerd >=1.7.0
    assert v["containerd"] == "1.6.0"
    w = workspace_with(tmp_path, store, "ws4", providers=[{"name": "aws", "version": ">=2.1.0-rc.0"}])
    assert run("dep", "resolve", "--no-install", "-w", str(w)) == 0
    assert lock_json(w)["extensions"]["aws"]["version"] == "2.1.0-rc.1"
    w = workspace_with(tmp_path, store, "ws5", taskservs=[{"name": "kubernetes", "version": ">=1.27, <1.29"}])
    assert run("dep", "resolve", "--no-install", "-w", str(w)) == 0
    assert lock_json(w)["extensions"]["kubernetes"]["version"] == "1.28.0"


def test_min_provisioning_version_is_checked_against_the_core(tmp_path: Path, store, home, capsys) -> None:
    push(store, extension_manifest("kubernetes", "1.30.0", "taskserv", {"etcd": ">=3.5.0"}, "4.0.0"))
    w = workspace_with(tmp_path, store, taskservs=["kubernetes"])
    assert run("dep", "resolve", "--no-install", "-w", str(w)) == 0
    assert lock_json(w)["extensions"]["kubernetes"]["version"] == "1.29.0"  # 1.30.0 needs core 4.0.0
    w = workspace_with(tmp_path, store, "ws3", taskservs=["kubernetes@>=1.30.0"])
    capsys.readouterr()
    assert run("dep", "resolve", "-w", str(w)) == 1
    err = capsys.readouterr().err
    assert "1.30.0 needs provisioning >= 4.0.0" in err
    assert "this workspace's core is 3.5.0 (dependencies.core)" in err
    assert not (w / "config" / "provisioning.lock").exists() and not (w / "extensions").exists()
    # a newer core in the config lets it through
    cfg = w / "config" / "provisioning.yaml"
    cfg.write_text(cfg.read_text().replace("version: 3.5.0", "version: 4.1.0"))  # the core's version
    assert run("dep", "resolve", "--no-install", "-w", str(w)) == 0


def test_cycle_is_reported_with_its_path(tmp_path: Path, home, capsys) -> None:
    s = LayoutStorage(tmp_path / "cyc")
    publish_catalog(
        s,
        {
            "alpha": {"type": "taskserv", "versions": {"1.0.0": {"beta": "^1"}}},
            "beta": {"type": "taskserv", "versions": {"1.0.0": {"gamma": "^1"}}},
            "gamma": {"type": "taskserv", "versions": {"1.0.0": {"alpha": "^1"}}},
        },
    )
    w = workspace_with(tmp_path, s, taskservs=["alpha"])
    assert run("dep", "validate", "-w", str(w)) == 1
    err = capsys.readouterr().err
    assert "dependency cycle: alpha → beta → gamma → alpha" in err
    assert run("dep", "resolve", "-w", str(w)) == 1
    assert not (w / "config" / "provisioning.lock").exists()


def test_conflict_names_both_requirers_and_the_versions(tmp_path: Path, store, home, capsys) -> None:
    push(store, extension_manifest("legacy-app", "1.0.0", "cluster", {"etcd": "<3.5.0"}))
    w = workspace_with(tmp_path, store, taskservs=["kubernetes:1.28.0"], clusters=["legacy-app"])
    assert run("dep", "resolve", "-w", str(w)) == 1
    err = capsys.readouterr().err
    assert "no version of etcd satisfies every requirement" in err
    assert "kubernetes 1.28.0 requires etcd >=3.5.0" in err
    assert "legacy-app 1.0.0 requires etcd <3.5.0" in err
    assert "available versions of etcd: 3.4.0, 3.5.0, 3.5.9" in err
    assert not (w / "extensions").exists() and not (w / "config" / "provisioning.lock").exists()


def test_unknown_name_gets_a_did_you_mean(tmp_path: Path, store, home, capsys) -> None:
    w = workspace_with(tmp_path, store, taskservs=["kubernets"])
    assert run("dep", "resolve", "-w", str(w)) == 1
    err = capsys.readouterr().err
    assert "no extension named 'kubernets' is published at" in err
    assert "the workspace config (config/provisioning.yaml" not in err or "requires kubernets *" in err
    assert "Did you mean 'kubernetes'?" in err
    push(store, extension_manifest("redis", "7.0.0", "taskserv", {"postgress": "^15"}))
    push(store, extension_manifest("postgres", "15.0.0"))
    w = workspace_with(tmp_path, store, "ws3", taskservs=["redis"])
    assert run("dep", "resolve", "-w", str(w)) == 1
    err = capsys.readouterr().err
    assert "redis 7.0.0 requires postgress ^15" in err and "Did you mean 'postgres'?" in err


def test_foreign_artifact_under_a_tag_is_refused(tmp_path: Path, store, home, capsys) -> None:
    meta = extension_manifest("cilium", "1.15.0", "taskserv", {"kubernetes": "^1.27"})
    push(store, meta, config_media_type="application/vnd.oci.image.config.v1+json", artifact_type=None)
    w = workspace_with(tmp_path, store, taskservs=["cilium"])
    assert run("dep", "resolve", "-w", str(w)) == 1
    err = capsys.readouterr().err
    assert "cilium:1.15.0 is not a provisioning extension" in err
    assert "'application/vnd.oci.image.config.v1+json'" in err
    assert not (w / "extensions").exists()
    push(store, extension_manifest("cilium", "1.16.0"), artifact_type="application/vnd.example.helm.chart")
    w = workspace_with(tmp_path, store, "ws3", taskservs=["cilium@1.16.0"])
    assert run("dep", "resolve", "-w", str(w)) == 1
    assert "its artifactType is 'application/vnd.example.helm.chart'" in capsys.readouterr().err


def test_type_mismatch_says_where_to_move_it(tmp_path: Path, store, home, capsys) -> None:
    w = workspace_with(tmp_path, store, taskservs=["aws"])
    assert run("dep", "resolve", "-w", str(w)) == 1
    assert "aws is listed under taskservs but its manifest says type provider; move it to modules.providers" in (
        capsys.readouterr().err
    )


def test_missing_embedded_store(tmp_path: Path, home, capsys) -> None:
    w = make_workspace(tmp_path / "w", seed_config(str(tmp_path / "nowhere"), full_refs=False))
    assert run("dep", "resolve", "-w", str(w)) == 1
    assert "embedded store" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- commands


def test_tree_validate_and_check_updates(ws: Path, capsys) -> None:
    assert run("dep", "tree", "kubernetes") == 0  # no lock yet: a dry resolution, nothing written
    assert capsys.readouterr().out.splitlines() == [
        "kubernetes 1.28.0",
        "├── containerd 1.7.0 (>=1.7.0)",
        "└── etcd 3.5.9 (>=3.5.0)",
    ]
    assert not (ws / "config" / "provisioning.lock").exists()
    assert run("dep", "validate") == 0
    out = capsys.readouterr().out
    assert "ok: 7 extensions resolve with no conflicts or cycles" in out and "lock: missing" in out
    assert not (ws / "extensions").exists()
    assert run("dep", "resolve") == 0
    capsys.readouterr()
    assert run("dep", "check-updates", "--output", "json") == 0
    import json

    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["kubernetes"]["current"], rows["kubernetes"]["wanted"], rows["kubernetes"]["latest"]) == (
        "1.28.0",
        "1.28.0",
        "1.29.0",
    )
    assert (rows["etcd"]["current"], rows["etcd"]["wanted"], rows["etcd"]["latest"]) == ("3.5.9", "3.5.9", "3.5.9")
    assert rows["aws"]["latest"] == "2.0.0"  # prereleases are not "latest"
    assert run("dep", "check-updates") == 0
    out = capsys.readouterr().out
    assert "kubernetes" in out and "update available" in out
    header = next(line for line in out.splitlines() if "extension" in line)
    assert header.replace("│", " ").split() == ["extension", "type", "current", "wanted", "latest", "status"]
    assert run("dep", "tree", "kubernets") == 1
    assert "did you mean kubernetes" in capsys.readouterr().err


def test_update_unknown_name(ws: Path, capsys) -> None:
    assert run("dep", "resolve", "--no-install") == 0
    assert run("dep", "update", "etcdd") == 1
    assert "did you mean etcd" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- the fast path


def _memory_config(tmp_path: Path, catalog: dict, roots: dict[str, list[Any]]) -> tuple[Any, Any]:
    from provisioning.oci.memory import MemoryStorage
    from provisioning.workspace.config import load_config
    from provisioning.workspace.stores import Stores

    mem = MemoryStorage()
    publish_catalog(mem, catalog)
    w = make_workspace(tmp_path / f"mem-{len(list(tmp_path.iterdir()))}", seed_config("/memory", modules=roots))
    return load_config(w), Stores(lambda settings: mem)


def test_backtracking_falls_back_to_resolvelib(tmp_path: Path, home) -> None:
    from provisioning.workspace.greedy import greedy
    from provisioning.workspace.resolver import ExtensionProvider, resolve, root_requirements

    catalog = {
        "app": {"type": "taskserv", "versions": {"1.0.0": {"lib": "^1"}, "2.0.0": {"lib": "^2"}}},
        "tool": {"type": "cluster", "versions": {"1.0.0": {"lib": "^1"}}},
        "lib": {"type": "taskserv", "versions": {"1.0.0": {}, "1.4.0": {}, "2.0.0": {}}},
    }
    config, stores = _memory_config(tmp_path, catalog, {"taskservs": ["app"], "clusters": ["tool"]})
    from provisioning.workspace.cache import BlobCache

    provider = ExtensionProvider(config, stores=stores, cache=BlobCache())
    assert greedy(provider, root_requirements(config)) is None  # app 2.0.0 pinned lib 2 before tool asked for ^1
    result = resolve(config, stores=stores)
    assert {n: c.version for n, c in result.candidates.items()} == {"app": "1.0.0", "tool": "1.0.0", "lib": "1.4.0"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_greedy_pass_agrees_with_resolvelib(tmp_path: Path, home, seed: int) -> None:
    """On generated catalogues the fast path picks exactly what resolvelib picks."""
    import importlib.util
    import sys

    from resolvelib import BaseReporter, Resolver

    from provisioning.workspace.cache import BlobCache
    from provisioning.workspace.greedy import greedy
    from provisioning.workspace.resolver import ExtensionProvider, root_requirements

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "resolve.py"  # its catalogue generator
    spec = importlib.util.spec_from_file_location("bench_resolve", path)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_resolve"] = bench  # dataclasses look their module up
    spec.loader.exec_module(bench)

    exts = bench.generate(120, 4, seed)
    catalog = {e.name: {"type": e.type, "versions": e.versions} for e in exts}
    roots: dict[str, list[Any]] = {}
    for e in exts[::3]:
        roots.setdefault(f"{e.type}s", []).append(e.name)
    config, stores = _memory_config(tmp_path, catalog, roots)
    provider = ExtensionProvider(config, stores=stores, cache=BlobCache())
    fast = greedy(provider, root_requirements(config))
    assert fast is not None
    slow = Resolver(ExtensionProvider(config, stores=stores, cache=BlobCache()), BaseReporter()).resolve(
        root_requirements(config), max_rounds=10_000
    )
    assert {n: c.version for n, c in fast[0].items()} == {n: c.version for n, c in slow.mapping.items()}
