"""One base exception; subclasses are named for the condition.

The CLI and doit tasks print what ``provisioning.advice.explain`` makes of a ``ProvisioningError``
(its message, plus how to fix it where the error carries the data for that) and exit with its
code; anything else is a bug and shows a traceback. Messages say what went wrong, where,
and how to fix it, in one short paragraph.
"""

from __future__ import annotations

import errno

# What the machine, not the program, got wrong: a full disk, a read-only or unwritable folder, a quota.
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EMFILE}
)


class ProvisioningError(Exception):
    """An expected failure the user must act on (exit code 1)."""

    exit_code = 1


class UsageError(ProvisioningError):
    """The command line itself is wrong (exit code 2)."""

    exit_code = 2


class ValidationError(ProvisioningError):
    """An extension, config or lock file breaks a rule."""


class VersionError(ProvisioningError, ValueError):
    """A version or constraint string cannot be parsed."""


class NotFound(ProvisioningError):
    """A repository, tag, manifest or blob does not exist in a store.

    A registry's answer names its ``host``, the ``repository`` and the ``kind`` (``manifest_not_found``)
    so the boundary can say where to look (``advice.explain``).
    """

    def __init__(self, message: str, *, host: str = "", repository: str = "", kind: str = "") -> None:
        super().__init__(message)
        self.host = host
        self.repository = repository
        self.kind = kind


class DigestMismatch(ProvisioningError):
    """Content read does not match the digest (or size) it was addressed by."""


class RefusedOverwrite(ProvisioningError):
    """A published version already exists with different content."""


class TagConflict(RefusedOverwrite):
    """Two pushes of one version with different content met: ``winner`` is the digest the tag holds now."""

    def __init__(self, message: str, *, reference: str, ours: str, winner: str) -> None:
        super().__init__(message)
        self.reference = reference
        self.ours = ours
        self.winner = winner


class RegistryError(ProvisioningError):
    """A registry answered with an error, or could not be reached: the data to act on.

    ``method``, ``url``, ``status`` and the registry's error ``codes`` say what was asked and
    answered; ``host`` is the registry and ``kind`` names the condition (``login_required``,
    ``tls_untrusted``, ``connection_refused``, ``no_catalog``, …) so the boundary
    (``provisioning.advice.explain``) can say how to fix it; ``anonymous`` is True when no
    credentials were used. The message itself says what happened and where, not which flag to pass.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        status: int = 0,
        codes: tuple[str, ...] = (),
        host: str = "",
        kind: str = "",
        anonymous: bool = False,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status
        self.codes = codes
        self.host = host
        self.kind = kind
        self.anonymous = anonymous


class AuthError(RegistryError):
    """Credentials are missing, wrong or not allowed to do this (401/403)."""


class ResolutionError(ProvisioningError):
    """Dependencies cannot be satisfied (conflict, cycle, unknown name)."""


class UnsafeArchive(ProvisioningError):
    """An archive member would escape the target folder or is not a plain file/dir."""


def environment_failure(exc: OSError) -> ProvisioningError | None:
    """A full disk or an unwritable folder as an expected failure (exit 1); None for anything else (a bug)."""
    if exc.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    return ProvisioningError(
        f"{exc.strerror or exc}{where}: nothing was left half-written; free space or fix the permissions and run "
        "the command again"
    )
