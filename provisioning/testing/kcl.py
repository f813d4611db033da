"""KCL tests (``*_test.k``): one program per batch of extensions importing every test package, the test API
for what a batch cannot vouch for, and for an extension a failing batch points at."""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..checks import (
    BASE_PACKAGE,
    format_kcl_diagnostics,
    kcl_api,
    kcl_column0_lines,
    kcl_external_pkgs,
    kcl_identifier,
    parse_kcl_diagnostics,
    strip_ansi,
)
from . import limits
from .report import TestCase

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
            for line in kcl_column0_lines(text):
                if _KCL_DEFINITION.match(line):
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
            if (text.count('"""') + text.count("'''")) % 2:  # a multi-line string left open at the end
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
        _kcl_solve(group, results, alone, [limits.KCL_BATCH_WORK * len(group)])
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
