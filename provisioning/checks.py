"""Real checks of an extension's code: KCL compiled in-process, Nushell parsed by ``nu``.

Both must stay cheap at CI scale (hundreds of extensions): KCL runs through the
``kcl-lib`` bindings (no process per extension, no network: the base package
``provisioning`` is handed over as an external package), and every Nushell script of a
run is parsed by one or two ``nu`` processes instead of one process per script.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ProvisioningError, ValidationError

BASE_PACKAGE = "provisioning"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_KCL_HEADER = re.compile(r"^(error|warning|suggestions?)\[[^\]]*\]:\s*(.*)$")
_KCL_BARE_HEADER = re.compile(r"^([A-Z][A-Za-z]*(Error|Failure))\s*$")
_KCL_LOCATION = re.compile(r"^\s*-->\s*(.+):(\d+):(\d+)\s*$")
_KCL_SOURCE_LINE = re.compile(r"^\s*\d+\s*\|")
_KCL_LABEL = re.compile(r"^\s*\|[\s^~\-]*(.*?)\s*$")


# --------------------------------------------------------------------------- KCL


def base_kcl_dir() -> Path:
    """The core's base KCL package, ``schemas/kcl`` (through ``resources``: the checkout's, or the wheel's)."""
    from .resources import resource

    return resource("schemas", "kcl", "kcl.mod").parent


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def kcl_identifier(name: str) -> str:
    """How KCL code imports a package whose kcl.mod name may contain dashes (kpm's rule)."""
    return name.replace("-", "_")


@cache
def kcl_api():
    """``kcl_lib.api``, imported on first use: it loads a 30 MB native library."""
    import kcl_lib.api as api

    return api


def kcl_external_pkgs(extra: dict[str, Path] | None = None) -> list:
    """External packages for a compile: the base package plus ``extra`` (name -> folder)."""
    api = kcl_api()
    pkgs = {BASE_PACKAGE: base_kcl_dir(), **(extra or {})}
    return [api.ExternalPkg(pkg_name=name, pkg_path=str(path)) for name, path in pkgs.items()]


def kcl_sources(ext_dir: Path) -> list[Path]:
    """The files that make up an extension's KCL package (``kcl/*.k`` without test files)."""
    return sorted(p for p in (ext_dir / "kcl").glob("*.k") if p.is_file() and not p.name.endswith("_test.k"))


def compile_kcl(ext_dir: Path) -> list[str]:
    """Compile and evaluate the extension's KCL against the base schemas; one message per error.

    Evaluation runs the ``check:`` blocks of every instance the files declare, so a
    default that breaks a rule fails here, not on an operator's machine.
    """
    ext_dir = Path(ext_dir)
    files = kcl_sources(ext_dir)
    if not files:
        return [f"{ext_dir / 'kcl'}: no .k files to compile"]
    key = _kcl_cache_key(ext_dir, files)
    if key is not None and key in _KCL_RESULTS:
        return list(_KCL_RESULTS[key])
    messages = format_kcl_diagnostics(
        _exec_kcl(work_dir=(ext_dir / "kcl").resolve(), files=[f.resolve() for f in files], extra_pkgs={})
    )
    _remember(key, messages)
    return messages


