"""``test extension``: run an extension's own tests with the real tools.

An extension's ``tests/`` holds Nushell tests (``test_*.nu``, run with ``nu`` from the
extension folder, so they can ``use ../scripts/x.nu``) and KCL tests (``*_test.k``, run
with the KCL test API; they ``import <name>`` for the extension's package, whose own
``import provisioning`` resolves to the core's base schemas).

A publish run tests up to hundreds of extensions, so ``run_many_extension_tests`` batches
both kinds while giving the reports ``run_extension_tests`` gives one by one:

* KCL: the test API compiles the base schemas and evaluates the whole program once per
  test case. The batch instead imports every extension's tests as a package of one
  program that calls every test lambda (and evaluates the test files' other top-level
  values, as the API does), so everything is compiled and evaluated once. Test files
  doing more at the top level (``assert``, ``print``, ``option()``) run through the API.
  An extension a failing batch points at runs through the API on its own (the rest is
  batched again, in halves), so failures read exactly as they always did.
* Nushell: one ``nu`` process per core runs a generated driver that sources a small
  wrapper per test file (the wrapper sources the test and calls its ``main``) inside
  ``do { cd <extension>; ... }`` and ``try``, so each test keeps its own definitions,
  environment and folder, and a failing test does not stop the others. Output is split
  by marker lines. A test the batch cannot vouch for (it failed, exited the driver, or
  uses ``$env.FILE_PWD``/``$env.CURRENT_FILE``, which differ inside a wrapper) runs in
  its own process, as before, so its status and output are exactly that process's.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .checks import (
    BASE_PACKAGE,
    format_kcl_diagnostics,
    kcl_api,
    kcl_external_pkgs,
    kcl_identifier,
    nu_available,
    parse_kcl_diagnostics,
    strip_ansi,
)

NU_TEST_TIMEOUT = 600
# Below this many batchable test files one driver process runs them all; from here on
# one driver per core (two at most) at a time.
NU_SPLIT_MIN = 8
# Test files per driver: parsing a driver grows faster than linearly with the modules its
# tests `use` (around a hundred test files it dominates), so larger batches are split.
NU_CHUNK_MAX = 25
# Failures found in a batch are re-run alone (exact status and output); past this many
# the batch's own report of the rest is kept (it still names the file and the error).
NU_CONFIRM_MAX = 16
# Driver rounds before whatever is left runs alone (each round finishes or sets aside
# at least one test, so this only bounds pathological cases).
NU_MAX_ROUNDS = 8
# A failing KCL batch is split to find the rest's answer; each run costs about a fifth of
# testing its extensions one by one. Past this many extension-runs (times the number of
# extensions) the rest is tested one by one: with a few failures batching still wins.
KCL_BATCH_WORK = 3

_NO_NU = "Nushell ('nu') is not on PATH; install it (for example `npm install -g nushell`)"


@dataclass
class TestCase:
    """One test: a KCL test lambda or one Nushell test file."""

    __test__ = False  # not a pytest class

    name: str
    kind: str  # "kcl" or "nu"
    passed: bool
    output: str = ""
    duration_ms: float = 0.0


@dataclass
class TestReport:
    """Every test of one extension; ``ok`` when there were tests and none failed."""

    __test__ = False

    extension: Path
    cases: list[TestCase] = field(default_factory=list)

    @property
    def passed(self) -> list[TestCase]:
        return [c for c in self.cases if c.passed]

    @property
    def failed(self) -> list[TestCase]:
        return [c for c in self.cases if not c.passed]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """``<extension>: N passed, M failed``, then each failure with its output indented."""
        lines = [f"{self.extension}: {len(self.passed)} passed, {len(self.failed)} failed"]
        for case in self.failed:
            lines.append(f"  FAIL  {case.kind:<3}  {case.name}")
            lines.extend(f"        {line}" for line in case.output.splitlines())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "extension": str(self.extension),
            "ok": self.ok,
            "passed": len(self.passed),
            "failed": len(self.failed),
            "cases": [asdict(c) for c in self.cases],
        }


def run_extension_tests(ext_dir: Path) -> TestReport:
    """Run the KCL and Nushell tests under ``ext_dir/tests``; failures are in the report, not raised."""
    ext_dir = Path(ext_dir)
    return run_many_extension_tests([ext_dir])[ext_dir]


def run_many_extension_tests(ext_dirs: Sequence[Path]) -> dict[Path, TestReport]:
    """``run_extension_tests`` for many extensions at once: the same reports, a fraction of the time.

    KCL runs in this thread while the ``nu`` drivers run; a folder given twice is tested once.
    """
    dirs = [Path(d) for d in ext_dirs]
    real = {d: d.resolve() for d in dirs}
    unique = list(dict.fromkeys(real.values()))
    kcl_dirs = [d for d in unique if (d / "tests").is_dir() and any((d / "tests").glob("*_test.k"))]
    nu_tests = [
        _NuTest(d, f.resolve())
        for d in unique
        if (d / "tests").is_dir()
        for f in sorted((d / "tests").glob("test_*.nu"))
    ]
    with ThreadPoolExecutor(max_workers=1) as pool:
        nu_future = pool.submit(_run_nu_many, nu_tests)
        kcl = _run_kcl_many(kcl_dirs)
        nu = nu_future.result()
    reports: dict[Path, TestReport] = {}
    for d in dirs:
        cases = [*kcl.get(real[d], []), *(nu[t] for t in nu_tests if t.ext_dir == real[d])]
        reports[d] = TestReport(d, [TestCase(**asdict(c)) for c in cases])
    return reports


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when there: 10x faster


def package_name(ext_dir: Path) -> str:
    """The extension's name (manifest, else folder) as KCL code imports it."""
    name = ext_dir.resolve().name
    try:
        manifest = yaml.load((ext_dir / "manifest.yaml").read_text(encoding="utf-8"), Loader=_YAML_LOADER)
        if isinstance(manifest, dict) and isinstance(manifest.get("name"), str):
            name = manifest["name"]
    except (OSError, yaml.YAMLError):
        pass
    return kcl_identifier(name)


