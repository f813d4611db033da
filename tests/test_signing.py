"""Keys, signatures and verification (cosign's formats) through the command line, on the embedded store and a
real registry; every bad input an exit 1 with a reason and nothing half-written."""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from registry_server import fake_response, fault_session
from test_cli_oci import make_extension

from provisioning.cli import main
from provisioning.oci.attached import attached_tag
from provisioning.oci.descriptor import Descriptor
from provisioning.oci.layout import LayoutStorage
from provisioning.oci.open import open_storage
from provisioning.oci.remote import RemoteStorage
from provisioning.signing import SigningError
from provisioning.signing.keys import load_private_key, load_public_key, write_key_pair
from provisioning.signing.manifest import (
    MAX_SIGNATURES,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_TYPE,
    read_signature_manifest,
)
from provisioning.signing.payload import simple_signing_payload
from provisioning.signing.sign import sign_artifact
from provisioning.signing.verify import verify_artifact

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class KeyPair:
    key: Path
    pub: Path


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    """Two key pairs (``alice`` and ``mallory``) made once: scrypt makes key derivation deliberately slow."""
    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("alice", "mallory"):
        k, p = write_key_pair(folder / name, PASSWORD.encode())
        out[name] = KeyPair(k, p)
    return out


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``provisioning`` in an isolated home; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("PROVISIONING_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("PROVISIONING_REGISTRY", raising=False)
    monkeypatch.delenv("PROVISIONING_KEY_PASSWORD", raising=False)
    monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD)
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def published(
    tmp_path: Path, cli, registry: str, name: str = "redis", version: str = "1.0.0", namespace: str | None = None
) -> str:
    """Push an extension (into ``namespace`` when given); returns its full reference."""
    ext = make_extension(tmp_path / f"src-{namespace}-{name}-{version}", name, version)
    extra = ["--namespace", namespace] if namespace else []
    code, out, err = cli("oci", "push", str(ext), "--registry", registry, *extra, "--output", "json")
    assert code == 0, err
    return json.loads(out)["reference"]


@pytest.fixture(params=["layout", "registry"])
def store(request, tmp_path: Path) -> str:
    """Where artifacts live: the embedded store, or a namespace of its own in the real registry."""
    if request.param == "layout":
        return str(tmp_path / "store")
    return request.getfixturevalue("registry").host


def _target(registry: str, ref: str):
    repo = ref.split("/", 1)[1].rsplit(":", 1)[0] if not os.path.isabs(registry) else ref[len(registry) + 1 :]
    repo = repo.rsplit(":", 1)[0]
    storage = LayoutStorage(registry) if os.path.isabs(registry) else open_storage(registry, plain_http=True)
    return storage.repository(repo)


