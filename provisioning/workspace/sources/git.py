"""Git repositories as a source: release tags of an extensions monorepo, or of a one-extension repository.

The seed's monorepo tags releases ``{type}s/{name}/v{version}``; a repository holding one
extension may tag plain versions (``v1.2.0``). Tags come from one ``git ls-remote`` per
repository and run; a checkout is made once per repository and tag (shallow, under
``paths.cache_dir()/git``) and shared by workspaces; the lock records its commit and the
tree digest of the extension's folder, so a moved tag is noticed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ... import paths
from ...errors import DigestMismatch, NotFound, ProvisioningError, UnsafeArchive, ValidationError
from ...extension import TYPE_FOLDERS
from ...versions import is_valid_version, sort_versions
from ..config import display_path
from .base import Candidate, Memo
from .local import copy_local, folder_candidate, tree_digest

if TYPE_CHECKING:
    from ..lock import LockedExtension

_MONOREPO_TAG = re.compile(rf"^({'|'.join(TYPE_FOLDERS)})/([a-z0-9][a-z0-9._-]*)/v(\d.*)$")
_VERSION_TAG = re.compile(r"^v?(\d+\.\d+\.\d+.*)$")


def _git(args: list[str], *, what: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ADVICE": "0"}
    try:
        r = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise ProvisioningError("git is not installed; install git to use git or gitea extension sources") from None
    except subprocess.TimeoutExpired:
        raise ProvisioningError(f"git {args[0]} of {what} timed out") from None
    if r.returncode != 0:
        detail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProvisioningError(f"git {args[0]} of {what} failed: {detail}")
    return r.stdout


class GitSource:
    """Tags and shallow checkouts of extension repositories, kept under ``paths.cache_dir()/git``.

    The seed's extensions monorepo tags releases ``{type}s/{name}/v{version}``; a repository
    holding one extension may tag plain versions (``v1.2.0``). A checkout is made once per
    repository and tag and shared by workspaces; the lock records its commit.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else paths.cache_dir() / "git"
        self._tags: dict[str, dict[str, str]] = {}
        self._mutex = threading.Lock()

    def tags(self, url: str) -> dict[str, str]:
        """tag -> commit, from one ``git ls-remote`` per repository and run."""
        with self._mutex:
            if url not in self._tags:
                out = _git(["ls-remote", "--tags", "--refs", url], what=url)
                tags = {}
                for line in out.splitlines():
                    sha, _, ref = line.partition("\t")
                    if ref.startswith("refs/tags/"):
                        tags[ref[len("refs/tags/") :]] = sha
                self._tags[url] = tags
            return self._tags[url]

    def versions(self, url: str, name: str) -> dict[str, str]:
        """version -> tag for ``name``: monorepo tags first, else plain version tags."""
        tags = self.tags(url)
        found = {}
        for tag in tags:
            m = _MONOREPO_TAG.match(tag)
            if m and m.group(2) == name:
                found[m.group(3)] = tag
        if not found:
            for tag in tags:
                m = _VERSION_TAG.match(tag)
                if m and "/" not in tag:
                    found[m.group(1)] = tag
        return found

    def checkout(self, url: str, ref: str, commit: str | None = None) -> tuple[Path, str]:
        """A shallow checkout of ``ref`` (and its commit); ``commit`` given: it must still be that commit."""
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        dest = self.root / key / hashlib.sha256(ref.encode()).hexdigest()[:16]
        if (dest / ".git").is_dir():
            head = _git(["rev-parse", "HEAD"], what=url, cwd=dest).strip()
            if commit is None or head == commit:
                return dest, head
            shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".clone-", dir=dest.parent))
        try:
            _git(["clone", "--quiet", "--depth", "1", "--branch", ref, url, str(tmp / "c")], what=f"{url} at {ref}")
            head = _git(["rev-parse", "HEAD"], what=url, cwd=tmp / "c").strip()
            if commit is not None and head != commit:
                raise ValidationError(
                    f"{url} {ref} now points at {head[:12]}, but the lock pinned {commit[:12]}: the tag was moved. "
                    "Run `provisioning dep resolve` (without --locked) if the new commit is trusted"
                )
            try:
                os.rename(tmp / "c", dest)
            except OSError:  # another run made it first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest, _git(["rev-parse", "HEAD"], what=url, cwd=dest).strip()