# --------------------------------------------------------------------------- KCL


def run_kcl_tests(ext_dir: Path) -> list[TestCase]:
    """``*_test.k`` files of ``tests/`` through the KCL test API: one case per ``test_*`` lambda."""
    api = kcl_api()
    tests = (ext_dir / "tests").resolve()
    args = api.TestArgs(
        exec_args=api.ExecProgramArgs(
            work_dir=str(tests),
            external_pkgs=kcl_external_pkgs({package_name(ext_dir): (ext_dir / "kcl").resolve()}),
        ),
        pkg_list=[str(tests)],
    )
    # The API writes its generated entry file into tests/ and leaves it there when the
    # tests do not compile: remove it, the extension's folder is not ours to change.
    entry = tests / f"_kcl_test_{os.getpid()}.k"
    entry_existed = entry.exists()
    start = time.perf_counter()
    try:
        result = api.API().test(args)
    except Exception as exc:  # the tests (or the schemas they import) do not compile
        return [
            TestCase(
                name="kcl (compile)",
                kind="kcl",
                passed=False,
                output=_kcl_output(str(exc)),
                duration_ms=(time.perf_counter() - start) * 1000,
            )
        ]
    finally:
        if not entry_existed:
            entry.unlink(missing_ok=True)
    return [
        TestCase(
            name=info.name,
            kind="kcl",
            passed=not info.error,
            output=_kcl_output(info.error) if info.error else strip_ansi(info.log_message),
            duration_ms=info.duration / 1000,  # microseconds
        )
        for info in result.info
    ]


def _kcl_output(text: str) -> str:
    messages = format_kcl_diagnostics(parse_kcl_diagnostics(text))
    return "\n".join(messages) if messages else strip_ansi(text).strip()


@dataclass(frozen=True)
class _KclPlan:
    """An extension whose KCL tests can share a program: its test files and their cases in API order."""

    ext_dir: Path
    name: str  # package name
    files: tuple[Path, ...]
    cases: tuple[str, ...]
    values: tuple[str, ...]  # other top-level names, evaluated as the API's main package would


