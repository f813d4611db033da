"""The workspace signature policy against a real registry: resolve and install only what a trusted key signed
(cosign's signatures included), the lock records each signature, and --locked checks them again offline."""

# ruff: noqa: F811  (pytest fixtures imported from helpers)

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from test_signing import PASSWORD, keys  # noqa: F401
from test_workspace_helpers import home, lock_json, make_workspace, publish_catalog, seed_config  # noqa: F401

from provisioning.cli import main
from provisioning.oci.open import open_storage
from provisioning.signing.keys import load_private_key
from provisioning.signing.manifest import read_signature_manifest
from provisioning.signing.sign import sign_artifact
from tools import require

ORDER = ["aws", "containerd", "etcd", "upcloud", "kubernetes", "buildkit", "cilium"]


@pytest.fixture
def namespace() -> str:
    return f"trust-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def artifacts(registry, namespace: str) -> dict[str, object]:
    """The seed catalogue in the registry, unsigned: ``name:version`` -> manifest descriptor."""
    return publish_catalog(open_storage(registry.host, tls_enabled=False), namespace=namespace)


def sign_all(registry, namespace: str, artifacts, key_path: Path, *, skip: tuple[str, ...] = ()) -> None:
    key = load_private_key(key_path, PASSWORD.encode())
    storage = open_storage(registry.host, tls_enabled=False)
    for ref, desc in artifacts.items():
        name = ref.split(":")[0]
        if name not in skip:
            repo = f"{namespace}/{name}"
            sign_artifact(storage.repository(repo), desc, key, f"{registry.host}/{repo}")


def workspace(tmp_path: Path, registry, namespace: str, keys_: list[Path], require_: bool = True) -> Path:
    text = seed_config(registry.host, namespace)
    doc = yaml.safe_load(text)
    doc["dependencies"]["extensions"]["verify"] = {"keys": [str(k) for k in keys_], "require": require_}
    return make_workspace(tmp_path / "ws", yaml.safe_dump(doc, sort_keys=False))


def resolve(ws: Path, *extra: str, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["dep", "resolve", "--workspace", str(ws), *extra])
    out, err = capsys.readouterr()
    return code, out + err


def test_signed_workspace_installs_records_signatures_and_reinstalls_offline(
    tmp_path, registry, namespace, artifacts, keys, home, capsys, monkeypatch
) -> None:
    sign_all(registry, namespace, artifacts, keys["alice"].key)
    ws = workspace(tmp_path, registry, namespace, [keys["alice"].pub])
    code, out = resolve(ws, capsys=capsys)
    assert code == 0, out
    lock = lock_json(ws)
    storage = open_storage(registry.host, tls_enabled=False)
    for name in ORDER:
        entry = lock["extensions"][name]
        sig = read_signature_manifest(storage.repository(f"{namespace}/{name}"), entry["digest"])
        assert entry["signature"]["manifest"] == sig.descriptor.digest
        assert entry["signature"]["layer"] == sig.layers[0].digest
        assert entry["signature"]["kind"] == "simple-signing"
    assert sorted(p.name for p in (ws / "extensions" / "taskservs").iterdir()) == [
        "cilium",
        "containerd",
        "etcd",
        "kubernetes",
    ]

    # --locked from a clean tree: every signature checked again from the cache, not one request sent
    import shutil

    shutil.rmtree(ws / "extensions")
    sent: list[str] = []
    real = requests.Session.send
    monkeypatch.setattr(requests.Session, "send", lambda s, r, **kw: (sent.append(r.url), real(s, r, **kw))[1])
    code, out = resolve(ws, "--locked", capsys=capsys)
    assert code == 0, out
    assert sent == []
    assert (ws / "extensions" / "taskservs" / "kubernetes").is_dir()

    # a cached signature tampered with: the offline check fails, the registry's copy is checked instead
    cache = home / "oci-cache" / "blobs" / "sha256" / lock["extensions"]["etcd"]["signature"]["manifest"][7:]
    cache.chmod(0o644)
    cache.write_bytes(b"{}")
    shutil.rmtree(ws / "extensions")
    code, out = resolve(ws, "--locked", capsys=capsys)
    assert code == 0, out
    assert any(f"{namespace}/etcd/manifests/sha256-" in u for u in sent)


