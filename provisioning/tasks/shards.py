"""``doit publish shard=I/N``: which extensions part I of N publishes.

Rendezvous (highest random weight) hashing on the extension key (``taskservs/kubernetes``): each
key goes to the shard whose ``sha256(shard, key)`` is highest. The answer depends on the key and N
only, so every CI job computes the same split without talking to the others, adding or removing
one extension moves only that one, and the shards together cover every extension exactly once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import UsageError

MAX_SHARDS = 256
_SHARD = re.compile(r"^(\d+)/(\d+)$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4); shards count from 1, as a CI matrix does."""
    m = _SHARD.match(text.strip())
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)) <= MAX_SHARDS:
        raise UsageError(
            f"shard={text!r}: expected I/N with 1 <= I <= N <= {MAX_SHARDS} (for example shard=2/4 in the second "
            "of four CI jobs)"
        )
    return int(m.group(1)), int(m.group(2))


def shard_of(key: str, count: int) -> int:
    """The shard (1..count) that publishes ``key``."""
    best, best_weight = 1, b""
    for shard in range(1, count + 1):
        weight = hashlib.sha256(f"{shard}\0{key}".encode()).digest()
        if weight > best_weight:
            best, best_weight = shard, weight
    return best


def in_shard(ext_dirs: Iterable[Path], shard: tuple[int, int] | None) -> list[Path]:
    """The folders of ``ext_dirs`` this shard publishes (all of them when the run is not sharded)."""
    dirs = list(ext_dirs)
    if shard is None:
        return dirs
    index, count = shard
    return [d for d in dirs if shard_of(f"{d.parent.name}/{d.name}", count) == index]
