"""Hostile data on disk and races: YAML bombs, nested indexes, layouts that never end, full disks, concurrent
pushes of one version, terminal escapes. Each ends in exit 1 and a message naming the source, no traceback."""

# ruff: noqa: F811  (pytest fixtures imported from test_workspace_helpers)

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from extension_factory import make_extension
from registry_server import fault_session
from test_workspace_helpers import home, make_workspace, seed_config, store, ws  # noqa: F401

from provisioning.cli import main
from provisioning.errors import TagConflict
from provisioning.oci.copy import MAX_DEPTH, CopyError, copy
from provisioning.oci.descriptor import INDEX, Descriptor, canonical_json
from provisioning.oci.layout import LayoutStorage
from provisioning.oci.memory import MemoryStorage
from provisioning.oci.remote import RemoteStorage
from provisioning.package import build_artifact
from provisioning.publish import publish, push_artifact

NS = "provisioning-extensions"


def alias_bomb(levels: int = 9) -> str:
    """Nine lists of nine aliases of the level below: 9**9 values from a few hundred bytes."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ YAML


def test_an_alias_bomb_in_a_workspace_config_is_refused_at_once(ws: Path, capsys) -> None:
    cfg = ws / "config" / "provisioning.yaml"
    cfg.write_text(cfg.read_text() + "bomb:\n" + "".join("  " + line + "\n" for line in alias_bomb().splitlines()))
    assert main(["dep", "resolve"]) == 1
    err = capsys.readouterr().err
    assert "provisioning.yaml" in err and "alias bomb" in err and "Traceback" not in err
    assert main(["oci", "tags", "kubernetes", "--workspace", str(ws)]) == 1
    assert "alias bomb" in capsys.readouterr().err


def test_an_alias_bomb_in_an_extension_manifest_is_refused(tmp_path: Path, capsys) -> None:
    ext = make_extension(tmp_path, "redis")
    mf = ext / "manifest.yaml"
    mf.write_text(mf.read_text() + "x-bomb:\n" + "".join("  " + line + "\n" for line in alias_bomb().splitlines()))
    assert main(["oci", "package", "validate", str(ext)]) == 1
    err = capsys.readouterr().err
    assert "manifest.yaml" in err and "alias bomb" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------------ graphs


def _nested(target, levels: int) -> Descriptor:  # type: ignore[no-untyped-def]
    child = Descriptor.of("application/vnd.oci.empty.v1+json", b"{}")
    target.push(child, [b"{}"])
    for _ in range(levels):
        doc = canonical_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [child.to_dict()]})
        child = Descriptor.of(INDEX, doc)
        target.push(child, [doc])
    target.tag(child, "deep")
    return child


def test_a_chain_of_thousands_of_nested_indexes_is_refused(tmp_path: Path, capsys) -> None:
    src = MemoryStorage().repository("ns/deep")
    _nested(src, 5000)
    with pytest.raises(CopyError, match=f"nests deeper than {MAX_DEPTH} levels"):
        copy(src, "deep", MemoryStorage().repository("ns/deep"))
    _nested(LayoutStorage(tmp_path / "src").repository("ns/deep"), MAX_DEPTH + 2)
    code = main(["oci", "copy", f"oci-layout:{tmp_path / 'src'}/ns/deep:deep", f"oci-layout:{tmp_path / 'dst'}"])
    err = capsys.readouterr().err
    assert code == 1 and "nests deeper" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "huge", "nested"])
def test_a_layout_whose_index_never_ends_is_refused(tmp_path: Path, kind: str, capsys) -> None:
    repo = tmp_path / "store" / "ns" / "x"
    repo.mkdir(parents=True)
    (repo / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = repo / "index.json"
    if kind == "dev-zero":
        os.symlink("/dev/zero", index)
    elif kind == "fifo":
        os.mkfifo(index)
    elif kind == "huge":
        with open(index, "wb") as f:
            f.truncate(100 << 20)  # sparse: 100 MiB claimed, nothing on disk
    else:
        index.write_text("[" * 100_000 + "]" * 100_000)
    code = main(["oci", "tags", "x", "--registry", str(tmp_path / "store"), "--namespace", "ns"])
    err = capsys.readouterr().err
    assert code == 1 and "index.json" in err and "Traceback" not in err


def test_a_layout_lock_file_that_is_a_link_is_not_opened(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = LayoutStorage(tmp_path / "store").repository("ns/x")
    target.path.mkdir(parents=True)
    os.symlink(victim, target.path / "index.json.lock")
    desc = Descriptor.of("application/vnd.oci.empty.v1+json", b"{}")
    with pytest.raises(Exception, match="is a symbolic link"):
        target.push(desc, [b"{}"])
    assert victim.read_text() == "precious"


# ------------------------------------------------------------------------------------------------ full disk


FULL_DISK = """
import errno, os, sys
class Full:
    def __init__(self, f): self.f = f
    def write(self, data): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    def __enter__(self): return self
    def __exit__(self, *exc): self.f.close()
    def __getattr__(self, name): return getattr(self.f, name)
