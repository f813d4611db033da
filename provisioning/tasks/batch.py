"""``doit validate`` and ``doit test`` through the same batched path as the publish preflight.

One extension per subtask keeps doit's bookkeeping (only changed extensions run again), but checking
them one by one loads the KCL compiler and starts ``nu`` once per extension. So the first subtask that
runs pulls in a setup task (``validate_batch`` / ``test_batch``) which checks, in one batch, every
extension whose answer is not known yet, and keeps each answer under a fingerprint of what it depends
on (every file of the extension, the names in the tree, the base KCL schemas, the tool versions). A
subtask then reads its answer by fingerprint, or checks on its own when there is none; an unchanged
extension is never checked twice, a changed one always is.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

from filelock import FileLock

from .. import __version__
from ..extension import Extension, invalid, validate_extensions
from .context import PipelineContext, extension_dirs, extension_files, try_load

MAX_ENTRIES = 5000  # answers kept per kind; the oldest go first


@cache
def _tools() -> str:
    """What a change of checker would invalidate: our version, kcl-lib's, the nu binary."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        kcl = version("kcl-lib")
    except PackageNotFoundError:
        kcl = "?"
    nu = shutil.which("nu") or ""
    try:
        nu += f"@{os.stat(nu).st_mtime_ns}" if nu else ""
    except OSError:
        pass
    from ..checks import base_kcl_dir

    base = hashlib.sha256()
    for f in sorted(base_kcl_dir().glob("*.k")):
        base.update(f.name.encode() + b"\0" + f.read_bytes())
    return f"{__version__}\0{kcl}\0{nu}\0{base.hexdigest()}"


def fingerprint(kind: str, ext_dir: Path, known: list[str]) -> str | None:
    """A digest of everything the answer for ``ext_dir`` depends on (None when a file cannot be read)."""
    h = hashlib.sha256(f"{kind}\0{_tools()}\0{','.join(sorted(known))}\0{ext_dir}\0".encode())
    try:
        for f in extension_files(ext_dir):
            data = Path(f).read_bytes()
            h.update(f"{f}\0{len(data)}\0".encode() + hashlib.sha256(data).digest())
    except OSError:
        return None
    return h.hexdigest()


class Answers:
    """The kept answers of one kind (``build/checks/<kind>.json``), merged under a file lock."""

    def __init__(self, ctx: PipelineContext, kind: str) -> None:
        self.path = ctx.build_dir / "checks" / f"{kind}.json"

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # absent, or half-written by a killed run: everything is checked again
        return data if isinstance(data, dict) else {}

    def add(self, new: dict[str, Any]) -> None:
        if not new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock", timeout=60):
            data = self.load()
            data.update(new)
            if len(data) > MAX_ENTRIES:
                data = dict(list(data.items())[-MAX_ENTRIES:])
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, sort_keys=False))
            os.replace(tmp, self.path)


def _loaded(ctx: PipelineContext) -> list[Extension]:
    return [e for e in (try_load(d) for d in extension_dirs(ctx.extensions_dir)) if e is not None]


def _check(kind: str, exts: list[Extension], known: list[str]) -> dict[Path, Any]:
    """The batched check itself: the same functions the publish preflight calls."""
    if kind == "validate":
        return validate_extensions(exts, known)
    from ..testing import run_many_extension_tests

    return {
        p: {"ok": r.ok, "summary": r.summary()} for p, r in run_many_extension_tests([e.path for e in exts]).items()
    }


def run_batch(kind: str, ctx: PipelineContext, known: list[str]) -> None:
    """The setup task: check every extension whose fingerprint has no answer yet, in one batch."""
    answers = Answers(ctx, kind)
    kept = answers.load()
    todo, keys = [], {}
    for ext in _loaded(ctx):
        key = fingerprint(kind, ext.path, known)
        if key is not None and key not in kept:
            todo.append(ext)
            keys[ext.path] = key
    if todo:
        answers.add({keys[path]: answer for path, answer in _check(kind, todo, known).items()})


def answer(kind: str, ctx: PipelineContext, ext_dir: Path, known: list[str]) -> Any:
    """This extension's answer: kept under its current fingerprint, or checked now (and kept)."""
    key = fingerprint(kind, ext_dir, known)
    answers = Answers(ctx, kind)
    if key is not None:
        kept = _kept(str(answers.path), _mtime(answers.path))
        if key in kept:
            return kept[key]
    ext = try_load(ext_dir)
    if ext is None:
        return None  # the manifest is broken: the caller reports it
    found = _check(kind, [ext], known)[ext.path]
    if key is not None:
        answers.add({key: found})
    return found


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@cache
def _kept(path: str, mtime_ns: int) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def problems_message(ext_dir: Path, problems: list[str]) -> str:
    return str(invalid(ext_dir, problems))