def test_the_signature_check_reuses_the_tag_lists_the_resolve_read(
    tmp_path, registry, namespace, artifacts, keys, home, capsys, monkeypatch
) -> None:
    sign_all(registry, namespace, artifacts, keys["alice"].key)
    ws = workspace(tmp_path, registry, namespace, [keys["alice"].pub])
    monkeypatch.setenv("PROVISIONING_CATALOG", "off")  # the tag-list path: the resolver lists every repository
    sent: list[str] = []
    real = requests.Session.send
    monkeypatch.setattr(requests.Session, "send", lambda s, r, **kw: (sent.append(r.path_url), real(s, r, **kw))[1])
    code, out = resolve(ws, capsys=capsys)
    assert code == 0, out
    lock = lock_json(ws)
    assert all(lock["extensions"][name]["signature"]["kind"] == "simple-signing" for name in ORDER)
    listed = [u for u in sent if "/tags/list" in u]
    assert sorted(u.split("/tags/list")[0].rsplit("/", 1)[1] for u in listed) == sorted(ORDER)  # once each
    assert all(any(f"/{namespace}/{name}/manifests/sha256-" in u for u in sent) for name in ORDER)


@pytest.mark.parametrize("problem", ["unsigned", "other-key", "other-content"])
def test_a_bad_signature_stops_the_install(
    tmp_path, registry, namespace, artifacts, keys, home, capsys, problem: str
) -> None:
    sign_all(registry, namespace, artifacts, keys["alice"].key, skip=("cilium",))
    storage = open_storage(registry.host, tls_enabled=False)
    target = storage.repository(f"{namespace}/cilium")
    versions = sorted(r for r in artifacts if r.startswith("cilium:"))
    if problem == "other-key":
        for ref in versions:
            sign_artifact(target, artifacts[ref], load_private_key(keys["mallory"].key, PASSWORD.encode()), "x/y")
    elif problem == "other-content":
        # a valid alice signature of etcd, put on every cilium version's .sig tag
        etcd = next(d for r, d in artifacts.items() if r.startswith("etcd:"))
        etcd_sig = read_signature_manifest(storage.repository(f"{namespace}/etcd"), etcd.digest)
        for ref in versions:
            forged = read_signature_manifest(target, artifacts[ref].digest)
            forged.layers = etcd_sig.layers
            manifest, data, config, config_bytes = forged.build()
            target.push(
                etcd_sig.layers[0], [b"".join(storage.repository(f"{namespace}/etcd").fetch(etcd_sig.layers[0]))]
            )
            target.push(config, [config_bytes])
            target.push(manifest, [data])
            target.tag(manifest, forged.tag)

    ws = workspace(tmp_path, registry, namespace, [keys["alice"].pub])
    code, out = resolve(ws, capsys=capsys)
    assert code == 1, out
    expected = {"unsigned": "not signed", "other-key": "does not verify with", "other-content": "covers sha256:"}
    assert expected[problem] in out and f"{namespace}/cilium" in out and "nothing was installed" in out
    assert "Traceback" not in out
    assert not (ws / "extensions").exists()
    assert not (ws / "config" / "provisioning.lock").exists()


def test_require_false_installs_with_a_warning(tmp_path, registry, namespace, artifacts, keys, home, capsys) -> None:
    sign_all(registry, namespace, artifacts, keys["alice"].key, skip=("cilium",))
    ws = workspace(tmp_path, registry, namespace, [keys["alice"].pub], require_=False)
    code, out = resolve(ws, capsys=capsys)
    assert code == 0, out
    assert "signature not verified (require: false)" in out and "cilium" in out
    lock = lock_json(ws)
    assert "signature" not in lock["extensions"]["cilium"] and "signature" in lock["extensions"]["etcd"]