def compile_kcl_many(ext_dirs: Sequence[Path]) -> dict[Path, list[str]]:
    """``compile_kcl`` for many extensions at once: same answers, a fraction of the time.

    Compiling one extension costs mostly the base package (about 8 ms of type checking).
    Here the extensions are imported as packages of one program, so the base is compiled
    once, and every public top-level value is referenced so its checks run as they would
    in ``compile_kcl``. Extensions whose top level holds more than definitions and public
    values (``assert``, ``if``, private names), and any extension a failing batch points
    at, are compiled on their own, so messages are exactly ``compile_kcl``'s.

    Answers are remembered by content, so a later ``compile_kcl`` of an unchanged
    extension in the same process (or a forked worker) costs a hash, not a compile.
    """
    dirs = [Path(d) for d in ext_dirs]
    results: dict[Path, list[str]] = {}
    alone: list[Path] = []
    pending: list[tuple[Path, list[str]]] = []
    for d in dirs:
        names = _kcl_public_values(d)
        (alone.append(d) if names is None else pending.append((d, names)))
    keys = {d: _kcl_cache_key(d, kcl_sources(d)) for d, _ in pending}
    for d, _ in pending:
        if keys[d] in _KCL_RESULTS:
            results[d] = list(_KCL_RESULTS[keys[d]])
    pending = [(d, n) for d, n in pending if d not in results]
    for _attempt in range(KCL_BATCH_ATTEMPTS):
        if len(pending) < 2:
            break
        implicated = _compile_batch(pending)
        if implicated is None:  # the batch passed
            for d, _ in pending:
                results[d] = []
                _remember(keys[d], [])
            pending = []
            break
        if not implicated:
            break
        alone.extend(d for d, _ in pending if d in implicated)
        pending = [(d, n) for d, n in pending if d not in implicated]
    alone.extend(d for d, _ in pending)
    for d in alone:
        results[d] = compile_kcl(d)
    return {d: results[d] for d in dirs}


# compile_kcl's answers by content (sources, base package, where they are shown from).
_KCL_RESULTS: dict[str, list[str]] = {}
_KCL_RESULTS_MAX = 4096


def _kcl_cache_key(ext_dir: Path, files: list[Path]) -> str | None:
    digest = hashlib.sha256()
    try:
        for f in [*files, *sorted(base_kcl_dir().glob("*.k"))]:
            digest.update(str(f.resolve()).encode() + b"\0" + f.read_bytes() + b"\0")
    except OSError:
        return None
    digest.update(f"{Path.cwd()}\0{ext_dir}".encode())
    return digest.hexdigest()


def clear_kcl_cache() -> None:
    """Forget remembered compile results (tests; long-lived processes after a base upgrade)."""
    _KCL_RESULTS.clear()


def _remember(key: str | None, messages: list[str]) -> None:
    if key is None:
        return
    if len(_KCL_RESULTS) >= _KCL_RESULTS_MAX:
        _KCL_RESULTS.clear()
    _KCL_RESULTS[key] = list(messages)


# Each failing batch that points at an extension costs one more batch; past this many
# the rest is compiled one by one.
KCL_BATCH_ATTEMPTS = 3
_KCL_DEFINITION = re.compile(r"^(import|schema|rule|protocol|mixin|type)\b|^@|^[\]})]")
_KCL_KEYWORDS = frozenset("if elif else for assert check lambda all any filter map rule not and or in is".split())
_KCL_PUBLIC_VALUE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*(:(?!=)|=(?!=))")


def _kcl_public_values(ext_dir: Path) -> list[str] | None:
    """Public top-level names of an extension's KCL, or None if its top level does more.

    Only lines at column 0 matter: imports, definitions, closing brackets and public
    ``name = ...`` / ``name: ...`` values. Anything else (assert, if, ``_private``) makes
    the extension compile alone, where nothing can be skipped.
    """
    files = kcl_sources(ext_dir)
    if not files:
        return None
    names: list[str] = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        for line in kcl_column0_lines(text):
            if line.startswith(('"""', "'''")) or _KCL_DEFINITION.match(line):
                continue
            m = _KCL_PUBLIC_VALUE.match(line)
            if m is None or m.group(1) in _KCL_KEYWORDS:
                return None
            if m.group(1) not in names:
                names.append(m.group(1))
    return names


def kcl_column0_lines(text: str) -> Iterator[str]:
    """The lines of KCL source that start at column 0 outside a multi-line string (docstrings, text blocks),
    which is all the batch checks read: blank, indented and comment lines are left out."""
    in_string = False
    for line in text.splitlines():
        opens_or_closes = (line.count('"""') + line.count("'''")) % 2 == 1
        if in_string:
            in_string = not opens_or_closes
            continue
        in_string = opens_or_closes
        if line and line[0] not in " \t#":
            yield line