import builtins
real_open = builtins.open
def full_open(path, mode="r", *a, **k):
    f = real_open(path, mode, *a, **k)
    return Full(f) if any(c in mode for c in "wxa") and "b" in mode else f
builtins.open = full_open
real_fdopen = os.fdopen
def full_fdopen(fd, mode="r", *a, **k):
    f = real_fdopen(fd, mode, *a, **k)
    return Full(f) if "w" in mode else f
os.fdopen = full_fdopen
from provisioning.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_full_disk_fails_cleanly_and_leaves_no_temp_files(ws: Path, home: Path) -> None:
    """Every write fails with ENOSPC (as on a full disk): exit 1, a message, no traceback, nothing half-written."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), *sys.path])}
    r = subprocess.run(
        [sys.executable, "-c", FULL_DISK, "dep", "resolve"], cwd=ws, env=env, capture_output=True, text=True
    )
    assert r.returncode == 1, r.stderr
    assert "No space left on device" in r.stderr and "Traceback" not in r.stderr
    leftovers = [p for p in [*ws.rglob("*"), *home.rglob("*")] if ".tmp" in p.name or p.name.endswith(".part")]
    assert leftovers == []
    assert not (ws / "config" / "provisioning.lock").exists() and not (ws / "extensions").exists()


# ------------------------------------------------------------------------------------------------ races


def _artifacts(tmp_path: Path, n: int) -> list:  # type: ignore[type-arg]
    out = []
    for i in range(n):
        ext = make_extension(tmp_path / f"variant{i}", "etcd", version="3.5.0")
        (ext / "docs" / "README.md").write_text(f"variant {i}\n")
        out.append(build_artifact(ext, use_git=False))
    assert len({a.manifest_desc.digest for a in out}) == n
    return out


def test_concurrent_publishes_of_one_version_to_the_embedded_store_have_one_winner(tmp_path: Path) -> None:
    arts = _artifacts(tmp_path, 6)
    storage = LayoutStorage(tmp_path / "store")
    barrier = threading.Barrier(len(arts))
    results: list = [None] * len(arts)  # type: ignore[type-arg]

    def run(i: int) -> None:
        barrier.wait()
        results[i] = publish(arts[i], storage, NS)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(arts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in results)
    assert statuses == ["published"] + ["refused"] * (len(arts) - 1), [(r.status, r.message) for r in results]
    winner = next(r for r in results if r.status == "published")
    assert storage.repository(f"{NS}/etcd").resolve("3.5.0").digest == winner.digest
    assert all(r.digest == winner.digest for r in results)  # every report says which one won


def test_a_registry_push_that_loses_the_race_after_its_put_reports_the_winner(tmp_path: Path, registry) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = _artifacts(tmp_path, 2)
    other = RemoteStorage(registry.host)
    name = f"race-{os.getpid()}-{threading.get_ident() % 10000}/etcd"

    def rule(request):  # type: ignore[no-untyped-def]
        if request.method == "PUT" and request.url.endswith(f"/{name}/manifests/3.5.0"):

            def then(resp):  # type: ignore[no-untyped-def]
                push_artifact(theirs, other.repository(name), immutable=False)  # lands between our PUT and check
                return resp

            return then
        return None

    session, _ = fault_session(rule)
    mine = RemoteStorage(registry.host, session=session).repository(name)
    with pytest.raises(TagConflict) as info:
        push_artifact(ours, mine)
    assert info.value.winner == theirs.manifest_desc.digest and "the other push won" in str(info.value)
    # and a push that starts after the other landed is refused before its PUT, naming the winner
    with pytest.raises(TagConflict, match="was published with other content"):
        push_artifact(ours, RemoteStorage(registry.host).repository(name))
    assert other.repository(name).resolve("3.5.0").digest == theirs.manifest_desc.digest


# ------------------------------------------------------------------------------------------------ terminals


def test_registry_text_reaches_the_terminal_without_control_characters(tmp_path: Path, capsys) -> None:
    ext = make_extension(tmp_path, "redis")
    mf = ext / "manifest.yaml"
    text = "\n".join(
        'description: "\\e]0;pwned\\a\\e[2J[bold]x[/bold]"' if line.startswith("description:") else line
        for line in mf.read_text().splitlines()
    )
    mf.write_text(text + "\n")
    storage = LayoutStorage(tmp_path / "store")
    assert publish(build_artifact(ext, use_git=False), storage, NS).status == "published"
    capsys.readouterr()
    assert main(["oci", "inspect", "redis:1.0.0", "--registry", str(storage.root)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;pwned" in out and "[bold]x[/bold]" in out  # shown, not obeyed
