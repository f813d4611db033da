"""A per-extension CHANGELOG from git history, written when a version is released.

Entries are the subjects of the commits that touched the extension's folder since its
previous release tag (``{type}/{name}/v*``), newest first.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .errors import ProvisioningError


def _git(cwd: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60)
    except OSError as exc:
        raise ProvisioningError(f"cannot run git: {exc}; install git to generate changelogs") from exc
    if out.returncode != 0:
        raise ProvisioningError(f"git {' '.join(args)} failed in {cwd}: {out.stderr.strip()}")
    return out.stdout


def release_tags(repo: Path, key: str) -> list[str]:
    """Release tags of one extension (``taskservs/kubernetes/v…``), newest version first."""
    from .versions import sort_versions

    tags = _git(repo, "tag", "--list", f"{key}/v*").split()
    by_version = {t.rsplit("/v", 1)[1]: t for t in tags}
    return [by_version[v] for v in sort_versions(by_version, reverse=True)]


def changelog(ext_dir: Path, key: str, version: str) -> str:
    """Markdown for the release of ``version``: commits since the previous release tag."""
    ext_dir = ext_dir.resolve()
    repo = Path(_git(ext_dir, "rev-parse", "--show-toplevel").strip())
    current = f"{key}/v{version}"
    previous = [t for t in release_tags(repo, key) if t != current]
    from .versions import Version

    older = [t for t in previous if Version.parse(t.rsplit("/v", 1)[1]) < Version.parse(version)]
    since = f"{older[0]}.." if older else ""
    head = current if current in _git(repo, "tag", "--list", current).split() else "HEAD"
    log = _git(repo, "log", "--no-merges", "--format=%h%x09%as%x09%s", f"{since}{head}", "--", str(ext_dir))
    lines = [f"# {key.split('/')[-1]} {version}", ""]
    lines.append(f"Changes since {older[0]}:" if older else "First release.")
    lines.append("")
    for entry in log.splitlines():
        sha, date, subject = entry.split("\t", 2)
        lines.append(f"- {subject} ({sha}, {date})")
    return "\n".join(lines) + "\n"
