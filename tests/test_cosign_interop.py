"""Interop with the real peers `.ci/go-tools` builds: cosign verifies what we sign and we verify what cosign
signs (keys both ways), and crane, the oras CLI and our own copy carry artifacts with their signatures.

These tests fail (never skip) when a peer is missing: CI installs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from test_signing import PASSWORD, cli, keys, published  # noqa: F401  (fixtures)

from provisioning.oci.attached import attached_tag
from tools import require


def run(*argv: str, cwd: Path | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COSIGN_PASSWORD": PASSWORD, "COSIGN_YES": "true", "SIGSTORE_NO_CACHE": "1"}
    env["HOME"] = str(cwd) if cwd else env.get("HOME", "")
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
    if ok:
        assert proc.returncode == 0, f"{argv[0]} {argv[1]} failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc


def cosign_verify(ref: str, pub: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``cosign verify`` with a key and no transparency log (an air-gapped check), as operators run it."""
    return run(require("cosign"), "verify", "--key", str(pub), "--insecure-ignore-tlog=true", ref, cwd=cwd, ok=False)


def _ns() -> str:
    return f"interop-{uuid.uuid4().hex[:8]}"


def test_cosign_verifies_what_we_sign_in_a_registry(cli, tmp_path: Path, registry, keys) -> None:  # noqa: F811
    ref = published(tmp_path, cli, registry.host, namespace=_ns())
    code, out, err = cli("oci", "sign", ref, "--key", str(keys["alice"].key), "--output", "json")
    assert code == 0, err
    proc = cosign_verify(ref, keys["alice"].pub, tmp_path)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)[0]
    assert payload["critical"]["image"]["docker-manifest-digest"] == json.loads(out)["digest"]
    assert cosign_verify(ref, keys["mallory"].pub, tmp_path).returncode != 0