def _compile_batch(batch: list[tuple[Path, list[str]]]) -> set[Path] | None:
    """Compile ``batch`` as one program: None if it passed, else the extensions errors point at."""
    lines: list[str] = []
    extra: dict[str, Path] = {}
    line_owner: dict[int, Path] = {}
    for i, (d, names) in enumerate(batch):
        alias = f"ext_{i}"
        extra[alias] = (d / "kcl").resolve()
        lines.append(f"import {alias}")
        lines.append(f"_v{i} = [{', '.join(f'{alias}.{n}' for n in names)}]")
        line_owner[len(lines) - 1] = line_owner[len(lines)] = d
    with tempfile.TemporaryDirectory(prefix="kcl-batch-") as tmp:
        main = Path(tmp) / "main.k"
        main.write_text("\n".join(lines) + "\n", encoding="utf-8")
        diagnostics = _exec_kcl(work_dir=Path(tmp), files=[main], extra_pkgs=extra)
        if not diagnostics:
            return None
        roots = {extra[f"ext_{i}"]: d for i, (d, _) in enumerate(batch)}
        implicated: set[Path] = set()
        for diag in diagnostics:
            for place in diag.places:
                if place.file == main:
                    if place.line in line_owner:
                        implicated.add(line_owner[place.line])
                elif place.file.parent in roots:
                    implicated.add(roots[place.file.parent])
        return implicated


@dataclass(frozen=True)
class KclPlace:
    file: Path
    line: int
    col: int
    label: str = ""


@dataclass
class KclDiagnostic:
    """One KCL error: its kind (TypeError, EvaluationError, ...) and where it points."""

    kind: str
    places: list[KclPlace] = field(default_factory=list)
    text: str = ""  # the raw text when KCL gave no location


def _exec_kcl(work_dir: Path, files: list[Path], extra_pkgs: dict[str, Path]) -> list[KclDiagnostic]:
    api = kcl_api()
    args = api.ExecProgramArgs(
        work_dir=str(work_dir),
        k_filename_list=[str(f) for f in files],
        external_pkgs=kcl_external_pkgs(extra_pkgs),
        disable_yaml_result=True,
    )
    try:
        result = api.API().exec_program(args)
    except Exception as exc:  # kcl-lib raises a bare Exception carrying the rendered diagnostics
        return parse_kcl_diagnostics(str(exc))
    return parse_kcl_diagnostics(result.err_message) if result.err_message else []


def parse_kcl_diagnostics(text: str) -> list[KclDiagnostic]:
    """Parse KCL's rendered diagnostics (the default "pretty" format, colours or not).

    Compile errors come as ``error[CODE]: Kind`` blocks, runtime errors (failed checks) as
    a bare ``EvaluationError`` followed by several locations. Warnings and suggestions
    are dropped. (The structured formats would print runtime errors to stdout as well.)
    """
    text = _ANSI.sub("", text)
    diagnostics: list[KclDiagnostic] = []
    current: KclDiagnostic | None = None
    expect_label = False
    for line in text.splitlines():
        if m := _KCL_HEADER.match(line):
            current = KclDiagnostic(m.group(2).strip()) if m.group(1) == "error" else None
            if current is not None:
                diagnostics.append(current)
            continue
        if m := _KCL_BARE_HEADER.match(line):
            current = KclDiagnostic(m.group(1))
            diagnostics.append(current)
            continue
        if current is None:
            continue
        if m := _KCL_LOCATION.match(line):
            current.places.append(KclPlace(Path(m.group(1)), int(m.group(2)), int(m.group(3))))
            expect_label = False
            continue
        if _KCL_SOURCE_LINE.match(line):
            expect_label = bool(current.places)
            continue
        if expect_label and (m := _KCL_LABEL.match(line)) and m.group(1):
            last = current.places[-1]
            current.places[-1] = KclPlace(last.file, last.line, last.col, m.group(1))
            expect_label = False
    if not any(d.places for d in diagnostics) and text.strip():  # no location at all
        return [KclDiagnostic("Error", text=" ".join(text.split()))]
    return [d for d in diagnostics if d.places]


