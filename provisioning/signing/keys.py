"""cosign's key files: an encrypted PKCS#8 ECDSA private key (scrypt + nacl/secretbox) and a PEM public key.

The private key file is a PEM block ``ENCRYPTED SIGSTORE PRIVATE KEY`` (cosign before 2.x wrote
``ENCRYPTED COSIGN PRIVATE KEY``; both are read) whose bytes are go-securesystemslib's JSON envelope:
``{"kdf": {"name": "scrypt", "params": {"N", "r", "p"}, "salt"}, "cipher": {"name": "nacl/secretbox", "nonce"},
"ciphertext"}`` (byte fields base64). Only the scrypt parameters cosign itself writes are accepted, so a
tampered file cannot make us spend minutes or gigabytes deriving a key. Passwords come from the environment or a
terminal prompt, never from an argument.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import SigningError

PRIVATE_PEM = "ENCRYPTED SIGSTORE PRIVATE KEY"
LEGACY_PRIVATE_PEM = "ENCRYPTED COSIGN PRIVATE KEY"
PASSWORD_VARIABLES = ("PROVISIONING_KEY_PASSWORD", "COSIGN_PASSWORD")

# go-securesystemslib's legacy, standard and OWASP strengths; keys are written with the standard one, as cosign
_SCRYPT_PARAMS = ({"N": 32768, "r": 8, "p": 1}, {"N": 65536, "r": 8, "p": 1}, {"N": 131072, "r": 8, "p": 1})
_WRITE_PARAMS = _SCRYPT_PARAMS[1]
_MAX_KEY_FILE = 64 << 10
# the digest cosign pairs with each curve
_CURVE_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


@dataclass(frozen=True)
class PublicKey:
    """A verification key and where it came from (messages name the file and its short fingerprint)."""

    key: ec.EllipticCurvePublicKey
    source: str

    @property
    def fingerprint(self) -> str:
        """sha256 of the DER public key, as ``sha256:<hex>`` (stable across PEM formatting)."""
        der = self.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return "sha256:" + hashlib.sha256(der).hexdigest()

    @property
    def hash(self) -> hashes.HashAlgorithm:
        return _CURVE_HASH[self.key.curve.name]()

    def pem(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class PrivateKey:
    """A signing key (decrypted in memory only) with its public half."""

    key: ec.EllipticCurvePrivateKey
    source: str

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key.public_key(), self.source)

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA over the curve's hash of ``data`` (SHA-256 for P-256), as cosign signs payloads."""
        return self.key.sign(data, ec.ECDSA(self.public.hash))


# -- passwords -------------------------------------------------------------------------------------------------


def key_password(*, confirm: bool = False, environ: Mapping[str, str] | None = None, purpose: str = "") -> bytes:
    """The key password: ``PROVISIONING_KEY_PASSWORD`` or ``COSIGN_PASSWORD`` (empty is allowed, as cosign), else a
    prompt on a terminal (twice with ``confirm``). No terminal and no variable is an error, not a hang."""
    env = os.environ if environ is None else environ
    for name in PASSWORD_VARIABLES:
        if name in env:
            return env[name].encode()
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise SigningError(
            f"no key password{purpose}: set COSIGN_PASSWORD (or PROVISIONING_KEY_PASSWORD) in the environment, "
            "or run on a terminal to be asked; passwords are never taken as arguments"
        )
    try:
        first = getpass.getpass("Enter password for private key: ")
        if confirm and getpass.getpass("Enter password for private key again: ") != first:
            raise SigningError("the two passwords differ; nothing was written")
    except (EOFError, KeyboardInterrupt):
        raise SigningError("no password given; nothing was done") from None
    return first.encode()


# -- the encrypted envelope ------------------------------------------------------------------------------------


def _derive(password: bytes, salt: bytes, params: Mapping[str, int]) -> bytes:
    n, r, p = params["N"], params["r"], params["p"]
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=32)


