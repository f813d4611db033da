"""Signing and verifying artifacts the way cosign does, with keys on disk and no network.

``keys`` reads and writes cosign's key files, ``payload`` is the simple-signing payload, ``sign`` attaches a
signature (the ``sha256-<hex>.sig`` tag), ``verify`` checks them (and cosign 3's Sigstore bundles, ``bundle``).
Keyless signing (Fulcio certificates, Rekor transparency log) is deliberately not here: it needs the internet.
"""

from __future__ import annotations

from ..errors import ProvisioningError


class SigningError(ProvisioningError):
    """A key, password or signature is unusable; the message says which and how to fix it."""