_KCL_ALIAS = "kcl_batch_tests_"
# Column-0 lines a batchable test file may hold besides ``name = lambda``: imports,
# definitions (no effect until used) and the closing brackets of multi-line bodies.
_KCL_DEFINITION = re.compile(r"^(import|schema|rule|protocol|mixin|type)\b|^@|^[\]})]")
_KCL_LAMBDA = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*lambda\b")
_KCL_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(:(?!=)|=(?!=))")
_KCL_KEYWORDS = frozenset("if elif else for assert check lambda all any filter map rule not and or in is".split())
# print() output would land in one log for the whole batch; option() and file.* see the
# batch's work dir, not tests/: such tests run alone.
_KCL_ALONE_ONLY = re.compile(r"\bprint\s*\(|\boption\s*\(|\bfile\s*\.")
# Alone, the API knows only the extension's package and the base one; a batch knows every
# extension of the batch. Imports of anything but those two and KCL's system modules
# (another extension, a kcl.mod dependency) would resolve differently: such tests run alone.
_KCL_IMPORT = re.compile(r"^[ \t]*import[ \t]+([.\w]+)", re.M)
_KCL_SYSTEM_MODULES = frozenset(
    "base64 collection crypto datetime file json manifests math net regex runtime template units yaml".split()
)


def _kcl_plan(ext_dir: Path) -> _KclPlan | None:
    """How to batch an extension's KCL tests, or None when only the test API can run them exactly.

    Mirrors the API's discovery: every ``*.k`` of ``tests/`` in name order, cases are
    column-0 ``test_* = lambda`` assignments. The API evaluates the files' top level as
    the main package, an import only on use; so batchable files hold imports,
    definitions, lambdas and plain ``name = value`` assignments, whose names the batch
    evaluates on purpose. Anything else (``assert``, ``if``, ``print``) runs through the API.
    """
    tests = ext_dir / "tests"
    files = sorted(p for p in tests.glob("*.k") if p.is_file())
    if not files or any(not p.name.endswith("_test.k") for p in files) or (tests / "kcl.mod").exists():
        return None
    name = package_name(ext_dir)
    if name == BASE_PACKAGE or name in _KCL_SYSTEM_MODULES or name.startswith(_KCL_ALIAS):
        return None
    known = {BASE_PACKAGE, *_KCL_SYSTEM_MODULES}
    cases: list[str] = []
    values: list[str] = []
    try:
        for f in files:
            text = f.read_text(encoding="utf-8")
            if _KCL_ALONE_ONLY.search(text) or not _kcl_imports_known(text, known | {name}):
                return None
            in_string = False
            for line in text.splitlines():
                toggles = (line.count('"""') + line.count("'''")) % 2 == 1
                if in_string:
                    in_string = not toggles
                    continue
                in_string = toggles
                if not line or line[0] in " \t#" or _KCL_DEFINITION.match(line):
                    continue
                if m := _KCL_LAMBDA.match(line):
                    if m.group(1).startswith("test_"):
                        if m.group(1) in cases:
                            return None
                        cases.append(m.group(1))
                    continue
                m = _KCL_VALUE.match(line)
                if m is None or m.group(1) in _KCL_KEYWORDS or m.group(1).startswith(_KCL_ALIAS):
                    return None
                if m.group(1) not in values:
                    values.append(m.group(1))
            if in_string:
                return None
        for source in (ext_dir / "kcl").glob("*.k"):
            text = source.read_text(encoding="utf-8")
            if _KCL_ALONE_ONLY.search(text) or not _kcl_imports_known(text, known, relative=True):
                return None
    except (OSError, UnicodeDecodeError):
        return None
    return _KclPlan(ext_dir, name, tuple(f.resolve() for f in files), tuple(cases), tuple(values))


def _kcl_imports_known(text: str, known: set[str], relative: bool = False) -> bool:
    """Whether every import of ``text`` is one of ``known`` (or, with ``relative``, inside the package)."""
    for target in _KCL_IMPORT.findall(text):
        if not (target.split(".")[0] in known or (relative and target.startswith("."))):
            return False
    return True


