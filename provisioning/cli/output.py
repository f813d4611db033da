"""How commands print: readable tables on a terminal, plain wide text in pipes, JSON on request."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from typing import Any

# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a terminal shows
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_text(text: str, *, keep_newlines: bool = True) -> str:
    """Text from a registry, an artifact or a file, made safe for a terminal: every control character (escape
    sequences that recolour, retitle or rewrite the screen) is shown as its escape, never sent as it is."""
    if not keep_newlines:
        text = text.replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


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
    from rich.text import Text

    t = Table(*columns, title=title, box=box.SQUARE, header_style="bold", title_justify="left")
    for row in rows:  # Text, not markup: a description's "[link=…]" is shown, not interpreted
        t.add_row(*(Text("" if v is None else terminal_text(str(v), keep_newlines=False)) for v in row))
    console().print(t)