def test_keygen_writes_cosign_files_with_modes_and_never_overwrites(cli, tmp_path: Path) -> None:
    code, out, err = cli("oci", "keygen", "--output-key-prefix", str(tmp_path / "release"), "--output", "json")
    assert code == 0, err
    info = json.loads(out)
    key, pub = Path(info["private_key"]), Path(info["public_key"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(pub.stat().st_mode) == 0o644
    assert key.read_text().startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----\n")
    assert PASSWORD not in out + err and PASSWORD not in key.read_text()
    assert load_private_key(key, PASSWORD.encode()).public.fingerprint == info["fingerprint"]
    before = key.read_bytes()
    code, _, err = cli("oci", "keygen", "--output-key-prefix", str(tmp_path / "release"))
    assert code == 1 and "refusing to overwrite" in err and key.read_bytes() == before


def test_no_password_and_no_terminal_is_a_clear_error(cli, tmp_path: Path, monkeypatch, keys) -> None:
    monkeypatch.delenv("COSIGN_PASSWORD")
    code, _, err = cli("oci", "keygen", "--output-key-prefix", str(tmp_path / "k"))
    assert code == 1 and "COSIGN_PASSWORD" in err and "Traceback" not in err
    assert not list(tmp_path.glob("k.*"))
    code, _, err = cli("oci", "sign", "x:1.0.0", "--registry", str(tmp_path / "s"), "--key", str(keys["alice"].key))
    assert code == 1 and "no key password" in err


def test_sign_and_verify_round_trip(cli, tmp_path: Path, store: str, keys) -> None:
    name = f"redis-{uuid.uuid4().hex[:8]}"
    ref = published(tmp_path, cli, store, name)
    code, out, err = cli("oci", "verify", ref, "--key", str(keys["alice"].pub))
    assert code == 1 and "not signed" in err

    code, out, err = cli("oci", "sign", ref, "--key", str(keys["alice"].key), "--output", "json")
    assert code == 0, err
    first = json.loads(out)
    assert first["status"] == "signed" and first["signature_tag"] == attached_tag(first["digest"])

    code, out, err = cli("oci", "verify", ref, "--key", str(keys["alice"].pub), "--output", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["verified"] and result["signatures"][0]["key"] == str(keys["alice"].pub)
    assert result["signatures"][0]["fingerprint"] == load_public_key(keys["alice"].pub).fingerprint

    # the same key again: nothing written; a second key adds a layer; each key verifies its own
    code, out, _ = cli("oci", "sign", ref, "--key", str(keys["alice"].key), "--output", "json")
    assert json.loads(out)["status"] == "already-signed"
    assert json.loads(out)["signature_manifest"] == first["signature_manifest"]
    code, out, _ = cli("oci", "sign", ref, "--key", str(keys["mallory"].key), "--output", "json")
    assert code == 0 and json.loads(out)["status"] == "signed"
    target = _target(store, ref)
    sig = read_signature_manifest(target, first["digest"])
    assert [layer.media_type for layer in sig.layers] == [SIMPLESIGNING_TYPE] * 2
    code, out, _ = cli("oci", "verify", ref, "--key", str(keys["mallory"].pub), "--output", "json")
    checks = json.loads(out)["signatures"]
    assert code == 0 and [c["verified"] for c in checks] == [False, True]
    assert "does not verify with" in checks[0]["reason"]


def test_verify_with_another_key_names_why(cli, tmp_path: Path, keys) -> None:
    store = str(tmp_path / "store")
    ref = published(tmp_path, cli, store)
    assert cli("oci", "sign", ref, "--key", str(keys["alice"].key))[0] == 0
    code, out, err = cli("oci", "verify", ref, "--key", str(keys["mallory"].pub))
    assert code == 1 and "no signature by a trusted key" in err and str(keys["mallory"].pub) in err
    assert "Traceback" not in err


def test_wrong_password_writes_nothing(cli, tmp_path: Path, monkeypatch, keys) -> None:
    store = str(tmp_path / "store")
    ref = published(tmp_path, cli, store)
    monkeypatch.setenv("COSIGN_PASSWORD", "not the password")
    code, _, err = cli("oci", "sign", ref, "--key", str(keys["alice"].key))
    assert code == 1 and "wrong password" in err
    assert not [t for t in _target(store, ref).tags() if t.endswith(".sig")]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n", "expected a cosign private key"),
        (b"\x00\x01binary", "not a PEM key file"),
        (
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n!!!\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            "not valid base64",
        ),
        (
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\ne30=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            "damaged",
        ),
    ],
)
def test_key_files_in_other_formats_are_refused(cli, tmp_path: Path, content: bytes, message: str) -> None:
    key = tmp_path / "bad.key"
    key.write_bytes(content)
    code, _, err = cli("oci", "sign", "x:1.0.0", "--registry", str(tmp_path / "s"), "--key", str(key))
    assert code == 1 and message in err and "Traceback" not in err


def test_public_key_given_to_sign_and_private_to_verify(cli, tmp_path: Path, keys) -> None:
    store = str(tmp_path / "store")
    ref = published(tmp_path, cli, store)
    code, _, err = cli("oci", "sign", ref, "--key", str(keys["alice"].pub))
    assert code == 1 and "that is the public key" in err
    code, _, err = cli("oci", "verify", ref, "--key", str(keys["alice"].key))
    assert code == 1 and "expected a PUBLIC KEY" in err


def test_unsupported_scrypt_parameters_are_refused_before_deriving(tmp_path: Path, keys) -> None:
    text = keys["alice"].key.read_text().splitlines()
    envelope = json.loads(base64.b64decode("".join(text[1:-1])))
    envelope["kdf"]["params"]["N"] = 1 << 30
    body = base64.b64encode(json.dumps(envelope).encode()).decode()
    bad = tmp_path / "huge.key"
    bad.write_text(f"{text[0]}\n{body}\n{text[-1]}\n")
    with pytest.raises(SigningError, match="unsupported scrypt parameters"):
        load_private_key(bad, PASSWORD.encode())


# -- hostile signatures ---------------------------------------------------------------------------------------


@pytest.fixture
def signed(cli, tmp_path: Path, keys):
    """An artifact in the embedded store signed by alice: (target, subject descriptor, reference)."""
    store = str(tmp_path / "store")
    ref = published(tmp_path, cli, store)
    assert cli("oci", "sign", ref, "--key", str(keys["alice"].key))[0] == 0
    target = _target(store, ref)
    return target, target.resolve("1.0.0"), ref


def _rewrite_layers(target, subject: Descriptor, change) -> None:
    """Replace the .sig manifest with one whose layers went through ``change`` (as an attacker with push rights)."""
    sig = read_signature_manifest(target, subject.digest)
    sig.layers = change(sig.layers)
    manifest, data, config, config_bytes = sig.build()
    target.push(config, [config_bytes])
    target.push(manifest, [data])
    target.tag(manifest, sig.tag)


def _verify(target, subject, keys) -> str:
    result = verify_artifact(target, subject, [load_public_key(keys["alice"].pub)])
    assert not result.ok
    return result.reason()


def test_tampered_payload_is_refused(signed, keys) -> None:
    target, subject, _ = signed
    layer = read_signature_manifest(target, subject.digest).layers[0]
    path = target.blob_path(layer.digest)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b'"optional":null', b'"optional":{"x":1}')[: layer.size])
    assert "tampered" in _verify(target, subject, keys)


