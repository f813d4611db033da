"""How commands print: readable tables on a terminal, plain wide text in pipes, JSON on request."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any


def console() -> Any:
    """A rich console on stdout; wide and plain when stdout is not a terminal (pipes, tests)."""
    from rich.console import Console

    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, width=None if tty else 250, soft_wrap=not tty, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    from rich import box
    from rich.table import Table

    t = Table(*columns, title=title, box=box.SQUARE, header_style="bold", title_justify="left")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console().print(t)