def _run_kcl_many(ext_dirs: list[Path]) -> dict[Path, list[TestCase]]:
    """``run_kcl_tests`` for each folder; batches where the answer is provably the same."""
    results: dict[Path, list[TestCase]] = {}
    alone: list[Path] = []
    plans: list[_KclPlan] = []
    for d in ext_dirs:
        plan = _kcl_plan(d)
        (alone.append(d) if plan is None else plans.append(plan))
    # One program can map a package name to one folder only: same-named extensions
    # (copies in different trees) go to different groups.
    groups: list[list[_KclPlan]] = []
    for plan in plans:
        group = next((g for g in groups if all(p.name != plan.name for p in g)), None)
        if group is None:
            groups.append(group := [])
        group.append(plan)
    for group in groups:
        _kcl_solve(group, results, alone, [KCL_BATCH_WORK * len(group)])
    for d in alone:
        results[d] = run_kcl_tests(d)
    return results


def _kcl_solve(plans: list[_KclPlan], results: dict[Path, list[TestCase]], alone: list[Path], budget: list[int]):
    """Batch ``plans``; on failure set the implicated aside (for the API) and retry the rest in halves."""
    if not plans:
        return
    if len(plans) > budget[0]:
        alone.extend(p.ext_dir for p in plans)
        return
    budget[0] -= len(plans)
    implicated, seconds = _kcl_batch(plans)
    if implicated is None:
        per_case = seconds * 1000 / max(1, sum(len(p.cases) for p in plans))
        for p in plans:
            results[p.ext_dir] = [TestCase(c, "kcl", True, "", per_case) for c in p.cases]
        return
    rest = [p for p in plans if p not in implicated]
    if len(rest) == 1 and not implicated:  # it failed, though the errors do not name it
        rest = []
        implicated = set(plans)
    alone.extend(p.ext_dir for p in plans if p in implicated)
    half = (len(rest) + 1) // 2
    _kcl_solve(rest[:half], results, alone, budget)
    _kcl_solve(rest[half:], results, alone, budget)


def _kcl_batch(plans: list[_KclPlan]) -> tuple[set[_KclPlan] | None, float]:
    """Run every case of ``plans`` in one program: (None if all passed else the plans errors point at, seconds).

    Each extension's test files are linked (not under the ``_test.k`` names that imports
    skip) into a package of their own, which a generated main file imports and whose
    test lambdas it calls. Output from ``print`` cannot be told apart, so any fails the batch.
    """
    api = kcl_api()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kcl-tests-") as tmp:
        root = Path(tmp)
        (root / "main").mkdir()
        extra: dict[str, Path] = {}
        lines: list[str] = []
        line_owner: dict[int, _KclPlan] = {}
        owners: dict[Path, _KclPlan] = {}  # folders errors may point into
        for i, plan in enumerate(plans):
            alias = f"{_KCL_ALIAS}{i}"
            pkg = root / "pkgs" / alias
            pkg.mkdir(parents=True)
            for f in plan.files:
                _link_or_copy(f, pkg / f"{f.name[: -len('_test.k')]}_t.k")
            extra[plan.name] = (plan.ext_dir / "kcl").resolve()
            extra[alias] = pkg
            owners.update({pkg: plan, pkg.resolve(): plan, plan.ext_dir / "tests": plan, extra[plan.name]: plan})
            lines.append(f"import {alias}")
            line_owner[len(lines)] = plan
            if plan.values:  # the package's own file may name its private values too
                force = f"{alias}force"
                (pkg / f"{force}.k").write_text(f"{force} = [{', '.join(plan.values)}]\n", encoding="utf-8")
                lines.append(f"_{force} = {alias}.{force}")
                line_owner[len(lines)] = plan
            for case in plan.cases:
                lines.append(f"_{alias}_{case} = {alias}.{case}()")
                line_owner[len(lines)] = plan
        main = root / "main" / "main.k"
        main.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = api.ExecProgramArgs(
            work_dir=str(main.parent),
            k_filename_list=[str(main)],
            external_pkgs=kcl_external_pkgs(extra),
            disable_yaml_result=True,
        )
        try:
            result = api.API().exec_program(args)
            errors, log = result.err_message, result.log_message
        except Exception as exc:  # compile errors come as a bare Exception
            errors, log = str(exc), ""
        seconds = time.perf_counter() - start
        if not errors and not log:
            return None, seconds
        if not errors:  # output from a print nothing here could see: every case's log would hold it
            return set(plans), seconds
        implicated: set[_KclPlan] = set()
        for diag in parse_kcl_diagnostics(errors):
            for place in diag.places:
                if place.file == main:
                    implicated.update([line_owner[place.line]] if place.line in line_owner else [])
                elif owner := owners.get(place.file.parent) or owners.get(place.file.resolve().parent):
                    implicated.add(owner)
        return implicated, seconds


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.symlink(src, dest)
    except OSError:
        dest.write_bytes(src.read_bytes())


