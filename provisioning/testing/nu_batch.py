"""Nushell tests batched: generated drivers that run many test files in one ``nu`` process each, one
``do``/``try`` per file, output split by marker lines; which files may be batched, and the triage of a
driver that does not parse."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import limits
from .nu import _joined, _nu_env, _NuTest, _timed_out
from .report import TestCase

# `def main`, `def --env main`, `export def "main"`, ... at the start of a line.
_NU_DEF_MAIN = re.compile(
    r"""^[ \t]*(?:export[ \t]+)?def[ \t]+(?:--[\w-]+[ \t]+)*(?:main|"main"|'main'|`main`)[ \t]*\[""", re.M
)


# Inside a wrapper these name the wrapper, not the test: such tests run alone.
_NU_FILE_VARS = re.compile(r"FILE_PWD|CURRENT_FILE")


def _nu_batchable(test: _NuTest, ext_scripts_ok: dict[Path, bool]) -> bool | None:
    """Whether the test defines ``main``, or None when it must run in its own process.

    Alone: tests reading ``$env.FILE_PWD``/``$env.CURRENT_FILE`` (or whose extension's
    scripts or used modules do), tests whose ``main`` this cannot see for sure, paths a
    raw string cannot hold.
    """
    if any(bad in str(p) for p in (test.ext_dir, test.file) for bad in ("'#", "\n", "\r")):
        return None
    try:
        text = test.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if _NU_FILE_VARS.search(text):
        return None
    if test.ext_dir not in ext_scripts_ok:
        ext_scripts_ok[test.ext_dir] = not any(
            _nu_uses_file_vars(p)
            for p in test.ext_dir.rglob("*.nu")
            if not (p.parent == test.ext_dir / "tests" and p.name.startswith("test_"))  # checked one by one
        )
    if not ext_scripts_ok[test.ext_dir]:
        return None
    for target in _NU_USE.findall(text):  # modules from outside the extension
        path = (test.file.parent / target.strip("'\"`")).resolve()
        if path.suffix == ".nu" and not path.is_relative_to(test.ext_dir) and _nu_uses_file_vars(path):
            return None
    if _NU_DEF_MAIN.search(text):
        return True
    return None if re.search(r"\bmain\b", text) else False


_NU_USE = re.compile(r"^[ \t]*(?:export[ \t]+)?(?:use|source|source-env|overlay[ \t]+use)[ \t]+(\S+)", re.M)


def _nu_uses_file_vars(path: Path) -> bool:
    try:
        return bool(_NU_FILE_VARS.search(path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False  # a module that is not there fails to parse: batch and alone agree


def _nu_raw(text: str) -> str:
    """A Nushell raw string literal (callers made sure ``text`` holds no ``'#`` and no line break)."""
    return f"r#'{text}'#"


def _write_wrapper(root: Path, index: int, test: _NuTest, has_main: bool) -> Path:
    """A file that does what ``nu <test>`` does: run the file, then its ``main``.

    (``source`` inside a block does not bring definitions into the block, but a sourced
    file's own top level sees what it sources; so the call lives in a file of its own.)
    """
    wrapper = root / f"wrap_{index}.nu"
    lines = [
        f"# generated: runs {test.rel} of {test.ext_dir.name} as `nu {test.rel}` would",
        f"source {_nu_raw(str(test.file))}",
    ]
    if has_main:
        lines.append("main")
    wrapper.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return wrapper


def _run_nu_batch(
    batch: dict[_NuTest, bool], results: dict[_NuTest, TestCase], alone: list[_NuTest]
) -> dict[_NuTest, TestCase]:
    """Run ``batch`` through drivers; passes go to ``results``, the rest to ``alone``; returns the failures seen."""
    failures: dict[_NuTest, TestCase] = {}
    order = {t: i for i, t in enumerate(batch)}
    with tempfile.TemporaryDirectory(prefix="nu-tests-") as tmp:
        root = Path(tmp)
        wrappers = {t: _write_wrapper(root, i, t, has_main) for i, (t, has_main) in enumerate(batch.items())}
        pending = list(batch)
        for _round in range(limits.NU_MAX_ROUNDS):
            if not pending:
                break
            workers = min(2, os.cpu_count() or 1) if len(pending) >= limits.NU_SPLIT_MIN else 1
            chunks = _chunks(pending, max(workers, -(-len(pending) // limits.NU_CHUNK_MAX)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                outcomes = list(pool.map(lambda chunk: _NuDriver(chunk, wrappers, root).run(), chunks))
            pending = []
            for out in outcomes:
                for t, case in out.done.items():
                    (results if case.passed else failures)[t] = case
                results.update(out.timed_out)
                alone += out.alone
                pending += out.pending
                if out.unparsed:
                    ok, broken = _nu_triage(out.unparsed, wrappers, root, out.stderr)
                    alone += broken
                    pending += ok
            pending.sort(key=order.__getitem__)
        alone += pending
    return failures


def _chunks(items: list[_NuTest], n: int) -> list[list[_NuTest]]:
    """``n`` contiguous slices of near-equal size (an extension's tests share their modules' parse)."""
    n = max(1, min(n, len(items)))
    size, extra = divmod(len(items), n)
    bounds = [i * size + min(i, extra) for i in range(n + 1)]
    return [items[bounds[i] : bounds[i + 1]] for i in range(n)]


@dataclass
class _NuOutcome:
    done: dict[_NuTest, TestCase] = field(default_factory=dict)
    timed_out: dict[_NuTest, TestCase] = field(default_factory=dict)
    alone: list[_NuTest] = field(default_factory=list)  # the driver died inside it: exit, crash
    pending: list[_NuTest] = field(default_factory=list)  # never started
    unparsed: list[_NuTest] = field(default_factory=list)  # the driver did not parse
    stderr: str = ""


class _NuDriver:
    """One ``nu`` process running ``tests`` one after another, each inside ``do``/``try``.

    Marker lines (with a random token) on stdout and stderr delimit each test's output;
    the end marker carries its status. A test running longer than ``NU_TEST_TIMEOUT``
    gets the process killed.
    """

    def __init__(self, tests: list[_NuTest], wrappers: dict[_NuTest, Path], root: Path):
        self.tests = tests
        self.wrappers = wrappers
        self.root = root
        self.mark = f"@@provisioning-nu-batch-{secrets.token_hex(8)}@@"
        self.lock = threading.Lock()
        self.ready = False
        self.current: int | None = None
        self.started_at = time.perf_counter()
        self.status: dict[int, int] = {}
        self.duration: dict[int, float] = {}
        self.out: dict[int, list[str]] = {}
        self.err: dict[int, list[str]] = {}
        self.preamble: list[str] = []

    def script(self) -> str:
        m = self.mark
        blocks = [
            f"# generated: {len(self.tests)} test files, each as `nu <file>` from its extension",
            f'print "{m}:ready"',
        ]
        for i, t in enumerate(self.tests):
            blocks.append(
                f"""do {{
    print "\\n{m}:start:{i}"
    print -e "\\n{m}:start:{i}"
    let status = try {{
        let out = (do {{
            cd {_nu_raw(str(t.ext_dir))}
            $env.PROCESS_PATH = {_nu_raw(str(t.rel))}
            source {_nu_raw(str(self.wrappers[t]))}
        }})
        if $out != null {{ print $out }}
        0
    }} catch {{|err| print -e $err.rendered; 1 }}
    print $"\\n{m}:end:{i}:($status)"
    print -e "\\n{m}:end:{i}"
}}"""
            )
        return "\n".join(blocks) + "\n"

    def run(self) -> _NuOutcome:
        driver = self.root / f"driver_{self.mark.strip('@').rsplit('-', 1)[1]}.nu"
        driver.write_text(self.script(), encoding="utf-8")
        proc = subprocess.Popen(
            ["nu", "--no-config-file", str(driver)],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=_nu_env(),
        )
        readers = [
            threading.Thread(target=self._read, args=(proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(proc.stderr, False), daemon=True),
        ]
        for r in readers:
            r.start()
        killed_in: int | None = None
        killed = False
        while True:
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                with self.lock:
                    current, since = self.current, self.started_at
                if time.perf_counter() - since > limits.NU_TEST_TIMEOUT:
                    killed, killed_in = True, current
                    proc.kill()
                    proc.wait()
                    break
        for r in readers:  # a process a test left behind may hold the pipes open: do not wait for it
            r.join(timeout=5)
        with self.lock:
            return self._outcome(killed, killed_in)

    def _read(self, stream, is_stdout: bool) -> None:
        prefix = self.mark + ":"
        sections = self.out if is_stdout else self.err
        index: int | None = None
        for line in stream:
            line = line.rstrip("\n")
            if line.startswith(prefix):
                kind, _, rest = line[len(prefix) :].partition(":")
                now = time.perf_counter()
                with self.lock:
                    if kind == "ready" and is_stdout:
                        self.ready, self.started_at = True, now
                    elif kind == "start":
                        index = int(rest)
                        sections[index] = []
                        if is_stdout:
                            self.current, self.started_at = index, now
                    elif kind == "end":
                        if is_stdout:
                            i, _, status = rest.partition(":")
                            self.status[int(i)] = int(status)
                            self.duration[int(i)] = (now - self.started_at) * 1000
                            self.current, self.started_at = None, now
                        index = None
                continue
            with self.lock:
                if index is not None:
                    sections[index].append(line)
                elif line.strip():
                    self.preamble.append(line)  # parse-time output: warnings, export-env prints

    def _outcome(self, killed: bool, killed_in: int | None) -> _NuOutcome:
        out = _NuOutcome(stderr="\n".join(self.preamble))
        if not self.ready:
            if killed:  # parsing alone took the whole timeout: give up on batching these
                out.alone = list(self.tests)
            else:
                out.unparsed = list(self.tests)
            return out
        started = [i for i in range(len(self.tests)) if i in self.out]
        for i, t in enumerate(self.tests):
            if i in self.status:
                output = _joined("\n".join(self.out.get(i, [])), "\n".join(self.err.get(i, [])))
                out.done[t] = TestCase(t.file.name, "nu", self.status[i] == 0, output, self.duration[i])
            elif i == killed_in:
                out.timed_out[t] = _timed_out(t)
            elif i in started:
                out.alone.append(t)  # it ended the driver (exit, crash): only its own process can tell
            else:
                out.pending.append(t)
        if not started and out.pending:  # parsed but never got to a test: do not loop
            out.alone, out.pending = out.alone + out.pending, []
        if self.preamble:  # alone, each test's own output would start with it: let them show it
            for t in self._parse_time_output_owners():
                if t in out.done:
                    del out.done[t]
                    out.alone.append(t)
        return out

    def _parse_time_output_owners(self) -> list[_NuTest]:
        """The tests parse-time output (a deprecation warning, say) may belong to: all, unless it names files."""
        places = {Path(p) for p in _NU_ERROR_PLACE.findall("\n".join(self.preamble))}
        if not places:
            return list(self.tests)
        files = {t.file for t in self.tests}
        modules = places - files  # a module's warning shows in every test of its extension that uses it
        if any(not any(m.is_relative_to(t.ext_dir) for t in self.tests) for m in modules):
            return list(self.tests)
        return [t for t in self.tests if t.file in places or any(m.is_relative_to(t.ext_dir) for m in modules)]


# Parses every wrapper named on stdin (one per line) with `nu-check`; prints the failing ones.
_NU_CHECK_WRAPPERS = """
$in | lines | where $it != "" | each {|f|
    if (try { null | nu-check $f } catch { false }) { null } else { $f }
} | to json --raw
"""


_NU_ERROR_PLACE = re.compile(r"\[(/[^\]\n]+?):\d+:\d+\]")


def _nu_triage(
    tests: list[_NuTest], wrappers: dict[_NuTest, Path], root: Path, stderr: str
) -> tuple[list[_NuTest], list[_NuTest]]:
    """Split the tests of a driver that did not parse into (batchable again, to run alone).

    ``nu-check`` of every wrapper (one process) finds the files that do not parse on their
    own; if none does, the place nu's error names decides; failing that, all run alone.
    """
    try:
        proc = subprocess.run(
            ["nu", "--no-config-file", "--stdin", "-c", _NU_CHECK_WRAPPERS],
            input="\n".join(str(wrappers[t]) for t in tests),
            cwd=root,
            capture_output=True,
            text=True,
            timeout=limits.NU_TEST_TIMEOUT,
            env=_nu_env(),
        )
        failing = set(json.loads(proc.stdout or "[]")) if proc.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError):
        failing = None
    if failing is None:
        return [], list(tests)
    broken = [t for t in tests if str(wrappers[t]) in failing]
    if not broken:
        places = {Path(p) for p in _NU_ERROR_PLACE.findall(stderr)}
        broken = [
            t
            for t in tests
            if wrappers[t] in places or t.file in places or any(p.is_relative_to(t.ext_dir) for p in places)
        ]
    if not broken:
        return [], list(tests)
    return [t for t in tests if t not in broken], broken
