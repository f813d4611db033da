"""A signed workspace carried through a bundle: online resolve with the signature policy, bundle, install at a
site with no registry; the same lock, every digest and signature checked; a bundle that lost a signature stops
the install with nothing installed."""

# ruff: noqa: F811  (pytest fixtures imported from helpers)

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from test_signing import keys  # noqa: F401
from test_workspace_helpers import home, lock_json, publish_catalog  # noqa: F401
from test_workspace_trust import resolve, sign_all, workspace

from provisioning.cli import main
from provisioning.oci.layout import LayoutStorage
from provisioning.oci.open import open_storage


@pytest.fixture
def namespace() -> str:
    return f"bt-{uuid.uuid4().hex[:10]}"


def site(tmp_path: Path, ws: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The workspace at another site: config and lock only, an empty cache."""
    other = tmp_path / name / "ws"
    (other / "config").mkdir(parents=True)
    for f in ("provisioning.yaml", "provisioning.lock"):
        shutil.copy(ws / "config" / f, other / "config" / f)
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / name / "home"))
    return other


def signed_online_workspace(tmp_path: Path, registry, namespace: str, keys, capsys) -> tuple[Path, bytes]:
    """The seed catalogue published and signed by alice, and a workspace requiring her key resolved online
    against it: the workspace and its lock's bytes."""
    artifacts = publish_catalog(open_storage(registry.host, tls_enabled=False), namespace=namespace)
    sign_all(registry, namespace, artifacts, keys["alice"].key)
    ws = workspace(tmp_path, registry, namespace, [keys["alice"].pub])
    code, out = resolve(ws, capsys=capsys)
    assert code == 0, out
    return ws, (ws / "config" / "provisioning.lock").read_bytes()


def test_signed_closure_through_a_bundle_installs_with_the_same_lock_and_signatures_checked(
    tmp_path: Path, registry, namespace: str, keys, home, capsys, monkeypatch
) -> None:
    ws, lock_bytes = signed_online_workspace(tmp_path, registry, namespace, keys, capsys)
    assert all("signature" in e for e in lock_json(ws)["extensions"].values())

    bundle = tmp_path / "bundle"
    assert main(["bundle", "create", str(bundle), "--workspace", str(ws)]) == 0
    assert main(["bundle", "verify", str(bundle), "--key", str(keys["alice"].pub)]) == 0

    # a site with no registry: the bundle is the registry; the online lock installs as it is
    here = site(tmp_path, ws, "site", monkeypatch)
    code, out = resolve(here, "--locked", "--registry", str(bundle), capsys=capsys)
    assert code == 0, out
    assert (here / "config" / "provisioning.lock").read_bytes() == lock_bytes
    assert (here / "extensions" / "taskservs" / "kubernetes" / "manifest.yaml").is_file()

    # a bundle that lost cilium's signature on the way: the policy stops the install, nothing is installed
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    cilium = LayoutStorage(broken).repository(f"{namespace}/cilium")
    cilium.untag(next(t for t in cilium.tags() if t.endswith(".sig")))
    there = site(tmp_path, ws, "site2", monkeypatch)
    code, out = resolve(there, "--locked", "--registry", str(broken), capsys=capsys)
    assert code == 1, out
    assert "cilium" in out and "Traceback" not in out
    assert not (there / "extensions").exists() or not any((there / "extensions").rglob("manifest.yaml"))


def test_a_bundle_tar_is_a_registry_too_unpacked_and_verified_once(
    tmp_path: Path, fresh_registry, namespace: str, keys, home, capsys, monkeypatch
) -> None:
    """Online resolve -> ``bundle create --tar`` -> install with no registry from the tar: the same lock, every
    digest and signature checked; a damaged or hostile tar installs nothing."""
    import io
    import tarfile

    registry = fresh_registry  # its own: it is stopped half-way

    ws, lock_bytes = signed_online_workspace(tmp_path, registry, namespace, keys, capsys)
    tar = tmp_path / "site.tar"
    assert main(["bundle", "create", str(tar), "--workspace", str(ws)]) == 0
    registry.stop()  # from here on there is no registry at all

    here = site(tmp_path, ws, "site", monkeypatch)
    code, out = resolve(here, "--locked", "--registry", str(tar), capsys=capsys)
    assert code == 0, out
    assert (here / "config" / "provisioning.lock").read_bytes() == lock_bytes
    assert (here / "extensions" / "taskservs" / "kubernetes" / "manifest.yaml").is_file()
    cached = list((tmp_path / "site" / "home" / "bundles").glob("*/.verified"))
    assert len(cached) == 1  # unpacked and verified once
    # the tar named as a mirror of the origin in the config, the origin gone: the same lock again
    there = site(tmp_path, ws, "site2", monkeypatch)
    config = there / "config" / "provisioning.yaml"
    config.write_text(
        config.read_text().replace(
            "dependencies:\n",
            f'dependencies:\n  registry:\n    mirrors:\n      "{registry.host}": ["{tar}"]\n    mirror_only: true\n',
            1,
        )
    )
    code, out = resolve(there, "--locked", capsys=capsys)
    assert code == 0, out
    assert (there / "config" / "provisioning.lock").read_bytes() == lock_bytes

    # a tar whose blob was damaged: the check at unpacking names it; nothing is installed
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(tar) as src, tarfile.open(damaged, "w") as dst:
        hit = False
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if data is not None and not hit and "/blobs/sha256/" in member.name and len(data) > 100:
                data, hit = data[: len(data) // 2], True
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    bad = site(tmp_path, ws, "site3", monkeypatch)
    code, out = resolve(bad, "--locked", "--registry", str(damaged), capsys=capsys)
    assert code == 1 and "damaged.tar" in out and "Traceback" not in out, out
    assert not (bad / "extensions").exists() or not any((bad / "extensions").rglob("manifest.yaml"))
    # a tar with a member outside the tree: refused, nothing written outside
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as t:
        info = tarfile.TarInfo("../escaped")
        info.size = 3
        t.addfile(info, io.BytesIO(b"bad"))
    code, out = resolve(site(tmp_path, ws, "site4", monkeypatch), "--locked", "--registry", str(evil), capsys=capsys)
    assert code == 1 and "refused" in out, out
    assert not (tmp_path / "site4" / "home" / "escaped").exists()
