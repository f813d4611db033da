"""Why a resolve failed, in words: who requires what, which versions exist, and what to do.

resolvelib hands back the requirements it could not satisfy (with their parents); this turns
them into one paragraph per name, with a did-you-mean for names nobody published.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ProvisioningError, ResolutionError
from ..versions import satisfies
from .sources import OciFinder

if TYPE_CHECKING:
    from .resolution import Answers
    from .sources.base import Finder


def explain_impossible(provider: Answers, causes: Sequence[Any]) -> ResolutionError:
    """Who requires what, which versions exist, and a did-you-mean for names nobody published."""
    by_name: dict[str, list[Any]] = {}
    for cause in causes:
        by_name.setdefault(cause.requirement.name, []).append(cause)
    paragraphs = []
    for name, infos in sorted(by_name.items()):
        lines = list(dict.fromkeys(f"- {i.requirement.requirer} requires {i.requirement.text}" for i in infos))
        finder = provider.sources.of(name)
        if finder.kind == "local":
            paragraphs.append(f"{name} cannot be found in {finder.where(name)}:\n" + "\n".join(lines))
            continue
        available = finder.versions(name)
        if not available:
            listed = {m.name for m in provider.config.modules}
            paragraphs.append(_unpublished(name, finder, lines, listed))
            continue
        paragraphs.append(_no_fit(provider, name, finder, available, lines))
    return ResolutionError("cannot resolve the workspace's extensions.\n" + "\n\n".join(paragraphs))


def _unpublished(name: str, finder: Finder, lines: list[str], in_config: set[str]) -> str:
    try:
        found, listed = finder.known_names()
    except ProvisioningError:
        found, listed = [], False
    known = sorted(set(found) | in_config)
    close = difflib.get_close_matches(name, [k for k in known if k != name], n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    if not close and not listed:
        hint = " (this registry does not list its repositories, so no similar names can be suggested)"
    return (
        f"no extension named {name!r} is published at {finder.where(name)}:\n" + "\n".join(lines) + f"\n{hint.strip()}"
    )


def _no_fit(provider: Answers, name: str, finder: Finder, available: list[str], lines: list[str]) -> str:
    too_new = provider.too_new.get(name, [])
    shown = ", ".join(available[:12][::-1]) + (" …" if len(available) > 12 else "")
    text = f"no version of {name} satisfies every requirement:\n" + "\n".join(lines)
    text += f"\navailable versions of {name}: {shown}"
    looked_in = finder.looked_in() if isinstance(finder, OciFinder) else None
    if looked_in:
        text += f" (looked in {looked_in})"
    if too_new:
        needs = "; ".join(f"{c.version} needs provisioning >= {c.min_provisioning_version}" for c in too_new[:5])
        text += (
            f"\nskipped because this workspace's core is {provider.config.core_version} (dependencies.core): "
            f"{needs}. Upgrade the core or pin an older {name}"
        )
    elif all(not satisfies(v, "*") for v in available):
        text += f"\nonly prereleases exist; allow them explicitly, e.g. {name}@>=0.0.0-0"
    return text