def test_a_missing_policy_key_names_the_config(tmp_path, registry, namespace, artifacts, home, capsys) -> None:
    ws = workspace(tmp_path, registry, namespace, [tmp_path / "nowhere.pub"])
    code, out = resolve(ws, capsys=capsys)
    assert code == 1 and "dependencies.extensions.verify.keys" in out and "no such key file" in out
    assert not (ws / "extensions").exists()


def test_what_cosign_signed_is_trusted(tmp_path, registry, namespace, artifacts, keys, home, capsys) -> None:
    cosign = require("cosign")
    env = {"COSIGN_PASSWORD": PASSWORD, "HOME": str(tmp_path), "PATH": __import__("os").environ["PATH"]}
    for ref in artifacts:
        name, version = ref.split(":")
        image = f"{registry.host}/{namespace}/{name}:{version}"
        proc = subprocess.run(
            [cosign, "sign", "--key", str(keys["alice"].key), "--tlog-upload=false", "-y", image],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
    ws = workspace(tmp_path, registry, namespace, [keys["alice"].pub])
    code, out = resolve(ws, "--no-install", capsys=capsys)
    assert code == 0, out
    assert all(e["signature"]["kind"] == "simple-signing" for e in lock_json(ws)["extensions"].values())


def test_the_core_is_verified_too(tmp_path, registry, namespace, artifacts, keys, home, capsys) -> None:
    from test_workspace_helpers import PROJECT_ROOT

    from provisioning import __version__
    from provisioning.package import build_core_artifact
    from provisioning.publish import publish

    sign_all(registry, namespace, artifacts, keys["alice"].key)
    storage = open_storage(registry.host, tls_enabled=False)
    core_ns = f"{namespace}-core"
    core = build_core_artifact(PROJECT_ROOT, __version__, use_git=False)
    result = publish(core, storage, core_ns, tag=f"v{__version__}")
    ws = workspace(tmp_path, registry, namespace, [keys["alice"].pub])
    doc = yaml.safe_load((ws / "config" / "provisioning.yaml").read_text())
    doc["dependencies"]["core"] = {
        "version": __version__,
        "source": f"oci://{registry.host}/{core_ns}/provisioning-core:v{__version__}",
    }
    (ws / "config" / "provisioning.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out = resolve(ws, capsys=capsys)
    assert code == 1 and "refused the core" in out and "not signed" in out, out
    assert not (ws / "extensions").exists()

    key = load_private_key(keys["alice"].key, PASSWORD.encode())
    target = storage.repository(f"{core_ns}/provisioning-core")
    sign_artifact(target, target.resolve(f"v{__version__}"), key, f"{registry.host}/{core_ns}/provisioning-core")
    code, out = resolve(ws, capsys=capsys)
    assert code == 0, out
    assert result.digest


def signed_catalog(registry, namespace: str, key_path: Path) -> None:
    """The namespace's catalog as ``doit publish sign=KEY`` leaves it: rebuilt from the registry, signed by the key."""
    from provisioning.catalog import rebuild_catalog, write_catalog

    key = load_private_key(key_path, PASSWORD.encode())
    storage = open_storage(registry.host, tls_enabled=False)

    def sign(target, desc) -> None:  # type: ignore[no-untyped-def]
        sign_artifact(target, desc, key, f"{registry.host}/{target.name}")

    write_catalog(storage, namespace, rebuild_catalog(storage, namespace), sign=sign)


def test_a_catalog_signed_by_another_key_is_not_trusted(
    tmp_path, registry, namespace, artifacts, keys, home, capsys, monkeypatch
) -> None:
    """verify.keys covers the catalog: signed by another key it chooses nothing; tag lists or a stop, as
    dependencies.extensions.catalog says; the install is what the trusted key signed either way."""
    sign_all(registry, namespace, artifacts, keys["alice"].key)
    signed_catalog(registry, namespace, keys["mallory"].key)
    ws = workspace(tmp_path, registry, namespace, [keys["alice"].pub])
    sent: list[str] = []
    real = requests.Session.send
    monkeypatch.setattr(requests.Session, "send", lambda s, r, **kw: (sent.append(r.url), real(s, r, **kw))[1])
    code, out = resolve(ws, capsys=capsys)  # auto: the catalog is set aside, tag lists answer
    assert code == 0, out
    assert "is not signed by a key the signature policy" in out and "resolving from tag lists instead" in out
    assert any("/tags/list" in u for u in sent)
    lock = lock_json(ws)
    assert lock["order"] == ORDER and all(e["signature"] for e in lock["extensions"].values())
    # require: no trusted catalog, so nothing is resolved, written or installed
    (ws / "config" / "provisioning.lock").unlink()
    doc = yaml.safe_load((ws / "config" / "provisioning.yaml").read_text())
    doc["dependencies"]["extensions"]["catalog"] = "require"
    (ws / "config" / "provisioning.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    import shutil

    shutil.rmtree(ws / "extensions")
    code, out = resolve(ws, capsys=capsys)
    assert code == 1 and "is not signed by a key the signature policy" in out and "Traceback" not in out
    assert not (ws / "config" / "provisioning.lock").exists() and not (ws / "extensions").exists()
    # the same catalog signed by the trusted key is used: the whole graph from it, no tag list
    signed_catalog(registry, namespace, keys["alice"].key)
    sent.clear()
    code, out = resolve(ws, "--no-install", capsys=capsys)
    assert code == 0, out
    assert "not signed by a key" not in out and "tag lists" not in out  # the signed catalog chose the digests
    assert any("/provisioning-catalog/manifests/sha256-" in u for u in sent)  # its signature was checked
    assert lock_json(ws)["extensions"] == lock["extensions"]


def test_catalog_rebuild_with_a_key_signs_it_so_the_workspace_trusts_it(
    tmp_path, registry, namespace, artifacts, keys, home, capsys, monkeypatch
) -> None:
    """``catalog rebuild --key`` signs what it writes, and a catalog already current gets signed in place."""
    sign_all(registry, namespace, artifacts, keys["alice"].key)
    monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD)
    args = ["--registry", registry.host, "--namespace", namespace, "--plain-http"]
    capsys.readouterr()
    assert main(["catalog", "rebuild", *args]) == 0  # unsigned first
    assert "written" in capsys.readouterr().out
    assert main(["catalog", "rebuild", *args, "--key", str(keys["alice"].key), "--output", "json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "unchanged" and out["signature"] == "signed", out
    assert main(["catalog", "rebuild", *args, "--key", str(keys["alice"].key), "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["signature"] == "already-signed"
    ws = workspace(tmp_path, registry, namespace, [keys["alice"].pub])
    sent: list[str] = []
    real = requests.Session.send
    monkeypatch.setattr(requests.Session, "send", lambda s, r, **kw: (sent.append(r.url), real(s, r, **kw))[1])
    code, out = resolve(ws, "--no-install", capsys=capsys)
    assert code == 0, out
    assert "not signed by a key" not in out and "tag lists" not in out, out  # the catalog chose the digests
    assert any("/provisioning-catalog/manifests/sha256-" in u for u in sent)  # its signature was checked
    # a bad password is refused before anything is written: the catalog stays as it was
    monkeypatch.setenv("COSIGN_PASSWORD", "wrong")
    assert main(["catalog", "rebuild", *args, "--key", str(keys["alice"].key)]) == 1
    assert "Traceback" not in capsys.readouterr().err
