"""One base exception; subclasses are named for the condition.

The CLI and doit tasks print ``str(error)`` and exit 1 for any ``ProvisioningError``;
anything else is a bug and shows a traceback. Messages say what went wrong, where,
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
    """A repository, tag, manifest or blob does not exist in a store."""


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
    """A registry answered with an error; carries method, URL, status and codes."""

    def __init__(
        self, message: str, *, method: str = "", url: str = "", status: int = 0, codes: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status
        self.codes = codes


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
