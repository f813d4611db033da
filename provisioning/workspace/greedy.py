"""A fast path for graphs that need no backtracking: pin the best candidate of each name, breadth first.

resolvelib re-checks every pin on every round, which is quadratic in the number of extensions
(20 s for 1,000); most workspaces need no backtracking at all. This pass asks the provider the
same questions (best candidate first; a candidate whose dependency has no match at all is
skipped) and gives up at the first conflict that would need backtracking; the caller then runs
resolvelib, which reuses everything read here. Tests check both give the same answer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .prefetch import Prefetcher
    from .resolution import Answers, Candidate, Requirement

Pins = tuple[dict[str, "Candidate"], dict[str, list["Requirement"]]]
Ahead = Callable[[str, list["Requirement"]], None]


def greedy(provider: Answers, roots: list[Requirement], prefetch: Prefetcher | None = None) -> Pins | None:
    """(pins, requirements per name), or None when a conflict needs resolvelib's backtracking."""
    reqs: dict[str, list[Requirement]] = {}
    for r in roots:
        reqs.setdefault(r.name, []).append(r)
    ahead: Ahead = prefetch.ask if prefetch is not None else (lambda name, wanted: None)
    if prefetch is not None:
        prefetch.known = reqs
    pins: dict[str, Candidate] = {}
    queue = deque(dict.fromkeys(r.name for r in roots))
    for name in queue:
        ahead(name, reqs[name])
    while queue:
        name = queue.popleft()
        pin = pins.get(name)
        if pin is not None:
            if all(provider.is_satisfied_by(r, pin) for r in reqs[name]):
                continue
            return None
        for cand in provider.matches(name, reqs[name], set()):
            verdict = _fits(provider, cand, pins, reqs, ahead)
            if verdict is None:
                return None  # a pinned dependency would have to move: that is backtracking
            if verdict:
                pins[name] = cand
                for d in provider.get_dependencies(cand):
                    reqs.setdefault(d.name, []).append(d)
                    queue.append(d.name)
                    if d.name not in pins:
                        ahead(d.name, reqs[d.name])
                break
        else:
            return None  # nothing fits: let resolvelib search (and explain)
    return pins, reqs


def _fits(
    provider: Answers,
    cand: Candidate,
    pins: dict[str, Candidate],
    reqs: dict[str, list[Requirement]],
    ahead: Ahead,
) -> bool | None:
    """True: every dependency has a match; False: one has none (try the next candidate); None: conflict."""
    deps = provider.get_dependencies(cand)
    for d in deps:  # the checks below read each dependency: read them side by side
        if d.name not in pins:
            ahead(d.name, [*reqs.get(d.name, ()), d])
    for d in deps:
        pinned = pins.get(d.name)
        if pinned is not None and provider.is_satisfied_by(d, pinned):
            continue
        if next(provider.matches(d.name, [*reqs.get(d.name, ()), d], set()), None) is None:
            return False  # no version of d fits at all: resolvelib rejects cand and tries the next
        if pinned is not None:
            return None
    return True
