"""``provisioning oci keygen | sign | verify``: cosign-compatible keys and signatures, for registries and the
embedded store alike. Passwords come from COSIGN_PASSWORD / PROVISIONING_KEY_PASSWORD or a terminal prompt."""

from __future__ import annotations

import argparse
from typing import Any

from .oci import Context, _common, _with_output, resolve_manifest
from .output import print_json


def cmd_keygen(args: argparse.Namespace) -> int:
    from ..signing.keys import key_password, load_public_key, write_key_pair

    prefix = args.output_key_prefix
    password = key_password(confirm=True, purpose=" for the new key")
    key_path, pub_path = write_key_pair(prefix, password, force=args.force)
    fingerprint = load_public_key(pub_path).fingerprint
    if args.output == "json":
        print_json({"private_key": str(key_path), "public_key": str(pub_path), "fingerprint": fingerprint})
    else:
        print(f"Private key written to {key_path} (mode 0600)\nPublic key written to {pub_path} ({fingerprint})")
    return 0


def target_and_identity(ctx: Context, text: str) -> tuple[Any, Any, Any, str]:
    """(reference, target, manifest descriptor, payload identity) of an artifact to sign or verify."""
    from ..signing.sign import identity_in

    ref = ctx.ref(text)
    target, desc, _ = resolve_manifest(ctx, ref)
    identity = identity_in(ref.registry, ref.repository)
    return ref, target, desc, identity


def cmd_sign(args: argparse.Namespace) -> int:
    from ..signing.keys import load_private_key
    from ..signing.sign import sign_artifact

    key = load_private_key(args.key)  # before touching the registry: a bad key or password costs nothing
    ctx = Context.from_args(args)
    ref, target, desc, identity = target_and_identity(ctx, args.ref)
    signed = sign_artifact(target, desc, key, identity)
    if args.output == "json":
        print_json(
            {
                "reference": str(ref),
                "digest": desc.digest,
                "status": signed.status,
                "signature_tag": signed.tag,
                "signature_manifest": signed.signature.digest,
                "signature_layer": signed.layer,
                "key": args.key,
                "fingerprint": key.public.fingerprint,
            }
        )
    elif signed.status == "signed":
        print(f"signed {ref} ({desc.digest}) with {args.key}: {signed.tag} ({signed.signature.digest})")
    else:
        print(f"already signed: {ref} ({desc.digest}) carries a signature by {args.key}; nothing written")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..signing.keys import load_public_key
    from ..signing.verify import verify_artifact

    keys = [load_public_key(k) for k in args.key]
    ctx = Context.from_args(args)
    ref, target, desc, _ = target_and_identity(ctx, args.ref)
    result = verify_artifact(target, desc, keys, reference=str(ref))
    if args.output == "json":
        print_json(result.to_dict())
    elif result.ok:
        for c in result.verified:
            print(f"verified: {ref} ({desc.digest}) signature {c.layer} by {c.key} ({c.fingerprint}, {c.kind})")
    if not result.ok:
        from ..signing import SigningError

        raise SigningError(result.reason())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add keygen, sign and verify to ``provisioning oci`` (registered after it)."""
    oci = subparsers.choices["oci"]
    sub = next(a for a in oci._actions if isinstance(a, argparse._SubParsersAction))
    common = [_common()]
    p = sub.add_parser(
        "keygen",
        help="write a cosign-compatible key pair (PREFIX.key 0600, PREFIX.pub)",
        description="Write an ECDSA P-256 key pair in cosign's format (the same files `cosign generate-key-pair` "
        "writes). The password comes from COSIGN_PASSWORD or PROVISIONING_KEY_PASSWORD, or a terminal prompt.",
    )
    p.add_argument("--output-key-prefix", metavar="PREFIX", default="cosign", help="file name prefix (cosign)")
    p.add_argument("--force", action="store_true", help="overwrite existing PREFIX.key / PREFIX.pub")
    _with_output(p)
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("sign", parents=common, help="sign an artifact with a cosign key (the sha256-<hex>.sig tag)")
    p.add_argument("ref", metavar="REF", help="NAME:VERSION, HOST/NAMESPACE/NAME:VERSION or @sha256:…")
    p.add_argument("--key", required=True, metavar="KEY", help="the private key file (PREFIX.key)")
    _with_output(p)
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("verify", parents=common, help="check an artifact's signatures against public keys")
    p.add_argument("ref", metavar="REF")
    p.add_argument(
        "--key", required=True, action="append", metavar="PUB", help="a trusted public key (repeat for several)"
    )
    _with_output(p)
    p.set_defaults(func=cmd_verify)