# --------------------------------------------------------------------------- Nushell


@dataclass(frozen=True)
class _NuTest:
    ext_dir: Path  # resolved
    file: Path  # resolved

    @property
    def rel(self) -> Path:
        return self.file.relative_to(self.ext_dir)


def run_nu_tests(ext_dir: Path, files: list[Path]) -> list[TestCase]:
    """Nushell test files of one extension (batched as in ``run_many_extension_tests``); exit 0 means passed."""
    ext = Path(ext_dir).resolve()
    tests = [_NuTest(ext, Path(f).resolve()) for f in files]
    results = _run_nu_many(tests)
    return [results[t] for t in tests]


def _run_nu_many(tests: list[_NuTest]) -> dict[_NuTest, TestCase]:
    """Every test file's case: batched in one or two drivers where possible, else in its own ``nu``."""
    if not tests:
        return {}
    if not nu_available():
        return {t: TestCase(t.file.name, "nu", False, _NO_NU) for t in tests}
    results: dict[_NuTest, TestCase] = {}
    alone: list[_NuTest] = []
    batch: dict[_NuTest, bool] = {}  # test -> whether it defines main
    ext_scripts_ok: dict[Path, bool] = {}
    for t in tests:
        main = _nu_batchable(t, ext_scripts_ok)
        if main is None:
            alone.append(t)
        else:
            batch[t] = main
    if len(batch) == 1:  # a driver would only add a process
        alone += list(batch)
    elif batch:
        failures = _run_nu_batch(batch, results, alone)
        for i, (t, case) in enumerate(failures.items()):
            if i < NU_CONFIRM_MAX:
                alone.append(t)
            else:
                results[t] = case
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        results.update(zip(alone, pool.map(_run_nu_test, alone), strict=True))
    return results


def run_nu_test(ext_dir: Path, test: Path) -> TestCase:
    """One test file in its own ``nu`` from the extension folder: what a batch must agree with."""
    return _run_nu_test(_NuTest(Path(ext_dir).resolve(), Path(test).resolve()))


def _run_nu_test(test: _NuTest) -> TestCase:
    """``nu --no-config-file tests/test_x.nu`` from the extension folder: the reference semantics."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            ["nu", "--no-config-file", str(test.rel)],
            cwd=test.ext_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=NU_TEST_TIMEOUT,
            env=_nu_env(),
        )
    except subprocess.TimeoutExpired:
        return _timed_out(test)
    return TestCase(test.file.name, "nu", proc.returncode == 0, _joined(proc.stdout, proc.stderr), _ms_since(start))


def _timed_out(test: _NuTest) -> TestCase:
    return TestCase(test.file.name, "nu", False, f"timed out after {NU_TEST_TIMEOUT} s", NU_TEST_TIMEOUT * 1000.0)


def _joined(stdout: str, stderr: str) -> str:
    return "\n".join(part.strip() for part in (stdout, stderr) if part.strip())


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _nu_env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1"}


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
        for _round in range(NU_MAX_ROUNDS):
            if not pending:
                break
            workers = min(2, os.cpu_count() or 1) if len(pending) >= NU_SPLIT_MIN else 1
            chunks = _chunks(pending, max(workers, -(-len(pending) // NU_CHUNK_MAX)))
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
                if time.perf_counter() - since > NU_TEST_TIMEOUT:
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
            timeout=NU_TEST_TIMEOUT,
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