def test_cosign_verifies_what_we_sign_in_the_embedded_store_once_copied(cli, tmp_path: Path, registry, keys) -> None:  # noqa: F811
    store = tmp_path / "store"
    ref = published(tmp_path, cli, str(store))
    assert cli("oci", "sign", ref, "--key", str(keys["alice"].key))[0] == 0
    dst = f"{registry.host}/{_ns()}/redis:1.0.0"
    code, out, err = cli("oci", "copy", f"oci-layout:{store}/provisioning-extensions/redis:1.0.0", dst, "-o", "json")
    assert code == 0, err
    assert [a["kind"] for a in json.loads(out)["attached"]] == ["sig"]
    proc = cosign_verify(dst, keys["alice"].pub, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert cli("oci", "verify", dst, "--key", str(keys["alice"].pub))[0] == 0


def test_we_verify_what_cosign_signs_and_keys_work_both_ways(cli, tmp_path: Path, registry, keys) -> None:  # noqa: F811
    cosign = require("cosign")
    run(cosign, "generate-key-pair", "--output-key-prefix", "theirs", cwd=tmp_path)
    theirs_key, theirs_pub = tmp_path / "theirs.key", tmp_path / "theirs.pub"
    ref = published(tmp_path, cli, registry.host, namespace=_ns())
    run(cosign, "sign", "--key", str(theirs_key), "--tlog-upload=false", ref, cwd=tmp_path)
    code, out, err = cli("oci", "verify", ref, "--key", str(theirs_pub), "--output", "json")
    assert code == 0, err
    assert [c["kind"] for c in json.loads(out)["signatures"] if c["verified"]] == ["simple-signing"]
    code, _, err = cli("oci", "verify", ref, "--key", str(keys["alice"].pub))
    assert code == 1 and "no signature by a trusted key" in err

    # cosign signs with our key; we sign with cosign's key: both verify with both tools
    run(cosign, "sign", "--key", str(keys["alice"].key), "--tlog-upload=false", ref, cwd=tmp_path)
    other = published(tmp_path, cli, registry.host, "redis", "1.0.1", namespace=ref.split("/")[1])
    assert cli("oci", "sign", other, "--key", str(theirs_key))[0] == 0
    assert cli("oci", "verify", ref, "--key", str(keys["alice"].pub))[0] == 0
    assert cosign_verify(other, theirs_pub, tmp_path).returncode == 0
    # cosign appended its layer to the manifest cosign wrote; ours appends to either
    assert cli("oci", "sign", ref, "--key", str(keys["mallory"].key))[0] == 0
    for pub in (theirs_pub, keys["alice"].pub, keys["mallory"].pub):
        assert cosign_verify(ref, pub, tmp_path).returncode == 0, pub


def test_crane_copies_artifacts_with_their_signatures(cli, tmp_path: Path, registry, keys) -> None:  # noqa: F811
    crane = require("crane")
    src_ns, dst_ns = _ns(), _ns()
    ref = published(tmp_path, cli, registry.host, namespace=src_ns)
    code, out, _ = cli("oci", "sign", ref, "--key", str(keys["alice"].key), "--output", "json")
    digest = json.loads(out)["digest"]
    manifest = json.loads(run(crane, "manifest", ref).stdout)
    assert manifest["artifactType"] == "application/vnd.provisioning.extension.v1"
    tags = run(crane, "ls", ref.rsplit(":", 1)[0]).stdout.split()
    assert attached_tag(digest) in tags
    run(crane, "copy", "--all-tags", ref.rsplit(":", 1)[0], f"{registry.host}/{dst_ns}/redis")
    dst = f"{registry.host}/{dst_ns}/redis:1.0.0"
    assert cli("oci", "verify", dst, "--key", str(keys["alice"].pub))[0] == 0
    assert cosign_verify(dst, keys["alice"].pub, tmp_path).returncode == 0


def test_oras_reads_and_copies_artifacts_with_their_signatures(cli, tmp_path: Path, registry, keys) -> None:  # noqa: F811
    oras = require("oras")
    ref = published(tmp_path, cli, registry.host, namespace=_ns())
    code, out, _ = cli("oci", "sign", ref, "--key", str(keys["alice"].key), "--output", "json")
    sig_tag = json.loads(out)["signature_tag"]
    fetched = json.loads(run(oras, "manifest", "fetch", "--plain-http", ref).stdout)
    assert fetched["layers"][0]["mediaType"] == "application/vnd.provisioning.extension.content.v1.tar+gzip"
    run(oras, "pull", "--plain-http", "-o", str(tmp_path / "pulled"), ref)
    assert list((tmp_path / "pulled").glob("*.tar.gz"))
    dst_repo = f"{registry.host}/{_ns()}/redis"
    for tag in ("1.0.0", sig_tag):
        run(oras, "cp", "--from-plain-http", "--to-plain-http", f"{ref.rsplit(':', 1)[0]}:{tag}", f"{dst_repo}:{tag}")
    assert cli("oci", "verify", f"{dst_repo}:1.0.0", "--key", str(keys["alice"].pub))[0] == 0
    assert cosign_verify(f"{dst_repo}:1.0.0", keys["alice"].pub, tmp_path).returncode == 0


@pytest.mark.parametrize("via", ["registry", "layout"])
def test_our_copy_carries_cosign_signatures(cli, tmp_path: Path, registry, keys, via: str) -> None:  # noqa: F811
    cosign = require("cosign")
    ref = published(tmp_path, cli, registry.host, namespace=_ns())
    run(cosign, "sign", "--key", str(keys["alice"].key), "--tlog-upload=false", ref, cwd=tmp_path)
    dst = f"{registry.host}/{_ns()}/redis:1.0.0"
    if via == "layout":  # registry -> embedded store -> another repository: signatures survive both hops
        mid = tmp_path / "mirror"
        assert cli("oci", "copy", ref, str(mid))[0] == 0
        assert cli("oci", "verify", f"oci-layout:{mid}/{ref.split('/', 1)[1]}", "--key", str(keys["alice"].pub))[0] == 0
        ref = f"oci-layout:{mid}/{ref.split('/', 1)[1]}"
    code, out, err = cli("oci", "copy", ref, dst)
    assert code == 0 and "attached (sig)" in out, err
    assert cosign_verify(dst, keys["alice"].pub, tmp_path).returncode == 0
    assert cli("oci", "verify", dst, "--key", str(keys["alice"].pub))[0] == 0


def test_we_verify_cosign_3_bundles_and_copies_carry_them(cli, tmp_path: Path, registry, keys) -> None:  # noqa: F811
    """cosign 3 signs with a Sigstore bundle attached as a referrer (the registry has no referrers API, so the
    sha256-<hex> index names it); we verify it with the key, refuse it with another, and carry it through copies."""
    cosign3 = require("cosign3")
    ref = published(tmp_path, cli, registry.host, namespace=_ns())
    run(
        cosign3,
        "sign",
        "--key",
        str(keys["alice"].key),
        "--use-signing-config=false",
        "--tlog-upload=false",
        ref,
        cwd=tmp_path,
    )
    code, out, err = cli("oci", "verify", ref, "--key", str(keys["alice"].pub), "--output", "json")
    assert code == 0, err
    assert [c["kind"] for c in json.loads(out)["signatures"] if c["verified"]] == ["sigstore-bundle"]
    code, _, err = cli("oci", "verify", ref, "--key", str(keys["mallory"].pub))
    assert code == 1 and "does not verify with" in err

    mirror = tmp_path / "mirror"
    code, out, err = cli("oci", "copy", ref, str(mirror), "--output", "json")
    assert code == 0 and [a["kind"] for a in json.loads(out)["attached"]] == ["referrer"], err
    layout_ref = f"oci-layout:{mirror}/{ref.split('/', 1)[1]}"
    assert cli("oci", "verify", layout_ref, "--key", str(keys["alice"].pub))[0] == 0
    dst = f"{registry.host}/{_ns()}/redis:1.0.0"
    assert cli("oci", "copy", layout_ref, dst)[0] == 0
    assert cli("oci", "verify", dst, "--key", str(keys["alice"].pub))[0] == 0
    proc = run(
        cosign3, "verify", "--key", str(keys["alice"].pub), "--insecure-ignore-tlog=true", dst, cwd=tmp_path, ok=False
    )
    assert proc.returncode == 0, proc.stderr


def test_copy_onto_a_destination_with_its_own_signatures_keeps_both(cli, tmp_path: Path, registry, keys) -> None:  # noqa: F811
    store = tmp_path / "store"
    ref = published(tmp_path, cli, str(store))
    assert cli("oci", "sign", ref, "--key", str(keys["alice"].key))[0] == 0
    dst = f"{registry.host}/{_ns()}/redis:1.0.0"
    src = f"oci-layout:{store}/provisioning-extensions/redis:1.0.0"
    cosign = require("cosign")
    code, _, err = cli("oci", "copy", src, dst)
    assert code == 0, err
    # the destination gets a signature of its own (cosign's), then the source is copied again
    run(cosign, "sign", "--key", str(keys["mallory"].key), "--tlog-upload=false", dst, cwd=tmp_path)
    assert cli("oci", "sign", ref, "--key", str(keys["mallory"].key))[0] == 0  # the source's .sig changes too
    code, _, err = cli("oci", "copy", src, dst)
    assert code == 0, err
    code, out, _ = cli(
        "oci", "verify", dst, "--key", str(keys["alice"].pub), "--key", str(keys["mallory"].pub), "--output", "json"
    )
    verified = [c["key"] for c in json.loads(out)["signatures"] if c["verified"]]
    assert code == 0 and sorted(set(verified)) == sorted({str(keys["alice"].pub), str(keys["mallory"].pub)})
    assert len(verified) == 3  # alice's, cosign's mallory signature, and ours by mallory: none lost, none twice
    for pub in (keys["alice"].pub, keys["mallory"].pub):
        assert cosign_verify(dst, pub, tmp_path).returncode == 0