def encrypt(plaintext: bytes, password: bytes) -> bytes:
    """go-securesystemslib's ``encrypted.Encrypt``: scrypt-derived key, nacl secretbox, JSON envelope."""
    from nacl.secret import SecretBox

    salt, nonce = secrets.token_bytes(32), secrets.token_bytes(SecretBox.NONCE_SIZE)
    box = SecretBox(_derive(password, salt, _WRITE_PARAMS))
    ciphertext = box.encrypt(plaintext, nonce).ciphertext

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    envelope = {
        "kdf": {"name": "scrypt", "params": dict(_WRITE_PARAMS), "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(ciphertext),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def decrypt(envelope: bytes, password: bytes, source: str) -> bytes:
    """Open the envelope; a wrong password, unknown parameters or a damaged file each say so."""
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    try:
        doc = json.loads(envelope)
        kdf, cipher = doc["kdf"], doc["cipher"]
        params = {k: kdf["params"][k] for k in ("N", "r", "p")}
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        ciphertext = base64.b64decode(doc["ciphertext"], validate=True)
        names = (kdf["name"], cipher["name"])
    except (ValueError, KeyError, TypeError) as e:
        raise SigningError(f"{source}: the encrypted key is damaged ({type(e).__name__}: {e})") from None
    if names != ("scrypt", "nacl/secretbox"):
        raise SigningError(f"{source}: unsupported key encryption {names[0]}/{names[1]} (cosign uses scrypt/secretbox)")
    if params not in _SCRYPT_PARAMS:
        raise SigningError(f"{source}: unsupported scrypt parameters {params} (not one cosign writes); refused")
    if len(nonce) != SecretBox.NONCE_SIZE:
        raise SigningError(f"{source}: the encrypted key is damaged (nonce of {len(nonce)} bytes)")
    try:
        return SecretBox(_derive(password, salt, params)).decrypt(ciphertext, nonce)
    except CryptoError:
        raise SigningError(
            f"{source}: wrong password for this key (or the key file was altered); set COSIGN_PASSWORD to the "
            "password it was created with"
        ) from None


# -- key files -------------------------------------------------------------------------------------------------


def _pem_block(text: bytes, source: str) -> tuple[str, bytes]:
    """The first PEM block's label and bytes."""
    try:
        lines = text.decode("ascii").strip().splitlines()
    except UnicodeDecodeError:
        raise SigningError(f"{source}: not a PEM key file (binary content)") from None
    if not lines or not lines[0].startswith("-----BEGIN ") or not lines[0].endswith("-----"):
        raise SigningError(f"{source}: not a PEM key file (no -----BEGIN line)")
    label = lines[0][len("-----BEGIN ") : -5]
    end = f"-----END {label}-----"
    if end not in lines:
        raise SigningError(f"{source}: the PEM block {label!r} has no {end} line")
    body = "".join(line.strip() for line in lines[1 : lines.index(end)] if ":" not in line)
    try:
        return label, base64.b64decode(body, validate=True)
    except ValueError:
        raise SigningError(f"{source}: the PEM block {label!r} is not valid base64") from None


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > _MAX_KEY_FILE:
            raise SigningError(f"{path}: {path.stat().st_size} bytes is far too large for a key file")
        return path.read_bytes()
    except FileNotFoundError:
        raise SigningError(f"{path}: no such key file") from None
    except IsADirectoryError:
        raise SigningError(f"{path}: is a folder, not a key file") from None
    except PermissionError:
        raise SigningError(f"{path}: cannot read the key file (permission denied)") from None


def _check_ec(key: object, source: str, what: str) -> None:
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        raise SigningError(
            f"{source}: a {type(key).__name__.lstrip('_')} {what}; only ECDSA keys (cosign's default, "
            "`cosign generate-key-pair` or `provisioning oci keygen`) are supported"
        )
    if key.curve.name not in _CURVE_HASH:
        raise SigningError(f"{source}: ECDSA curve {key.curve.name} is not supported (use P-256)")


def load_private_key(path: str | os.PathLike[str], password: bytes | None = None) -> PrivateKey:
    """A cosign private key file, decrypted with ``password`` (default: from the environment or a prompt)."""
    path = Path(path)
    source = str(path)
    label, envelope = _pem_block(_read(path), source)
    if label not in (PRIVATE_PEM, LEGACY_PRIVATE_PEM):
        hint = " (that is the public key; sign with the .key file)" if label == "PUBLIC KEY" else ""
        raise SigningError(
            f"{source}: a {label!r} PEM block{hint}; expected a cosign private key ({PRIVATE_PEM}), as written by "
            "`provisioning oci keygen` or `cosign generate-key-pair`"
        )
    if password is None:
        password = key_password(purpose=f" for {source}")
    der = decrypt(envelope, password, source)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise SigningError(f"{source}: the decrypted key is not PKCS#8 ({e})") from None
    _check_ec(key, source, "private key")
    return PrivateKey(key, source)  # type: ignore[arg-type]


def parse_public_key(data: bytes, source: str) -> PublicKey:
    label, der = _pem_block(data, source)
    if label != "PUBLIC KEY":
        raise SigningError(f"{source}: a {label!r} PEM block; expected a PUBLIC KEY (the .pub file of the key pair)")
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise SigningError(f"{source}: not a usable public key ({e})") from None
    _check_ec(key, source, "public key")
    return PublicKey(key, source)  # type: ignore[arg-type]


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """A PEM public key file (cosign's ``cosign.pub``)."""
    return parse_public_key(_read(Path(path)), str(path))


def generate_key_pair(password: bytes) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key pair as cosign writes it: (encrypted private PEM, public PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    body = base64.encodebytes(encrypt(der, password)).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    begin, end = f"-----BEGIN {PRIVATE_PEM}-----".encode(), f"-----END {PRIVATE_PEM}-----".encode()
    return b"\n".join([begin, *lines, end]) + b"\n", PrivateKey(key, "").public.pem()


def write_key_pair(prefix: str | os.PathLike[str], password: bytes, *, force: bool = False) -> tuple[Path, Path]:
    """Write ``PREFIX.key`` (0600) and ``PREFIX.pub`` (0644); refuse to overwrite either unless ``force``."""
    key_path, pub_path = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    for p in (key_path, pub_path):
        if p.exists() and not force:
            raise SigningError(f"{p} exists; refusing to overwrite a key (remove it, or pick another prefix)")
    if not key_path.parent.is_dir():
        raise SigningError(f"{key_path.parent}: no such folder for the key pair")
    private_pem, public_pem = generate_key_pair(password)
    _write(key_path, private_pem, 0o600)
    try:
        _write(pub_path, public_pem, 0o644)
    except BaseException:
        key_path.unlink(missing_ok=True)
        raise
    return key_path, pub_path


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file created with ``mode`` (never readable by others, even briefly)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
