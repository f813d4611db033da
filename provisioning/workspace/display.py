"""Where things are, as a person reads it: paths relative to the current folder, ``file:line`` of a field."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import yamlfile
from ..yamlfile import line_of


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when below it."""
    return _display(str(path), os.getcwd())


@lru_cache(maxsize=256)
def _display(path: str, cwd: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(cwd).resolve()))
    except ValueError:
        return path


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse YAML with line information, turning a syntax error into ``file:line: problem``."""
    return yamlfile.load_yaml(path, display=display_path(path), text=text)


def where(file: Path, doc: Any, path: Sequence[Any]) -> str:
    line = line_of(doc, path)
    return f"{display_path(file)}:{line}" if line else display_path(file)