def format_kcl_diagnostics(diagnostics: Iterable[KclDiagnostic]) -> list[str]:
    """``file:line:col: Kind: message`` per error, related places appended; duplicates dropped."""
    messages: list[str] = []
    for diag in diagnostics:
        if not diag.places:
            msg = f"{diag.kind}: {diag.text}"
        else:
            first, *related = diag.places
            msg = f"{_display_path(first.file)}:{first.line}:{first.col}: {diag.kind}"
            msg += f": {first.label}" if first.label else ""
            for place in related:
                msg += f"; {_display_path(place.file)}:{place.line}:{place.col}"
                msg += f": {place.label}" if place.label else ""
        if msg not in messages:
            messages.append(msg)
    return messages


def _display_path(path: Path) -> str:
    """Paths relative to the working directory when inside it: short and clickable in CI logs."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def kcl_validate(data: Any, schema: str = "WorkspaceDependencies") -> list[str]:
    """Check plain data (a parsed YAML section) against a base schema; one message per problem.

    This is how a workspace's ``dependencies:`` section is held to the same rules as the
    KCL code that extensions compile against (OCI sources, references, namespaces).
    """
    api = kcl_api()
    code = f'import {BASE_PACKAGE}\n\nschema Checked({BASE_PACKAGE}.{schema}):\n    """{schema}"""\n'
    args = api.ValidateCodeArgs(
        data=json.dumps(data), code=code, schema="Checked", format="json", external_pkgs=kcl_external_pkgs()
    )
    try:
        result = api.API().validate_code(args)
    except Exception as exc:  # same bare Exception as exec_program
        return [" ".join(strip_ansi(str(exc)).split())]
    if result.success:
        return []
    messages: list[str] = []
    for diag in parse_kcl_diagnostics(result.err_message):
        labels = [p.label for p in diag.places if p.label and p.label != "Instance check failed"]
        text = "; ".join(labels) or diag.text or diag.kind
        msg = f"{schema}: {text.replace('Checked', schema)}"
        if msg not in messages:
            messages.append(msg)
    return messages or [f"{schema}: {' '.join(strip_ansi(result.err_message).split())}"]


# --------------------------------------------------------------------------- Nushell

# Parses every file named on stdin (one per line) with `nu-check` and prints the failures as
# JSON. `null |` matters: without it nu-check would parse the closure's input (the file
# *name*) instead of the file.
_NU_CHECK_ALL = """
$in | lines | where $it != "" | each {|f|
    let ok = (try { null | nu-check $f } catch { false })
    if $ok { null } else {
        let msg = (try { null | nu-check --debug $f; "" } catch {|e|
            $e.json | from json | get labels.0.text? | default $e.msg
        })
        {file: $f, error: ($msg | str replace --regex '^Found : ' '')}
    }
} | to json --raw
"""

# One nu process starts in ~150 ms and parses a script in well under a millisecond, so
# a second process only pays off for large batches.
NU_SPLIT_THRESHOLD = 100
# Locating errors costs one `nu --ide-check` per failing file: bounded.
NU_MAX_LOCATED = 16
NU_TIMEOUT = 300


def nu_available() -> bool:
    """Whether the real Nushell is on PATH (CI installs it; callers skip nu checks without it)."""
    return shutil.which("nu") is not None


def _nu() -> str:
    nu = shutil.which("nu")
    if nu is None:
        raise ValidationError(
            "Nushell ('nu') is not on PATH, so scripts cannot be checked; install it (for example "
            "`npm install -g nushell`) or skip the Nushell check"
        )
    return nu


def check_nu(scripts: Sequence[Path]) -> dict[Path, str]:
    """Parse every script with the real ``nu``; return only the failures: {script: message}.

    Messages leave the path out (it is the key) and say where: ``line 3, column 14:
    Unbalanced delimiter.``, up to three distinct errors joined by ``; ``.

    ``nu-check`` over all files in one process finds the failures; then each failing file
    (rare) is located precisely with ``nu --ide-check``, whose spans are file offsets.
    """
    if not scripts:
        return {}
    nu = _nu()
    by_abs = {str(Path(s).resolve()): Path(s) for s in scripts}
    names = list(by_abs)
    workers = min(2, os.cpu_count() or 1) if len(names) >= NU_SPLIT_THRESHOLD else 1
    chunks = [names[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda chunk: _nu_check_batch(nu, chunk), chunks))
    failures = {by_abs[f]: msg for batch in results for f, msg in batch.items()}
    if not failures:
        return {}
    located = list(failures)[:NU_MAX_LOCATED]
    with ThreadPoolExecutor(max_workers=2) as pool:
        details = dict(zip(located, pool.map(lambda p: _nu_locate(nu, p), located), strict=True))
    return {path: details.get(path) or summary for path, summary in sorted(failures.items(), key=str)}


def _nu_check_batch(nu: str, files: list[str]) -> dict[str, str]:
    """One ``nu`` process parses all ``files``; returns {absolute path: nu-check's message}."""
    proc = subprocess.run(
        [nu, "--no-config-file", "--stdin", "-c", _NU_CHECK_ALL],
        input="\n".join(files),
        capture_output=True,
        text=True,
        timeout=NU_TIMEOUT,
        env=_nu_env(),
    )
    if proc.returncode != 0:
        raise ProvisioningError(f"nu failed while checking scripts (exit {proc.returncode}): {proc.stderr.strip()}")
    return {item["file"]: item["error"] for item in json.loads(proc.stdout or "[]")}


def _nu_locate(nu: str, path: Path) -> str | None:
    """``line L, column C: message`` for the first distinct parse errors of one file, or None."""
    proc = subprocess.run(
        [nu, "--no-config-file", "--ide-check", "100", str(path.resolve())],
        capture_output=True,
        timeout=NU_TIMEOUT,
        env=_nu_env(),
    )
    try:
        source = path.read_bytes()
    except OSError:
        return None
    seen: list[str] = []
    found: list[str] = []
    for raw in proc.stdout.decode(errors="replace").splitlines():
        try:
            item = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if item.get("type") != "diagnostic" or item.get("severity") != "Error":
            continue
        message = item.get("message", "parse error")
        if message in seen:
            continue
        seen.append(message)
        line, col = _line_col(source, int(item.get("span", {}).get("start", 0)))
        found.append(f"line {line}, column {col}: {message}")
        if len(found) == 3:
            break
    return "; ".join(found) or None


def _line_col(source: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    before = source[: max(0, min(offset, len(source)))]
    line = before.count(b"\n") + 1
    col = len(before[before.rfind(b"\n") + 1 :].decode(errors="replace")) + 1
    return line, col


def _nu_env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1"}


# --------------------------------------------------------------------------- templates


def check_templates(templates: Iterable[Path]) -> dict[Path, str]:
    """Parse jinja2 templates (``*.j2``) without rendering; return the failures as ``file:line: message``."""
    import jinja2

    env = jinja2.Environment()
    failures: dict[Path, str] = {}
    for path in templates:
        try:
            env.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
        except jinja2.TemplateSyntaxError as exc:
            failures[Path(path)] = f"{path}:{exc.lineno}: {exc.message}"
        except (OSError, UnicodeDecodeError) as exc:
            failures[Path(path)] = f"{path}: {exc}"
    return failures
