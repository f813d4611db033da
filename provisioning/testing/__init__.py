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

The package: ``report`` (the cases and reports), ``kcl`` (the KCL batches and the test API),
``nu`` (one test file in its own process) and ``nu_batch`` (the drivers); ``limits`` holds the
bounds of both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from ..checks import nu_available
from . import limits
from .kcl import _run_kcl_many, package_name, run_kcl_tests
from .nu import _NO_NU, _NuTest, _run_nu_test, run_nu_test
from .nu_batch import _nu_batchable, _run_nu_batch
from .report import TestCase, TestReport

__all__ = [
    "TestCase",
    "TestReport",
    "package_name",
    "run_extension_tests",
    "run_kcl_tests",
    "run_many_extension_tests",
    "run_nu_test",
    "run_nu_tests",
]


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
            if i < limits.NU_CONFIRM_MAX:
                alone.append(t)
            else:
                results[t] = case
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        results.update(zip(alone, pool.map(_run_nu_test, alone), strict=True))
    return results
