"""Transfer feedback: sizes for people, a progress bar on a terminal, stores that count pushed bytes."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ...oci.descriptor import Descriptor

_PROGRESS_MIN_BYTES = 1 << 20


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


@contextlib.contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal for transfers worth watching; a no-op callback otherwise."""
    if not sys.stdout.isatty() or total < _PROGRESS_MIN_BYTES:
        yield lambda n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


class CountingTarget:
    """Wraps a destination so every pushed chunk advances a progress callback; other powers pass through."""

    def __init__(self, inner: Any, advance: Callable[[int], None]) -> None:
        self._inner = inner
        self._advance = advance

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def push(self, desc: Descriptor, content: Iterable[bytes]) -> None:
        def counted() -> Iterator[bytes]:
            for chunk in content:
                self._advance(len(chunk))
                yield chunk

        self._inner.push(desc, counted())


class CountingStorage:
    """A storage whose repositories report pushed bytes to a progress callback."""

    def __init__(self, inner: Any, advance: Callable[[int], None]) -> None:
        self._inner = inner
        self._advance = advance

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def repository(self, name: str) -> CountingTarget:
        return CountingTarget(self._inner.repository(name), self._advance)