def extension_in_checkout(checkout: Path, name: str) -> Path | None:
    """The extension's folder in a checkout: ``<type>s/<name>`` (monorepo) or the repository root."""
    for t in TYPE_FOLDERS:
        folder = checkout / t / name
        if (folder / "manifest.yaml").is_file():
            return folder_in_checkout(checkout, f"{t}/{name}", f"{name} in {checkout}")
    return checkout if (checkout / "manifest.yaml").is_file() else None


def folder_in_checkout(checkout: Path, subdir: str, what: str) -> Path:
    """``checkout/subdir``, refused when the name climbs out or a link in the repository leads outside it."""
    parts = Path(subdir).parts
    if Path(subdir).is_absolute() or ".." in parts:
        raise UnsafeArchive(f"{what}: the extension folder {subdir!r} is not a path inside the repository; refused")
    folder = checkout.joinpath(*parts)
    real, top = os.path.realpath(folder), os.path.realpath(checkout)
    if real != top and not real.startswith(top + os.sep):
        raise UnsafeArchive(f"{what}: {subdir} is a link that leads outside the repository; refused")
    return folder


class GitFinder:
    """The extensions of one repository (``url``), at its release tags or at one fixed ``ref``."""

    kind = "git"

    def __init__(self, url: str, ref: str | None = None, git: GitSource | None = None) -> None:
        self.url, self.ref = url, ref
        self.git = git or GitSource()
        self._memo = Memo()

    def _tags(self, name: str) -> dict[str, str]:
        """version -> tag, for the semver versions of ``name``."""
        return {v: t for v, t in self.git.versions(self.url, name).items() if is_valid_version(v)}

    def versions(self, name: str) -> list[str]:
        if self.ref:
            return [self._at(name, self.ref).version]
        return sort_versions(list(self._tags(name)), reverse=True)

    def candidate(self, name: str, version: str) -> Candidate:
        return self._at(name, self.ref or self._tags(name)[version])

    def _at(self, name: str, ref: str) -> Candidate:
        return self._memo.get((name, ref), lambda: self._read(name, ref))

    def _read(self, name: str, ref: str) -> Candidate:
        checkout, commit = self.git.checkout(self.url, ref)
        folder = extension_in_checkout(checkout, name)
        if folder is None:
            raise NotFound(f"{self.url} at {ref} has no extension {name} (looked for <type>s/{name}/manifest.yaml)")
        cand = folder_candidate(name, folder, display_path(folder / "manifest.yaml"))
        cand.source = "git"
        cand.url, cand.ref, cand.commit = self.url, ref, commit
        cand.subdir = folder.relative_to(checkout).as_posix() or "."
        return cand

    def fetch(self, entry: LockedExtension, dest: Path) -> bool:
        what = f"{entry.name} {entry.version}"
        checkout, _ = self.git.checkout(entry.url or "", entry.ref or "", entry.commit)
        folder = folder_in_checkout(checkout, entry.subdir or ".", what)
        if tree_digest(folder) != entry.digest:
            raise DigestMismatch(
                f"{what}: {entry.url} at {entry.ref} does not hold what the lock pinned ({entry.digest}); "
                "the checkout in the cache may be damaged: delete it and rerun"
            )
        copy_local(folder, dest, what=f"{what} from {entry.url} at {entry.ref}")
        return False

    def where(self, name: str) -> str:
        return f"{self.url} (tags {{type}}s/{name}/v{{version}})"

    def known_names(self) -> tuple[list[str], bool]:
        tags = self.git.tags(self.url)
        return sorted({t.split("/")[1] for t in tags if t.count("/") == 2}), True