def test_altered_payload_with_matching_digest_does_not_verify(signed, keys) -> None:
    target, subject, _ = signed

    def swap(layers):
        forged = simple_signing_payload("evil.example/x", subject.digest)
        target.push(Descriptor.of(SIMPLESIGNING_TYPE, forged), [forged])
        return [Descriptor.of(SIMPLESIGNING_TYPE, forged, annotations=layers[0].annotations)]

    _rewrite_layers(target, subject, swap)
    assert "does not verify with" in _verify(target, subject, keys)


@pytest.mark.parametrize(
    "annotations, message",
    [({}, "no dev.cosignproject.cosign/signature annotation"), ({SIGNATURE_ANNOTATION: "%%%"}, "is not base64")],
)
def test_signature_annotation_missing_or_not_base64(signed, keys, annotations, message) -> None:
    target, subject, _ = signed
    _rewrite_layers(
        target,
        subject,
        lambda layers: [Descriptor(layers[0].media_type, layers[0].digest, layers[0].size, annotations)],
    )
    assert message in _verify(target, subject, keys)


def test_signature_over_other_content_is_refused(cli, tmp_path: Path, signed, keys) -> None:
    target, subject, ref = signed
    other = published(tmp_path, cli, str(tmp_path / "store"), "redis", "1.0.1")
    other_desc = target.resolve("1.0.1")
    # alice's valid signature of 1.0.0 copied onto 1.0.1's .sig tag
    sig = read_signature_manifest(target, subject.digest)
    forged = read_signature_manifest(target, other_desc.digest)
    forged.layers = sig.layers
    manifest, data, config, config_bytes = forged.build()
    target.push(config, [config_bytes])
    target.push(manifest, [data])
    target.tag(manifest, forged.tag)
    code, _, err = cli("oci", "verify", other, "--key", str(keys["alice"].pub))
    assert code == 1 and f"covers {subject.digest}, not this artifact ({other_desc.digest})" in err


def test_signature_manifest_with_a_thousand_layers_is_refused(cli, signed, keys) -> None:
    target, subject, ref = signed
    _rewrite_layers(target, subject, lambda layers: layers * 1000)
    code, _, err = cli("oci", "verify", ref, "--key", str(keys["alice"].pub))
    assert code == 1 and f"more than the {MAX_SIGNATURES} signatures" in err and "Traceback" not in err
    code, _, err = cli("oci", "sign", ref, "--key", str(keys["alice"].key))
    assert code == 1 and "refused as hostile" in err


def test_registry_refusing_the_sig_tag_leaves_nothing_half_tagged(registry, keys) -> None:
    def refuse(request):
        if request.method == "PUT" and "/manifests/sha256-" in request.url:
            body = b'{"errors":[{"code":"TAG_INVALID","message":"tag refused by policy"}]}'
            return fake_response(request, 400, {"Content-Type": "application/json"}, body)
        return None

    from test_layout import make_artifact

    repo = f"sig-refused/{uuid.uuid4().hex[:8]}"
    plain = open_storage(registry.host, plain_http=True).repository(repo)
    art = make_artifact()
    art.push(plain, "1.0.0")
    session, _ = fault_session(refuse)
    target = RemoteStorage(registry.host, plain_http=True, session=session).repository(repo)
    key = load_private_key(keys["alice"].key, PASSWORD.encode())
    with pytest.raises(SigningError, match="refused the signature.*not signed"):
        sign_artifact(target, art.manifest, key, f"{registry.host}/{repo}")
    assert plain.tags() == ["1.0.0"]


def test_the_older_cosign_label_is_read(tmp_path: Path, keys) -> None:
    legacy = tmp_path / "legacy.key"
    legacy.write_text(keys["alice"].key.read_text().replace("SIGSTORE PRIVATE KEY", "COSIGN PRIVATE KEY"))
    assert legacy.read_text().startswith("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----")
    key = load_private_key(legacy, PASSWORD.encode())
    assert key.public.fingerprint == load_public_key(keys["alice"].pub).fingerprint


def test_an_empty_password_is_a_password(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "")
    assert main(["oci", "keygen", "--output-key-prefix", str(tmp_path / "empty")]) == 0
    load_private_key(tmp_path / "empty.key", b"")
    with pytest.raises(SigningError, match="wrong password"):
        load_private_key(tmp_path / "empty.key", b"x")
